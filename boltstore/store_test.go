package boltstore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/identity/identitytest"
	"github.com/privguard/privguard/journal"
	"github.com/privguard/privguard/journal/journaltest"
)

func TestConsentStoreConformance(t *testing.T) {
	consenttest.TestStore(t, func(t *testing.T) consent.Store {
		db, err := boltstore.Open(filepath.Join(t.TempDir(), "privguard.db"), boltstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db.Consent()
	})
}

func TestJournalStoreConformance(t *testing.T) {
	journaltest.TestStore(t, func(t *testing.T) journaltest.Stores {
		db, err := boltstore.Open(filepath.Join(t.TempDir(), "privguard.db"), boltstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db.Journal()
	})
}

// An entry altered in the file itself is found by Verify, and the error names it.
func TestJournalTamperInTheFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "privguard.db")
	db, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	j, _ := journal.Open(db.Journal(), "trail", nil)
	for i := range 5 {
		if _, err := j.Append(ctx, map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	raw, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("journal")).Bucket([]byte("trail"))
		k := binary.BigEndian.AppendUint64(nil, 3)
		v := bytes.Clone(b.Get(k))
		v[len(v)-2] = '9' // {"n":2} becomes {"n":9}
		return b.Put(k, v)
	})
	raw.Close()
	if err != nil {
		t.Fatal(err)
	}
	db, err = boltstore.Open(path, boltstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = journal.Verify(ctx, db.Journal(), "trail")
	var br *journal.BreakError
	if !errors.As(err, &br) || br.Seq != 3 {
		t.Fatalf("Verify = %v; want a break at entry 3", err)
	}
}

func TestIdentityStore(t *testing.T) {
	identitytest.TestStore(t, func(t *testing.T) identitytest.Stores {
		db, err := boltstore.Open(filepath.Join(t.TempDir(), "privguard.db"), boltstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return identitytest.Stores{Identity: db.Identity(), Vault: db.Vault()}
	})
}
