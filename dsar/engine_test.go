package dsar_test

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/vault"
)

var ctx = context.Background()

// memStore is a connector over a map: subject -> items, that can be made to fail.
type memStore struct {
	name  string
	mu    sync.Mutex
	data  map[privguard.SubjectID]int
	fails int // the next n operations fail
}

func (m *memStore) Name() string { return m.name }

func (m *memStore) fail(op string) error {
	if m.fails > 0 {
		m.fails--
		return &dsar.ConnectorError{Connector: m.name, Op: op, Err: errors.New("connection refused (subject li.lei@example.com)")}
	}
	return nil
}

func (m *memStore) Export(ctx context.Context, s privguard.SubjectID) (dsar.Export, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail("export"); err != nil {
		return dsar.Export{}, err
	}
	rows := make([]map[string]any, m.data[s])
	for i := range rows {
		rows[i] = map[string]any{"v": i}
	}
	return dsar.Export{Store: m.name, Tables: []dsar.Table{{Name: "t", Rows: rows}}}, nil
}

func (m *memStore) Erase(ctx context.Context, s privguard.SubjectID) (dsar.Erased, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail("erase"); err != nil {
		return dsar.Erased{}, err
	}
	n := m.data[s]
	delete(m.data, s)
	return dsar.Erased{Items: n}, nil
}

