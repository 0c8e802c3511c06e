package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/retention"
)

// retentionReport is what a retention run did (or, dry, would do): the answer of POST and
// GET /v1/retention/runs and what 'privguard retention' prints. It names no subject.
type retentionReport struct {
	Run          string            `json:"run,omitempty"`
	DryRun       bool              `json:"dry_run"`
	State        string            `json:"state"` // planned (dry), in_progress, completed, partially_failed
	PlannedAt    time.Time         `json:"planned_at"`
	ClosedAt     time.Time         `json:"closed_at,omitzero"`
	Actions      []reportAction    `json:"actions"`
	Deletions    int               `json:"deletions"`    // full deletion requests submitted (trigger named on each)
	Restrictions int               `json:"restrictions"` // subjects moved to storage and security only
	Deferred     int               `json:"deferred"`     // subjects left for the next run (retention_sweep.max_subjects)
	Skipped      []retention.Skip  `json:"skipped"`
	Kept         []retention.Kept  `json:"kept"`
	Requests     []string          `json:"deletion_requests,omitempty"`
	Stores       map[string]string `json:"stores,omitempty"` // store → its task's state and error kind
}

// reportAction is one sweep action: where, what, its limits, and what it changed.
type reportAction struct {
	Store    string    `json:"store"`
	Rule     string    `json:"rule"`
	Table    string    `json:"table"`
	Mode     string    `json:"mode"`
	Columns  []string  `json:"columns,omitempty"`
	Before   time.Time `json:"before,omitzero"`
	Subjects int       `json:"subjects,omitempty"` // how many subjects it is limited to
	Rows     int       `json:"rows"`               // rows or keys changed (dry: that would change)
	State    string    `json:"state"`              // pending, done, failed (dry: planned)
	Error    string    `json:"error,omitempty"`    // the task's error kind, when it failed
}

func (rep retentionReport) finished() bool {
	return rep.State == "completed" || rep.State == "partially_failed" || rep.State == "cancelled"
}

// planAccount is what a run keeps of its planning (dsar.Request.Plan).
type planAccount struct {
	Deletions    int              `json:"deletions"`
	Restrictions int              `json:"restrictions"`
	Deferred     int              `json:"deferred"`
	Skipped      []retention.Skip `json:"skipped"`
	Kept         []retention.Kept `json:"kept"`
	Requests     []string         `json:"deletion_requests,omitempty"`
}

// retentionRunner is serve's sweeper (adminapi.RetentionRunner): it plans a run, records
// the restrictions, submits the full deletions and starts the sweep as a retention request.
type retentionRunner struct {
	planner *retention.Planner
	engine  *dsar.Engine
	ledger  *consent.Ledger
	sweeps  map[string]dsar.Sweeper
	log     *slog.Logger
}

// newRetention builds serve's sweeper over the configured stores (conns, in the order of
// cfg.DSAR.Stores).
func newRetention(cfg *config.File, conns []dsar.Connector, engine *dsar.Engine, ledger *consent.Ledger, log *slog.Logger) *retentionRunner {
	rr := &retentionRunner{engine: engine, ledger: ledger, sweeps: map[string]dsar.Sweeper{}, log: log,
		planner: &retention.Planner{Rules: cfg.RetentionRules(), Facts: ledger, MaxSubjects: cfg.RetentionSweep.SubjectsPerAction()}}
	for i, s := range cfg.DSAR.Stores {
		st := retention.Store{Name: s.Name, Kind: s.Type, Keys: s.RetentionKeys()}
		if s.Type == "postgres" || s.Type == "mysql" {
			st.Tables = tableMaps(s)
		}
		st.Sweeper, _ = conns[i].(dsar.Sweeper)
		st.Activity, _ = conns[i].(dsar.ActivityReader)
		if st.Sweeper != nil {
			rr.sweeps[s.Name] = st.Sweeper
		}
		rr.planner.Stores = append(rr.planner.Stores, st)
	}
	return rr
}

