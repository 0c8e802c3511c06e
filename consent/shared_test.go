package consent_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
)

// openShared opens a ledger on a new view of s, as one more process would.
func openShared(t *testing.T, s *consenttest.Shared, cfg consent.Config) *consent.Ledger {
	t.Helper()
	cfg.Store = s.View()
	if cfg.FollowInterval == 0 {
		cfg.FollowInterval = 10 * time.Millisecond
	}
	l, err := consent.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("consent.Open on the shared store: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// waitFor polls cond until it holds or within passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

// TestSharedChainAcrossLedgers has three ledgers on one shared store commit concurrently,
// on subjects they share, many rounds: every acknowledged record is stored once at the
// sequence number it was acknowledged with, the store holds one chain that verifies (no
// fork, no gap), and each ledger ends with the state a ledger opened afresh on the store
// rebuilds.
func TestSharedChainAcrossLedgers(t *testing.T) {
	shared := consenttest.NewShared()
	var ledgers []*consent.Ledger
	for range 3 {
		ledgers = append(ledgers, openShared(t, shared, consent.Config{}))
	}
	if _, _, err := ledgers[0].RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		t.Fatalf("RegisterNotice: %v", err)
	}
	const writers, rounds = 16, 40
	var mu sync.Mutex
	acked := map[uint64]string{}
	var wg sync.WaitGroup
	for li, l := range ledgers {
		for w := range writers {
			wg.Go(func() {
				for r := range rounds {
					s := privguard.SubjectID(fmt.Sprintf("s%02d", (w*7+r)%24))
					req := grant(s, crashPurposes[(li+r)%len(crashPurposes)])
					if r%3 == 2 {
						req = consent.Request{Subject: s, Purpose: req.Purpose, Action: consent.ActionWithdraw,
							Channel: consent.ChannelApp, Method: consent.MethodExplicit}
					}
					rec, _, err := l.Append(ctx, req)
					if err != nil {
						t.Errorf("ledger %d Append: %v", li, err)
						return
					}
					mu.Lock()
					if other, dup := acked[rec.Seq]; dup {
						t.Errorf("record %d acknowledged twice (%s and %s): the chain forked", rec.Seq, other, rec.ID)
					}
					acked[rec.Seq] = rec.ID
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	total := 3 * writers * rounds
	if shared.Len() != total || len(acked) != total {
		t.Fatalf("%d records stored, %d acknowledged; want %d", shared.Len(), len(acked), total)
	}
	view := shared.View()
	for seq, id := range acked {
		got, err := view.SeqByID(ctx, id)
		if err != nil || got != seq {
			t.Fatalf("record %s acknowledged at %d is stored at %d (%v)", id, seq, got, err)
		}
	}
	rep, err := consent.Verify(ctx, view)
	if err != nil || rep.Break != nil || rep.Records != uint64(total) {
		t.Fatalf("Verify: %+v, %v", rep, err)
	}
	fresh := openShared(t, shared, consent.Config{})
	for _, l := range ledgers {
		waitFor(t, 2*time.Second, "every ledger at the head", func() bool { return l.Stats().Records == uint64(total) })
		for i := range 24 {
			s := privguard.SubjectID(fmt.Sprintf("s%02d", i))
			for _, p := range crashPurposes {
				a, _ := l.Check(ctx, s, p)
				b, _ := fresh.Check(ctx, s, p)
				if a.State != b.State || a.Allowed != b.Allowed {
					t.Fatalf("%s %s: a writing ledger says %v/%v, a fresh one %v/%v", s, p, a.State, a.Allowed, b.State, b.Allowed)
				}
			}
		}
	}
}

// TestSharedWithdrawalReachesEveryLedger: a grant and then a withdrawal recorded through
// one ledger are enforced by another one on the same store, without it writing anything.
func TestSharedWithdrawalReachesEveryLedger(t *testing.T) {
	shared := consenttest.NewShared()
	a := openShared(t, shared, consent.Config{})
	b := openShared(t, shared, consent.Config{FollowInterval: time.Hour}) // notifications only
	if _, _, err := a.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		t.Fatalf("RegisterNotice: %v", err)
	}
	const p = "marketing.communications.sms"
	mustAppend(t, a, grant("cust-1", p))
	waitFor(t, time.Second, "the grant on b", func() bool { return check(t, b, "cust-1", p).Allowed })
	mustAppend(t, a, consent.Request{Subject: "cust-1", Purpose: p, Action: consent.ActionWithdraw,
		Channel: consent.ChannelApp, Method: consent.MethodExplicit})
	waitFor(t, time.Second, "the withdrawal on b", func() bool { return !check(t, b, "cust-1", p).Allowed })
	if st := check(t, b, "cust-1", p); st.State != consent.StateWithdrawn {
		t.Fatalf("b: %v, want withdrawn", st.State)
	}
	if f := b.Follow(); !f.Shared || f.Followed != 2 {
		t.Fatalf("b.Follow() = %+v, want 2 records followed", f)
	}
}

// TestSharedNoticeFromAnotherLedger: a grant through b citing a notice registered through a
// a moment before is accepted (b reads the notice rather than call it unknown), and the
// same notice registered through both is stored once.
func TestSharedNoticeFromAnotherLedger(t *testing.T) {
	shared := consenttest.NewShared()
	a := openShared(t, shared, consent.Config{})
	b := openShared(t, shared, consent.Config{FollowInterval: time.Hour})
	// Keep b from hearing of it first: register through a while b's notification is
	// consumed... b may or may not have followed; either way the grant must pass.
	if _, _, err := a.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		t.Fatalf("RegisterNotice a: %v", err)
	}
	mustAppend(t, b, grant("cust-2", "marketing.communications.sms"))
	n, created, err := b.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN"))
	if err != nil || created || n.ID != "marketing" {
		t.Fatalf("RegisterNotice b = %v created=%v, %v; want the stored notice, not created", n.ID, created, err)
	}
	changed := consenttest.MarketingNotice(1, "zh-CN")
	changed.Text += " (changed)"
	if _, _, err := b.RegisterNotice(ctx, changed); !errors.Is(err, privguard.ErrConflict) {
		t.Fatalf("RegisterNotice of another text under a stored version through b: %v, want a conflict", err)
	}
}

// TestSharedIdempotencyAcrossLedgers: the same write with the same Idempotency-Key sent to
// three ledgers at once is recorded once, and all three answer with that record.
func TestSharedIdempotencyAcrossLedgers(t *testing.T) {
	shared := consenttest.NewShared()
	var ls []*consent.Ledger
	for range 3 {
		ls = append(ls, openShared(t, shared, consent.Config{}))
	}
	if _, _, err := ls[0].RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		t.Fatalf("RegisterNotice: %v", err)
	}
	for round := range 20 {
		req := grant(privguard.SubjectID(fmt.Sprintf("idem-%d", round)), "marketing.communications.sms")
		req.IdempotencyKey = fmt.Sprintf("key-%d", round)
		ids := make([]string, len(ls))
		var wg sync.WaitGroup
		for i, l := range ls {
			wg.Go(func() {
				rec, _, err := l.Append(ctx, req)
				if err != nil {
					t.Errorf("Append: %v", err)
				}
				ids[i] = rec.ID
			})
		}
		wg.Wait()
		if ids[0] != ids[1] || ids[1] != ids[2] {
			t.Fatalf("round %d: three answers %v, want one record", round, ids)
		}
	}
	if got := shared.Len(); got != 20 {
		t.Fatalf("%d records, want 20", got)
	}
}

// TestSharedStaleFailsClosed: while the store is unreachable, a ledger on it answers from
// memory only until MaxStaleness has passed since it last confirmed it was current; then
// every check fails closed with ErrStale (and Ping says not ready), and writes fail saying
// nothing was recorded; when the store is back it recovers by itself.
func TestSharedStaleFailsClosed(t *testing.T) {
	shared := consenttest.NewShared()
	const stale = 300 * time.Millisecond
	l := openShared(t, shared, consent.Config{MaxStaleness: stale})
	if _, _, err := l.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		t.Fatalf("RegisterNotice: %v", err)
	}
	const p = "marketing.communications.sms"
	mustAppend(t, l, grant("cust-3", p))
	shared.SetDown(true)
	start := time.Now()
	if _, _, err := l.Append(ctx, grant("cust-4", p)); !errors.Is(err, privguard.ErrUnavailable) || errors.Is(err, consent.ErrOutcomeUnknown) {
		t.Fatalf("Append during the outage: %v, want unavailable, nothing recorded", err)
	}
	took := waitFor(t, 3*stale, "checks failing closed", func() bool {
		_, err := l.Check(ctx, "cust-3", p)
		return errors.Is(err, consent.ErrStale)
	})
	if took < stale-50*time.Millisecond && time.Since(start) < stale {
		t.Fatalf("failed closed after %v, before the staleness bound %v", took, stale)
	}
	if _, err := l.Audience(ctx, p, []privguard.SubjectID{"cust-3"}); !errors.Is(err, consent.ErrStale) {
		t.Fatalf("Audience when stale: %v, want ErrStale", err)
	}
	if err := l.Ping(ctx); !errors.Is(err, privguard.ErrUnavailable) {
		t.Fatalf("Ping when stale: %v, want unavailable", err)
	}
	if f := l.Follow(); !f.Stale || f.Lag < stale {
		t.Fatalf("Follow() = %+v, want stale", f)
	}
	shared.SetDown(false)
	waitFor(t, time.Second, "recovery", func() bool { st, err := l.Check(ctx, "cust-3", p); return err == nil && st.Allowed })
	if st := check(t, l, "cust-4", p); st.Allowed {
		t.Fatal("the grant refused during the outage is allowed")
	}
}

// TestSharedCommitOutcome: a commit the store carried out but reported as failed (the
// connection broke after COMMIT) is acknowledged once the ledger finds the record stored;
// if the store cannot be asked, the answer says the outcome is unknown, and a retry with
// the same Idempotency-Key records the write at most once.
func TestSharedCommitOutcome(t *testing.T) {
	shared := consenttest.NewShared()
	l := openShared(t, shared, consent.Config{})
	if _, _, err := l.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		t.Fatalf("RegisterNotice: %v", err)
	}
	const p = "marketing.communications.sms"
	shared.CommitThenFail(1, false)
	rec, _, err := l.Append(ctx, grant("cust-5", p))
	if err != nil {
		t.Fatalf("Append whose commit was reported failed but took place: %v, want acknowledged", err)
	}
	if got, err := shared.View().SeqByID(ctx, rec.ID); err != nil || got != rec.Seq {
		t.Fatalf("record %d stored at %d, %v", rec.Seq, got, err)
	}
	if !check(t, l, "cust-5", p).Allowed {
		t.Fatal("the acknowledged grant is not in the state")
	}

	req := grant("cust-6", p)
	req.IdempotencyKey = "retry-me"
	shared.CommitThenFail(1, true)
	if _, _, err := l.Append(ctx, req); !errors.Is(err, consent.ErrOutcomeUnknown) {
		t.Fatalf("Append with the store gone after COMMIT: %v, want ErrOutcomeUnknown", err)
	}
	shared.SetDown(false)
	again, replayed, err := l.Append(ctx, req)
	if err != nil || !replayed {
		t.Fatalf("retry with the same key: replayed=%v, %v; want the stored record", replayed, err)
	}
	if n := shared.Len(); n != 2 || again.Seq != 2 {
		t.Fatalf("%d records, retry answered %d; want 2 records", n, again.Seq)
	}
}

// BenchmarkCheckFollower is Check on a ledger that follows another process's writes on a
// shared store while that process appends a steady load (about 5,000 grants a second to
// new and known subjects), beside the same Check on a ledger of its own. The subject is in
// the state and its lookup in the CPU caches (1,000 subjects).
func BenchmarkCheckFollower(b *testing.B) {
	const p = "marketing.communications.sms"
	known := make([]privguard.SubjectID, 1000)
	for i := range known {
		known[i] = privguard.SubjectID(fmt.Sprintf("bench-%04d", i))
	}
	run := func(b *testing.B, l *consent.Ledger) {
		b.ReportAllocs()
		var st consent.Status
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			st, _ = l.Check(ctx, known[i%len(known)], p)
		}
		b.StopTimer()
		if !st.Allowed {
			b.Fatalf("Check: %+v, want allowed", st)
		}
	}
	fill := func(b *testing.B, l *consent.Ledger) {
		if _, _, err := l.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
			b.Fatal(err)
		}
		for _, s := range known {
			if _, _, err := l.Append(ctx, grant(s, p)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("own_store", func(b *testing.B) {
		l := consenttest.Open(b, b.TempDir(), consent.Config{})
		fill(b, l)
		run(b, l)
	})
	b.Run("follower_under_writes", func(b *testing.B) {
		shared := consenttest.NewShared()
		open := func() *consent.Ledger {
			l, err := consent.Open(ctx, consent.Config{Store: shared.View(), FollowInterval: 10 * time.Millisecond})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { l.Close() })
			return l
		}
		writer, follower := open(), open()
		fill(b, writer)
		for follower.Stats().Records < writer.Stats().Records {
			time.Sleep(time.Millisecond)
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				for k := range 5 {
					s := privguard.SubjectID(fmt.Sprintf("load-%d-%d", i, k))
					if k == 0 {
						s = known[i%len(known)] // a known subject's state changes too (still allowed)
					}
					writer.Append(ctx, grant(s, p))
				}
			}
		}()
		run(b, follower)
		close(stop)
		<-done
		b.ReportMetric(float64(follower.Follow().Followed), "records_followed")
	})
}

