package dsartest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

// TestLeaserStore runs the dsar.Leaser contract (dsar/lease.go) against the stores open
// returns, without an engine: what Lease takes and in which order, leases taken at once
// from every replica's store never overlapping, the fenced and the version-checked writes,
// Renew and Release. [TestLeaser] runs it too.
func TestLeaserStore(t *testing.T, open func(t *testing.T) Replicas) {
	t.Helper()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	ttl := dsar.DefaultLeaseTTL
	write := func(id string, version uint64, due time.Time) dsar.Write {
		return dsar.Write{ID: id, Subject: privguard.SubjectID("s-" + id[len(id)-1:]), Version: version, Due: due,
			Body: fmt.Appendf(nil, `{"id":%q,"version":%d}`, id, version)}
	}
	ids := func(ls []dsar.Leased) []string {
		out := make([]string, len(ls))
		for i, l := range ls {
			out[i] = l.ID
		}
		return out
	}

	t.Run("lease_takes_the_due_earliest_first", func(t *testing.T) {
		ctx := context.Background()
		rs := newReplicaSet(t, open)
		l := rs.leaser(0)
		for _, w := range []dsar.Write{
			write("r-1", 1, t0.Add(2*time.Second)),
			write("r-2", 1, t0),
			write("r-3", 1, time.Time{}),            // never due
			write("r-4", 1, t0.Add(time.Hour)),      // not yet
			write("r-5", 1, t0.Add(2*time.Second)),  // as r-1: by id
			write("r-0", 1, t0.Add(-1*time.Second)), // the earliest
		} {
			if err := l.PutRequestIf(ctx, w); err != nil {
				t.Fatal(err)
			}
		}
		now := t0.Add(time.Minute)
		got, err := l.Lease(ctx, "a", now, ttl, 3)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"r-0", "r-2", "r-1"}; !slices.Equal(ids(got), want) {
			t.Errorf("Lease(limit 3) = %v; want %v", ids(got), want)
		}
		if string(got[0].Body) != `{"id":"r-0","version":1}` {
			t.Errorf("Lease returned body %q; want it as stored", got[0].Body)
		}
		if _, holder, until := rs.Leases.Due("r-0"); holder != "a" || !until.Equal(now.Add(ttl)) {
			t.Errorf("r-0 leased by %q until %v; want a, until %v", holder, until, now.Add(ttl))
		}
		got, err = rs.leaser(1).Lease(ctx, "b", now, ttl, 10)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"r-5"}; !slices.Equal(ids(got), want) {
			t.Errorf("b's Lease while a holds three = %v; want %v (not the held, the never due, the not yet due)", ids(got), want)
		}
		// At the expiry (not after it) a's leases have lapsed.
		got, err = rs.leaser(2).Lease(ctx, "c", now.Add(ttl), ttl, 10)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"r-0", "r-2", "r-1", "r-5"}; !slices.Equal(ids(got), want) {
			t.Errorf("c's Lease once every lease has lapsed = %v; want %v", ids(got), want)
		}
		if got, err := l.Lease(ctx, "a", now, ttl, 0); err != nil || len(got) != 0 {
			t.Errorf("Lease(limit 0) = %v, %v; want none", ids(got), err)
		}
	})

	t.Run("concurrent_leases_never_overlap", func(t *testing.T) {
		ctx := context.Background()
		rs := newReplicaSet(t, open)
		const total = 300
		var ws []dsar.Write
		for i := range total {
			ws = append(ws, write(fmt.Sprintf("c-%04d", i), 1, t0.Add(time.Duration(i%7)*time.Millisecond)))
		}
		if err := rs.leaser(0).PutRequestsIf(ctx, ws); err != nil {
			t.Fatal(err)
		}
		var (
			mu    sync.Mutex
			taken = map[string]string{}
			dups  []string
			wg    sync.WaitGroup
			start = make(chan struct{})
		)
		for i := range 3 * len(rs.Stores) { // several callers on each replica's store
			holder := fmt.Sprintf("h-%d", i)
			l := rs.leaser(i)
			wg.Go(func() {
				<-start
				for {
					got, err := l.Lease(ctx, holder, t0.Add(time.Second), ttl, 7)
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, g := range got {
						if prev, ok := taken[g.ID]; ok {
							dups = append(dups, fmt.Sprintf("%s by %s and %s", g.ID, prev, holder))
						}
						taken[g.ID] = holder
					}
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		if len(dups) > 0 {
			t.Errorf("requests leased twice at once: %v", dups)
		}
		if len(taken) != total {
			t.Errorf("%d requests leased; want all %d", len(taken), total)
		}
	})

	t.Run("version_checked_writes", func(t *testing.T) {
		ctx := context.Background()
		rs := newReplicaSet(t, open)
		l := rs.leaser(0)
		conflict := func(name string, err, want error) {
			t.Helper()
			if !errors.Is(err, want) || !errors.Is(err, privguard.ErrConflict) {
				t.Errorf("%s = %v; want %v (a conflict)", name, err, want)
			}
		}
		if err := l.PutRequestIf(ctx, write("v-1", 1, t0)); err != nil {
			t.Fatal(err)
		}
		conflict("PutRequestIf(version 1) of a stored id", rs.leaser(1).PutRequestIf(ctx, write("v-1", 1, t0)), dsar.ErrVersion)
		conflict("PutRequestIf(version 3) over version 1", l.PutRequestIf(ctx, write("v-1", 3, t0)), dsar.ErrVersion)
		conflict("PutRequestIf(version 2) of no request", l.PutRequestIf(ctx, write("v-9", 2, t0)), dsar.ErrVersion)
		if err := rs.leaser(2).PutRequestIf(ctx, write("v-1", 2, time.Time{})); err != nil {
			t.Fatalf("PutRequestIf(version 2) over version 1: %v", err)
		}
		if due, _, _ := rs.Leases.Due("v-1"); !due.IsZero() {
			t.Errorf("due %v after a write due never; want none", due)
		}
		b, err := rs.Stores[0].Request(ctx, "v-1")
		if err != nil || string(b) != `{"id":"v-1","version":2}` {
			t.Errorf("Request = %q, %v; want version 2's body", b, err)
		}
		// All or none.
		conflict("PutRequestsIf with one stale write", l.PutRequestsIf(ctx, []dsar.Write{write("v-2", 1, t0), write("v-1", 2, t0)}), dsar.ErrVersion)
		if _, err := rs.Stores[0].Request(ctx, "v-2"); !errors.Is(err, privguard.ErrNotFound) {
			t.Errorf("a request of a PutRequestsIf that failed: %v; want ErrNotFound (none written)", err)
		}
		if err := l.PutRequestsIf(ctx, []dsar.Write{write("v-2", 1, t0), write("v-1", 3, t0)}); err != nil {
			t.Fatal(err)
		}
		got, err := l.SubjectRequests(ctx, []privguard.SubjectID{"s-2", "s-1", "s-none"})
		if err != nil || len(got) != 2 || string(got[0]) != `{"id":"v-1","version":3}` || string(got[1]) != `{"id":"v-2","version":1}` {
			t.Errorf("SubjectRequests = %q, %v; want v-1's and v-2's, in id order", got, err)
		}

		// Concurrent writers of one version: one wins.
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i := range errs {
			wg.Go(func() { errs[i] = rs.leaser(i).PutRequestIf(ctx, write("v-1", 4, t0)) })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, dsar.ErrVersion):
				t.Errorf("a concurrent PutRequestIf = %v; want nil or ErrVersion", err)
			}
		}
		if won != 1 {
			t.Errorf("%d of 3 concurrent writes of version 4 succeeded; want 1", won)
		}
	})

	t.Run("batch_fenced_writes", func(t *testing.T) {
		ctx := context.Background()
		rs := newReplicaSet(t, open)
		a, b := rs.leaser(0), rs.leaser(1)
		if err := a.PutRequestsIf(ctx, []dsar.Write{
			write("w-3", 1, t0.Add(-time.Second)), // b's: due first
			write("w-1", 1, t0), write("w-2", 1, t0), write("w-4", 1, t0), write("w-5", 1, t0),
		}); err != nil {
			t.Fatal(err)
		}
		now := t0.Add(time.Second)
		if got, err := b.Lease(ctx, "b", now, ttl, 1); err != nil || !slices.Equal(ids(got), []string{"w-3"}) {
			t.Fatalf("b's Lease = %v, %v; want [w-3]", ids(got), err)
		}
		if got, err := a.Lease(ctx, "a", now, ttl, 10); err != nil || len(got) != 4 {
			t.Fatalf("a's Lease = %v, %v; want the other four", ids(got), err)
		}
		rs.Leases.Lapse("w-4")
		ws := []dsar.Write{
			write("w-1", 2, t0.Add(time.Hour)),
			write("w-2", 3, t0),          // stale
			write("w-3", 2, t0),          // b's
			write("w-4", 2, t0),          // lapsed
			write("w-9", 2, t0),          // no request
			write("w-5", 2, time.Time{}), // due never
		}
		out, err := a.PutRequestsLeased(ctx, "a", now, ws)
		if err != nil {
			t.Fatalf("PutRequestsLeased: %v", err)
		}
		if len(out) != len(ws) {
			t.Fatalf("PutRequestsLeased returned %d outcomes for %d writes", len(out), len(ws))
		}
		for i, want := range []error{nil, dsar.ErrVersion, dsar.ErrLeaseLost, dsar.ErrLeaseLost, dsar.ErrLeaseLost, nil} {
			switch {
			case want == nil && out[i] != nil:
				t.Errorf("PutRequestsLeased: %s's outcome = %v; want stored", ws[i].ID, out[i])
			case want != nil && (!errors.Is(out[i], want) || !errors.Is(out[i], privguard.ErrConflict)):
				t.Errorf("PutRequestsLeased: %s's outcome = %v; want %v (a conflict)", ws[i].ID, out[i], want)
			}
		}
		for id, want := range map[string]string{
			"w-1": `{"id":"w-1","version":2}`, "w-5": `{"id":"w-5","version":2}`,
			"w-2": `{"id":"w-2","version":1}`, "w-3": `{"id":"w-3","version":1}`, "w-4": `{"id":"w-4","version":1}`,
		} {
			if b, err := rs.Stores[2].Request(ctx, id); err != nil || string(b) != want {
				t.Errorf("Request(%s) after PutRequestsLeased = %q, %v; want %s", id, b, err, want)
			}
		}
		if due, holder, until := rs.Leases.Due("w-1"); !due.Equal(t0.Add(time.Hour)) || holder != "a" || !until.Equal(now.Add(ttl)) {
			t.Errorf("w-1 after the holder's write: due %v, held by %q until %v; want %v, still a's until %v", due, holder, until, t0.Add(time.Hour), now.Add(ttl))
		}
		if due, _, _ := rs.Leases.Due("w-5"); !due.IsZero() {
			t.Errorf("w-5 due %v after a write due never; want none", due)
		}
		if due, holder, _ := rs.Leases.Due("w-3"); !due.Equal(t0.Add(-time.Second)) || holder != "b" {
			t.Errorf("w-3 after a's refused write: due %v, held by %q; want %v, b's", due, holder, t0.Add(-time.Second))
		}
		if got, err := rs.leaser(2).SubjectRequests(ctx, []privguard.SubjectID{"s-1", "s-5"}); err != nil || len(got) != 2 {
			t.Errorf("SubjectRequests of the written requests' subjects = %q, %v; want two", got, err)
		}

		if out, err := a.PutRequestsLeased(ctx, "a", now, nil); err != nil || len(out) != 0 {
			t.Errorf("PutRequestsLeased(none) = %v, %v; want no outcomes", out, err)
		}
		dup := []dsar.Write{write("w-1", 3, t0), write("w-1", 3, t0)}
		if out, err := a.PutRequestsLeased(ctx, "a", now, dup); !errors.Is(err, privguard.ErrInvalid) || out != nil {
			t.Errorf("PutRequestsLeased of one id twice = %v, %v; want ErrInvalid", out, err)
		}
		if b, _ := rs.Stores[0].Request(ctx, "w-1"); string(b) != `{"id":"w-1","version":2}` {
			t.Errorf("w-1 after a refused call = %q; want version 2's body", b)
		}
		// Once the holder's leases have lapsed, nothing is written.
		out, err = a.PutRequestsLeased(ctx, "a", now.Add(ttl), []dsar.Write{write("w-1", 3, t0), write("w-5", 3, t0)})
		if err != nil || len(out) != 2 || !errors.Is(out[0], dsar.ErrLeaseLost) || !errors.Is(out[1], dsar.ErrLeaseLost) {
			t.Errorf("PutRequestsLeased once the leases lapsed = %v, %v; want ErrLeaseLost twice", out, err)
		}
	})

	t.Run("batch_writes_beside_renewals", func(t *testing.T) {
		// A holder renews its leases while it writes their requests, from two connections:
		// the two never deadlock, and every write and renewal goes through.
		ctx := context.Background()
		rs := newReplicaSet(t, open)
		const total, rounds = 200, 10
		var ws []dsar.Write
		var all []string
		for i := range total {
			id := fmt.Sprintf("d-%04d", i)
			ws, all = append(ws, write(id, 1, t0)), append(all, id)
		}
		if err := rs.leaser(0).PutRequestsIf(ctx, ws); err != nil {
			t.Fatal(err)
		}
		now := t0.Add(time.Second)
		if got, err := rs.leaser(0).Lease(ctx, "a", now, ttl, total); err != nil || len(got) != total {
			t.Fatalf("Lease = %d, %v; want all %d", len(got), err, total)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			for v := range uint64(rounds) {
				batch := make([]dsar.Write, total)
				for i := range total {
					batch[total-1-i] = write(all[i], v+2, t0) // the reverse of id order
				}
				out, err := rs.leaser(1).PutRequestsLeased(ctx, "a", now, batch)
				if err != nil {
					t.Errorf("PutRequestsLeased beside renewals: %v", err)
					return
				}
				for i, err := range out {
					if err != nil {
						t.Errorf("PutRequestsLeased beside renewals: %s's outcome = %v; want stored", batch[i].ID, err)
						return
					}
				}
			}
		})
		wg.Go(func() {
			for range rounds {
				got, err := rs.leaser(2).Renew(ctx, "a", all, now, ttl)
				if err != nil || len(got) != total {
					t.Errorf("Renew beside batch writes = %d renewed, %v; want all %d", len(got), err, total)
					return
				}
			}
		})
		wg.Wait()
	})

	t.Run("fenced_writes_renew_release", func(t *testing.T) {
		ctx := context.Background()
		rs := newReplicaSet(t, open)
		a, b := rs.leaser(0), rs.leaser(1)
		if err := a.PutRequestIf(ctx, write("f-1", 1, t0)); err != nil {
			t.Fatal(err)
		}
		now := t0.Add(time.Second)
		conflict := func(name string, err, want error) {
			t.Helper()
			if !errors.Is(err, want) || !errors.Is(err, privguard.ErrConflict) {
				t.Errorf("%s = %v; want %v (a conflict)", name, err, want)
			}
		}
		conflict("PutRequestLeased without a lease", a.PutRequestLeased(ctx, "a", now, write("f-1", 2, t0)), dsar.ErrLeaseLost)
		conflict("PutRequestLeased of no request", a.PutRequestLeased(ctx, "a", now, write("f-9", 2, t0)), dsar.ErrLeaseLost)
		if got, err := a.Lease(ctx, "a", now, ttl, 10); err != nil || len(got) != 1 {
			t.Fatalf("Lease = %v, %v", ids(got), err)
		}
		conflict("PutRequestLeased by another holder", b.PutRequestLeased(ctx, "b", now, write("f-1", 2, t0)), dsar.ErrLeaseLost)
		conflict("PutRequestLeased of a stale version", a.PutRequestLeased(ctx, "a", now, write("f-1", 3, t0)), dsar.ErrVersion)
		if err := a.PutRequestLeased(ctx, "a", now, write("f-1", 2, t0.Add(time.Hour))); err != nil {
			t.Fatalf("PutRequestLeased by the holder: %v", err)
		}
		if due, holder, until := rs.Leases.Due("f-1"); !due.Equal(t0.Add(time.Hour)) || holder != "a" || !until.Equal(now.Add(ttl)) {
			t.Errorf("after the holder's write: due %v, held by %q until %v; want %v, still a's until %v", due, holder, until, t0.Add(time.Hour), now.Add(ttl))
		}
		// An operator's write leaves the lease alone; the holder's next write then finds
		// the version moved.
		if err := b.PutRequestIf(ctx, write("f-1", 3, t0)); err != nil {
			t.Fatal(err)
		}
		conflict("PutRequestLeased after another's write", a.PutRequestLeased(ctx, "a", now, write("f-1", 3, t0)), dsar.ErrVersion)
		if _, holder, _ := rs.Leases.Due("f-1"); holder != "a" {
			t.Errorf("held by %q after an operator's write; want a still", holder)
		}

		if got, err := b.Renew(ctx, "b", []string{"f-1"}, now, ttl); err != nil || len(got) != 0 {
			t.Errorf("Renew by another holder = %v, %v; want none renewed", got, err)
		}
		later := now.Add(ttl / 2)
		if got, err := a.Renew(ctx, "a", []string{"f-1", "f-9"}, later, ttl); err != nil || !slices.Equal(got, []string{"f-1"}) {
			t.Errorf("Renew by the holder = %v, %v; want [f-1]", got, err)
		}
		if _, _, until := rs.Leases.Due("f-1"); !until.Equal(later.Add(ttl)) {
			t.Errorf("renewed until %v; want %v", until, later.Add(ttl))
		}
		if got, err := a.Renew(ctx, "a", []string{"f-1"}, later.Add(ttl), ttl); err != nil || len(got) != 0 {
			t.Errorf("Renew of a lapsed lease = %v, %v; want none renewed", got, err)
		}
		conflict("PutRequestLeased once the lease lapsed", a.PutRequestLeased(ctx, "a", later.Add(ttl), write("f-1", 4, t0)), dsar.ErrLeaseLost)

		if got, err := a.Lease(ctx, "a", later.Add(ttl), ttl, 10); err != nil || len(got) != 1 {
			t.Fatalf("Lease again = %v, %v", ids(got), err)
		}
		if err := b.Release(ctx, "b", []string{"f-1"}); err != nil {
			t.Fatal(err)
		}
		if _, holder, _ := rs.Leases.Due("f-1"); holder != "a" {
			t.Errorf("held by %q after another holder's Release; want a still", holder)
		}
		if err := a.Release(ctx, "a", []string{"f-1", "f-9"}); err != nil {
			t.Fatal(err)
		}
		if _, holder, until := rs.Leases.Due("f-1"); holder != "" || !until.IsZero() {
			t.Errorf("after Release: held by %q until %v; want free", holder, until)
		}
		if got, err := b.Lease(ctx, "b", later.Add(ttl), ttl, 10); err != nil || len(got) != 1 {
			t.Errorf("Lease by another after Release = %v, %v; want f-1", ids(got), err)
		}
	})
}
