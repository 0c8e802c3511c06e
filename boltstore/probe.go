package boltstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/dsar"
)

var keyProbe = []byte("probe")

// Probe proves the file still takes a commit: it writes the time under meta "probe" in a
// transaction, fsynced like every other. It is the readiness check's write (a read would
// pass on a file system that has gone read-only). Returns an error wrapping
// privguard.ErrUnavailable if the commit fails.
func (db *DB) Probe(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyProbe, binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano())))
	})
	if err != nil {
		return fmt.Errorf("boltstore: probe commit: %w: %w", err, privguard.ErrUnavailable)
	}
	return nil
}

// Probe implements consent.Prober.
func (s *ConsentStore) Probe(ctx context.Context) error { return s.db.Probe(ctx) }

// Probe implements dsar.Prober.
func (s *DSARStore) Probe(ctx context.Context) error { return s.db.Probe(ctx) }

var (
	_ consent.Prober = (*ConsentStore)(nil)
	_ dsar.Prober    = (*DSARStore)(nil)
)
