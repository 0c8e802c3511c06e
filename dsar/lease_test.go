package dsar_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/dsar/dsartest"
)

// calls counts a fake store's finished calls per subject and catches two calls for one
// subject at the same time (on any replica: the replicas share it, as they share the
// real store behind their connectors).
type calls struct {
	mu       sync.Mutex
	inflight map[privguard.SubjectID]bool
	done     map[privguard.SubjectID]int
	overlaps []privguard.SubjectID
}

func newCalls() *calls {
	return &calls{inflight: map[privguard.SubjectID]bool{}, done: map[privguard.SubjectID]int{}}
}

// do runs one call for s: it waits a little, or until hold returns, and fails with the
// context's error if the context ends first (as a database call would).
func (c *calls) do(ctx context.Context, s privguard.SubjectID, hold func(context.Context) error) error {
	c.mu.Lock()
	if c.inflight[s] {
		c.overlaps = append(c.overlaps, s)
	}
	c.inflight[s] = true
	c.mu.Unlock()
	var err error
	if hold != nil {
		err = hold(ctx)
	} else {
		select {
		case <-time.After(100 * time.Microsecond):
		case <-ctx.Done():
		}
	}
	err = errors.Join(err, ctx.Err())
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.inflight, s)
	if err == nil {
		c.done[s]++
	}
	return err
}

func (c *calls) count(s privguard.SubjectID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done[s]
}

// countingStore is a connector over calls; hold, if set, decides how long a call takes.
type countingStore struct {
	name  string
	calls *calls
	hold  func(context.Context) error
}

func (s *countingStore) Name() string { return s.name }

func (s *countingStore) Export(ctx context.Context, subject privguard.SubjectID) (dsar.Export, error) {
	if err := s.calls.do(ctx, subject, s.hold); err != nil {
		return dsar.Export{}, err
	}
	return dsar.Export{Store: s.name, Tables: []dsar.Table{{Name: "t", Rows: []map[string]any{{"v": 1}}}}}, nil
}

func (s *countingStore) Erase(ctx context.Context, subject privguard.SubjectID) (dsar.Erased, error) {
	if err := s.calls.do(ctx, subject, s.hold); err != nil {
		return dsar.Erased{}, err
	}
	return dsar.Erased{Items: 1}, nil
}

// countingBatchStore erases in batches, each subject of a batch counted as one call.
type countingBatchStore struct{ countingStore }