// TestSharedExpirySweepsOnce: the expiry sweeps of three ledgers on one store, run at once
// on the same expired consents, record each expiry once.
func TestSharedExpirySweepsOnce(t *testing.T) {
	shared := consenttest.NewShared()
	clock := &consenttest.Clock{}
	var ls []*consent.Ledger
	for range 3 {
		ls = append(ls, openShared(t, shared, consent.Config{Now: clock.Now}))
	}
	if _, _, err := ls[0].RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		t.Fatalf("RegisterNotice: %v", err)
	}
	const subjects = 40
	for i := range subjects {
		mustAppend(t, ls[i%3], grant(privguard.SubjectID(fmt.Sprintf("exp-%d", i)), "marketing.communications.sms"))
	}
	for _, l := range ls {
		waitFor(t, time.Second, "every ledger at the head", func() bool { return l.Stats().Records == subjects })
	}
	clock.Advance(privguard.DefaultConsentValidity)
	var wg sync.WaitGroup
	written := make([]int, len(ls))
	for i, l := range ls {
		wg.Go(func() {
			n, err := l.ExpireDue(ctx, 0)
			if err != nil {
				t.Errorf("ExpireDue: %v", err)
			}
			written[i] = n
		})
	}
	wg.Wait()
	if total := written[0] + written[1] + written[2]; total != subjects || shared.Len() != 2*subjects {
		t.Fatalf("the sweeps wrote %v (%d records in all); want %d expiries in all, one each", written, shared.Len(), subjects)
	}
}

