package dsar

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/privguard/privguard"
)

// Explanations of automated decisions (DSR-14; PIPL Art. 24(3), GDPR Arts. 15(1)(h), 22(3)):
// an explanation request is answered from Config.Explain, once verified, with no store
// task; with a human review asked for, it then waits in StateAwaitingReview until a person
// answers it (Engine.Review).

// Explanation is the answer of an explanation request.
type Explanation struct {
	// Decisions holds one entry per purpose that makes automated decisions.
	Decisions []AutomatedDecision `json:"decisions"`
	// Note says what the answer could not include (the decision log is not readable here,
	// say), in plain words; empty when nothing is left out.
	Note string `json:"note,omitempty"`
}

// AutomatedDecision explains one automated-decision purpose: how it decides, with which
// model and which data, and the subject's recent decisions under it.
type AutomatedDecision struct {
	Purpose privguard.Purpose `json:"purpose"`
	// Description names the purpose in plain words, per language ("en", "zh").
	Description map[string]string `json:"description,omitempty"`
	// Model names the model and its version that makes the decisions.
	Model string `json:"model"`
	// Features are the data categories the model uses.
	Features []privguard.DataCategory `json:"features"`
	// Logic summarises how the decision is made, per language ("en", "zh").
	Logic map[string]string `json:"logic"`
	// Recent are the subject's most recent decisions under the purpose, newest first, from
	// the decision log: each time privguard decided whether the purpose could process the
	// subject's data (allow or deny, with the reasons), which dates the automated
	// decisions. The outcome of the model's own decision is the controller's, not logged here.
	Recent []DecisionRecord `json:"recent"`
}

// DecisionRecord is one decision of the decision log (privguard's allow or deny of the
// purpose's processing of the subject's data), as an explanation shows it.
type DecisionRecord struct {
	Time       time.Time                `json:"time"`
	DecisionID string                   `json:"decision_id"`
	Effect     string                   `json:"effect"`
	Reasons    []string                 `json:"reasons,omitempty"`
	Revision   string                   `json:"revision,omitempty"` // the policy's revision
	Categories []privguard.DataCategory `json:"categories,omitempty"`
}

// Review outcomes: the reviewer upheld the automated decision, or changed it.
const (
	ReviewUpheld  = "upheld"
	ReviewChanged = "changed"
)

// Review is the human review of an automated decision the subject asked for.
type Review struct {
	RequestedAt time.Time `json:"requested_at"`
	// Statement is the subject's point of view (GDPR Art. 22(3)), if given.
	Statement string `json:"statement,omitempty"`
	// Outcome is ReviewUpheld or ReviewChanged once a person reviewed the decision; By
	// names the reviewer, Note says what they found, At when.
	Outcome string    `json:"outcome,omitempty"`
	By      string    `json:"by,omitempty"`
	Note    string    `json:"note,omitempty"`
	At      time.Time `json:"at,omitzero"`
}

// awaitsReview reports whether r is an explanation whose human review is asked for and not
// yet answered.
func awaitsReview(r *Request) bool {
	return r.Type == TypeExplanation && r.HumanReview != nil && r.HumanReview.Outcome == ""
}

// RequestReview asks for a human review of the automated decisions explanation request id
// explains, with the subject's statement (may be empty). An open request goes on and then
// waits for the review; a completed one is reopened, due by the regime's deadline counted
// from now. Returns ErrInvalid for another type of request and ErrConflict for one
// rejected, cancelled or already reviewed.
func (e *Engine) RequestReview(ctx context.Context, id, statement string) (Request, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for attempt := 0; ; attempt++ {
		r, err := e.get(ctx, id)
		if err != nil {
			return Request{}, err
		}
		if r.Type != TypeExplanation {
			return Request{}, fmt.Errorf("dsar: a human review is asked for on an explanation request, not %s: %w", r.Type, privguard.ErrInvalid)
		}
		switch {
		case r.HumanReview != nil && r.HumanReview.Outcome != "":
			return Request{}, fmt.Errorf("dsar: the decision was reviewed already: %w", privguard.ErrConflict)
		case r.HumanReview != nil:
			return r, nil // asked for already
		case r.State == StateRejected || r.State == StateCancelled:
			return Request{}, fmt.Errorf("dsar: request is %s: %w", r.State, privguard.ErrConflict)
		}
		now := e.cfg.Now().UTC()
		r.HumanReview = &Review{RequestedAt: now, Statement: statement}
		r.event(now, "human review requested", "")
		if r.State == StateCompleted {
			dl, err := e.cfg.Deadlines.Due(r.Regime, now, nil, nil, now)
			if err != nil {
				return Request{}, err
			}
			r.State, r.ClosedAt, r.Deadline = StateAwaitingReview, time.Time{}, dl
		}
		if err := e.put(ctx, &r); !errors.Is(err, ErrVersion) || attempt == 4 {
			return r, err
		}
	}
}

// Review records a person's review of the automated decision explanation request id
// awaits (ReviewUpheld or ReviewChanged, with a note of what was found), by reviewer, and
// completes the request. Returns ErrInvalid for an unknown outcome or an empty note, and
// ErrConflict if the request does not await a review.
func (e *Engine) Review(ctx context.Context, id, reviewer, outcome, note string) (Request, error) {
	if outcome != ReviewUpheld && outcome != ReviewChanged {
		return Request{}, fmt.Errorf("dsar: review outcome %q: want %s or %s: %w", outcome, ReviewUpheld, ReviewChanged, privguard.ErrInvalid)
	}
	if note == "" {
		return Request{}, fmt.Errorf("dsar: a review needs a note: %w", privguard.ErrInvalid)
	}
	return e.change(ctx, id, func(r *Request, now time.Time) error {
		if r.State != StateAwaitingReview || !awaitsReview(r) {
			return fmt.Errorf("dsar: request is %s, not awaiting a review: %w", r.State, privguard.ErrConflict)
		}
		rv := *r.HumanReview
		rv.Outcome, rv.By, rv.Note, rv.At = outcome, reviewer, note, now
		r.HumanReview = &rv
		r.event(now, "reviewed by a person", outcome)
		r.State = StateCompleted
		r.event(now, "completed", "")
		return nil
	})
}

// Explains reports whether the engine answers explanation requests (Config.Explain is set).
func (e *Engine) Explains() bool { return e.cfg.Explain != nil }
