package dsar_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

// tagStore is a memStore that also holds tags by subject, listed and erased one by one
// (a Profiler), and can be made to fail.
type tagStore struct {
	memStore
	tmu    sync.Mutex
	tags   map[privguard.SubjectID][]string
	erased int // calls of Erase (a full erasure)
}

func (s *tagStore) Erase(ctx context.Context, subject privguard.SubjectID) (dsar.Erased, error) {
	s.tmu.Lock()
	s.erased++
	s.tmu.Unlock()
	return s.memStore.Erase(ctx, subject)
}

func (s *tagStore) Derived(_ context.Context, subject privguard.SubjectID) ([]dsar.DerivedItem, error) {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	var out []dsar.DerivedItem
	for _, v := range s.tags[subject] {
		out = append(out, dsar.DerivedItem{Where: "user_tags.tag", Category: "user.derived.tags", Value: v})
	}
	out = append(out, dsar.DerivedItem{Where: "customers.email", Category: "user.contact.email", Value: "x@example.com"}) // not derived: dropped
	return out, nil
}

func (s *tagStore) EraseDerived(_ context.Context, subject privguard.SubjectID, items []dsar.DerivedItem) (dsar.Erased, error) {
	s.mu.Lock()
	err := s.fail("erase_derived")
	s.mu.Unlock()
	if err != nil {
		return dsar.Erased{}, err
	}
	s.tmu.Lock()
	defer s.tmu.Unlock()
	n := 0
	for _, it := range items {
		before := len(s.tags[subject])
		s.tags[subject] = slices.DeleteFunc(s.tags[subject], func(v string) bool { return it.Where == "user_tags.tag" && v == it.Value })
		n += before - len(s.tags[subject])
	}
	return dsar.Erased{Items: n}, nil
}

func (s *tagStore) held(subject privguard.SubjectID) []string {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	return slices.Clone(s.tags[subject])
}