// TestSharedOpenRefusesATamperedLedger: a process opening the ledger of a shared store
// checks every record it replays as the feed does, and refuses to start on a record
// altered in the database (here: the withdrawal moved to another subject, so that the one
// who withdrew would count as consenting) instead of deciding on it while the running
// processes decide otherwise.
func TestSharedOpenRefusesATamperedLedger(t *testing.T) {
	shared := consenttest.NewShared()
	a := openShared(t, shared, consent.Config{SnapshotInterval: -1})
	if _, _, err := a.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		t.Fatalf("RegisterNotice: %v", err)
	}
	const p = "marketing.communications.sms"
	mustAppend(t, a, grant("cust-t", p))
	mustAppend(t, a, consent.Request{Subject: "cust-t", Purpose: p, Action: consent.ActionWithdraw, Channel: consent.ChannelApp, Method: consent.MethodExplicit})
	shared.Tamper(2, func(b []byte) []byte { return bytes.Replace(b, []byte("cust-t"), []byte("cust-u"), 1) })
	if _, err := consent.Open(ctx, consent.Config{Store: shared.View()}); err == nil || !strings.Contains(err.Error(), "record 2") {
		t.Fatalf("Open on a tampered ledger: %v; want a refusal naming record 2", err)
	}
}

// TestSharedNoticeCommitOutcome: a notice registration whose commit took place but whose
// answer was lost is acknowledged once the ledger finds the notice stored; if the store
// cannot be asked, the answer says the outcome is unknown.
func TestSharedNoticeCommitOutcome(t *testing.T) {
	shared := consenttest.NewShared()
	l := openShared(t, shared, consent.Config{})
	shared.CommitThenFail(1, false)
	n, created, err := l.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN"))
	if err != nil || !created || n.ID != "marketing" {
		t.Fatalf("RegisterNotice whose commit took place: %v created=%v, %v; want it registered", n.ID, created, err)
	}
	mustAppend(t, l, grant("cust-n", "marketing.communications.sms")) // the notice is in the state
	shared.CommitThenFail(1, true)
	if _, _, err := l.RegisterNotice(ctx, consenttest.MarketingNotice(1, "en")); !errors.Is(err, consent.ErrOutcomeUnknown) {
		t.Fatalf("RegisterNotice with the store gone after COMMIT: %v; want ErrOutcomeUnknown", err)
	}
}
