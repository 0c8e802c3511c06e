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

// TestLeaser runs the engine's tests of a store shared by replicas (dsar.Leaser) against
// the store open returns, fresh for each test: several engines working one set of requests
// do every task once and never one subject's tasks at once; a killed replica's requests
// are taken over once its leases lapse; a former holder cannot write; a lost lease cancels
// its work; and the Leaser's own contract (TestLeaserStore). The engines of one test use
// the stores of open's Replicas in turn, as replicas would.
func TestLeaser(t *testing.T, open func(t *testing.T) Replicas) {
	t.Helper()
	for _, c := range []struct {
		name string
		test func(*testing.T, func(*testing.T) Replicas)
	}{
		{"replicas_work_each_request_once", testReplicasWorkEachRequestOnce},
		{"killed_replicas_requests_are_taken_over", testKilledReplicasRequestsAreTakenOver},
		{"former_holder_cannot_write", testFormerHolderCannotWrite},
		{"lost_lease_cancels_work", testLostLeaseCancelsWork},
		{"leased_housekeeping", testLeasedHousekeeping},
		{"submit_all_on_a_shared_store", testSubmitAllOnASharedStore},
		{"batch_writes_merge_or_drop", testBatchWritesMergeOrDrop},
		{"store", TestLeaserStore},
	} {
		t.Run(c.name, func(t *testing.T) { c.test(t, open) })
	}
}

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

// Replicas is a shared request store as TestLeaser's replicas see it.
type Replicas struct {
	// Stores are the replicas' views of one fresh, empty store, at least three, each a
	// dsar.Leaser and a dsar.ResultStore: one store three times, or three connections to
	// one database.
	Stores []dsar.Store
	// Leases reads and changes the stored leases directly.
	Leases LeaseInspector
	// Sealer seals the replicas' access packages.
	Sealer dsar.Sealer
}

// LeaseInspector reads and changes a shared store's leases directly, beside the engines,
// for [TestLeaser]; [SharedStore] is one. It fails the test (t.Fatal) on an error.
type LeaseInspector interface {
	// Due returns request id's due time and lease as stored (zero times: none).
	Due(id string) (due time.Time, holder string, leaseUntil time.Time)
	// Lapse makes the lease of request id lapse now, as if its holder had stopped renewing
	// it and the store had given it away.
	Lapse(id string)
}

// replicaSet is the shared store and the replicas' shared call counts (each replica has its
// own connectors over them, as replicas have their own connections to the same databases).
type replicaSet struct {
	crm, cache, partner *calls
	Replicas
}

func newReplicaSet(t *testing.T, open func(t *testing.T) Replicas) *replicaSet {
	t.Helper()
	rs := &replicaSet{crm: newCalls(), cache: newCalls(), partner: newCalls(), Replicas: open(t)}
	if len(rs.Stores) < 3 {
		t.Fatalf("TestLeaser: %d stores; want three replicas' at least", len(rs.Stores))
	}
	for i, s := range rs.Stores {
		if _, ok := s.(dsar.Leaser); !ok {
			t.Fatalf("TestLeaser: store %d (%T) is not a dsar.Leaser", i, s)
		}
	}
	return rs
}

// leaser returns replica i's store as a Leaser.
func (rs *replicaSet) leaser(i int) dsar.Leaser { return rs.Stores[i%len(rs.Stores)].(dsar.Leaser) }

