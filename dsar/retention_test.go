package dsar_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

// sweepStore is a connector whose rows are dated; it sweeps them as a SQL connector would
// (delete by cut-off, limit rows a call) and can be made to fail on a given call.
type sweepStore struct {
	memStore
	rows   []sweptRow
	calls  int
	failAt map[int]bool // calls (1-based) that fail after changing their batch
}

type sweptRow struct {
	subject privguard.SubjectID
	at      time.Time
	deleted int // how many times a sweep deleted it (must end 0 or 1)
}

func (s *sweepStore) Sweep(ctx context.Context, a dsar.SweepAction, limit int) (int, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	n := 0
	for i := range s.rows {
		r := &s.rows[i]
		if r.deleted > 0 || !r.at.Before(a.Before) || n == limit {
			continue
		}
		r.deleted++
		n++
	}
	more := n == limit
	if s.failAt[s.calls] {
		// The batch committed, then the connection dropped before the answer.
		return 0, false, &dsar.ConnectorError{Connector: s.name, Op: dsar.OpSweep, Kind: dsar.KindConnectionLost, Err: errors.New("lost")}
	}
	return n, more, nil
}

func (s *sweepStore) CountSweep(ctx context.Context, a dsar.SweepAction) (int, error) { return 0, nil }

func TestRetentionRunResumesWithoutDoingTwice(t *testing.T) {
	dir := t.TempDir()
	c := &clock{time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	cut := c.t.Add(-365 * 24 * time.Hour)
	crm := &sweepStore{memStore: memStore{name: "crm"}, failAt: map[int]bool{3: true}}
	for i := range 250 {
		at := cut.Add(time.Duration(i-100) * time.Hour) // 100 expired, 150 not
		crm.rows = append(crm.rows, sweptRow{subject: privguard.SubjectID(fmt.Sprintf("c-%d", i)), at: at})
	}
	plain := &memStore{name: "tags"}
	e, closeDB := open(t, dir, c, []dsar.Connector{crm, plain}, nil)
	if _, err := e.SubmitRetention(ctx, map[string][]dsar.SweepAction{"tags": {{Rule: "r", Table: "t", Mode: dsar.SweepDelete, Before: cut}}}, nil); err == nil {
		t.Fatal("a store that cannot sweep was given a task")
	}
	if _, err := e.SubmitRetention(ctx, map[string][]dsar.SweepAction{"crm": {{Rule: "r", Table: "t", Mode: dsar.SweepDelete}}}, nil); err == nil {
		t.Fatal("an action with neither cut-off nor subjects (every row) was accepted")
	}
	actions := map[string][]dsar.SweepAction{"crm": {{Rule: "browsing-1y", Table: "page_views", Mode: dsar.SweepDelete, Before: cut}}}
	r, err := e.SubmitRetention(ctx, actions, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.SubmitRetention(ctx, actions, nil); !errors.Is(err, dsar.ErrRetentionRunning) {
		t.Fatalf("second run while one is open: %v", err)
	}
	closeDB()
	// Batches of 30 and no time budget to speak of: every round stops after one statement.
	reopen := func() (*dsar.Engine, func()) {
		t.Helper()
		e, closeDB := openWith(t, dir, c, []dsar.Connector{crm, plain}, func(cfg *dsar.Config) {
			cfg.SweepBatch, cfg.SweepPause, cfg.SweepBudget = 30, -1, time.Nanosecond
		})
		return e, closeDB
	}
	e, closeDB = reopen()
	for i := 0; i < 20; i++ {
		if i == 2 {
			closeDB() // a restart mid-run
			e, closeDB = reopen()
		}
		if _, err := e.Step(ctx); err != nil {
			t.Fatal(err)
		}
		c.t = c.t.Add(2 * time.Hour) // past any backoff
	}
	defer closeDB()
	got, err := e.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != dsar.StateCompleted {
		t.Fatalf("state %s, tasks %+v", got.State, got.Tasks)
	}
	deleted := 0
	for _, row := range crm.rows {
		switch {
		case row.deleted > 1:
			t.Fatalf("row %s deleted %d times", row.subject, row.deleted)
		case row.deleted == 1 && !row.at.Before(cut):
			t.Fatalf("row %s of %v deleted, cut-off %v", row.subject, row.at, cut)
		case row.deleted == 0 && row.at.Before(cut):
			t.Fatalf("expired row %s kept", row.subject)
		}
		deleted += row.deleted
	}
	tk := got.Tasks[0]
	// The failed call's batch (30 rows) was deleted but not counted: its answer was lost.
	if deleted != 100 || tk.Items != 70 || tk.Counts[0] != 70 || tk.Next != 1 || len(got.Tasks) != 1 {
		t.Fatalf("deleted %d, task %+v", deleted, tk)
	}
	if tk.Attempts < 4 {
		t.Fatalf("attempts %d: the run did not go in rounds", tk.Attempts)
	}
}
