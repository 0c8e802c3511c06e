package dsar

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/privguard/privguard"
)

// ReasonSubjectErased is the reason of a correction cancelled because its subject's
// erasure completed first: applying the patch afterwards would write personal data back
// into the stores (a masked row takes the new value). An open tag deletion is cancelled
// with it too: the erasure removed its items, and its scrubbed values name nothing.
const ReasonSubjectErased = "subject_erased"

// engineCancellation reports whether reason is a cancellation code the engine itself sets;
// any other cancellation reason is an operator's free text.
func engineCancellation(reason string) bool {
	return reason == "identity_not_verified" || reason == ReasonSubjectErased
}

// holdsPersonal reports whether r holds personal data of its subject beyond the subject id:
// a correction's new values, a tag deletion's tag texts, or free text an operator or requester wrote (identity and
// approval notes, a cancellation or extension reason), or a pending code's hash. The
// subject id itself stays, as it does in the consent ledger: it ties the request to the
// proof of the erasure.
func holdsPersonal(r *Request) bool {
	text := func(s string) bool { return s != "" && s != MaskValue }
	for _, v := range r.Patch {
		if text(v) {
			return true
		}
	}
	for _, it := range r.Items {
		if text(it.Value) {
			return true
		}
	}
	switch {
	case r.Identity != nil && r.Identity.Method != "controller" && text(r.Identity.Note),
		r.Approval != nil && text(r.Approval.Note),
		r.Extension != nil && text(r.Extension.Reason),
		r.State == StateCancelled && text(r.Reason) && !engineCancellation(r.Reason),
		r.HumanReview != nil && (text(r.HumanReview.Statement) || text(r.HumanReview.Note)),
		r.Requester != nil && text(r.Requester.Proof),
		r.Challenge != nil:
		return true
	}
	if r.Explanation != nil {
		for _, d := range r.Explanation.Decisions {
			if len(d.Recent) > 0 {
				return true // the subject's decisions
			}
		}
	}
	return false
}

// scrub removes the subject's personal data from r (what holdsPersonal finds) and keeps
// the bookkeeping: type, regime, dates, states, tasks and their outcomes, the patch's
// categories (each value replaced by MaskValue), a tag deletion's items (their ids, stores,
// places and categories; each value replaced by MaskValue), who verified and who approved, that a
// note or reason existed (its text replaced by MaskValue), reason codes, the events. It
// sets ScrubbedAt.
func scrub(r *Request, now time.Time) {
	mask := func(s *string) {
		if *s != "" {
			*s = MaskValue
		}
	}
	for c := range r.Patch {
		r.Patch[c] = MaskValue
	}
	r.Items = slices.Clone(r.Items)
	for i := range r.Items {
		// The id stays (a hash of the value, for the bookkeeping), the text goes.
		r.Items[i].Value = MaskValue
	}
	if r.Identity != nil && r.Identity.Method != "controller" { // a controller's note is its trigger code
		mask(&r.Identity.Note)
	}
	if r.Approval != nil {
		mask(&r.Approval.Note)
	}
	if r.Extension != nil {
		mask(&r.Extension.Reason)
	}
	if r.State == StateCancelled && !engineCancellation(r.Reason) {
		mask(&r.Reason)
	}
	if r.Requester != nil {
		q := *r.Requester // who asked, and as what, stay: the proof goes
		mask(&q.Proof)
		r.Requester = &q
	}
	if r.HumanReview != nil {
		rv := *r.HumanReview
		mask(&rv.Statement)
		mask(&rv.Note)
		r.HumanReview = &rv
	}
	if r.Explanation != nil {
		x := *r.Explanation
		x.Decisions = slices.Clone(x.Decisions)
		for i := range x.Decisions {
			x.Decisions[i].Recent = nil // the subject's decisions; the logic and model stay
		}
		r.Explanation = &x
	}
	r.Challenge = nil
	r.ScrubbedAt = now
}

