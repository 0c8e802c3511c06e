package consent_test

import (
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
)

// collect returns what an Each* walk reported.
func collect(t *testing.T, each func(fn func(privguard.SubjectID, time.Time) error) error) map[privguard.SubjectID]time.Time {
	t.Helper()
	got := map[privguard.SubjectID]time.Time{}
	if err := each(func(s privguard.SubjectID, at time.Time) error {
		if _, dup := got[s]; dup {
			t.Errorf("%s reported twice", s)
		}
		got[s] = at
		return nil
	}); err != nil {
		t.Fatalf("walk: %v", err)
	}
	return got
}

func wantReported(t *testing.T, name string, got, want map[privguard.SubjectID]time.Time) {
	t.Helper()
	if !maps.EqualFunc(got, want, time.Time.Equal) {
		t.Errorf("%s = %v; want %v", name, got, want)
	}
}

func TestEachClosed(t *testing.T) {
	l, clock := setup(t)
	start := clock.Now()
	closedAt := start.Add(-30 * 24 * time.Hour)
	mustAppend(t, l, consent.Request{Subject: "closed-early", Action: consent.ActionCloseAccount, ActorType: consent.ActorOperator, EffectiveAt: closedAt})
	mustAppend(t, l, grant("closed-now", "marketing.communications.sms"))
	mustAppend(t, l, consent.Request{Subject: "closed-now", Action: consent.ActionEndService, ActorType: consent.ActorSystem})
	mustAppend(t, l, grant("open", "marketing.communications.sms"))
	clock.Advance(time.Hour)
	// A later closure does not move the first.
	mustAppend(t, l, consent.Request{Subject: "closed-early", Action: consent.ActionEndService, ActorType: consent.ActorSystem})

	each := func(before time.Time) map[privguard.SubjectID]time.Time {
		return collect(t, func(fn func(privguard.SubjectID, time.Time) error) error { return l.EachClosed(ctx, before, fn) })
	}
	wantReported(t, "EachClosed(before start)", each(start), map[privguard.SubjectID]time.Time{"closed-early": closedAt})
	wantReported(t, "EachClosed(now)", each(clock.Now()), map[privguard.SubjectID]time.Time{"closed-early": closedAt, "closed-now": start})
	wantReported(t, "EachClosed(before the first)", each(closedAt), map[privguard.SubjectID]time.Time{})
	// Once erased, a closed subject is not reported again (nothing is left to erase), though
	// its closure stays on record; a closure after that is reported from its own time.
	mustAppend(t, l, consent.Request{Subject: "closed-early", Action: consent.ActionErase, ActorType: consent.ActorSystem})
	wantReported(t, "EachClosed(after the erasure)", each(clock.Now()), map[privguard.SubjectID]time.Time{"closed-now": start})

	if v, _ := l.Subject(ctx, "closed-early"); !v.ClosedAt.Equal(closedAt) {
		t.Errorf("Subject(closed-early).ClosedAt = %v; want %v", v.ClosedAt, closedAt)
	}
	stop := errors.New("stop")
	if err := l.EachClosed(ctx, clock.Now(), func(privguard.SubjectID, time.Time) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("EachClosed with failing fn = %v; want its error", err)
	}
	_, _, err := l.Append(ctx, consent.Request{Subject: "x", Action: consent.ActionCloseAccount, EffectiveAt: clock.Now().Add(time.Minute)})
	wantFieldError(t, err, "effective_at", consent.CodeInvalid)
	_, _, err = l.Append(ctx, consent.Request{Subject: "x", Action: consent.ActionCloseAccount, ActorType: consent.ActorGuardian})
	wantFieldError(t, err, "actor_type", consent.CodeInvalid)
	_, _, err = l.Append(ctx, consent.Request{Subject: "x", Action: consent.ActionObject, EffectiveAt: clock.Now()})
	wantFieldError(t, err, "effective_at", consent.CodeInvalid)
}

