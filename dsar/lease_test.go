package dsar_test

import (
	"path/filepath"
	"testing"

	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/dsar/dsartest"
)

// The engine's tests on a shared store (dsartest.TestLeaser), over the in-memory
// reference store: three replicas of one SharedStore. pgstore runs the same on PostgreSQL.
func TestLeaser(t *testing.T) {
	dsartest.TestLeaser(t, func(t *testing.T) dsartest.Replicas {
		dir := t.TempDir()
		db, err := boltstore.Open(filepath.Join(dir, "vault.db"), boltstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		s := dsartest.NewSharedStore()
		return dsartest.Replicas{Stores: []dsar.Store{s, s, s}, Leases: s, Sealer: newVault(t, dir, db)}
	})
}