func (s *countingBatchStore) EraseBatch(ctx context.Context, subjects []privguard.SubjectID) ([]dsar.Erased, error) {
	out := make([]dsar.Erased, len(subjects))
	errs := make([]error, len(subjects))
	var wg sync.WaitGroup
	for i, subject := range subjects {
		wg.Go(func() {
			errs[i] = s.calls.do(ctx, subject, s.hold)
			out[i].Items = 1
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// countingRecipient is a recipient over calls.
type countingRecipient struct {
	name  string
	calls *calls
}

func (r *countingRecipient) Name() string { return r.name }

func (r *countingRecipient) NotifyRecipient(ctx context.Context, n dsar.RecipientNotice) error {
	return r.calls.do(ctx, n.Subject, nil)
}

// syncClock is a settable clock that the engines' lease renewals may read meanwhile.
type syncClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *syncClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *syncClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// replica is one engine on the shared store, with its own connectors (over the shared
// call counts, as replicas have their own connections to the same databases).
type replicaSet struct {
	crm, cache, partner *calls
	store               *dsartest.SharedStore
	sealer              dsar.Sealer
}

func newReplicaSet(t *testing.T) *replicaSet {
	t.Helper()
	dir := t.TempDir()
	db, err := boltstore.Open(filepath.Join(dir, "vault.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &replicaSet{crm: newCalls(), cache: newCalls(), partner: newCalls(), store: dsartest.NewSharedStore(), sealer: newVault(t, dir, db)}
}

func (rs *replicaSet) engine(t *testing.T, name string, now func() time.Time, hold func(context.Context) error) *dsar.Engine {
	t.Helper()
	e, err := dsar.New(dsar.Config{Store: rs.store, Replica: name, Now: now, Batch: 16, Workers: 4,
		Connectors: []dsar.Connector{
			&countingStore{name: "crm", calls: rs.crm, hold: hold},
			&countingBatchStore{countingStore{name: "cache", calls: rs.cache, hold: hold}},
		},
		Recipients: []dsar.RecipientNotifier{&countingRecipient{name: "partner", calls: rs.partner}},
		Sealer:     rs.sealer, BaseBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestReplicasWorkEachRequestOnce runs two and three engines on one shared store, each
// stepping on its own, over 200 requests submitted through all of them: every store task
// and notice is done exactly once, no store is called for one subject by two engines at
// the same time, and every request completes.
func TestReplicasWorkEachRequestOnce(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d_replicas", n), func(t *testing.T) {
			rs := newReplicaSet(t)
			var engines []*dsar.Engine
			for i := range n {
				engines = append(engines, rs.engine(t, fmt.Sprintf("replica-%d", i), time.Now, nil))
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for _, e := range engines {
				wg.Go(func() { e.Run(ctx, time.Millisecond) })
			}
			defer func() { cancel(); wg.Wait() }()

			const total, access = 200, 40
			ids := make([]string, total)
			typ := make([]dsar.Type, total)
			var sub sync.WaitGroup
			for i := range total {
				sub.Go(func() {
					r := dsar.Request{Type: dsar.TypeDeletion, Subject: privguard.SubjectID(fmt.Sprintf("subject-%03d", i)),
						Identity: &dsar.Identity{Method: "operator"}}
					if i < access {
						r.Type = dsar.TypeAccess
					}
					got, err := engines[i%n].Submit(ctx, r)
					if err != nil {
						t.Error(err)
						return
					}
					ids[i], typ[i] = got.ID, got.Type
				})
			}
			sub.Wait()
			if t.Failed() {
				return
			}
			deadline := time.Now().Add(30 * time.Second)
			for i := 0; i < total; {
				r, err := engines[0].Get(ctx, ids[i])
				if err != nil {
					t.Fatal(err)
				}
				if r.State == dsar.StateCompleted {
					i++
					continue
				}
				if time.Now().After(deadline) {
					t.Fatalf("request %d is %s after 30 s: %+v", i, r.State, r.Tasks)
				}
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
			wg.Wait()
			for i := range total {
				s := privguard.SubjectID(fmt.Sprintf("subject-%03d", i))
				want := map[string]int{"crm": 1, "cache": 1, "partner": 1}
				if typ[i] == dsar.TypeAccess {
					want["partner"] = 0 // access requests tell no recipient
				}
				got := map[string]int{"crm": rs.crm.count(s), "cache": rs.cache.count(s), "partner": rs.partner.count(s)}
				for k := range want {
					if got[k] != want[k] {
						t.Errorf("%s (%s): %s called %d times; want %d", s, typ[i], k, got[k], want[k])
					}
				}
			}
			for name, c := range map[string]*calls{"crm": rs.crm, "cache": rs.cache, "partner": rs.partner} {
				if len(c.overlaps) > 0 {
					t.Errorf("%s: concurrent calls for %v", name, c.overlaps)
				}
			}
			for _, id := range ids[:access] {
				r, err := engines[0].Get(context.Background(), id)
				if err != nil || r.Result == nil || r.Result.Files == 0 {
					t.Errorf("access request %s: no package: %+v, %v", id, r.Result, err)
				}
			}
		})
	}
}

// blocked holds every call until its context ends, telling entered (once) that one began.
func blocked(entered chan<- struct{}) func(context.Context) error {
	var once sync.Once
	return func(ctx context.Context) error {
		once.Do(func() { close(entered) })
		<-ctx.Done()
		return ctx.Err()
	}
}

// TestKilledReplicasRequestsAreTakenOver kills a replica (its context cancelled, nothing
// released) while it holds requests in the middle of their tasks: another replica cannot
// take them while the leases run, and completes them once they lapse.
func TestKilledReplicasRequestsAreTakenOver(t *testing.T) {
	rs := newReplicaSet(t)
	clk := &syncClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	entered := make(chan struct{})
	a := rs.engine(t, "a", clk.Now, blocked(entered))
	b := rs.engine(t, "b", clk.Now, nil)
	var ids []string
	for i := range 10 {
		r, err := a.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: privguard.SubjectID(fmt.Sprintf("k-%d", i)),
			Identity: &dsar.Identity{Method: "operator"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	actx, kill := context.WithCancel(context.Background())
	stepped := make(chan struct{})
	go func() { defer close(stepped); a.Step(actx) }()
	<-entered
	kill()
	<-stepped
	for _, id := range ids {
		if _, holder, until := rs.store.Due(id); holder != "a" || !until.After(clk.Now()) {
			t.Fatalf("request %s: lease held by %q until %v; want a's, running", id, holder, until)
		}
	}
	if ran, err := b.Step(ctx); ran != 0 || err != nil {
		t.Fatalf("b.Step while a's leases run = %d, %v; want 0, nil", ran, err)
	}
	clk.Add(dsar.DefaultLeaseTTL)
	if _, err := b.Step(ctx); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		r, err := b.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.State != dsar.StateCompleted {
			t.Errorf("request %s after b took over: %s; want completed", id, r.State)
		}
		s := privguard.SubjectID(fmt.Sprintf("k-%d", i))
		if got := rs.crm.count(s) + rs.cache.count(s) + rs.partner.count(s); got != 3 {
			t.Errorf("%s: %d tasks done; want 3, once each", s, got)
		}
	}
}

// TestFormerHolderCannotWrite: a replica whose lease lapsed while it worked (paused, say)
// cannot write the request over the progress of the replica that took it over.
func TestFormerHolderCannotWrite(t *testing.T) {
	rs := newReplicaSet(t)
	clk := &syncClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	entered, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	a := rs.engine(t, "a", clk.Now, func(ctx context.Context) error {
		once.Do(func() { close(entered) })
		<-resume // a pause the context does not end
		return nil
	})
	b := rs.engine(t, "b", clk.Now, nil)
	r, err := a.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "f-1", Identity: &dsar.Identity{Method: "operator"}})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := a.Step(ctx); errc <- err }()
	<-entered
	clk.Add(dsar.DefaultLeaseTTL + time.Second)
	if _, err := b.Step(ctx); err != nil {
		t.Fatal(err)
	}
	done, err := b.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.State != dsar.StateCompleted {
		t.Fatalf("b's request is %s; want completed", done.State)
	}
	close(resume)
	if err := <-errc; !errors.Is(err, dsar.ErrLeaseLost) || !errors.Is(err, privguard.ErrConflict) {
		t.Errorf("a.Step after its lease lapsed = %v; want ErrLeaseLost (a conflict)", err)
	}
	after, _ := b.Get(ctx, r.ID)
	if after.Version != done.Version || after.State != dsar.StateCompleted || len(after.Events) != len(done.Events) {
		t.Errorf("a wrote over b's progress: version %d -> %d, state %s, %d -> %d events", done.Version, after.Version, after.State, len(done.Events), len(after.Events))
	}

	// The store refuses the former holder directly too.
	w := dsar.Write{ID: r.ID, Subject: r.Subject, Version: after.Version + 1, Body: []byte(`{}`)}
	if err := rs.store.PutRequestLeased(ctx, "a", clk.Now(), w); !errors.Is(err, privguard.ErrConflict) {
		t.Errorf("PutRequestLeased by the former holder = %v; want a conflict", err)
	}
}

// TestLostLeaseCancelsWork: when a lease cannot be renewed (the store gave it away), the
// work in flight for the request is cancelled, and nothing of it is written.
func TestLostLeaseCancelsWork(t *testing.T) {
	rs := newReplicaSet(t)
	entered := make(chan struct{})
	e, err := dsar.New(dsar.Config{Store: rs.store, Replica: "a", LeaseTTL: 150 * time.Millisecond,
		Connectors: []dsar.Connector{&countingStore{name: "crm", calls: rs.crm, hold: blocked(entered)}}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "l-1", Identity: &dsar.Identity{Method: "operator"}})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := e.Step(ctx); errc <- err }()
	<-entered
	rs.store.Lapse(r.ID)
	select {
	case err := <-errc:
		if !errors.Is(err, dsar.ErrLeaseLost) {
			t.Errorf("Step after its lease was lost = %v; want ErrLeaseLost", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the work of a request whose lease was lost is still running after 5 s")
	}
	if got, _ := e.Get(ctx, r.ID); got.Version != r.Version || got.State != dsar.StateVerified {
		t.Errorf("request after a lost lease: version %d, %s; want %d, verified (nothing written)", got.Version, got.State, r.Version)
	}
}

// TestLeasedHousekeeping: on a shared store, what the engine alone finds by reading every
// open request is due by time: an unverified request expires.
func TestLeasedHousekeeping(t *testing.T) {
	rs := newReplicaSet(t)
	clk := &syncClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	e := rs.engine(t, "a", clk.Now, nil)
	r, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "h-1"})
	if err != nil {
		t.Fatal(err)
	}
	if due, _, _ := rs.store.Due(r.ID); !due.Equal(r.ReceivedAt.Add(dsar.UnverifiedTTL)) {
		t.Errorf("an unverified request is due %v; want at its expiry %v", due, r.ReceivedAt.Add(dsar.UnverifiedTTL))
	}
	e.Step(ctx)
	if got, _ := e.Get(ctx, r.ID); got.State != dsar.StateAwaitingVerify {
		t.Fatalf("before its expiry: %s", got.State)
	}
	clk.Add(dsar.UnverifiedTTL)
	if _, err := e.Step(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := e.Get(ctx, r.ID)
	if got.State != dsar.StateCancelled || got.Reason != "identity_not_verified" {
		t.Errorf("after its expiry: %s (%s); want cancelled (identity_not_verified)", got.State, got.Reason)
	}
	if due, holder, _ := rs.store.Due(r.ID); !due.IsZero() || holder != "" {
		t.Errorf("a cancelled request: due %v, held by %q; want never, by nobody", due, holder)
	}
}

// TestSubmitAllOnASharedStore: a bulk submission is one write, and a subject named twice
// in it gets one request, on a shared store too.
func TestSubmitAllOnASharedStore(t *testing.T) {
	rs := newReplicaSet(t)
	e := rs.engine(t, "a", time.Now, nil)
	op := &dsar.Identity{Method: "operator"}
	got, err := e.SubmitAll(ctx, []dsar.Request{
		{Type: dsar.TypeDeletion, Subject: "b-1", Identity: op},
		{Type: dsar.TypeDeletion, Subject: "b-2", Identity: op},
		{Type: dsar.TypeDeletion, Subject: "b-1", Identity: op},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].ID != got[2].ID || got[0].ID == got[1].ID {
		t.Errorf("SubmitAll ids = %s, %s, %s; want the first and the third the same, the second another", got[0].ID, got[1].ID, got[2].ID)
	}
	again, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "b-2", Identity: op})
	if err != nil || again.ID != got[1].ID {
		t.Errorf("Submit of an open request's duplicate = %s, %v; want %s", again.ID, err, got[1].ID)
	}
}