func TestEachLapsed(t *testing.T) {
	l, clock := setup(t)
	const p = "marketing.communications.sms"
	t0 := clock.Now()
	mustAppend(t, l, grant("withdrew", p))
	mustAppend(t, l, grant("given", p))
	mustAppend(t, l, grant("withdrew-all", p))
	mustAppend(t, l, grant("other-purpose", "analytics.ab_testing"))
	mustAppend(t, l, grant("erased", p))
	mustAppend(t, l, grant("regranted", p))
	mustAppend(t, l, consent.Request{Subject: "withdrew", Purpose: p, Action: consent.ActionWithdraw})
	mustAppend(t, l, consent.Request{Subject: "regranted", Purpose: p, Action: consent.ActionWithdraw})
	mustAppend(t, l, consent.Request{Subject: "erased", Action: consent.ActionErase, ActorType: consent.ActorSystem})
	mustAppend(t, l, consent.Request{Subject: "other-purpose", Purpose: "analytics.ab_testing", Action: consent.ActionWithdraw})
	clock.Advance(time.Hour)
	t1 := clock.Now()
	mustAppend(t, l, consent.Request{Subject: "refused", Purpose: p, Action: consent.ActionRefuse})
	mustAppend(t, l, consent.Request{Subject: "withdrew-all", Action: consent.ActionWithdraw}) // every purpose
	mustAppend(t, l, grant("regranted", p))
	clock.Advance(time.Hour)

	each := func(before time.Time) map[privguard.SubjectID]time.Time {
		return collect(t, func(fn func(privguard.SubjectID, time.Time) error) error { return l.EachLapsed(ctx, p, before, fn) })
	}
	wantReported(t, "EachLapsed(now)", each(clock.Now()), map[privguard.SubjectID]time.Time{"withdrew": t0, "refused": t1, "withdrew-all": t1})
	wantReported(t, "EachLapsed(t1)", each(t1), map[privguard.SubjectID]time.Time{"withdrew": t0})
	if err := l.EachLapsed(ctx, "no.such.purpose", t1, func(privguard.SubjectID, time.Time) error { return nil }); !errors.Is(err, privguard.ErrInvalid) {
		t.Errorf("EachLapsed(unknown purpose) = %v; want ErrInvalid", err)
	}
}

// BenchmarkEachLapsed walks a ledger of 1M subjects (one consent each) of which one in ten
// withdrew: the walk plus one record read per withdrawal. walk_only is the walk alone
// (EachClosed on the same ledger, which has no closure: nothing to read).
func BenchmarkEachLapsed(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 1,000,000-subject ledger")
	}
	const subjects, lapsedEvery = 1_000_000, 10
	l := benchRetentionLedger(b, subjects, lapsedEvery)
	before := time.Now().Add(time.Hour)
	b.Run("lapsed_100k", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			n := 0
			if err := l.EachLapsed(ctx, "analytics.ab_testing", before, func(privguard.SubjectID, time.Time) error { n++; return nil }); err != nil {
				b.Fatal(err)
			}
			if n != subjects/lapsedEvery {
				b.Fatalf("EachLapsed reported %d; want %d", n, subjects/lapsedEvery)
			}
		}
	})
	b.Run("walk_only", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if err := l.EachClosed(ctx, before, func(privguard.SubjectID, time.Time) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchRetentionLedger(b *testing.B, subjects, lapsedEvery int) *consent.Ledger {
	b.Helper()
	d, err := openBenchLedger(b.TempDir()+"/privguard.db", benchTaxonomy())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(d.close)
	if err := registerBenchNotice(d.l); err != nil {
		b.Fatal(err)
	}
	err = appendConcurrently(d.l, subjects, checkWriters, func(i int) consent.Request {
		return benchRequest(subjectID("lapse-", i), "analytics.ab_testing", i)
	})
	if err == nil {
		err = appendConcurrently(d.l, subjects/lapsedEvery, checkWriters, func(i int) consent.Request {
			return consent.Request{Subject: subjectID("lapse-", i*lapsedEvery), Purpose: "analytics.ab_testing", Action: consent.ActionWithdraw}
		})
	}
	if err != nil {
		b.Fatal(err)
	}
	return d.l
}