// openDB opens a bbolt file in dir, closed when the test ends.
func openDB(t *testing.T, dir string) *boltstore.DB {
	t.Helper()
	db, err := boltstore.Open(filepath.Join(dir, "p.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newVault returns a vault over db with a fresh local master key in dir.
func newVault(t *testing.T, dir string, db *boltstore.DB) *vault.Vault {
	t.Helper()
	kekPath := filepath.Join(dir, "kek.json")
	if _, err := os.Stat(kekPath); errors.Is(err, fs.ErrNotExist) {
		if err := vault.InitLocalKEK(kekPath); err != nil {
			t.Fatal(err)
		}
	}
	kek, err := vault.LoadLocalKEK(kekPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(vault.Config{Store: db.Vault(), KEK: kek, TombstoneKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func open(t *testing.T, dir string, c *clock, conns []dsar.Connector, onErased func(context.Context, privguard.SubjectID) error) (*dsar.Engine, func()) {
	t.Helper()
	return openWith(t, dir, c, conns, func(cfg *dsar.Config) { cfg.OnErased = onErased })
}

// openWith is open with the configuration changed by set.
func openWith(t *testing.T, dir string, c *clock, conns []dsar.Connector, set func(*dsar.Config)) (*dsar.Engine, func()) {
	t.Helper()
	db, err := boltstore.Open(filepath.Join(dir, "privguard.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := dsar.Config{Store: db.DSAR(), Connectors: conns, Now: c.Now,
		BaseBackoff: time.Minute, MaxBackoff: time.Hour, Sealer: newVault(t, dir, db)}
	set(&cfg)
	e, err := dsar.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e, func() { db.Close() }
}

func TestDeletionAcrossStoresWithRetries(t *testing.T) {
	// Erasure reaches every store; a request is completed only when every
	// store confirmed, retried with backoff, resumed after a restart.
	dir := t.TempDir()
	c := &clock{time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	crm := &memStore{name: "crm", data: map[privguard.SubjectID]int{"cust-1": 3, "cust-2": 1}}
	tags := &memStore{name: "tags", data: map[privguard.SubjectID]int{"cust-1": 5}, fails: 2}
	var shredded []privguard.SubjectID
	onErased := func(_ context.Context, s privguard.SubjectID) error { shredded = append(shredded, s); return nil }
	e, closeDB := open(t, dir, c, []dsar.Connector{crm, tags}, onErased)
	r, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "cust-1", Regime: privguard.RegimeGDPR,
		Identity: &dsar.Identity{Method: "operator", Operator: "dpo", Note: "verified by phone call"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != dsar.StateVerified || len(r.Tasks) != 2 || !r.Deadline.Due.Equal(time.Date(2026, 4, 2, 9, 0, 0, 0, time.UTC)) {
		t.Fatalf("submitted: %+v", r)
	}
	e.Step(ctx)
	r, _ = e.Get(ctx, r.ID)
	if r.State != dsar.StatePartiallyFailed || r.Tasks[1].LastError != "tags: erase failed: other" || r.Tasks[0].State != dsar.TaskDone {
		t.Fatalf("after a failure: state %s tasks %+v; want partially failed naming tags", r.State, r.Tasks)
	}
	if len(shredded) != 0 {
		t.Fatal("the subject's keys were shredded before every store confirmed")
	}
	for _, ev := range r.Events {
		if containsAny(ev.Detail, "li.lei", "refused") {
			t.Errorf("event %+v carries the store's error text", ev)
		}
	}
	// Not due yet: nothing runs.
	if n, _ := e.Step(ctx); n != 0 {
		t.Errorf("Step before the retry time ran %d tasks", n)
	}
	closeDB() // restart
	c.t = c.t.Add(2 * time.Hour)
	e, closeDB = open(t, dir, c, []dsar.Connector{crm, tags}, onErased)
	defer closeDB()
	e.Step(ctx) // fails once more
	c.t = c.t.Add(2 * time.Hour)
	e.Step(ctx)
	r, _ = e.Get(ctx, r.ID)
	if r.State != dsar.StateCompleted || r.Tasks[1].Attempts != 3 || r.Tasks[1].Items != 5 {
		t.Fatalf("after retries: %s %+v; want completed, 3 attempts on tags", r.State, r.Tasks)
	}
	if len(shredded) != 1 || crm.data["cust-1"] != 0 || tags.data["cust-1"] != 0 || crm.data["cust-2"] != 1 {
		t.Errorf("shredded %v, crm %v, tags %v", shredded, crm.data, tags.data)
	}
}

func TestUnverifiedRequestsWaitAndObjectionsDoNot(t *testing.T) {
	// proves DSR-02: no verification for objection; access waits for verification.
	c := &clock{time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	crm := &memStore{name: "crm", data: map[privguard.SubjectID]int{"cust-1": 2}}
	var applied []dsar.Type
	db := openDB(t, t.TempDir())
	e, _ := dsar.New(dsar.Config{Store: db.DSAR(), Connectors: []dsar.Connector{crm}, Now: c.Now, Sealer: newVault(t, t.TempDir(), db),
		OnSubjectFact: func(_ context.Context, r dsar.Request) error { applied = append(applied, r.Type); return nil }})
	obj, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeObjection, Subject: "cust-1", Regime: privguard.RegimeGDPR})
	acc, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-1", Regime: privguard.RegimePIPL})
	del, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "cust-1", Regime: privguard.RegimePIPL,
		Identity: &dsar.Identity{Method: "token"}})
	e.Step(ctx)
	if r, _ := e.Get(ctx, obj.ID); r.State != dsar.StateCompleted || len(applied) != 1 {
		t.Errorf("objection: %s, applied %v; want completed without verification", r.State, applied)
	}
	if r, _ := e.Get(ctx, acc.ID); r.State != dsar.StateAwaitingVerify {
		t.Errorf("unverified access: %s", r.State)
	}
	// An access request its requester never verified does not hold the erasure.
	if r, _ := e.Get(ctx, del.ID); r.State != dsar.StateCompleted || crm.data["cust-1"] != 0 {
		t.Errorf("deletion behind an unverified access request: %s", r.State)
	}
	if _, err := e.Submit(ctx, dsar.Request{Type: "forget", Subject: "x", Regime: privguard.RegimeGDPR}); !errors.Is(err, privguard.ErrInvalid) {
		t.Errorf("unknown type: %v", err)
	}
	if _, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeCorrection, Subject: "x", Regime: privguard.RegimeGDPR}); !errors.Is(err, privguard.ErrInvalid) {
		t.Errorf("correction without a patch: %v", err)
	}
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		for i := 0; i+len(x) <= len(s); i++ {
			if s[i:i+len(x)] == x {
				return true
			}
		}
	}
	return false
}

func TestRegister(t *testing.T) {
	// proves DSR-16: every request is in the register, with the on-time ratio per regime.
	due := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	now := time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC)
	reqs := []dsar.Request{
		{Regime: privguard.RegimePIPL, State: dsar.StateCompleted, Deadline: dsar.Deadline{Due: due}, Events: []dsar.Event{{Time: due.Add(-time.Hour), What: "completed"}, {Time: due.Add(time.Hour), What: "result destroyed"}}},
		{Regime: privguard.RegimePIPL, State: dsar.StateCompleted, Deadline: dsar.Deadline{Due: due}, Events: []dsar.Event{{Time: due.Add(time.Hour)}}},
		{Regime: privguard.RegimePIPL, State: dsar.StateInProgress, Deadline: dsar.Deadline{Due: due}},
		{Regime: privguard.RegimeGDPR, State: dsar.StateVerified, Deadline: dsar.Deadline{Due: now.Add(time.Hour)}},
	}
	reg := dsar.Register(reqs, now)
	p := reg[privguard.RegimePIPL]
	if p.Total != 3 || p.Closed != 2 || p.OnTime != 1 || p.OnTimePct != 50 || p.Overdue != 1 {
		t.Errorf("PIPL register = %+v", p)
	}
	if g := reg[privguard.RegimeGDPR]; g.Total != 1 || g.Open != 1 || g.Overdue != 0 {
		t.Errorf("GDPR register = %+v", g)
	}
}

func TestParallelStepErasesEachSubjectOnce(t *testing.T) {
	// With requests advanced in parallel, every subject is erased in every
	// store and the erasure hook runs exactly once per subject.
	c := &clock{time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	crm := &memStore{name: "crm", data: map[privguard.SubjectID]int{}}
	tags := &memStore{name: "tags", data: map[privguard.SubjectID]int{}}
	const n = 300
	for i := range n {
		s := privguard.SubjectID(fmt.Sprintf("cust-%d", i))
		crm.data[s], tags.data[s] = 2, 3
	}
	erased := map[privguard.SubjectID]int{}
	e, closeDB := open(t, t.TempDir(), c, []dsar.Connector{crm, tags}, func(_ context.Context, s privguard.SubjectID) error {
		erased[s]++ // called under the engine's lock
		return nil
	})
	defer closeDB()
	crm.fails = 7 // some tasks fail and are retried after the backoff
	for i := range n {
		if _, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: privguard.SubjectID(fmt.Sprintf("cust-%d", i)),
			Regime: privguard.RegimeGDPR, Identity: &dsar.Identity{Method: "operator"}}); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		if _, err := e.Step(ctx); err != nil {
			t.Fatal(err)
		}
		c.t = c.t.Add(2 * time.Hour) // past every backoff
	}
	all, _ := e.List(ctx)
	for _, r := range all {
		if r.State != dsar.StateCompleted {
			t.Errorf("%s: %s %+v", r.Subject, r.State, r.Tasks)
		}
	}
	if len(crm.data)+len(tags.data) != 0 || len(erased) != n {
		t.Errorf("left: crm %d, tags %d; erased hooks for %d of %d", len(crm.data), len(tags.data), len(erased), n)
	}
	for s, k := range erased {
		if k != 1 {
			t.Errorf("%s erased %d times", s, k)
		}
	}
}

// exportDown is a store whose exports fail while down; erasure works.
type exportDown struct {
	mu   sync.Mutex
	down bool
	rows map[privguard.SubjectID]int
}

func (x *exportDown) Name() string { return "crm" }
func (x *exportDown) Export(_ context.Context, s privguard.SubjectID) (dsar.Export, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.down {
		return dsar.Export{}, &dsar.ConnectorError{Connector: "crm", Op: "export", Err: errors.New("down")}
	}
	rows := make([]map[string]any, x.rows[s])
	for i := range rows {
		rows[i] = map[string]any{"v": i}
	}
	return dsar.Export{Store: "crm", Tables: []dsar.Table{{Name: "t", Rows: rows}}}, nil
}
func (x *exportDown) Erase(_ context.Context, s privguard.SubjectID) (dsar.Erased, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := x.rows[s]
	delete(x.rows, s)
	return dsar.Erased{Items: n}, nil
}

func TestErasureWaitsForARunningAccessRequestOnlyForAWhile(t *testing.T) {
	// The copy is made before the erasure (the subject asked for both), but a stuck access
	// request holds the erasure at most AccessFirstWait.
	c := &clock{time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	crm := &exportDown{down: true, rows: map[privguard.SubjectID]int{"cust-1": 2, "cust-2": 3}}
	e, closeDB := open(t, t.TempDir(), c, []dsar.Connector{crm}, nil)
	defer closeDB()
	op := &dsar.Identity{Method: "operator"}
	acc1, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-1", Regime: privguard.RegimeGDPR, Identity: op})
	del1, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "cust-1", Regime: privguard.RegimeGDPR, Identity: op})
	e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-2", Regime: privguard.RegimeGDPR, Identity: op})
	del2, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "cust-2", Regime: privguard.RegimeGDPR, Identity: op})
	e.Step(ctx)
	for _, id := range []string{del1.ID, del2.ID} {
		if r, _ := e.Get(ctx, id); r.State != dsar.StateVerified {
			t.Errorf("deletion while the access request retries: %s; want it to wait", r.State)
		}
	}
	// cust-1's copy succeeds an hour later: then its erasure runs.
	crm.mu.Lock()
	crm.down = false
	crm.mu.Unlock()
	c.t = c.t.Add(time.Hour)
	e.Step(ctx) // both access requests complete
	e.Step(ctx) // both erasures run
	if r, _ := e.Get(ctx, acc1.ID); r.State != dsar.StateCompleted || r.Tasks[0].Items != 2 {
		t.Errorf("access: %s %+v; want completed with 2 rows", r.State, r.Tasks)
	}
	if r, _ := e.Get(ctx, del1.ID); r.State != dsar.StateCompleted {
		t.Errorf("deletion after the access: %s", r.State)
	}
	if r, _ := e.Get(ctx, del2.ID); r.State != dsar.StateCompleted {
		t.Errorf("deletion 2 after its access: %s", r.State)
	}
	// A third subject's copy never succeeds: after AccessFirstWait its erasure goes ahead.
	crm.mu.Lock()
	crm.down, crm.rows["cust-3"] = true, 4
	crm.mu.Unlock()
	acc3, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-3", Regime: privguard.RegimeGDPR, Identity: op})
	del3, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "cust-3", Regime: privguard.RegimeGDPR, Identity: op})
	e.Step(ctx)
	if r, _ := e.Get(ctx, del3.ID); r.State != dsar.StateVerified {
		t.Errorf("deletion 3 before the wait ran out: %s", r.State)
	}
	c.t = c.t.Add(dsar.AccessFirstWait)
	e.Step(ctx)
	if r, _ := e.Get(ctx, del3.ID); r.State != dsar.StateCompleted {
		t.Errorf("deletion 3 after AccessFirstWait: %s; want it done", r.State)
	}
	if r, _ := e.Get(ctx, acc3.ID); r.State != dsar.StatePartiallyFailed {
		t.Errorf("access 3: %s", r.State)
	}
}

