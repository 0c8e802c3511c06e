package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/audit"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/internal/config"
)

const explainYAML = `
purposes:
  - name: credit.scoring
    description: {en: Deciding on instalment credit, zh: 分期付款授信}
    legal_bases: {pipl: [contract], gdpr: [contract]}
    automated_decision: true
    explanation:
      model: instalment-score 3.2
      logic: {en: "Points for income and repayment history; below 600 is declined.", zh: "按收入和还款记录计分，低于600分不予授信。"}
      features: [user.financial, user.behavior.purchase_history]
`

func TestExplainerReadsTheSubjectsDecisions(t *testing.T) {
	// proves DSR-14: an explanation names the model, the features and the logic of each
	// automated-decision purpose and the subject's own decisions from the decision log,
	// newest first, and not another subject's.
	cfg, err := config.Parse([]byte(explainYAML))
	if err != nil {
		t.Fatal(err)
	}
	tax, err := cfg.Taxonomy()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "decisions.log")
	key := bytes.Repeat([]byte{9}, 32)
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	at := now.Add(-time.Hour)
	log, err := audit.Open(audit.Config{Path: path, Key: key, Now: func() time.Time { at = at.Add(time.Minute); return at }})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range []privguard.SubjectID{"cust-1", "cust-2", "cust-1"} {
		in := &privguard.Input{Subject: s, Purpose: "credit.scoring", Regime: privguard.RegimePIPL}
		d := &privguard.Decision{ID: []string{"d-1", "d-2", "d-3"}[i], Effect: privguard.Deny, Reasons: []privguard.Reason{"score.below_threshold"}}
		log.Record("POST /api/credit", in, d)
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	explain := explainer(cfg, tax, path, func(context.Context) ([]byte, error) { return key, nil }, func() time.Time { return now })
	x, err := explain(context.Background(), dsar.Request{Subject: "cust-1", Regime: privguard.RegimePIPL})
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Decisions) != 1 {
		t.Fatalf("decisions: %+v; want credit.scoring alone", x.Decisions)
	}
	d := x.Decisions[0]
	if d.Model != "instalment-score 3.2" || len(d.Features) != 2 || d.Logic["zh"] == "" || d.Description["zh"] != "分期付款授信" {
		t.Errorf("explanation: %+v", d)
	}
	if len(d.Recent) != 2 || d.Recent[0].DecisionID != "d-3" || d.Recent[1].DecisionID != "d-1" || d.Recent[0].Reasons[0] != "score.below_threshold" {
		t.Errorf("recent: %+v; want d-3 then d-1 (cust-1's, newest first)", d.Recent)
	}
	// No decision log yet: the answer says so.
	none := explainer(cfg, tax, path, func(context.Context) ([]byte, error) { return nil, errNoDecisionLog }, func() time.Time { return now })
	if x, err := none(context.Background(), dsar.Request{Subject: "cust-1", Regime: privguard.RegimePIPL}); err != nil || x.Note != "no decision has been recorded" {
		t.Errorf("without a log: %+v, %v", x, err)
	}
}
