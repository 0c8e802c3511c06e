package retention

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

var now = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// fakeFacts is Facts from maps.
type fakeFacts struct {
	closed     map[privguard.SubjectID]time.Time
	lapsed     map[privguard.Purpose]map[privguard.SubjectID]time.Time
	restricted map[privguard.SubjectID][]privguard.DataCategory
	err        error
}

func (f *fakeFacts) EachClosed(_ context.Context, before time.Time, fn func(privguard.SubjectID, time.Time) error) error {
	if f.err != nil {
		return f.err
	}
	for s, at := range f.closed {
		if at.Before(before) {
			if err := fn(s, at); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *fakeFacts) EachLapsed(_ context.Context, p privguard.Purpose, before time.Time, fn func(privguard.SubjectID, time.Time) error) error {
	for s, at := range f.lapsed[p] {
		if at.Before(before) {
			if err := fn(s, at); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *fakeFacts) RestrictedCategories(_ context.Context, s privguard.SubjectID) ([]privguard.DataCategory, error) {
	return f.restricted[s], nil
}

// fakeActivity is an ActivityReader over table -> subject -> last activity.
type fakeActivity map[string]map[privguard.SubjectID]time.Time

func (a fakeActivity) Inactive(_ context.Context, table string, before time.Time, after privguard.SubjectID, limit int) ([]privguard.SubjectID, error) {
	var out []privguard.SubjectID
	for s, at := range a[table] {
		if s > after && at.Before(before) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (a fakeActivity) LastActive(_ context.Context, table string, subjects []privguard.SubjectID) (map[privguard.SubjectID]time.Time, error) {
	out := map[privguard.SubjectID]time.Time{}
	for _, s := range subjects {
		if at, ok := a[table][s]; ok {
			out[s] = at
		}
	}
	return out, nil
}

// sweeper is a dsar.Sweeper the planner never calls.
type sweeper struct{}

func (sweeper) Sweep(context.Context, dsar.SweepAction, int) (int, bool, error) { return 0, false, nil }
func (sweeper) CountSweep(context.Context, dsar.SweepAction) (int, error)       { return 0, nil }

func collected(name string, period time.Duration, then Then, cats ...privguard.DataCategory) Rule {
	return Rule{Name: name, Categories: cats, Purposes: []privguard.Purpose{"personalize.recommendation"}, Period: period, From: FromCollected, Then: then}
}

func sql(tables ...dsar.TableMap) []Store {
	return []Store{{Name: "crm", Kind: "postgres", Tables: tables, Sweeper: sweeper{}}}
}

var (
	views = dsar.TableMap{Table: "page_views", SubjectColumn: "customer_id", DatedBy: "viewed_at", Erase: dsar.EraseMode("delete"),
		Columns: map[string]privguard.DataCategory{"url": "user.behavior.browsing_history", "ref": "user.behavior.browsing_history"}}
	orders = dsar.TableMap{Table: "orders", SubjectColumn: "customer_id", DatedBy: "placed_at", Erase: dsar.EraseMode("null"),
		Columns: map[string]privguard.DataCategory{"address": "user.contact.address", "item": "user.behavior.purchase_history", "note": "user.content"}}
	undated = dsar.TableMap{Table: "notes", SubjectColumn: "customer_id", Erase: dsar.EraseMode("delete"),
		Columns: map[string]privguard.DataCategory{"body": "user.behavior.browsing_history"}}
)

func TestPlanCollected(t *testing.T) {
	year := 365 * day
	for _, tc := range []struct {
		name    string
		rules   []Rule
		stores  []Store
		actions map[string][]dsar.SweepAction
		skipped []Skip
		kept    []Kept
	}{
		{
			name:    "one_rule_deletes_rows",
			rules:   []Rule{collected("b1y", year, ThenDelete, "user.behavior")},
			stores:  sql(views),
			actions: map[string][]dsar.SweepAction{"crm": {{Rule: "b1y", Table: "page_views", Mode: dsar.SweepDelete, Before: now.Add(-year)}}},
		},
		{
			name:    "anonymise_rows",
			rules:   []Rule{collected("b1y", year, ThenAnonymise, "user.behavior.browsing_history")},
			stores:  sql(views),
			actions: map[string][]dsar.SweepAction{"crm": {{Rule: "b1y", Table: "page_views", Mode: dsar.SweepAnonymise, Before: now.Add(-year)}}},
		},
		{
			name: "longest_period_wins_and_anonymise_wins",
			rules: []Rule{collected("short", 30*day, ThenDelete, "user.behavior"),
				collected("long", year, ThenAnonymise, "user.behavior.browsing_history")},
			stores:  sql(views),
			actions: map[string][]dsar.SweepAction{"crm": {{Rule: "short+long", Table: "page_views", Mode: dsar.SweepAnonymise, Before: now.Add(-year)}}},
			kept: []Kept{{Store: "crm", Table: "page_views", Category: "user.behavior.browsing_history", Rule: "short", KeptBy: "long",
				Purposes: []privguard.Purpose{"personalize.recommendation"}}},
		},
		{
			name: "per_column_clears_and_uncovered_stays",
			rules: []Rule{collected("contact", 30*day, ThenDelete, "user.contact"),
				collected("behavior", year, ThenDelete, "user.behavior")},
			stores: sql(orders), // note (user.content) is covered by no rule: it stays, so no row action
			actions: map[string][]dsar.SweepAction{"crm": {
				{Rule: "contact", Table: "orders", Mode: dsar.SweepClear, Columns: []string{"address"}, Before: now.Add(-30 * day)},
				{Rule: "behavior", Table: "orders", Mode: dsar.SweepClear, Columns: []string{"item"}, Before: now.Add(-year)},
			}},
		},
		{
			name:    "no_dated_by_skipped",
			rules:   []Rule{collected("b1y", year, ThenDelete, "user.behavior")},
			stores:  sql(undated, views),
			actions: map[string][]dsar.SweepAction{"crm": {{Rule: "b1y", Table: "page_views", Mode: dsar.SweepDelete, Before: now.Add(-year)}}},
			skipped: []Skip{{Store: "crm", Table: "notes", Rule: "b1y", Reason: ReasonNoDatedBy}},
		},
		{
			name:    "no_rule_covers",
			rules:   []Rule{collected("c", year, ThenDelete, "user.contact")},
			stores:  sql(views),
			actions: map[string][]dsar.SweepAction{},
		},
		{
			name:  "webhook_and_not_dated_keys",
			rules: []Rule{collected("b1y", year, ThenDelete, "user.behavior")},
			stores: []Store{{Name: "zendesk", Kind: "webhook"}, {Name: "cache", Kind: "redis", Sweeper: sweeper{}, Keys: []KeySpec{
				{Template: "seg:{subject}"},
				{Template: "profile:{subject}", Categories: []privguard.DataCategory{"user.behavior.browsing_history"}, DatedBy: "updated_at"},
				{Template: "recent:{subject}", Categories: []privguard.DataCategory{"user.behavior.browsing_history"}, DatedBy: "ttl"},
				{Template: "mixed:{subject}", Categories: []privguard.DataCategory{"user.behavior.browsing_history", "user.contact.email"}, DatedBy: "ttl"},
			}}},
			actions: map[string][]dsar.SweepAction{"cache": {
				{Rule: "b1y", Table: "profile:{subject}", Mode: dsar.SweepDelete, Before: now.Add(-year)},
				{Rule: "b1y", Table: "recent:{subject}", Mode: dsar.SweepExpire, Period: year},
			}},
			skipped: []Skip{{Store: "cache", Table: "seg:{subject}", Reason: ReasonNotDated}, {Store: "zendesk", Reason: ReasonWebhook}},
		},
		{
			name:    "connector_cannot_sweep",
			rules:   []Rule{collected("b1y", year, ThenDelete, "user.behavior")},
			stores:  []Store{{Name: "crm", Kind: "postgres", Tables: []dsar.TableMap{views}}},
			actions: map[string][]dsar.SweepAction{},
			skipped: []Skip{{Store: "crm", Table: "page_views", Reason: ReasonCannotSweep}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Planner{Rules: tc.rules, Stores: tc.stores, Now: func() time.Time { return now }}
			plan, err := p.Plan(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.actions, plan.Actions); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.skipped, plan.Skipped); diff != "" {
				t.Errorf("skipped (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.kept, plan.Kept); diff != "" {
				t.Errorf("kept (-want +got):\n%s", diff)
			}
			if !plan.At.Equal(now) || len(plan.Deletions) != 0 || len(plan.Restrictions) != 0 {
				t.Errorf("plan %+v", plan)
			}
		})
	}
}

func TestPlanRefusesBadRules(t *testing.T) {
	for name, r := range map[string]Rule{
		"zero_period_collected": collected("z", 0, ThenDelete, "user.contact"),
		"restrict_collected":    {Name: "r", Categories: []privguard.DataCategory{"user.contact"}, Period: day, From: FromCollected, Then: ThenRestrict, Keep: day},
		"unknown_from":          {Name: "u", Categories: []privguard.DataCategory{"user.contact"}, Period: day, From: "created", Then: ThenDelete},
		"no_facts":              {Name: "f", Categories: []privguard.DataCategory{"user.contact"}, From: FromAccountClosed, Then: ThenDelete},
	} {
		if _, err := (&Planner{Rules: []Rule{r}, Now: func() time.Time { return now }}).Plan(context.Background()); err == nil {
			t.Errorf("%s: Plan succeeded; want an error", name)
		}
	}
	f := &fakeFacts{err: errors.New("ledger down")}
	r := Rule{Name: "f", Categories: []privguard.DataCategory{"user.contact"}, From: FromAccountClosed, Then: ThenDelete}
	if _, err := (&Planner{Rules: []Rule{r}, Stores: sql(orders), Facts: f}).Plan(context.Background()); err == nil {
		t.Error("Plan succeeded with a failing Facts")
	}
	// A rule that covers nothing the stores hold reads no facts.
	if _, err := (&Planner{Rules: []Rule{r}, Stores: sql(views), Facts: f}).Plan(context.Background()); err != nil {
		t.Errorf("Plan with a rule covering nothing held: %v", err)
	}
}