// Run implements adminapi.RetentionRunner.
func (rr *retentionRunner) Run(ctx context.Context, dry bool) (string, any, error) {
	plan, err := rr.planner.Plan(ctx)
	if err != nil {
		return "", nil, err
	}
	acct := planAccount{Deletions: len(plan.Deletions), Restrictions: len(plan.Restrictions), Deferred: plan.Deferred,
		Skipped: plan.Skipped, Kept: plan.Kept}
	if dry {
		rep := retentionReport{DryRun: true, State: "planned", PlannedAt: plan.At}
		rep.fill(acct)
		for _, store := range slices.Sorted(maps.Keys(plan.Actions)) {
			for _, a := range plan.Actions[store] {
				n, err := rr.sweeps[store].CountSweep(ctx, a)
				x := action(store, a, n, "planned")
				if err != nil {
					x.State, x.Error = "failed", string(dsar.KindOf(err))
				}
				rep.Actions = append(rep.Actions, x)
			}
		}
		return "", rep, nil
	}
	for _, x := range plan.Restrictions {
		if err := rr.ledger.RestrictCategories(ctx, x.Subject, x.Categories, x.Until, x.Ground, "retention:"+x.Rule); err != nil {
			return "", nil, fmt.Errorf("retention: record a restriction: %w", err)
		}
	}
	if len(plan.Deletions) > 0 {
		reqs := make([]dsar.Request, len(plan.Deletions))
		for i, d := range plan.Deletions {
			reqs[i] = dsar.Request{Type: dsar.TypeDeletion, Subject: d.Subject, Trigger: d.Trigger,
				Identity: &dsar.Identity{Operator: "retention:" + d.Rule}}
		}
		out, err := rr.engine.SubmitAll(ctx, reqs)
		if err != nil {
			return "", nil, fmt.Errorf("retention: submit the deletions: %w", err)
		}
		for _, r := range out {
			acct.Requests = append(acct.Requests, r.ID)
		}
	}
	b, err := json.Marshal(acct)
	if err != nil {
		return "", nil, err
	}
	r, err := rr.engine.SubmitRetention(ctx, plan.Actions, b)
	if err != nil && !errors.Is(err, dsar.ErrRetentionRunning) {
		return "", nil, err
	}
	if err == nil {
		rr.log.Info("retention run started", "run", r.ID, "stores", len(r.Tasks), "deletions", len(plan.Deletions), "restrictions", len(plan.Restrictions))
	}
	return r.ID, reportOf(r), err
}

// Report implements adminapi.RetentionRunner.
func (rr *retentionRunner) Report(ctx context.Context, id string) (any, error) {
	r, err := rr.engine.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.Type != dsar.TypeRetention {
		return nil, fmt.Errorf("no retention run %s: %w", id, privguard.ErrNotFound)
	}
	return reportOf(r), nil
}

// reportOf is the report of retention request r as it stands.
func reportOf(r dsar.Request) retentionReport {
	rep := retentionReport{Run: r.ID, State: string(r.State), PlannedAt: r.ReceivedAt, ClosedAt: r.ClosedAt}
	if r.State == dsar.StateVerified {
		rep.State = string(dsar.StateInProgress)
	}
	var acct planAccount
	if len(r.Plan) > 0 && json.Unmarshal(r.Plan, &acct) == nil {
		rep.fill(acct)
	}
	for _, t := range r.Tasks {
		for i, a := range t.Actions {
			n := 0
			if i < len(t.Counts) {
				n = t.Counts[i]
			}
			st := "pending"
			switch {
			case i < t.Next:
				st = "done"
			case t.State == dsar.TaskFailed && i == t.Next:
				st = "failed"
			}
			x := action(t.Store, a, n, st)
			if st == "failed" {
				x.Error = string(t.ErrorKind)
			}
			rep.Actions = append(rep.Actions, x)
		}
	}
	return rep
}

func (rep *retentionReport) fill(a planAccount) {
	rep.Deletions, rep.Restrictions, rep.Deferred, rep.Skipped, rep.Kept, rep.Requests = a.Deletions, a.Restrictions, a.Deferred, a.Skipped, a.Kept, a.Requests
}

func action(store string, a dsar.SweepAction, n int, state string) reportAction {
	return reportAction{Store: store, Rule: a.Rule, Table: a.Table, Mode: string(a.Mode), Columns: a.Columns,
		Before: a.Before, Subjects: len(a.Subjects), Rows: n, State: state}
}

// sweepEvery starts a retention run every interval until ctx ends (serve's schedule); a
// run still open is left to finish.
func (rr *retentionRunner) sweepEvery(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if _, _, err := rr.Run(ctx, false); err != nil && !errors.Is(err, dsar.ErrRetentionRunning) && ctx.Err() == nil {
			rr.log.Error("retention run not started", "kind", string(dsar.KindOf(err)))
		}
	}
}
