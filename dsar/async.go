package dsar

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/privguard/privguard"
)

// ErrPending is returned by a connector whose store accepted the work and will report
// completion later (a SaaS tool behind a webhook answering 202). The task then waits for
// the store's callback ([Engine.Complete]); until it arrives the request is asked again
// (idempotently) every PendingRecheck.
var ErrPending = errors.New("dsar: accepted, completion pending")

func isPending(err error) bool { return errors.Is(err, ErrPending) }

// PendingRecheck is how long a waiting task waits for its callback before the engine
// asks the store again.
const PendingRecheck = 15 * time.Minute

// Task operations, as connectors that talk to other systems name them.
const (
	OpExport  = "export"
	OpErase   = "erase"
	OpCorrect = "correct"
	OpSweep   = "sweep" // a retention run's sweep
	OpNotify  = "notify"
	// OpEraseDerived is a tag deletion's erasure of single derived items; OpProfile the
	// listing of them.
	OpEraseDerived = "erase_derived"
	OpProfile      = "profile"
)

// TaskInfo names the task a connector operation belongs to; connectors that talk to other
// systems send it along as the idempotency key and for the completion callback.
type TaskInfo struct {
	Request string `json:"request"`
	Type    Type   `json:"type"`
	Store   string `json:"store"` // the task's store: a connector's name, or "recipient:" + name
	Op      string `json:"op"`
}

// ID is the task's identity across systems: "<request>:<store>:<op>". A completion
// callback must name it.
func (t TaskInfo) ID() string { return t.Request + ":" + t.Store + ":" + t.Op }

// taskOp is the operation request type typ runs on store.
func taskOp(typ Type, store string) string {
	switch {
	case IsRecipientTask(store):
		return OpNotify
	case typ == TypeDeletion:
		return OpErase
	case typ == TypeCorrection:
		return OpCorrect
	case typ == TypeRetention:
		return OpSweep
	case typ == TypeTagDeletion:
		return OpEraseDerived
	}
	return OpExport
}

type taskKey struct{}

// TaskFromContext returns the task a connector operation runs for, if any.
func TaskFromContext(ctx context.Context) (TaskInfo, bool) {
	t, ok := ctx.Value(taskKey{}).(TaskInfo)
	return t, ok
}

// WithTask returns ctx carrying t (for connectors' tests; the engine sets it).
func WithTask(ctx context.Context, t TaskInfo) context.Context {
	return context.WithValue(ctx, taskKey{}, t)
}

// Completion is a store's report that a pending task finished.
type Completion struct {
	// Task is the TaskInfo.ID the store was sent; it binds the report to one task.
	Task    string `json:"task"`
	Request string `json:"request"`
	// Failed reports that the store could not do it; the task is retried.
	Failed bool `json:"failed"`
	Items  int  `json:"items"`
	// Export is the store's data for an access request.
	Export *Export `json:"export,omitempty"`
}

// CallbackParser is a connector that reports completions itself: it authenticates the
// callback (its signature over the body) and decodes it.
type CallbackParser interface {
	ParseCallback(signature string, body []byte) (Completion, error)
}

// CallbackKind is what completion callbacks a named store or recipient may send: whether
// it takes any, and whether one can carry data. The admin API asks before it reads a
// callback's body, which is not authenticated until it is read.
type CallbackKind int

// Callback kinds.
const (
	// NoCallbacks: no configured store or recipient of that name takes callbacks.
	NoCallbacks CallbackKind = iota
	// AckCallbacks: a recipient's acknowledgement, which only says done or failed.
	AckCallbacks
	// ExportCallbacks: a store's report, which for an access request carries its export.
	ExportCallbacks
)

// Callbacks reports what callbacks store (a connector's name, or "recipient:" + a
// recipient's) may send to [Engine.Complete]. It reads nothing stored.
func (e *Engine) Callbacks(store string) CallbackKind {
	if c, ok := e.connectors[store]; ok {
		if _, ok := c.(CallbackParser); ok {
			return ExportCallbacks
		}
		return NoCallbacks
	}
	if rn, ok := e.recipients[store]; ok {
		if _, ok := rn.(CallbackParser); ok {
			return AckCallbacks
		}
	}
	return NoCallbacks
}

// ErrBadCallback is returned by [Engine.Complete] for a callback that is not authentic.
var ErrBadCallback = errors.New("dsar: callback not authentic")

// Complete applies store's completion callback: the connector named store authenticates
// and decodes it, and the request's waiting task becomes done (or failed, to retry). A
// callback for a task already done is accepted and changes nothing (stores may resend).
func (e *Engine) Complete(ctx context.Context, store, signature string, body []byte) error {
	var cp CallbackParser
	if c, ok := e.connectors[store]; ok {
		cp, _ = c.(CallbackParser)
	} else if rn, ok := e.recipients[store]; ok {
		cp, _ = rn.(CallbackParser)
	}
	if cp == nil {
		return fmt.Errorf("dsar: store %q takes no callbacks: %w", store, privguard.ErrNotFound)
	}
	done, err := cp.ParseCallback(signature, body)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadCallback, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r, err := e.get(ctx, done.Request)
	if err != nil {
		return err
	}
	now := e.cfg.Now().UTC()
	want := TaskInfo{Request: r.ID, Type: r.Type, Store: store, Op: taskOp(r.Type, store)}
	if done.Task != want.ID() {
		// A report for another operation (a recipient's acknowledgement sent to a store's
		// path, an erase report on an access task) must not complete this one.
		return fmt.Errorf("%w: the callback names task %q, not this store's %s task", ErrBadCallback, done.Task, want.Op)
	}
	for i := range r.Tasks {
		t := &r.Tasks[i]
		if t.Store != store {
			continue
		}
		if t.State == TaskDone || r.State.Final() {
			return nil
		}
		if done.Failed {
			callbackOutcome(t, &r, done, now, e.backoff)
			e.cfg.Logger.Warn("dsar task failed", "request", r.ID, "store", store, "op", want.Op, "kind", string(t.ErrorKind), "attempt", t.Attempts)
			return e.put(ctx, &r)
		}
		if r.Type.producesResult() && !IsRecipientTask(store) {
			x := Export{Store: store}
			if done.Export != nil {
				x.Tables = done.Export.Tables
			}
			if err := e.keepExport(ctx, &r, x); err != nil {
				return err
			}
			done.Items = x.Rows()
		}
		callbackOutcome(t, &r, done, now, e.backoff)
		return e.put(ctx, &r)
	}
	return fmt.Errorf("dsar: request has no task for store %q: %w", store, privguard.ErrNotFound)
}
