package dsar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/privguard/privguard"
)

// Retention runs: the engine carries out a planned sweep as the durable tasks of one
// request of type retention, a task per store. A task runs its actions in order, a batch
// (Config.SweepBatch rows) per statement with Config.SweepPause between statements, for at
// most Config.SweepBudget per round; its progress (what each action changed, which are
// finished) is written with the request after every round, so a run interrupted by a
// crash or a failing store goes on where it stood. Actions are idempotent and their
// cut-offs fixed at planning: what ran before the interruption is not done twice.

// Defaults of retention runs.
const (
	DefaultSweepBatch  = 1000
	DefaultSweepPause  = 20 * time.Millisecond
	DefaultSweepBudget = 30 * time.Second
)

// ErrRetentionRunning is returned by SubmitRetention while an earlier run is open.
var ErrRetentionRunning = errors.New("dsar: a retention run is still open")

// SubmitRetention stores a retention run of actions (per store, in order) and returns it;
// the next Step starts it. Every store named must be configured and able to sweep
// ([Sweeper]); stores with no actions get no task. While a run is open, the open run is
// returned with ErrRetentionRunning. plan, if set, is the planner's own account of the run
// (what it skipped and kept, and why), kept with the request as it is.
func (e *Engine) SubmitRetention(ctx context.Context, actions map[string][]SweepAction, plan json.RawMessage) (Request, error) {
	stores := make([]string, 0, len(actions))
	for name, as := range actions {
		if len(as) == 0 {
			continue
		}
		c, ok := e.connectors[name]
		if !ok {
			return Request{}, fmt.Errorf("dsar: retention: store %q is not configured: %w", name, privguard.ErrInvalid)
		}
		if _, ok := c.(Sweeper); !ok {
			return Request{}, fmt.Errorf("dsar: retention: store %q cannot sweep: %w", name, privguard.ErrInvalid)
		}
		for _, a := range as {
			if err := a.check(); err != nil {
				return Request{}, fmt.Errorf("dsar: retention: store %q: %w", name, err)
			}
		}
		stores = append(stores, name)
	}
	sort.Strings(stores)
	now := e.cfg.Now().UTC()
	r := Request{ID: uuid.Must(uuid.NewV7()).String(), Type: TypeRetention, Regime: e.cfg.DefaultRegime,
		ReceivedAt: now, Trigger: "retention_expired", State: StateVerified,
		Identity: &Identity{Method: "controller", Note: "retention_expired", VerifiedAt: now}, Plan: plan}
	r.event(now, "received", string(TypeRetention))
	for _, name := range stores {
		as := slices.Clone(actions[name])
		r.Tasks = append(r.Tasks, Task{Store: name, State: TaskPending, Actions: as, Counts: make([]int, len(as))})
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if dup, ok := e.openDuplicate(ctx, r); ok {
		return dup, ErrRetentionRunning
	}
	return r, e.put(ctx, &r)
}

// check refuses an action the connectors could not carry out safely: checkShape, and
// subject ids that are not ids.
func (a SweepAction) check() error {
	if err := a.checkShape(); err != nil {
		return err
	}
	for _, s := range a.Subjects {
		if err := s.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// checkShape refuses an unknown mode, a clear of no column, an expiry of no period, and an
// action with neither a cut-off nor subjects (it would change every row).
func (a SweepAction) checkShape() error {
	switch a.Mode {
	case SweepDelete, SweepAnonymise:
	case SweepClear:
		if len(a.Columns) == 0 {
			return fmt.Errorf("sweep of %s clears no column: %w", a.Table, privguard.ErrInvalid)
		}
	case SweepExpire:
		if a.Period <= 0 {
			return fmt.Errorf("sweep of %s expires keys with no period: %w", a.Table, privguard.ErrInvalid)
		}
	default:
		return fmt.Errorf("sweep of %s: mode %q: %w", a.Table, a.Mode, privguard.ErrInvalid)
	}
	if a.Before.IsZero() && a.Subjects == nil && a.Mode != SweepExpire {
		return fmt.Errorf("sweep of %s has neither a cut-off nor subjects: it would change every row: %w", a.Table, privguard.ErrInvalid)
	}
	return nil
}

// SweepTable returns the table of tables that a sweeps, checked for a: the action's shape
// (checkShape), a cut-off only on a table with dated_by, and cleared columns only among
// the mapped ones. Errors wrap privguard.ErrInvalid. The SQL connectors check every action
// with it before they build a statement.
func SweepTable(tables []TableMap, a SweepAction) (TableMap, error) {
	t, err := findTable(tables, a.Table)
	if err != nil {
		return t, err
	}
	if err := a.checkShape(); err != nil {
		return t, err
	}
	if !a.Before.IsZero() && t.DatedBy == "" {
		return t, fmt.Errorf("table %s has no dated_by column: %w", t.Table, privguard.ErrInvalid)
	}
	for _, col := range a.Columns {
		if _, ok := t.Columns[col]; !ok && a.Mode == SweepClear {
			return t, fmt.Errorf("column %q is not a mapped column of %s: %w", col, t.Table, privguard.ErrInvalid)
		}
	}
	return t, nil
}

// ActivityTable returns the table called name of tables if it has a last_active_by column
// (dsar.ActivityReader's table); errors wrap privguard.ErrInvalid.
func ActivityTable(tables []TableMap, name string) (TableMap, error) {
	t, err := findTable(tables, name)
	if err == nil && t.LastActiveBy == "" {
		err = fmt.Errorf("table %s has no last_active_by column: %w", t.Table, privguard.ErrInvalid)
	}
	return t, err
}

func findTable(tables []TableMap, name string) (TableMap, error) {
	if i := slices.IndexFunc(tables, func(t TableMap) bool { return t.Table == name }); i >= 0 {
		return tables[i], nil
	}
	return TableMap{}, fmt.Errorf("table %q is not in this store's data map: %w", name, privguard.ErrInvalid)
}

// runSweep carries out the unfinished actions of r's task on store, from where the task
// stood, until they are done, the round's budget is spent or a statement fails. The
// progress comes back in every case.
func (e *Engine) runSweep(ctx context.Context, r *Request, store string) (*sweepProgress, error) {
	i := slices.IndexFunc(r.Tasks, func(t Task) bool { return t.Store == store })
	if i < 0 {
		return nil, fmt.Errorf("retention run has no task on %s", store)
	}
	t := r.Tasks[i]
	p := &sweepProgress{counts: slices.Clone(t.Counts), next: t.Next}
	if len(p.counts) != len(t.Actions) {
		p.counts = append(p.counts, make([]int, len(t.Actions)-min(len(p.counts), len(t.Actions)))...)[:len(t.Actions)]
	}
	c, ok := e.connectors[store]
	if !ok {
		return p, fmt.Errorf("store %s is no longer configured", store)
	}
	sw, ok := c.(Sweeper)
	if !ok {
		return p, &ConnectorError{Connector: store, Op: OpSweep, Kind: KindOther, Err: errors.New("the store cannot sweep")}
	}
	ctx, cancel := context.WithTimeout(WithTask(ctx, TaskInfo{Request: r.ID, Type: r.Type, Store: store, Op: OpSweep}), e.cfg.TaskTimeout)
	defer cancel()
	budget := time.Now().Add(min(e.cfg.SweepBudget, e.cfg.TaskTimeout/2))
	for p.next < len(t.Actions) {
		n, more, err := sw.Sweep(ctx, t.Actions[p.next], e.cfg.SweepBatch)
		p.counts[p.next] += n
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("%w: %w", ctx.Err(), err)
			}
			return p, err
		}
		if !more {
			p.next++
		}
		if p.next < len(t.Actions) && time.Now().After(budget) {
			p.more = true
			return p, nil
		}
		if more && e.cfg.SweepPause > 0 {
			select {
			case <-ctx.Done():
				return p, ctx.Err()
			case <-time.After(e.cfg.SweepPause):
			}
		}
	}
	return p, nil
}
