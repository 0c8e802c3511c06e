package dsar

import (
	"context"
	"fmt"
	"time"

	"github.com/privguard/privguard"
)

// Extend records a GDPR Art. 12(3) extension of one or two months, with its reasons and the
// time the subject was told of it (zero: now). The extension must be decided and told within
// the first month; PIPL has none. It waits for a running Step round to end.
func (e *Engine) Extend(ctx context.Context, id string, months int, reason string, notifiedAt time.Time) (Request, error) {
	return e.change(ctx, id, func(r *Request, now time.Time) error {
		if notifiedAt.IsZero() {
			notifiedAt = now
		}
		ext := &Extension{Months: months, Reason: reason, RecordedAt: now, NotifiedAt: notifiedAt.UTC()}
		dl, err := e.cfg.Deadlines.Due(r.Regime, r.ReceivedAt, r.Pauses, ext, now)
		if err != nil {
			return err
		}
		r.Extension, r.Deadline = ext, dl
		r.event(now, "extended", fmt.Sprintf("%d month(s)", months))
		return nil
	})
}

// Cancel closes an open request (withdrawn by the subject, say) with a reason.
func (e *Engine) Cancel(ctx context.Context, id, reason string) (Request, error) {
	return e.close(ctx, id, StateCancelled, reason)
}

// Reject refuses an open request with the reason the subject is told (manifestly unfounded
// or excessive, identity not established, a legal exemption).
func (e *Engine) Reject(ctx context.Context, id, reason string) (Request, error) {
	return e.close(ctx, id, StateRejected, reason)
}

func (e *Engine) close(ctx context.Context, id string, state State, reason string) (Request, error) {
	if reason == "" {
		return Request{}, fmt.Errorf("dsar: a reason is required: %w", privguard.ErrInvalid)
	}
	return e.change(ctx, id, func(r *Request, now time.Time) error {
		r.State, r.Reason, r.Challenge = state, reason, nil
		r.event(now, string(state), "")
		return nil
	})
}

// change applies fn to an open request. It holds stepMu so that no Step round is working
// on the request meanwhile (Step writes its own copy back when the round ends).
func (e *Engine) change(ctx context.Context, id string, fn func(r *Request, now time.Time) error) (Request, error) {
	e.stepMu.Lock()
	defer e.stepMu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	r, err := e.get(ctx, id)
	if err != nil {
		return Request{}, err
	}
	if r.State.Final() {
		return Request{}, fmt.Errorf("dsar: request is %s: %w", r.State, privguard.ErrConflict)
	}
	if err := fn(&r, e.cfg.Now().UTC()); err != nil {
		return Request{}, err
	}
	return r, e.put(ctx, &r)
}

// Retry makes a request's failed tasks due now instead of at their backoff time (a store
// came back; the operator does not want to wait). It reports how many tasks it made due.
func (e *Engine) Retry(ctx context.Context, id string) (Request, int, error) {
	n := 0
	r, err := e.change(ctx, id, func(r *Request, now time.Time) error {
		for i := range r.Tasks {
			if t := &r.Tasks[i]; t.State == TaskFailed {
				t.NextAttempt, n = now, n+1
			}
		}
		r.event(now, "retry requested", fmt.Sprintf("%d task(s)", n))
		return nil
	})
	return r, n, err
}