// engine is replica i's engine, named name, on its view of the store.
func (rs *replicaSet) engine(t *testing.T, i int, name string, now func() time.Time, hold func(context.Context) error) *dsar.Engine {
	t.Helper()
	e, err := dsar.New(dsar.Config{Store: rs.Stores[i%len(rs.Stores)], Replica: name, Now: now, Batch: 16, Workers: 4,
		Connectors: []dsar.Connector{
			&countingStore{name: "crm", calls: rs.crm, hold: hold},
			&countingBatchStore{countingStore{name: "cache", calls: rs.cache, hold: hold}},
		},
		Recipients: []dsar.RecipientNotifier{&countingRecipient{name: "partner", calls: rs.partner}},
		Sealer:     rs.Sealer, BaseBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// testReplicasWorkEachRequestOnce runs two and three engines on one shared store, each
// stepping on its own, over 200 requests submitted through all of them: every store task
// and notice is done exactly once, no store is called for one subject by two engines at
// the same time, and every request completes.
func testReplicasWorkEachRequestOnce(t *testing.T, open func(t *testing.T) Replicas) {
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d_replicas", n), func(t *testing.T) {
			rs := newReplicaSet(t, open)
			var engines []*dsar.Engine
			for i := range n {
				engines = append(engines, rs.engine(t, i, fmt.Sprintf("replica-%d", i), time.Now, nil))
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

// testKilledReplicasRequestsAreTakenOver kills a replica (its context cancelled, nothing
// released) while it holds requests in the middle of their tasks: another replica cannot
// take them while the leases run, and completes them once they lapse.
func testKilledReplicasRequestsAreTakenOver(t *testing.T, open func(t *testing.T) Replicas) {
	ctx := context.Background()
	rs := newReplicaSet(t, open)
	clk := &syncClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	entered := make(chan struct{})
	a := rs.engine(t, 0, "a", clk.Now, blocked(entered))
	b := rs.engine(t, 1, "b", clk.Now, nil)
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
		if _, holder, until := rs.Leases.Due(id); holder != "a" || !until.After(clk.Now()) {
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

// pausedPair returns two replicas' engines, a and b, on a clock of their own: a's first
// store call closes entered and then waits for resume (a pause its context does not end).
func pausedPair(t *testing.T, open func(t *testing.T) Replicas) (rs *replicaSet, clk *syncClock, a, b *dsar.Engine, entered, resume chan struct{}) {
	t.Helper()
	rs = newReplicaSet(t, open)
	clk = &syncClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	entered, resume = make(chan struct{}), make(chan struct{})
	var once sync.Once
	a = rs.engine(t, 0, "a", clk.Now, func(ctx context.Context) error {
		once.Do(func() { close(entered) })
		<-resume
		return nil
	})
	b = rs.engine(t, 1, "b", clk.Now, nil)
	return rs, clk, a, b, entered, resume
}

// testFormerHolderCannotWrite: a replica whose lease lapsed while it worked (paused, say)
// cannot write the request over the progress of the replica that took it over.
func testFormerHolderCannotWrite(t *testing.T, open func(t *testing.T) Replicas) {
	ctx := context.Background()
	rs, clk, a, b, entered, resume := pausedPair(t, open)
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
	if err := rs.leaser(0).PutRequestLeased(ctx, "a", clk.Now(), w); !errors.Is(err, privguard.ErrConflict) {
		t.Errorf("PutRequestLeased by the former holder = %v; want a conflict", err)
	}
}

// testLostLeaseCancelsWork: when a lease cannot be renewed (the store gave it away), the
// work in flight for the request is cancelled, and nothing of it is written.
func testLostLeaseCancelsWork(t *testing.T, open func(t *testing.T) Replicas) {
	ctx := context.Background()
	rs := newReplicaSet(t, open)
	entered := make(chan struct{})
	e, err := dsar.New(dsar.Config{Store: rs.Stores[0], Replica: "a", LeaseTTL: 150 * time.Millisecond,
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
	rs.Leases.Lapse(r.ID)
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

// testBatchWritesMergeOrDrop: the rounds of one leased batch are written together; one
// whose request an operator changed meanwhile merges and is written, one whose lease the
// store gave away (before the keeper noticed) is not written, and the others are.
func testBatchWritesMergeOrDrop(t *testing.T, open func(t *testing.T) Replicas) {
	ctx := context.Background()
	rs, clk, a, b, entered, resume := pausedPair(t, open)
	var rs3 []dsar.Request
	for _, s := range []privguard.SubjectID{"m-1", "m-2", "m-3"} {
		r, err := a.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: s, Regime: privguard.RegimeGDPR, Identity: &dsar.Identity{Method: "operator"}})
		if err != nil {
			t.Fatal(err)
		}
		rs3 = append(rs3, r)
	}
	errc := make(chan error, 1)
	go func() { _, err := a.Step(ctx); errc <- err }()
	<-entered
	if _, err := b.Extend(ctx, rs3[0].ID, 1, "complex", time.Time{}); err != nil {
		t.Fatal(err)
	}
	rs.Leases.Lapse(rs3[1].ID)
	close(resume)
	if err := <-errc; !errors.Is(err, dsar.ErrLeaseLost) {
		t.Errorf("Step with a lease given away = %v; want ErrLeaseLost", err)
	}
	merged, err := a.Get(ctx, rs3[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if merged.State != dsar.StateCompleted || merged.Extension == nil {
		t.Errorf("the request extended during its round: %s, extension %v; want completed, extended", merged.State, merged.Extension)
	}
	if got, _ := a.Get(ctx, rs3[1].ID); got.Version != rs3[1].Version || got.State != dsar.StateVerified {
		t.Errorf("the request whose lease was given away: version %d, %s; want %d, verified (nothing written)", got.Version, got.State, rs3[1].Version)
	}
	if got, _ := a.Get(ctx, rs3[2].ID); got.State != dsar.StateCompleted {
		t.Errorf("the third request: %s; want completed", got.State)
	}

	// An erasure's settle half scrubs its subject's earlier access request, leased in the
	// same batch and settled before it (it is due first; the erasure no longer waits for it
	// past AccessFirstWait): the access request's write finds it changed, merges with the
	// scrubbed request and is written again.
	c := rs.engine(t, 2, "c", clk.Now, nil)
	op := &dsar.Identity{Method: "operator"}
	acc, err := c.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "m-4", Regime: privguard.RegimeGDPR,
		Identity: &dsar.Identity{Method: "operator", Note: "called back on +44 20 7946 0000"}})
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	era, err := c.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "m-4", Regime: privguard.RegimeGDPR, Identity: op})
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(dsar.AccessFirstWait) // rs3[1]'s lease has lapsed as well: it is leased again
	if _, err := c.Step(ctx); err != nil {
		t.Fatalf("Step of an access request and its subject's erasure: %v", err)
	}
	for _, id := range []string{acc.ID, era.ID, rs3[1].ID} {
		if got, _ := c.Get(ctx, id); got.State != dsar.StateCompleted {
			t.Errorf("request %s (%s): %s; want completed", id, got.Type, got.State)
		}
	}
	got, _ := c.Get(ctx, acc.ID)
	if !slices.ContainsFunc(got.Events, func(ev dsar.Event) bool { return ev.What == "personal data removed" }) {
		t.Errorf("the access request after its subject's erasure: events %v; want it scrubbed", got.Events)
	}
}

// testLeasedHousekeeping: on a shared store, what the engine alone finds by reading every
// open request is due by time: an unverified request expires.
func testLeasedHousekeeping(t *testing.T, open func(t *testing.T) Replicas) {
	ctx := context.Background()
	rs := newReplicaSet(t, open)
	clk := &syncClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	e := rs.engine(t, 0, "a", clk.Now, nil)
	r, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "h-1"})
	if err != nil {
		t.Fatal(err)
	}
	if due, _, _ := rs.Leases.Due(r.ID); !due.Equal(r.ReceivedAt.Add(dsar.UnverifiedTTL)) {
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
	if due, holder, _ := rs.Leases.Due(r.ID); !due.IsZero() || holder != "" {
		t.Errorf("a cancelled request: due %v, held by %q; want never, by nobody", due, holder)
	}
}

// testSubmitAllOnASharedStore: a bulk submission is one write, and a subject named twice
// in it gets one request, on a shared store too.
func testSubmitAllOnASharedStore(t *testing.T, open func(t *testing.T) Replicas) {
	ctx := context.Background()
	rs := newReplicaSet(t, open)
	e := rs.engine(t, 0, "a", time.Now, nil)
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