func TestRegisterCSV(t *testing.T) {
	// proves DSR-16: the register exports every request, with timestamps, outcome and
	// reasons, and no subject; on-time is judged at closing, not at a later download.
	c := &clock{time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	crm := &memStore{name: "crm", data: map[privguard.SubjectID]int{"cust-1": 1}}
	e, closeDB := open(t, t.TempDir(), c, []dsar.Connector{crm}, nil)
	defer closeDB()
	op := &dsar.Identity{Method: "operator"}
	e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "cust-1", Regime: privguard.RegimeGDPR, Identity: op})
	rej, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-2", Regime: privguard.RegimePIPL, Identity: op})
	can, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeObjection, Subject: "cust-3", Regime: privguard.RegimeGDPR})
	e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "cust-4", Regime: privguard.RegimeGDPR, Trigger: "retention_expired"})
	if _, err := e.Reject(ctx, rej.ID, "excessive"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Cancel(ctx, can.ID, "Li Lei called to say it was a mistake"); err != nil {
		t.Fatal(err)
	}
	e.Step(ctx)
	all, _ := e.List(ctx)
	var buf strings.Builder
	if err := dsar.WriteRegisterCSV(&buf, all, c.t.Add(90*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(buf.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 || len(rows[0]) != len(dsar.RegisterColumns) {
		t.Fatalf("register: %d rows\n%s", len(rows), buf.String())
	}
	text := buf.String()
	for _, no := range []string{"cust-", "Li Lei"} {
		if strings.Contains(text, no) {
			t.Errorf("the register CSV carries %q", no)
		}
	}
	for _, want := range []string{",excessive,", ",cancelled_by_operator,", ",retention_expired,", ",completed,"} {
		if !strings.Contains(text, want) {
			t.Errorf("the register CSV lacks %s:\n%s", want, text)
		}
	}
	for _, row := range rows[1:] {
		if row[3] == "completed" && row[11] != "true" {
			t.Errorf("a request completed the day it came is not on time: %v", row)
		}
	}
}

func TestRegisterKeepsTheEnginesCancellationCodes(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for reason, want := range map[string]string{dsar.ReasonSubjectErased: dsar.ReasonSubjectErased,
		"identity_not_verified": "identity_not_verified", "the customer phoned": "cancelled_by_operator"} {
		x := dsar.RegisterEntries([]dsar.Request{{ID: "r", Type: dsar.TypeCorrection, State: dsar.StateCancelled, Reason: reason, ReceivedAt: now}}, now)
		if x[0].Reason != want {
			t.Errorf("cancelled with %q: the register says %q; want %q", reason, x[0].Reason, want)
		}
	}
}

// The deletions of one Step that every store erased are completed by OnErasedAll in one
// call; if OnErasedAll fails, each falls back to OnErased.
func TestErasuresCompletedTogether(t *testing.T) {
	for _, failAll := range []bool{false, true} {
		c := &clock{time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
		crm := &memStore{name: "crm", data: map[privguard.SubjectID]int{"cust-1": 1, "cust-2": 1, "cust-3": 1}}
		db := openDB(t, t.TempDir())
		var calls [][]privguard.SubjectID
		var single []privguard.SubjectID
		e, err := dsar.New(dsar.Config{Store: db.DSAR(), Connectors: []dsar.Connector{crm}, Now: c.Now, Sealer: newVault(t, t.TempDir(), db),
			BaseBackoff: time.Minute, MaxBackoff: time.Hour,
			OnErased: func(_ context.Context, s privguard.SubjectID) error { single = append(single, s); return nil },
			OnErasedAll: func(_ context.Context, ss []privguard.SubjectID) error {
				calls = append(calls, slices.Clone(ss))
				if failAll {
					return errors.New("vault down")
				}
				return nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range []privguard.SubjectID{"cust-1", "cust-2", "cust-3"} {
			r, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: s, Regime: privguard.RegimeGDPR, Identity: &dsar.Identity{Method: "operator", Operator: "dpo", Note: "n"}})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, r.ID)
		}
		crm.fails = 0
		if _, err := e.Step(ctx); err != nil {
			t.Fatal(err)
		}
		var erased []privguard.SubjectID
		if len(calls) == 1 {
			erased = calls[0]
			slices.Sort(erased)
		}
		if want := []privguard.SubjectID{"cust-1", "cust-2", "cust-3"}; !slices.Equal(erased, want) {
			t.Fatalf("failAll=%v: OnErasedAll calls %v; want one with %v", failAll, calls, want)
		}
		if failAll != (len(single) == 3) {
			t.Errorf("failAll=%v: OnErased ran for %v", failAll, single)
		}
		for _, id := range ids {
			r, _ := e.Get(ctx, id)
			if r.State != dsar.StateCompleted {
				t.Errorf("failAll=%v: %s is %s; want completed", failAll, r.ID, r.State)
			}
		}
		db.Close()
	}
}
