package dsar_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

func TestExtendCancelReject(t *testing.T) {
	// proves DSR-03: a GDPR deadline is extended by at most two months, only with reasons
	// decided and told within the first month; PIPL has no extension.
	c := &clock{time.Date(2026, 1, 31, 9, 0, 0, 0, time.UTC)}
	crm := &memStore{name: "crm", data: map[privguard.SubjectID]int{"cust-1": 2}}
	e, closeDB := open(t, t.TempDir(), c, []dsar.Connector{crm}, nil)
	defer closeDB()
	g, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-1", Regime: privguard.RegimeGDPR})
	p, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-2", Regime: privguard.RegimePIPL})
	if want := time.Date(2026, 2, 28, 9, 0, 0, 0, time.UTC); !g.Deadline.Due.Equal(want) {
		t.Fatalf("GDPR due %v; want %v", g.Deadline.Due, want)
	}
	if _, err := e.Extend(ctx, g.ID, 3, "complex", time.Time{}); !errors.Is(err, dsar.ErrExtensionRefused) {
		t.Errorf("three months: %v", err)
	}
	if _, err := e.Extend(ctx, g.ID, 1, "", time.Time{}); !errors.Is(err, dsar.ErrExtensionRefused) {
		t.Errorf("no reason: %v", err)
	}
	if _, err := e.Extend(ctx, p.ID, 1, "complex", time.Time{}); !errors.Is(err, dsar.ErrExtensionRefused) {
		t.Errorf("PIPL extension: %v", err)
	}
	c.t = c.t.Add(10 * 24 * time.Hour)
	got, err := e.Extend(ctx, g.ID, 2, "many stores, complex request", time.Time{})
	if want := time.Date(2026, 4, 30, 9, 0, 0, 0, time.UTC); err != nil || !got.Deadline.Due.Equal(want) || !got.Deadline.Extended {
		t.Errorf("two-month extension: due %v, %v; want %v", got.Deadline.Due, err, want)
	}
	late, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "cust-3", Regime: privguard.RegimeGDPR})
	c.t = c.t.Add(40 * 24 * time.Hour)
	if _, err := e.Extend(ctx, late.ID, 1, "complex", time.Time{}); !errors.Is(err, dsar.ErrExtensionRefused) {
		t.Errorf("extension decided after the first month: %v", err)
	}

	if _, err := e.Reject(ctx, p.ID, ""); !errors.Is(err, privguard.ErrInvalid) {
		t.Errorf("reject without a reason: %v", err)
	}
	// proves DSR-04: a refusal carries a reason code and the recourse (authority, court).
	if _, err := e.Reject(ctx, p.ID, "we do not feel like it"); !errors.Is(err, privguard.ErrInvalid) {
		t.Errorf("reject with a free-text reason: %v", err)
	}
	r, err := e.Reject(ctx, p.ID, "manifestly_unfounded")
	if err != nil || r.State != dsar.StateRejected || r.Reason != "manifestly_unfounded" ||
		!strings.Contains(r.Recourse, "投诉") || !strings.Contains(r.Recourse, "人民法院") {
		t.Errorf("reject: %s %q %q %v", r.State, r.Reason, r.Recourse, err)
	}
	if _, err := e.Verify(ctx, g.ID, dsar.Identity{Method: "operator"}); err != nil {
		t.Fatal(err)
	}
	if r, err = e.Cancel(ctx, g.ID, "withdrawn by the subject"); err != nil || r.State != dsar.StateCancelled {
		t.Fatalf("cancel: %s %v", r.State, err)
	}
	if n, _ := e.Step(ctx); n != 0 {
		t.Errorf("a cancelled request ran %d tasks", n)
	}
	if _, err := e.Cancel(ctx, g.ID, "again"); !errors.Is(err, privguard.ErrConflict) {
		t.Errorf("cancel a cancelled request: %v", err)
	}
	if _, err := e.Extend(ctx, "nope", 1, "x", time.Time{}); !errors.Is(err, privguard.ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
}

