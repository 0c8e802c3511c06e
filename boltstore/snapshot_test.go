package boltstore_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/privguard/privguard/boltstore"
)

// A snapshot's temporary file left by a crash is removed when the next snapshot is written;
// other files beside it are not.
func TestStaleSnapshotTempRemoved(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "privguard.db")
	db, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stale := boltstore.SnapshotPath(path) + ".tmp-123456"
	other := filepath.Join(dir, "notes.tmp-123456")
	os.WriteFile(stale, []byte("half a snapshot"), 0o600)
	os.WriteFile(other, []byte("keep"), 0o600)
	if err := db.Consent().WriteSnapshot(context.Background(), func(w io.Writer) error { _, err := w.Write([]byte("snap")); return err }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale temporary snapshot is still there (%v)", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("an unrelated file was removed: %v", err)
	}
	if b, _ := os.ReadFile(boltstore.SnapshotPath(path)); string(b) != "snap" {
		t.Errorf("snapshot = %q", b)
	}
}
