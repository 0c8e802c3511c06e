package dsar_test

import (
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

func TestOfSubjectListsOnlyTheSubjectsRequests(t *testing.T) {
	c := &clock{time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	crm := &memStore{name: "crm", data: map[privguard.SubjectID]int{"cust-1": 1, "cust-2": 1}}
	dir := t.TempDir()
	e, closeDB := open(t, dir, c, []dsar.Connector{crm}, nil)
	a, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-1", Regime: privguard.RegimePIPL})
	c.t = c.t.Add(time.Second)
	o, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeObjection, Subject: "cust-1", Regime: privguard.RegimePIPL})
	e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-2", Regime: privguard.RegimePIPL})
	check := func(e *dsar.Engine) {
		t.Helper()
		got, err := e.OfSubject(ctx, "cust-1")
		if err != nil || len(got) != 2 || got[0].ID != o.ID || got[1].ID != a.ID {
			t.Fatalf("OfSubject(cust-1) = %d requests, %v; want the objection then the access", len(got), err)
		}
		if got, _ := e.OfSubject(ctx, "nobody"); len(got) != 0 {
			t.Errorf("an unknown subject has %d requests", len(got))
		}
	}
	check(e)
	closeDB()
	// After a restart the index is rebuilt from the store.
	e, closeDB = open(t, dir, c, []dsar.Connector{crm}, nil)
	defer closeDB()
	check(e)
}
