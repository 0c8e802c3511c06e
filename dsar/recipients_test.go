package dsar_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

// recipient records notices and can be down.
type recipient struct {
	name    string
	mu      sync.Mutex
	down    bool
	notices []dsar.RecipientNotice
}

func (r *recipient) Name() string { return r.name }

func (r *recipient) NotifyRecipient(_ context.Context, n dsar.RecipientNotice) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		return &dsar.ConnectorError{Connector: r.name, Op: "notify", Err: errors.New("down")}
	}
	r.notices = append(r.notices, n)
	return nil
}

func TestRecipientsAreToldAndDoNotHoldTheSubjectsRights(t *testing.T) {
	// proves DSR-11: every recipient is told of erasure and restriction, and the telling is
	// tracked per recipient; a recipient that is down delays neither the restriction (in
	// the ledger at once) nor the shredding of the keys.
	db := openDB(t, t.TempDir())
	now := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	sms, ads := &recipient{name: "sms"}, &recipient{name: "ads", down: true}
	crm := &memStore{name: "crm", data: map[privguard.SubjectID]int{"cust-1": 2}}
	var (
		hookMu sync.Mutex // hooks run on the engine's workers
		facts  []dsar.Type
		erased int
	)
	e, err := dsar.New(dsar.Config{Store: db.DSAR(), Connectors: []dsar.Connector{crm}, Recipients: []dsar.RecipientNotifier{sms, ads},
		Now: func() time.Time { return now }, BaseBackoff: time.Minute,
		OnSubjectFact: func(_ context.Context, r dsar.Request) error {
			hookMu.Lock()
			defer hookMu.Unlock()
			facts = append(facts, r.Type)
			return nil
		},
		OnErased: func(context.Context, privguard.SubjectID) error {
			hookMu.Lock()
			defer hookMu.Unlock()
			erased++
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeRestriction, Subject: "cust-1", Regime: privguard.RegimeGDPR})
	obj, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeObjection, Subject: "cust-1", Regime: privguard.RegimeGDPR})
	del, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "cust-2", Regime: privguard.RegimeGDPR, Identity: &dsar.Identity{Method: "token"}})
	e.Step(ctx)
	r, _ := e.Get(ctx, res.ID)
	if len(facts) != 2 || !r.Applied || r.State != dsar.StatePartiallyFailed {
		t.Fatalf("restriction with a recipient down: %s applied=%v facts %v; want in the ledger at once, the request open", r.State, r.Applied, facts)
	}
	if o, _ := e.Get(ctx, obj.ID); o.State != dsar.StateCompleted || len(o.Tasks) != 0 {
		t.Errorf("objection: %s with %d tasks; recipients are not told of objections (Art. 19 covers 16, 17, 18)", o.State, len(o.Tasks))
	}
	if d, _ := e.Get(ctx, del.ID); erased != 1 || d.State != dsar.StatePartiallyFailed {
		t.Errorf("deletion with a recipient down: %s, erased %d; want the keys shredded and the request open", d.State, erased)
	}
	ads.mu.Lock()
	ads.down = false
	ads.mu.Unlock()
	now = now.Add(time.Hour)
	e.Step(ctx)
	for _, id := range []string{res.ID, del.ID} {
		if r, _ := e.Get(ctx, id); r.State != dsar.StateCompleted {
			t.Errorf("%s after the recipient came back: %s", r.Type, r.State)
		}
	}
	if len(facts) != 2 || erased != 1 {
		t.Errorf("hooks ran again: facts %v, erased %d", facts, erased)
	}
	events := func(rc *recipient) map[string]bool {
		m := map[string]bool{}
		for _, n := range rc.notices {
			m[n.Event+":"+string(n.Subject)] = true
		}
		return m
	}
	for _, rc := range []*recipient{sms, ads} {
		if got := events(rc); !got["restriction:cust-1"] || !got["erasure:cust-2"] || len(rc.notices) != 2 {
			t.Errorf("%s was told %v; want the restriction and the erasure, once each", rc.name, rc.notices)
		}
	}
}

// listing is a store that holds the given categories and cannot correct.
type listing struct {
	memStore
	cats []privguard.DataCategory
}

func (l *listing) Categories() []privguard.DataCategory { return l.cats }

// fixer is a store that corrects.
type fixer struct{ listing }

func (f *fixer) Correct(context.Context, privguard.SubjectID, map[privguard.DataCategory]string) (int, error) {
	return 1, nil
}

func TestCorrectionIsNotCompletedWhereItCannotBeApplied(t *testing.T) {
	// proves DSR-08 (negative): a store that holds a patched category but cannot correct
	// keeps the request open; a store that does not hold it is done.
	c := &clock{time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	crm := &fixer{listing{memStore: memStore{name: "crm"}, cats: []privguard.DataCategory{"user.contact.email"}}}
	cache := &listing{memStore: memStore{name: "cache"}, cats: []privguard.DataCategory{"user.derived"}}
	legacy := &listing{memStore: memStore{name: "legacy"}, cats: []privguard.DataCategory{"user.contact.email"}}
	profile := &listing{memStore: memStore{name: "profile"}, cats: []privguard.DataCategory{"user.contact"}} // holds the email inside a broader category
	e, closeDB := open(t, t.TempDir(), c, []dsar.Connector{crm, cache, legacy, profile}, nil)
	defer closeDB()
	r, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeCorrection, Subject: "cust-1", Regime: privguard.RegimeGDPR,
		Patch: map[privguard.DataCategory]string{"user.contact.email": "n@example.com"}, Identity: &dsar.Identity{Method: "operator"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Approve(ctx, r.ID, "dpo", "checked"); err != nil {
		t.Fatal(err)
	}
	e.Step(ctx)
	got, _ := e.Get(ctx, r.ID)
	states := map[string]dsar.TaskState{}
	for _, tk := range got.Tasks {
		states[tk.Store] = tk.State
	}
	if got.State != dsar.StatePartiallyFailed || states["crm"] != dsar.TaskDone || states["cache"] != dsar.TaskDone ||
		states["legacy"] != dsar.TaskFailed || states["profile"] != dsar.TaskFailed {
		t.Errorf("correction: %s %v; want crm and cache done, legacy and profile failed, the request open", got.State, states)
	}
}