func TestRetryMakesFailedTasksDue(t *testing.T) {
	c := &clock{time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	crm := &memStore{name: "crm", data: map[privguard.SubjectID]int{"cust-1": 2}, fails: 1}
	e, closeDB := open(t, t.TempDir(), c, []dsar.Connector{crm}, nil)
	defer closeDB()
	r, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "cust-1", Regime: privguard.RegimeGDPR, Identity: &dsar.Identity{Method: "operator"}})
	e.Step(ctx)
	if n, _ := e.Step(ctx); n != 0 {
		t.Fatalf("a failed task ran %d times before its backoff", n)
	}
	r, n, err := e.Retry(ctx, r.ID)
	if err != nil || n != 1 {
		t.Fatalf("retry: %d, %v", n, err)
	}
	if ran, _ := e.Step(ctx); ran != 1 {
		t.Fatalf("after retry: %d tasks ran; want 1", ran)
	}
	if r, _ = e.Get(ctx, r.ID); r.State != dsar.StateCompleted || len(crm.data) != 0 {
		t.Errorf("after retry: %s", r.State)
	}
	if _, _, err := e.Retry(ctx, r.ID); !errors.Is(err, privguard.ErrConflict) {
		t.Errorf("retry a completed request: %v", err)
	}
}

// slowStore blocks each erasure until released.
type slowStore struct {
	started chan struct{}
	release chan struct{}
}

func (s *slowStore) Name() string { return "slow" }
func (s *slowStore) Export(context.Context, privguard.SubjectID) (dsar.Export, error) {
	return dsar.Export{}, nil
}
func (s *slowStore) Erase(ctx context.Context, _ privguard.SubjectID) (dsar.Erased, error) {
	s.started <- struct{}{}
	<-s.release
	return dsar.Erased{Items: 1}, nil
}

func TestOperatorsDoNotWaitForASlowStore(t *testing.T) {
	// An extension and a cancellation made while a store is slow take effect at once; the
	// round's results are merged in, not written over them.
	c := &clock{time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)}
	slow := &slowStore{started: make(chan struct{}, 2), release: make(chan struct{})}
	crm := &memStore{name: "crm", data: map[privguard.SubjectID]int{"cust-1": 1, "cust-2": 1}}
	var erasedMu sync.Mutex
	erased := map[privguard.SubjectID]int{}
	e, closeDB := open(t, t.TempDir(), c, []dsar.Connector{crm, slow}, func(_ context.Context, s privguard.SubjectID) error {
		erasedMu.Lock()
		defer erasedMu.Unlock()
		erased[s]++
		return nil
	})
	defer closeDB()
	op := &dsar.Identity{Method: "operator"}
	ext, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "cust-1", Regime: privguard.RegimeGDPR, Identity: op})
	can, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "cust-2", Regime: privguard.RegimeGDPR, Identity: op})
	done := make(chan struct{})
	go func() { defer close(done); e.Step(ctx) }()
	<-slow.started
	<-slow.started // both requests are in the slow store now
	start := time.Now()
	if _, err := e.Extend(ctx, ext.ID, 1, "the erasure needs a vendor's backup rotation", c.t); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Cancel(ctx, can.ID, "the subject withdrew the request"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("operator actions waited %v for the store", d)
	}
	close(slow.release)
	<-done
	r, _ := e.Get(ctx, ext.ID)
	if r.State != dsar.StateCompleted || r.Extension == nil || !slices.ContainsFunc(r.Events, func(ev dsar.Event) bool { return ev.What == "extended" }) {
		t.Errorf("extended request after the round: %s %+v %v; want completed and still extended", r.State, r.Extension, r.Events)
	}
	r, _ = e.Get(ctx, can.ID)
	if r.State != dsar.StateCancelled {
		t.Errorf("cancelled request after the round: %s; want still cancelled", r.State)
	}
	for _, tk := range r.Tasks {
		if tk.State != dsar.TaskDone {
			t.Errorf("cancelled request's task %+v; the round's work is still recorded", tk)
		}
	}
	// The stores erased before the cancellation landed: the erasure is finished in the
	// vault and the ledger too, not left half done.
	if erased["cust-1"] != 1 || erased["cust-2"] != 1 || !r.Applied {
		t.Errorf("erasure hooks %v, applied %v; want each subject once", erased, r.Applied)
	}
}

// asyncStore accepts erasures (ErrPending) and reports them done by callback at once,
// while the round is still working on another store.
type asyncStore struct {
	e       *dsar.Engine
	crm     *slowStore
	results chan error
}

func (a *asyncStore) Name() string { return "a-vendor" }
func (a *asyncStore) Export(context.Context, privguard.SubjectID) (dsar.Export, error) {
	return dsar.Export{}, nil
}
func (a *asyncStore) Erase(ctx context.Context, _ privguard.SubjectID) (dsar.Erased, error) {
	task, _ := dsar.TaskFromContext(ctx)
	go func() { a.results <- a.e.Complete(context.Background(), "a-vendor", "ok", []byte(task.ID())) }()
	return dsar.Erased{}, dsar.ErrPending
}
func (a *asyncStore) ParseCallback(sig string, body []byte) (dsar.Completion, error) {
	if sig != "ok" {
		return dsar.Completion{}, errors.New("bad signature")
	}
	req, _, _ := strings.Cut(string(body), ":")
	return dsar.Completion{Task: string(body), Request: req, Items: 3}, nil
}