// indexPersonal records in e.personal whether r holds personal data to scrub when its
// subject is erased. e.mu must be held.
func (e *Engine) indexPersonal(r *Request) {
	ids := e.personal[r.Subject]
	i := slices.Index(ids, r.ID)
	switch has := holdsPersonal(r); {
	case has && i < 0:
		e.personal[r.Subject] = append(ids, r.ID)
	case !has && i >= 0:
		if ids = slices.Delete(slices.Clone(ids), i, i+1); len(ids) == 0 {
			delete(e.personal, r.Subject)
		} else {
			e.personal[r.Subject] = ids
		}
	}
}

// personalOf returns the ids of subject's requests that hold its personal data: from the
// index alone, from the store's requests of the subject when shared. e.mu must be held.
func (e *Engine) personalOf(ctx context.Context, subject privguard.SubjectID) ([]string, error) {
	if e.leaser == nil {
		if err := e.loadIndex(ctx); err != nil {
			return nil, fmt.Errorf("dsar: list requests: %w: %w", err, privguard.ErrUnavailable)
		}
		return slices.Clone(e.personal[subject]), nil
	}
	bodies, err := e.leaser.SubjectRequests(ctx, []privguard.SubjectID{subject})
	if err != nil {
		return nil, fmt.Errorf("dsar: read the subject's requests: %w: %w", err, privguard.ErrUnavailable)
	}
	var ids []string
	for _, b := range bodies {
		var o Request
		if err := json.Unmarshal(b, &o); err != nil {
			return nil, fmt.Errorf("dsar: stored request: %w", err)
		}
		if o.Subject == subject && holdsPersonal(&o) {
			ids = append(ids, o.ID)
		}
	}
	return ids, nil
}

// scrubSubject removes subject's personal data from each of its stored requests received
// by before, except request self, durably, and cancels its open corrections (their patch
// must not reach the stores after the erasure) and tag deletions (see ReasonSubjectErased). It returns how many requests it changed.
// e.mu must be held.
func (e *Engine) scrubSubject(ctx context.Context, subject privguard.SubjectID, self string, before, now time.Time) (int, error) {
	ids, err := e.personalOf(ctx, subject)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		if id == self {
			continue
		}
		r, err := e.load(ctx, id)
		if err != nil {
			return n, err
		}
		if r.ReceivedAt.After(before) {
			continue
		}
		if (r.Type == TypeCorrection || r.Type == TypeTagDeletion) && !r.State.Final() {
			r.State, r.Reason = StateCancelled, ReasonSubjectErased
			r.event(now, string(StateCancelled), "the subject was erased first")
		}
		scrub(&r, now)
		r.event(now, "personal data removed", "the subject was erased")
		if err := e.put(ctx, &r); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// scrubErased finishes the scrub of erasures recorded before requests were scrubbed (a
// data file from an earlier version), for an engine alone with its store (on a shared
// store, such an erasure is due and its round does it: see tend). Failures are logged and
// retried by the next Step.
func (e *Engine) scrubErased(ctx context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.loadIndex(ctx) != nil {
		return // openRequests says so
	}
	for _, id := range slices.Clone(e.unscrubbed) {
		r, err := e.get(ctx, id)
		if err == nil && r.ScrubbedAt.IsZero() {
			if err = e.scrubErasure(ctx, &r, e.cfg.Now().UTC()); err == nil {
				err = e.put(ctx, &r)
			}
		}
		if err != nil {
			e.cfg.Logger.Error("dsar: scrubbing an erased subject's requests failed", "request", id, "err", describe("privguard", err))
			continue
		}
		e.unscrubbed = slices.DeleteFunc(e.unscrubbed, func(x string) bool { return x == id })
	}
}

// scrubErasure scrubs the requests of erasure r's subject received before it closed,
// then r itself (for the caller to store). e.mu must be held.
func (e *Engine) scrubErasure(ctx context.Context, r *Request, now time.Time) error {
	if _, err := e.scrubSubject(ctx, r.Subject, r.ID, closedAt(*r), now); err != nil {
		return err
	}
	scrub(r, now)
	r.event(now, "the subject's personal data removed from its stored requests", "")
	return nil
}
