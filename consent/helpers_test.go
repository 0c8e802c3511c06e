package consent_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
)

// reopen opens the ledger file in dir (which nothing else may hold open) and closes it when
// the test ends or when close is called.
func reopen(t *testing.T, dir string, clock *consenttest.Clock) (l *consent.Ledger, close func()) {
	t.Helper()
	db, err := boltstore.Open(filepath.Join(dir, "privguard.db"), boltstore.Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	l, err = consent.Open(context.Background(), consent.Config{Store: db.Consent(), Now: clock.Now})
	if err != nil {
		db.Close()
		t.Fatalf("reopen ledger: %v", err)
	}
	var once sync.Once
	close = func() { once.Do(func() { l.Close(); db.Close() }) }
	t.Cleanup(close)
	return l, close
}