func TestCallbackDuringTheRoundCounts(t *testing.T) {
	c := &clock{time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)}
	slow := &slowStore{started: make(chan struct{}, 1), release: make(chan struct{})}
	vendor := &asyncStore{crm: slow, results: make(chan error, 1)}
	e, closeDB := open(t, t.TempDir(), c, []dsar.Connector{slow, vendor}, nil) // a-vendor runs before slow (names sorted)
	defer closeDB()
	vendor.e = e
	r, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "cust-1", Regime: privguard.RegimeGDPR, Identity: &dsar.Identity{Method: "operator"}})
	done := make(chan struct{})
	go func() { defer close(done); e.Step(ctx) }()
	<-slow.started
	if err := <-vendor.results; err != nil {
		t.Fatalf("a callback that came while the round still worked: %v", err)
	}
	close(slow.release)
	<-done
	got, _ := e.Get(ctx, r.ID)
	if got.State != dsar.StateCompleted {
		t.Errorf("after the round: %s %+v; want the callback's done kept and the request completed", got.State, got.Tasks)
	}
}

// failThenBlock fails its first erasure; later ones block until released.
type failThenBlock struct {
	calls   atomic.Int32
	started chan struct{}
	release chan struct{}
}

func (f *failThenBlock) Name() string { return "crm" }
func (f *failThenBlock) Export(context.Context, privguard.SubjectID) (dsar.Export, error) {
	return dsar.Export{}, nil
}
func (f *failThenBlock) Erase(context.Context, privguard.SubjectID) (dsar.Erased, error) {
	if f.calls.Add(1) == 1 {
		return dsar.Erased{}, &dsar.ConnectorError{Connector: "crm", Op: "erase", Err: errors.New("down")}
	}
	f.started <- struct{}{}
	<-f.release
	return dsar.Erased{Items: 1}, nil
}

func TestRetryDuringTheRoundKeepsTheRoundsResult(t *testing.T) {
	c := &clock{time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)}
	crm := &failThenBlock{started: make(chan struct{}), release: make(chan struct{})}
	e, closeDB := open(t, t.TempDir(), c, []dsar.Connector{crm}, nil)
	defer closeDB()
	r, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "cust-1", Regime: privguard.RegimeGDPR, Identity: &dsar.Identity{Method: "operator"}})
	e.Step(ctx) // round 1: crm fails
	c.t = c.t.Add(2 * time.Hour)
	if got, _ := e.Get(ctx, r.ID); got.State != dsar.StatePartiallyFailed {
		t.Fatalf("after round 1: %s", got.State)
	}
	// Round 2 retries crm; an operator presses retry while crm works (it only moves the time).
	crmDone := make(chan struct{})
	go func() { defer close(crmDone); e.Step(ctx) }()
	<-crm.started
	if _, _, err := e.Retry(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	close(crm.release)
	<-crmDone
	if got, _ := e.Get(ctx, r.ID); got.State != dsar.StateCompleted {
		t.Errorf("after round 2 with a retry pressed meanwhile: %s %+v", got.State, got.Tasks)
	}
}

func TestLedgerFailureDoesNotReopenACancelledRequest(t *testing.T) {
	c := &clock{time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)}
	db := openDB(t, t.TempDir())
	entered, release := make(chan struct{}), make(chan struct{})
	e, _ := dsar.New(dsar.Config{Store: db.DSAR(), Now: c.Now, OnSubjectFact: func(context.Context, dsar.Request) error {
		close(entered)
		<-release
		return errors.New("ledger unavailable")
	}})
	r, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeObjection, Subject: "cust-1", Regime: privguard.RegimeGDPR})
	done := make(chan struct{})
	go func() { defer close(done); e.Step(ctx) }()
	<-entered
	if _, err := e.Cancel(ctx, r.ID, "sent by mistake"); err != nil {
		t.Fatal(err)
	}
	close(release)
	<-done
	if got, _ := e.Get(ctx, r.ID); got.State != dsar.StateCancelled {
		t.Errorf("after the ledger failed: %s; want still cancelled", got.State)
	}
}
