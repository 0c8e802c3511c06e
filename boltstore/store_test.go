package boltstore_test

import (
	"path/filepath"
	"testing"

	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
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
