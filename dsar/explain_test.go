package dsar_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

// explainer answers explanation requests with one credit-scoring purpose and the
// subject's one decision.
func explainer(calls *int) func(context.Context, dsar.Request) (dsar.Explanation, error) {
	return func(_ context.Context, r dsar.Request) (dsar.Explanation, error) {
		*calls++
		return dsar.Explanation{Decisions: []dsar.AutomatedDecision{{Purpose: "credit.scoring", Model: "score-v3.2",
			Features: []privguard.DataCategory{"user.financial"}, Logic: map[string]string{"en": "a points score", "zh": "评分"},
			Recent: []dsar.DecisionRecord{{Time: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC), DecisionID: "d-1", Effect: "deny"}}}}}, nil
	}
}

func TestExplanationAndHumanReview(t *testing.T) {
	// proves DSR-14: an explanation request is answered with the model, the features, the
	// logic and the subject's decisions; one that asks for a human review waits for a
	// person, who upholds or changes the decision, and is not completed before.
	c := &clock{time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	calls := 0
	e, closeDB := openWith(t, t.TempDir(), c, nil, func(cfg *dsar.Config) { cfg.Explain = explainer(&calls) })
	defer closeDB()
	verified := &dsar.Identity{Method: "token"}

	plain, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeExplanation, Subject: "cust-1", Identity: verified})
	if err != nil {
		t.Fatal(err)
	}
	e.Step(ctx)
	plain, _ = e.Get(ctx, plain.ID)
	if plain.State != dsar.StateCompleted || plain.Explanation == nil || len(plain.Explanation.Decisions) != 1 ||
		plain.Explanation.Decisions[0].Model != "score-v3.2" || len(plain.Explanation.Decisions[0].Recent) != 1 {
		t.Fatalf("explanation: %s %+v; want completed with the model and the decision", plain.State, plain.Explanation)
	}
	if len(plain.Tasks) != 0 {
		t.Errorf("explanation tasks %+v; want none (no store is asked)", plain.Tasks)
	}

	asked, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeExplanation, Subject: "cust-2", Identity: verified,
		HumanReview: &dsar.Review{Statement: "my income was wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	e.Step(ctx)
	asked, _ = e.Get(ctx, asked.ID)
	if asked.State != dsar.StateAwaitingReview || asked.Explanation == nil {
		t.Fatalf("with human_review: %s; want awaiting_review with the explanation", asked.State)
	}
	e.Step(ctx)
	if calls != 2 {
		t.Errorf("Explain called %d times; want 2 (once per request)", calls)
	}
	if _, err := e.Review(ctx, asked.ID, "officer", "overturned", "x"); !errors.Is(err, privguard.ErrInvalid) {
		t.Errorf("unknown outcome: %v; want ErrInvalid", err)
	}
	if _, err := e.Review(ctx, plain.ID, "officer", dsar.ReviewUpheld, "checked"); !errors.Is(err, privguard.ErrConflict) {
		t.Errorf("review of a request not awaiting one: %v; want ErrConflict", err)
	}
	done, err := e.Review(ctx, asked.ID, "officer", dsar.ReviewChanged, "income corrected, approved")
	if err != nil {
		t.Fatal(err)
	}
	if done.State != dsar.StateCompleted || done.HumanReview.Outcome != dsar.ReviewChanged || done.HumanReview.By != "officer" {
		t.Errorf("reviewed: %s %+v", done.State, done.HumanReview)
	}

	// A later call on the completed explanation reopens it for a review.
	re, err := e.RequestReview(ctx, plain.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if re.State != dsar.StateAwaitingReview || re.HumanReview == nil || !re.ClosedAt.IsZero() {
		t.Errorf("later review call: %s %+v", re.State, re.HumanReview)
	}
	if _, err := e.RequestReview(ctx, done.ID, ""); !errors.Is(err, privguard.ErrConflict) {
		t.Errorf("a second review: %v; want ErrConflict", err)
	}
	if _, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-3", HumanReview: &dsar.Review{}}); !errors.Is(err, privguard.ErrInvalid) {
		t.Errorf("human_review on an access request: %v; want ErrInvalid", err)
	}
}
