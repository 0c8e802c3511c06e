package dsar

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/privguard/privguard"
)

// Intake: new requests are checked and stored, and start once their requester is
// verified (or at once when none need be). What they then do is the scheduler's.

// Submit records a new request. With Identity set (verified out of band by an operator, or
// by a token checked by the caller) it is verified at once; otherwise it waits for
// verification. Objections and restrictions need no verification (DSR-02).
func (e *Engine) Submit(ctx context.Context, r Request) (Request, error) {
	r, err := e.prepare(r)
	if err != nil {
		return Request{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if dup, ok := e.openDuplicate(ctx, r); ok {
		// The same subject asking again for the same thing: the open request answers it.
		return dup, nil
	}
	return r, e.put(ctx, &r)
}

// SubmitAll is Submit for many requests (a bulk erasure), written in one durable
// transaction if the Store is a BatchStore, instead of one each. It returns the stored
// requests in the order given (an open duplicate's, as Submit does, also of an earlier
// request of the same call). A request that is not valid fails the call before anything is
// stored; a failed write stores none of them.
func (e *Engine) SubmitAll(ctx context.Context, rs []Request) ([]Request, error) {
	out := make([]Request, len(rs))
	for i, r := range rs {
		p, err := e.prepare(r)
		if err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
		out[i] = p
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.batch = &writeBatch{index: map[string]int{}}
	// On a shared store an earlier request of this call is not in the store before the
	// flush, so the call's own duplicates are found here (alone, put indexes them).
	mine := map[openKey]int{}
	for i := range out {
		k := openKey{out[i].Subject, out[i].Type, out[i].TransferTo}
		if j, ok := mine[k]; ok && e.leaser != nil {
			out[i] = out[j]
			continue
		}
		if dup, ok := e.openDuplicate(ctx, out[i]); ok {
			out[i] = dup
			continue
		}
		if out[i].Type.deduplicated() {
			mine[k] = i
		}
		if err := e.put(ctx, &out[i]); err != nil {
			e.batch = nil
			e.open, e.active, e.results, e.personal, e.unscrubbed, e.bySubject = nil, nil, nil, nil, nil, nil
			return nil, err
		}
	}
	if err := e.flush(ctx); err != nil {
		return nil, err
	}
	return out, nil
}

// prepare checks a new request and makes it ready to store: id, dates, deadline, state,
// and its tasks if it needs no verification.
func (e *Engine) prepare(r Request) (Request, error) {
	if r.Identity != nil {
		id := *r.Identity // verified sets the time: the caller's copy is left alone
		r.Identity = &id
	}
	if !r.Type.Valid() || r.Type == TypeRetention {
		// A retention run is the controller's own, planned: SubmitRetention stores it.
		return Request{}, fmt.Errorf("dsar: request type %q: %w", r.Type, privguard.ErrInvalid)
	}
	if err := r.Subject.Validate(); err != nil {
		return Request{}, err
	}
	if r.Regime == "" {
		r.Regime = e.cfg.DefaultRegime
	}
	if err := checkRequester(&r); err != nil {
		return Request{}, err
	}
	if err := checkReader(&r); err != nil {
		return Request{}, err
	}
	if r.Requester != nil {
		q := *r.Requester
		r.Requester = &q
	}
	if r.Trigger != "" {
		if r.Type != TypeDeletion || !slices.Contains(Triggers, r.Trigger) {
			return Request{}, fmt.Errorf("dsar: trigger %q: want a deletion with one of %v: %w", r.Trigger, Triggers, privguard.ErrInvalid)
		}
		// The controller's own erasure: there is no requester to verify.
		id := Identity{Method: "controller", Note: r.Trigger}
		if r.Identity != nil {
			id.Operator = r.Identity.Operator
		}
		r.Identity = &id
	}
	if r.AccountCancellation && r.Type != TypeDeletion {
		return Request{}, fmt.Errorf("dsar: account_cancellation is a deletion: %w", privguard.ErrInvalid)
	}
	if r.TransferTo != "" {
		if r.Type != TypePortability {
			return Request{}, fmt.Errorf("dsar: transfer_to is for portability requests: %w", privguard.ErrInvalid)
		}
		if _, ok := e.receiver(r.TransferTo); !ok {
			return Request{}, fmt.Errorf("dsar: transfer_to %q: no recipient of that name takes packages: %w", r.TransferTo, privguard.ErrInvalid)
		}
	}
	if err := e.checkItems(r); err != nil {
		return Request{}, err
	}
	if r.HumanReview != nil && r.Type != TypeExplanation {
		return Request{}, fmt.Errorf("dsar: human_review is for explanation requests: %w", privguard.ErrInvalid)
	}
	if r.Type == TypeExplanation && e.cfg.Explain == nil {
		return Request{}, fmt.Errorf("dsar: explanation requests need an explainer (Config.Explain): %w", privguard.ErrUnavailable)
	}
	if r.Type == TypeCorrection && len(r.Patch) == 0 {
		return Request{}, fmt.Errorf("dsar: a correction needs a patch: %w", privguard.ErrInvalid)
	}
	if r.Type.producesResult() && e.cfg.Sealer == nil {
		return Request{}, fmt.Errorf("dsar: %s requests need a result sealer (the vault): %w", r.Type, privguard.ErrUnavailable)
	}
	for cat := range r.Patch {
		if cat.Validate() != nil {
			return Request{}, fmt.Errorf("dsar: patch category: %w", privguard.ErrInvalid)
		}
		if !e.correctable(cat) {
			return Request{}, fmt.Errorf("dsar: patch category %s: no store holds it: %w", cat, privguard.ErrInvalid)
		}
	}
	now := e.cfg.Now().UTC()
	dl, err := e.cfg.Deadlines.Due(r.Regime, now, nil, nil, now)
	if err != nil {
		return Request{}, err
	}
	r.ID, r.ReceivedAt, r.Deadline, r.State = uuid.Must(uuid.NewV7()).String(), now, dl, StateReceived
	r.Tasks, r.Events, r.Explanation = nil, nil, nil
	r.event(now, "received", string(r.Type))
	if r.HumanReview != nil {
		r.HumanReview = &Review{RequestedAt: now, Statement: r.HumanReview.Statement}
		r.event(now, "human review requested", "")
	}
	if r.Requester != nil {
		r.event(now, "requested by a close relative of the deceased subject", r.Requester.Relation)
	}
	if r.Identity != nil || r.Type == TypeObjection || r.Type == TypeRestriction {
		e.verified(&r, r.Identity, now)
	} else {
		r.State = StateAwaitingVerify
	}
	return r, nil
}

// correctable reports whether some store may hold cat: one that lists it, or one that
// can correct without listing its categories (a webhook store decides itself).
func (e *Engine) correctable(cat privguard.DataCategory) bool {
	for _, c := range e.connectors {
		if _, ok := c.(Rectifier); !ok {
			continue
		}
		cl, ok := c.(CategoryLister)
		if !ok || slices.Contains(cl.Categories(), cat) {
			return true
		}
	}
	return false
}

// openDuplicate returns an open request of r's subject and type, if any. Corrections and
// tag deletions are never duplicates: each carries its own patch or items; nor are a close
// relative's requests, which are not the subject's (nor answered by them). e.mu must be
// held.
func (e *Engine) openDuplicate(ctx context.Context, r Request) (Request, bool) {
	if !r.Type.deduplicated() || r.Requester != nil {
		return Request{}, false
	}
	if e.leaser != nil {
		return e.sharedDuplicate(ctx, r)
	}
	if e.loadIndex(ctx) != nil {
		return Request{}, false // the store is failing; put will say so
	}
	id, ok := e.open[openKey{r.Subject, r.Type, r.TransferTo}]
	if !ok {
		return Request{}, false
	}
	dup, err := e.load(ctx, id)
	return dup, err == nil && !dup.State.Final()
}

// sharedDuplicate is openDuplicate on a shared store, which other replicas write too: it
// reads the subject's requests. e.mu must be held.
func (e *Engine) sharedDuplicate(ctx context.Context, r Request) (Request, bool) {
	bodies, err := e.leaser.SubjectRequests(ctx, []privguard.SubjectID{r.Subject})
	if err != nil {
		return Request{}, false // put will say so
	}
	for _, b := range bodies {
		var o Request
		if json.Unmarshal(b, &o) == nil && o.Subject == r.Subject && o.Type == r.Type && o.TransferTo == r.TransferTo && o.Requester == nil &&
			!o.State.Final() {
			return o, true
		}
	}
	return Request{}, false
}

// verified moves r to verified and creates its tasks.
func (e *Engine) verified(r *Request, id *Identity, now time.Time) {
	if id != nil {
		id.VerifiedAt = now
		r.Identity = id
		r.event(now, "identity verified", id.Method)
	}
	if r.Type == TypeCorrection {
		r.State = StateAwaitingApproval
		return
	}
	e.start(r)
}

// start moves r to verified (ready to run) and creates its tasks: a tag deletion's on the
// stores of its items alone, and no recipient's (they are not told of it).
func (e *Engine) start(r *Request) {
	r.State = StateVerified
	if r.Type == TypeTagDeletion {
		for _, name := range itemStores(r) {
			r.Tasks = append(r.Tasks, Task{Store: name, State: TaskPending})
		}
		return
	}
	r.Tasks = append(r.Tasks, tasksFor(r.Type, e.names, e.recipientNames)...)
}

// Verify records that the requester's identity was verified and starts the work.
func (e *Engine) Verify(ctx context.Context, id string, identity Identity) (Request, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, err := e.awaitingVerification(ctx, id)
	if err != nil {
		return Request{}, err
	}
	if r.Requester != nil && (identity.Method != "operator" || identity.Note == "") {
		return Request{}, fmt.Errorf("dsar: a close relative's request is verified by an operator who says which proof was checked (a note): %w", privguard.ErrInvalid)
	}
	e.verified(&r, &identity, e.cfg.Now().UTC())
	return r, e.put(ctx, &r)
}

// awaitingVerification returns request id if it is awaiting verification, and a conflict
// otherwise. e.mu must be held.
func (e *Engine) awaitingVerification(ctx context.Context, id string) (Request, error) {
	r, err := e.get(ctx, id)
	if err != nil {
		return Request{}, err
	}
	if r.State != StateAwaitingVerify {
		return Request{}, fmt.Errorf("dsar: request is %s, not awaiting verification: %w", r.State, privguard.ErrConflict)
	}
	return r, nil
}
