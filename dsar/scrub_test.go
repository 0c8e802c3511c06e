package dsar_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/dsar"
)

// patchStore is a store that erases and corrects, keeping every value it was sent.
type patchStore struct {
	memStore
	mu   sync.Mutex
	sent []string
}

func (p *patchStore) Correct(_ context.Context, _ privguard.SubjectID, patch map[privguard.DataCategory]string) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, v := range patch {
		p.sent = append(p.sent, v)
	}
	return 1, nil
}

func (p *patchStore) got(v string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Contains(p.sent, v)
}

// stepUntil steps e until request id is in state want (the clock moving an hour a step).
func stepUntil(t *testing.T, e *dsar.Engine, c *clock, id string, want dsar.State) dsar.Request {
	t.Helper()
	for range 10 {
		e.Step(ctx)
		if r, _ := e.Get(ctx, id); r.State == want {
			return r
		}
		c.t = c.t.Add(time.Hour)
	}
	r, _ := e.Get(ctx, id)
	t.Fatalf("request %s: %s %+v; want %s", id, r.State, r.Tasks, want)
	return r
}

// TestErasureScrubsTheSubjectsRequests: once a subject's erasure completes, no stored
// request keeps the subject's personal data — not the corrections closed long before
// (their new values), not the free-text notes, not the erasure itself — neither in the
// API's view nor in the data file after compaction, and a correction still open is
// cancelled rather than applied after the erasure. Another subject's requests keep theirs.
func TestErasureScrubsTheSubjectsRequests(t *testing.T) {
	dir := t.TempDir()
	c := &clock{time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	crm := &patchStore{memStore: memStore{name: "crm", data: map[privguard.SubjectID]int{"cust-9": 2, "cust-10": 1}}}
	e, closeDB := open(t, dir, c, []dsar.Connector{crm}, nil)
	const (
		newEmail   = "li.lei.corrected@example.com"
		idNote     = "passport E12345678 seen at the desk"
		approval   = "matches the order shipped to 12 Elm Street"
		lateEmail  = "li.lei.second@example.com"
		cancelNote = "the subject called from 13812345678 to withdraw"
		extension  = "the subject's 40 orders at 12 Elm Street take time"
		eraseNote  = "asked by li.lei@example.com in the app"
		otherEmail = "han.meimei.corrected@example.com"
	)
	correction := func(subject privguard.SubjectID, value string) dsar.Request {
		t.Helper()
		note := idNote
		if subject != "cust-9" {
			note = "another subject's note"
		}
		r, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeCorrection, Subject: subject, Regime: privguard.RegimeGDPR,
			Patch: map[privguard.DataCategory]string{"user.contact.email": value}, Identity: &dsar.Identity{Method: "operator", Operator: "desk", Note: note}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Long before: a correction applied and completed, another subject's too.
	old := correction("cust-9", newEmail)
	if _, err := e.Approve(ctx, old.ID, "dpo-li", approval); err != nil {
		t.Fatal(err)
	}
	other := correction("cust-10", otherEmail)
	if _, err := e.Approve(ctx, other.ID, "dpo-li", "checked"); err != nil {
		t.Fatal(err)
	}
	stepUntil(t, e, c, old.ID, dsar.StateCompleted)
	stepUntil(t, e, c, other.ID, dsar.StateCompleted)
	// An access request the operator cancelled with a free-text reason, one extended.
	acc, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeCategories, Subject: "cust-9", Regime: privguard.RegimeGDPR})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Cancel(ctx, acc.ID, cancelNote); err != nil {
		t.Fatal(err)
	}
	// Then the erasure, and a second correction approved in the same round: it must not
	// reach the store after the erasure.
	del, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "cust-9", Regime: privguard.RegimeGDPR,
		Identity: &dsar.Identity{Method: "operator", Operator: "desk", Note: eraseNote}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Extend(ctx, del.ID, 1, extension, time.Time{}); err != nil {
		t.Fatal(err)
	}
	late := correction("cust-9", lateEmail)
	if _, err := e.Approve(ctx, late.ID, "dpo-li", approval); err != nil {
		t.Fatal(err)
	}
	del = stepUntil(t, e, c, del.ID, dsar.StateCompleted)
	if crm.got(lateEmail) {
		t.Error("a correction ran in the erasure's round: its value reached the store")
	}
	e.Step(ctx)

	closeDB() // the scrub survives a restart
	e, closeDB = open(t, dir, c, []dsar.Connector{crm}, nil)
	check := func(id string, wantState dsar.State) dsar.Request {
		t.Helper()
		r, err := e.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(r)
		for _, secret := range []string{newEmail, idNote, approval, lateEmail, cancelNote, extension, eraseNote} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s request still holds %q: %s", r.Type, secret, b)
			}
		}
		if r.State != wantState || r.ScrubbedAt.IsZero() {
			t.Errorf("%s request: %s, scrubbed at %v; want %s and scrubbed", r.Type, r.State, r.ScrubbedAt, wantState)
		}
		return r
	}
	r := check(old.ID, dsar.StateCompleted)
	// The bookkeeping stays: the category without its value, who approved, the outcome.
	if r.Patch["user.contact.email"] != dsar.MaskValue || r.Approval == nil || r.Approval.By != "dpo-li" ||
		r.Approval.Note != dsar.MaskValue || r.Identity.Operator != "desk" || r.Tasks[0].State != dsar.TaskDone || r.ClosedAt.IsZero() {
		t.Errorf("scrubbed correction lost its bookkeeping: %+v", r)
	}
	if r = check(late.ID, dsar.StateCancelled); r.Reason != dsar.ReasonSubjectErased {
		t.Errorf("open correction: reason %q; want %s", r.Reason, dsar.ReasonSubjectErased)
	}
	check(acc.ID, dsar.StateCancelled)
	if r = check(del.ID, dsar.StateCompleted); r.Extension == nil || r.Extension.Months != 1 {
		t.Errorf("the erasure lost its extension: %+v", r.Extension)
	}
	if r, _ = e.Get(ctx, other.ID); r.Patch["user.contact.email"] != otherEmail || !r.ScrubbedAt.IsZero() {
		t.Errorf("another subject's correction was scrubbed: %+v", r)
	}
	closeDB()

	// Deleted and overwritten values stay in bbolt's free pages until the file is
	// compacted (`privguard keys compact`); after it, the file holds none of them.
	path := filepath.Join(dir, "privguard.db")
	if _, _, err := boltstore.CompactFile(path); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{newEmail, idNote, approval, lateEmail, cancelNote, extension, eraseNote} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the compacted data file still holds %q", secret)
		}
	}
	if !bytes.Contains(raw, []byte(otherEmail)) {
		t.Error("the other subject's correction is not in the file: the search proves nothing")
	}
}

