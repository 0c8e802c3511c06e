package dsar_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/dsar"
)

// batchStore is a memStore that also erases in batches, counting the calls.
type batchStore struct {
	memStore
	batches    []int // the size of each EraseBatch call
	singles    int   // Erase calls
	batchFails int   // the next n EraseBatch calls fail
}

func (b *batchStore) Erase(ctx context.Context, s privguard.SubjectID) (dsar.Erased, error) {
	b.mu.Lock()
	b.singles++
	b.mu.Unlock()
	return b.memStore.Erase(ctx, s)
}

func (b *batchStore) EraseBatch(_ context.Context, subjects []privguard.SubjectID) ([]dsar.Erased, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batches = append(b.batches, len(subjects))
	if b.batchFails > 0 {
		b.batchFails--
		return nil, &dsar.ConnectorError{Connector: b.name, Op: "erase", Kind: dsar.KindConnectionLost, Err: errors.New("connection reset")}
	}
	out := make([]dsar.Erased, len(subjects))
	for i, s := range subjects {
		out[i].Items = b.data[s]
		delete(b.data, s)
	}
	return out, nil
}

func openBatch(t *testing.T, c *clock, store dsar.Store, batch int, conns ...dsar.Connector) *dsar.Engine {
	t.Helper()
	e, err := dsar.New(dsar.Config{Store: store, Connectors: conns, Now: c.Now, Batch: batch,
		BaseBackoff: time.Minute, MaxBackoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func submitDeletions(t *testing.T, e *dsar.Engine, subjects ...privguard.SubjectID) []string {
	t.Helper()
	var ids []string
	for _, s := range subjects {
		r, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: s, Regime: privguard.RegimeGDPR,
			Identity: &dsar.Identity{Method: "operator", Note: "checked"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	return ids
}

func subjects(n int) []privguard.SubjectID {
	out := make([]privguard.SubjectID, n)
	for i := range out {
		out[i] = privguard.SubjectID(fmt.Sprintf("cust-%d", i))
	}
	return out
}

func TestStepErasesInBatches(t *testing.T) {
	// Stores that erase in batches get one call per batch of requests; each
	// request's task gets its own subject's outcome, a failed batch fails its tasks only,
	// and they are retried.
	c := &clock{time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	cache := &batchStore{memStore: memStore{name: "cache", data: map[privguard.SubjectID]int{}}}
	crm := &memStore{name: "crm", data: map[privguard.SubjectID]int{}}
	all := subjects(250)
	for i, s := range all[:240] { // the last ten have nothing in the stores
		cache.data[s], crm.data[s] = i%3+1, 1
	}
	cache.batchFails = 1 // the first batch fails
	e := openBatch(t, c, openDB(t, t.TempDir()).DSAR(), 100, cache, crm)
	ids := submitDeletions(t, e, all...)
	if _, err := e.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(cache.batches) != "[100 100 50]" || cache.singles != 0 {
		t.Fatalf("EraseBatch sizes %v, Erase called %d times; want [100 100 50] and none", cache.batches, cache.singles)
	}
	for i, id := range ids {
		r, err := e.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		task := r.Tasks[0] // "cache" sorts first
		switch {
		case i < 100 && (r.State != dsar.StatePartiallyFailed || task.State != dsar.TaskFailed || task.ErrorKind != dsar.KindConnectionLost):
			t.Errorf("request %d in the failed batch: %s, cache task %+v", i, r.State, task)
		case i >= 100 && (r.State != dsar.StateCompleted || task.Items != want(i)):
			t.Errorf("request %d: %s, cache task %+v; want completed with %d items", i, r.State, task, want(i))
		}
	}
	c.t = c.t.Add(2 * time.Hour) // past the backoff
	if _, err := e.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(cache.batches) != "[100 100 50 100]" {
		t.Errorf("EraseBatch sizes %v; want the failed batch retried alone", cache.batches)
	}
	for i, id := range ids[:100] {
		if r, _ := e.Get(ctx, id); r.State != dsar.StateCompleted || r.Tasks[0].Items != want(i) || r.Tasks[0].Attempts != 2 {
			t.Errorf("request %d after the retry: %s, %+v", i, r.State, r.Tasks[0])
		}
	}
	if len(cache.data)+len(crm.data) != 0 {
		t.Errorf("left: cache %d, crm %d", len(cache.data), len(crm.data))
	}
}

func want(i int) int {
	if i >= 240 {
		return 0
	}
	return i%3 + 1
}

// failingBatches is a request store whose batch writes fail while fail is set.
type failingBatches struct {
	*boltstore.DSARStore
	mu   sync.Mutex
	fail bool
}

func (f *failingBatches) PutRequests(ctx context.Context, ids []string, bodies [][]byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("disk full")
	}
	return f.DSARStore.PutRequests(ctx, ids, bodies)
}

func TestFailedBatchWriteIsRunAgain(t *testing.T) {
	// A batch whose write fails is stored as before the round, and the engine's indexes
	// follow the store: the next Step runs it again (erasure is idempotent).
	c := &clock{time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	crm := &memStore{name: "crm", data: map[privguard.SubjectID]int{}}
	all := subjects(30)
	for _, s := range all {
		crm.data[s] = 2
	}
	store := &failingBatches{DSARStore: openDB(t, t.TempDir()).DSAR(), fail: true}
	e := openBatch(t, c, store, 10, crm)
	ids := submitDeletions(t, e, all...)
	if _, err := e.Step(ctx); !errors.Is(err, privguard.ErrUnavailable) {
		t.Fatalf("Step with failing writes = %v; want unavailable", err)
	}
	for _, id := range ids {
		if r, _ := e.Get(ctx, id); r.State != dsar.StateVerified {
			t.Fatalf("after a failed write: %s; want verified (nothing stored)", r.State)
		}
	}
	store.fail = false
	if _, err := e.Step(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		// The lost round left no trace: this is the first recorded attempt.
		if r, _ := e.Get(ctx, id); r.State != dsar.StateCompleted || r.Tasks[0].Attempts != 1 {
			t.Errorf("after the next Step: %s, %+v; want completed", r.State, r.Tasks[0])
		}
	}
	if len(crm.data) != 0 {
		t.Errorf("%d subjects left in crm", len(crm.data))
	}
	if n, err := e.Step(ctx); n != 0 || err != nil {
		t.Errorf("a third Step ran %d tasks, %v; want nothing left", n, err)
	}
}

func TestErasureScrubsARequestOfTheSameBatch(t *testing.T) {
	// An access request received after the subject's deletion runs in the same batch; the
	// erasure's scrub of it and its own round's write are both kept (the round merges with
	// the scrubbed version, which is not yet stored).
	dir := t.TempDir()
	c := &clock{time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	crm := &memStore{name: "crm", data: map[privguard.SubjectID]int{"cust-1": 2}}
	e, closeDB := open(t, dir, c, []dsar.Connector{crm}, nil)
	defer closeDB()
	del := submitDeletions(t, e, "cust-1")[0]
	acc, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-1", Regime: privguard.RegimeGDPR,
		Identity: &dsar.Identity{Method: "operator", Note: "passport seen by Li Lei"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Step(ctx); err != nil {
		t.Fatal(err)
	}
	d, _ := e.Get(ctx, del)
	a, _ := e.Get(ctx, acc.ID)
	if d.State != dsar.StateCompleted || d.ScrubbedAt.IsZero() {
		t.Errorf("deletion: %s, scrubbed %v", d.State, d.ScrubbedAt)
	}
	if a.Identity.Note != dsar.MaskValue || a.ScrubbedAt.IsZero() || a.Tasks[0].State != dsar.TaskDone {
		t.Errorf("access request after the erasure: note %q, scrubbed %v, task %+v; want scrubbed and its task done", a.Identity.Note, a.ScrubbedAt, a.Tasks[0])
	}
}

func TestSubmitAll(t *testing.T) {
	// Many requests in one write: each stored as Submit would, an open duplicate (stored
	// before or earlier in the same call) answered by the open request, an invalid request
	// or a failed write storing none.
	c := &clock{time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	crm := &memStore{name: "crm", data: map[privguard.SubjectID]int{"cust-1": 1, "cust-2": 2, "cust-3": 3}}
	store := &failingBatches{DSARStore: openDB(t, t.TempDir()).DSAR()}
	e := openBatch(t, c, store, 0, crm)
	earlier := submitDeletions(t, e, "cust-3")[0]
	op := &dsar.Identity{Method: "operator", Note: "checked"}
	del := func(s privguard.SubjectID) dsar.Request {
		return dsar.Request{Type: dsar.TypeDeletion, Subject: s, Regime: privguard.RegimeGDPR, Identity: op}
	}
	if _, err := e.SubmitAll(ctx, []dsar.Request{del("cust-4"), {Type: "nonsense", Subject: "cust-5"}}); err == nil {
		t.Error("SubmitAll with an invalid request succeeded")
	}
	store.fail = true
	if _, err := e.SubmitAll(ctx, []dsar.Request{del("cust-4")}); !errors.Is(err, privguard.ErrUnavailable) {
		t.Errorf("SubmitAll with a failing write = %v; want unavailable", err)
	}
	store.fail = false
	if all, _ := e.List(ctx); len(all) != 1 {
		t.Fatalf("%d requests stored after the failed calls; want only the earlier one", len(all))
	}
	got, err := e.SubmitAll(ctx, []dsar.Request{del("cust-1"), del("cust-2"), del("cust-1"), del("cust-3")})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].ID != got[2].ID || got[3].ID != earlier || got[0].ID == got[1].ID || got[0].State != dsar.StateVerified || !op.VerifiedAt.IsZero() {
		t.Errorf("SubmitAll = %v %v %v %v (earlier %s); want cust-1 once, cust-3 the earlier request, verified, the caller's identity untouched",
			got[0].ID, got[1].ID, got[2].ID, got[3].ID, earlier)
	}
	if all, _ := e.List(ctx); len(all) != 3 {
		t.Errorf("%d requests stored; want 3", len(all))
	}
	if _, err := e.Step(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range got {
		if r, _ := e.Get(ctx, r.ID); r.State != dsar.StateCompleted {
			t.Errorf("%s: %s; want completed", r.Subject, r.State)
		}
	}
	if len(crm.data) != 0 {
		t.Errorf("left in crm: %v", crm.data)
	}
}
