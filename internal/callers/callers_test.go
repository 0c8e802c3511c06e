package callers_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/internal/callers"
	"github.com/privguard/privguard/journal"
)

var ctx = context.Background()

func openStore(t *testing.T) journal.Store {
	t.Helper()
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "p.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db.Journal()
}

// Terminating a processor revokes its credential at once, on every replica after a
// refresh, and opens its deletion confirmation, awaited until recorded once.
func TestTerminationRevokesAndAwaitsConfirmation(t *testing.T) {
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	list := []callers.Caller{
		{Name: "sms-gateway", SHA256: callers.Hash("pg_sms"), Purposes: []privguard.Purpose{"marketing.communications.sms"}},
		{Name: "agency", SHA256: callers.Hash("pg_agency"), Purposes: []privguard.Purpose{"marketing.advertising"}, TerminatedAt: now.Add(48 * time.Hour)},
		{Name: "old-vendor", SHA256: callers.Hash("pg_old"), Purposes: []privguard.Purpose{"analytics"}, TerminatedAt: now.Add(-time.Hour)},
	}
	store := openStore(t)
	g, err := callers.Open(ctx, store, list, clock)
	if err != nil {
		t.Fatal(err)
	}
	replica, err := callers.Open(ctx, store, list, clock)
	if err != nil {
		t.Fatal(err)
	}
	accepted := func(g *callers.Registry, token string) bool { _, ok := g.Caller(token); return ok }
	if c, ok := g.Caller("pg_sms"); !ok || c.Name != "sms-gateway" {
		t.Fatalf("Caller(pg_sms) = %v, %v", c, ok)
	}
	if accepted(g, "pg_old") || accepted(g, "pg_nope") || !accepted(g, "pg_agency") {
		t.Errorf("accepted: old %v, unknown %v, agency %v; want false, false, true", accepted(g, "pg_old"), accepted(g, "pg_nope"), accepted(g, "pg_agency"))
	}
	st, err := g.Terminate(ctx, "sms-gateway", "li.dpo")
	if err != nil || st.State != "terminated" || st.Deletion == nil || st.Deletion.State != "awaiting_confirmation" {
		t.Fatalf("Terminate = %+v, %v", st, err)
	}
	if accepted(g, "pg_sms") {
		t.Error("a terminated caller's credential is still accepted here")
	}
	if _, err := g.Terminate(ctx, "sms-gateway", "li.dpo"); !errors.Is(err, callers.ErrTerminated) {
		t.Errorf("terminating twice = %v; want ErrTerminated", err)
	}
	if _, err := g.Terminate(ctx, "nobody", "li.dpo"); !errors.Is(err, callers.ErrNotFound) {
		t.Errorf("terminating an unknown caller = %v; want ErrNotFound", err)
	}
	if !accepted(replica, "pg_sms") {
		t.Fatal("the replica revoked before reading the log") // it reads at Refresh
	}
	if err := replica.Refresh(ctx); err != nil || accepted(replica, "pg_sms") {
		t.Errorf("after Refresh (%v) the replica still accepts the terminated caller", err)
	}
	if _, err := g.Confirm(ctx, "agency", "li.dpo", "letter"); !errors.Is(err, callers.ErrNotAwaiting) {
		t.Errorf("confirming an active caller = %v; want ErrNotAwaiting", err)
	}
	awaiting := func() []string {
		all, err := g.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range all {
			if s.Deletion != nil && s.Deletion.State == "awaiting_confirmation" {
				out = append(out, s.Name)
			}
		}
		return out
	}
	if got := awaiting(); len(got) != 2 || got[0] != "old-vendor" || got[1] != "sms-gateway" {
		t.Errorf("awaiting confirmation: %v; want old-vendor (configured) and sms-gateway", got)
	}
	st, err = g.Confirm(ctx, "sms-gateway", "li.dpo", "ticket PRC-2291: deletion certificate")
	if err != nil || st.Deletion.State != "confirmed" || st.Deletion.ConfirmedBy != "li.dpo" {
		t.Fatalf("Confirm = %+v, %v", st, err)
	}
	if _, err := replica.Confirm(ctx, "sms-gateway", "other", "again"); !errors.Is(err, callers.ErrNotAwaiting) {
		t.Errorf("confirming twice (another replica) = %v; want ErrNotAwaiting", err)
	}
	if got := awaiting(); len(got) != 1 || got[0] != "old-vendor" {
		t.Errorf("awaiting after the confirmation: %v", got)
	}
	if accepted(g, "pg_sms") {
		t.Error("a confirmed termination un-revoked the credential")
	}
	// A configured terminated_at revokes when it comes, and its confirmation is opened at
	// the next refresh.
	now = now.Add(49 * time.Hour)
	if accepted(g, "pg_agency") {
		t.Error("the agency's credential is accepted after its terminated_at")
	}
	if err := g.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := awaiting(); len(got) != 2 || got[0] != "agency" {
		t.Errorf("awaiting after the agency's end: %v", got)
	}
	if _, err := journal.Verify(ctx, store, callers.Log); err != nil {
		t.Errorf("the log does not verify: %v", err)
	}
}

// BenchmarkCaller is the lookup the middleware adds to a request that carries a caller
// credential: a SHA-256 of the credential, a map read and a read-locked check.
func BenchmarkCaller(b *testing.B) {
	store := openStoreB(b)
	list := make([]callers.Caller, 100)
	for i := range list {
		list[i] = callers.Caller{Name: fmt.Sprint("caller-", i), SHA256: callers.Hash(fmt.Sprint("pg_caller_credential_", i)),
			Purposes: []privguard.Purpose{"marketing.communications.sms"}}
	}
	g, err := callers.Open(ctx, store, list, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := g.Caller("pg_caller_credential_42"); !ok {
			b.Fatal("not found")
		}
	}
}

func openStoreB(b *testing.B) journal.Store {
	db, err := boltstore.Open(filepath.Join(b.TempDir(), "p.db"), boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db.Journal()
}