// TestErasuresFromBeforeTheScrubAreScrubbed: a data file whose erasure completed before
// requests were scrubbed (an earlier version) is scrubbed by the next Step.
func TestErasuresFromBeforeTheScrubAreScrubbed(t *testing.T) {
	dir := t.TempDir()
	c := &clock{time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	db, err := boltstore.Open(filepath.Join(dir, "privguard.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	put := func(r dsar.Request) {
		b, _ := json.Marshal(r)
		if err := db.DSAR().PutRequest(ctx, r.ID, b); err != nil {
			t.Fatal(err)
		}
	}
	day := c.t.Add(-30 * 24 * time.Hour)
	put(dsar.Request{ID: "0190a000-0000-7000-8000-000000000001", Type: dsar.TypeCorrection, Subject: "cust-9", State: dsar.StateCompleted,
		ReceivedAt: day, ClosedAt: day, Patch: map[privguard.DataCategory]string{"user.contact.email": "old.value@example.com"}})
	put(dsar.Request{ID: "0190a000-0000-7000-8000-000000000002", Type: dsar.TypeDeletion, Subject: "cust-9", State: dsar.StateCompleted,
		ReceivedAt: day.Add(time.Hour), ClosedAt: day.Add(2 * time.Hour), Applied: true})
	put(dsar.Request{ID: "0190a000-0000-7000-8000-000000000003", Type: dsar.TypeCorrection, Subject: "cust-9", State: dsar.StateCompleted,
		ReceivedAt: day.Add(3 * time.Hour), ClosedAt: day.Add(3 * time.Hour), Patch: map[privguard.DataCategory]string{"user.contact.email": "after@example.com"}})
	db.Close()
	e, closeDB := open(t, dir, c, nil, nil)
	defer closeDB()
	e.Step(ctx)
	if r, _ := e.Get(ctx, "0190a000-0000-7000-8000-000000000001"); r.Patch["user.contact.email"] != dsar.MaskValue {
		t.Errorf("the correction before the old erasure: %v; want scrubbed", r.Patch)
	}
	if r, _ := e.Get(ctx, "0190a000-0000-7000-8000-000000000002"); r.ScrubbedAt.IsZero() {
		t.Error("the old erasure is not marked scrubbed")
	}
	if r, _ := e.Get(ctx, "0190a000-0000-7000-8000-000000000003"); r.Patch["user.contact.email"] != "after@example.com" {
		t.Errorf("a correction made after the erasure was scrubbed: %v", r.Patch)
	}
}
