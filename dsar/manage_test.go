package dsar_test

import (
	"errors"
	"strings"
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
