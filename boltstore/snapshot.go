package boltstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
)

var _ consent.Snapshotter = (*ConsentStore)(nil)

// SnapshotPath is where the consent ledger's snapshot of the data file at path is kept: a
// file next to it (mode 0600). Deleting it only makes the next start replay every record.
func SnapshotPath(path string) string { return path + ".consent-snapshot" }

// WriteSnapshot implements consent.Snapshotter: it writes to a temporary file beside the
// snapshot, fsyncs it and renames it over the snapshot, so that a crash leaves either the
// old snapshot or the new one.
func (s *ConsentStore) WriteSnapshot(ctx context.Context, write func(w io.Writer) error) error {
	if s.db.bolt.IsReadOnly() {
		return errors.New("boltstore: snapshot: the data file is open read-only")
	}
	path := SnapshotPath(s.db.Path())
	removeStaleSnapshots(path)
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("boltstore: snapshot: %w", err)
	}
	tmp := f.Name()
	err = write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("boltstore: snapshot: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() // the rename itself
		d.Close()
	}
	return nil
}

// removeStaleSnapshots removes the temporary files of snapshots a crash left half written
// (each can be gigabytes). Only the process holding the data file's lock writes snapshots,
// so any found now is such a leftover.
func removeStaleSnapshots(path string) {
	dir, prefix := filepath.Dir(path), filepath.Base(path)+".tmp-"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) && e.Type().IsRegular() {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// ReadSnapshot implements consent.Snapshotter.
func (s *ConsentStore) ReadSnapshot(ctx context.Context, read func(r io.Reader, size int64) error) error {
	f, err := os.Open(SnapshotPath(s.db.Path()))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("boltstore: snapshot: %w", privguard.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("boltstore: snapshot: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("boltstore: snapshot: %w", err)
	}
	return read(f, st.Size())
}
