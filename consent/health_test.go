package consent_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
)

// brokenStore is the real bbolt store with a switch that makes its writes fail (the
// readiness test in adminapi breaks a real file system; this one steps through the states).
type brokenStore struct {
	*boltstore.ConsentStore
	broken atomic.Bool
}

var errWrite = errors.New("write failed")

func (s *brokenStore) Commit(ctx context.Context, b *consent.Batch) error {
	if s.broken.Load() {
		return errWrite
	}
	return s.ConsentStore.Commit(ctx, b)
}

func (s *brokenStore) Probe(ctx context.Context) error {
	if s.broken.Load() {
		return errWrite
	}
	return s.ConsentStore.Probe(ctx)
}

func TestPingFollowsCommits(t *testing.T) {
	// Ping is the readiness check: a failed commit makes it fail at once (not after the
	// probe interval), and it recovers as soon as a probe commits again.
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "p.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	clock := &consenttest.Clock{} // frozen: a success never goes stale in this test
	store := &brokenStore{ConsentStore: db.Consent()}
	l, err := consent.Open(ctx, consent.Config{Store: store, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Ping(ctx); err != nil {
		t.Fatalf("healthy: Ping = %v", err)
	}
	store.broken.Store(true)
	if _, _, err := l.Append(ctx, consent.Request{Subject: "cust-1", Action: consent.ActionObject}); !errors.Is(err, privguard.ErrUnavailable) {
		t.Fatalf("a write on a broken store: %v; want ErrUnavailable", err)
	}
	if err := l.Ping(ctx); !errors.Is(err, privguard.ErrUnavailable) {
		t.Errorf("after a failed commit: Ping = %v; want ErrUnavailable at once", err)
	}
	store.broken.Store(false)
	if err := l.Ping(ctx); err != nil {
		t.Errorf("once the store commits again: Ping = %v; want nil", err)
	}
	clock.Advance(consent.ProbeInterval)
	store.broken.Store(true)
	if err := l.Ping(ctx); !errors.Is(err, privguard.ErrUnavailable) {
		t.Errorf("idle past the probe interval on a broken store: Ping = %v; want ErrUnavailable (the probe fails)", err)
	}
}