// A tag deletion through the engine: it names only the items picked, runs only on their
// store, survives a failure and a restart, erases nothing else (no full erasure on any
// store, no erasure hook: the consent ledger records no erasure), and keeps no copy of
// the tags' text once completed.
func TestTagDeletionIsANarrowErasure(t *testing.T) {
	dir := t.TempDir()
	c := &clock{time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	tags := &tagStore{memStore: memStore{name: "tags", data: map[privguard.SubjectID]int{"cust-1": 4}},
		tags: map[privguard.SubjectID][]string{"cust-1": {"vip", "churn-risk", "a'b%_*\n"}, "cust-2": {"vip"}}}
	crm := &memStore{name: "crm", data: map[privguard.SubjectID]int{"cust-1": 3}}
	var erasedHook int
	onErased := func(context.Context, privguard.SubjectID) error { erasedHook++; return nil }
	e, closeDB := open(t, dir, c, []dsar.Connector{crm, tags}, onErased)

	items, err := e.Profile(ctx, "cust-1")
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, it := range items {
		values = append(values, it.Value)
		if it.Store != "tags" || it.ID != dsar.ItemID("tags", it.Where, it.Value) || !dsar.Derived(it.Category) {
			t.Errorf("Profile item %+v: want the tags store's derived item with its id", it)
		}
	}
	if !slices.Equal(values, []string{"a'b%_*\n", "churn-risk", "vip"}) {
		t.Fatalf("Profile = %q; want the three tags, sorted, and no contact data", values)
	}
	pick := func(v string) string {
		for _, it := range items {
			if it.Value == v {
				return it.ID
			}
		}
		t.Fatalf("no item %q", v)
		return ""
	}

	// Ids the subject does not hold are refused, nothing stored.
	_, err = e.SubmitTagDeletion(ctx, "cust-1", []string{pick("vip"), "nope"}, nil)
	var unknown *dsar.UnknownItemsError
	if !errors.As(err, &unknown) || !errors.Is(err, privguard.ErrInvalid) || !slices.Equal(unknown.IDs, []string{"nope"}) {
		t.Fatalf("SubmitTagDeletion(unknown id) = %v; want an UnknownItemsError naming it", err)
	}
	if _, err := e.SubmitTagDeletion(ctx, "cust-3", []string{pick("vip")}, nil); !errors.As(err, &unknown) {
		t.Errorf("SubmitTagDeletion(another subject's id) = %v; want an UnknownItemsError", err)
	}
	for name, r := range map[string]dsar.Request{
		"no_items":          {Type: dsar.TypeTagDeletion, Subject: "cust-1"},
		"items_on_deletion": {Type: dsar.TypeDeletion, Subject: "cust-1", Items: items[:1]},
		"forged_item":       {Type: dsar.TypeTagDeletion, Subject: "cust-1", Items: []dsar.DerivedItem{{ID: "x", Store: "tags", Where: "t.c", Category: "user.derived.tags", Value: "v"}}},
		"not_a_profiler":    {Type: dsar.TypeTagDeletion, Subject: "cust-1", Items: []dsar.DerivedItem{{ID: dsar.ItemID("crm", "t.c", "v"), Store: "crm", Where: "t.c", Category: "user.derived.tags", Value: "v"}}},
	} {
		if _, err := e.Submit(ctx, r); !errors.Is(err, privguard.ErrInvalid) {
			t.Errorf("%s: Submit = %v; want ErrInvalid", name, err)
		}
	}

	r, err := e.SubmitTagDeletion(ctx, "cust-1", []string{pick("vip"), pick("a'b%_*\n"), pick("vip")}, &dsar.Identity{Method: "operator"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Type != dsar.TypeTagDeletion || r.State != dsar.StateVerified || len(r.Items) != 2 || len(r.Tasks) != 1 || r.Tasks[0].Store != "tags" {
		t.Fatalf("submitted %+v; want a verified tag deletion of two items with one task, on the tags store", r)
	}
	// Each tag deletion carries its own items: a second one is not the first's duplicate.
	other, err := e.SubmitTagDeletion(ctx, "cust-1", []string{pick("churn-risk")}, nil)
	if err != nil || other.ID == r.ID {
		t.Fatalf("a second tag deletion = %+v, %v; want its own request", other, err)
	}

	// The store fails; the task is retried after its backoff, after a restart.
	tags.mu.Lock()
	tags.fails = 1
	tags.mu.Unlock()
	if _, err := e.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.Get(ctx, r.ID); got.State != dsar.StatePartiallyFailed || got.Tasks[0].State != dsar.TaskFailed {
		t.Fatalf("after a failure: %s, task %s; want partially_failed, failed", got.State, got.Tasks[0].State)
	}
	if !slices.Contains(tags.held("cust-1"), "vip") {
		t.Fatal("the failed attempt erased the tag")
	}
	closeDB()
	e, closeDB = open(t, dir, c, []dsar.Connector{crm, tags}, onErased)
	defer closeDB()
	c.t = c.t.Add(2 * time.Hour)
	if _, err := e.Step(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := e.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != dsar.StateCompleted || got.Tasks[0].Items != 2 || got.Tasks[0].Attempts != 2 {
		t.Fatalf("after the retry: %s, task %+v; want completed, 2 items in 2 attempts", got.State, got.Tasks[0])
	}
	if h := tags.held("cust-1"); !slices.Equal(h, []string{"churn-risk"}) {
		t.Errorf("cust-1 holds %q; want churn-risk alone", h)
	}
	if h := tags.held("cust-2"); !slices.Equal(h, []string{"vip"}) {
		t.Errorf("cust-2 holds %q; want its own vip", h)
	}
	if tags.erased != 0 || crm.data["cust-1"] != 3 || tags.data["cust-1"] != 4 {
		t.Errorf("a full erasure ran: Erase called %d times, crm %d items, tags %d items", tags.erased, crm.data["cust-1"], tags.data["cust-1"])
	}
	if erasedHook != 0 {
		t.Errorf("the erasure hook (vault shred, ledger erase) ran %d times; want never", erasedHook)
	}
	for _, it := range got.Items {
		if it.Value != dsar.MaskValue || it.ID == "" || it.Where != "user_tags.tag" {
			t.Errorf("completed request keeps item %+v; want the value masked, the id and place kept", it)
		}
	}
	entries := dsar.RegisterEntries([]dsar.Request{got}, c.t)
	if len(entries) != 1 || entries[0].Type != dsar.TypeTagDeletion || entries[0].Stores != 1 || entries[0].OnTime == nil || !*entries[0].OnTime {
		t.Errorf("register entry = %+v; want the tag deletion, one store, on time", entries)
	}
	if strings.Contains(got.Events[len(got.Events)-1].Detail, "vip") {
		t.Errorf("an event names a tag: %+v", got.Events)
	}

	// The subject's full erasure cancels its open tag deletion and scrubs its tag text.
	if _, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "cust-1", Identity: &dsar.Identity{Method: "operator"}}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := e.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if erasedHook != 1 {
		t.Errorf("the full erasure ran the hook %d times; want once", erasedHook)
	}
	o, err := e.Get(ctx, other.ID)
	if err != nil {
		t.Fatal(err)
	}
	if o.State != dsar.StateCancelled || o.Reason != dsar.ReasonSubjectErased || o.Items[0].Value != dsar.MaskValue {
		t.Errorf("the open tag deletion after the erasure: %s %q, item %+v; want cancelled subject_erased, value masked", o.State, o.Reason, o.Items[0])
	}
}
