package retention

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

func ids(s ...privguard.SubjectID) []privguard.SubjectID { return s }

func subjectRule(name string, from From, then Then, period time.Duration, cats ...privguard.DataCategory) Rule {
	return Rule{Name: name, Categories: cats, Purposes: []privguard.Purpose{"essential.service"}, Period: period, From: from, Then: then}
}

// customers is covered entirely by rules on user.contact and user.behavior.
var customers = dsar.TableMap{Table: "customers", SubjectColumn: "id", LastActiveBy: "last_login_at", Erase: dsar.EraseMode("mask"),
	Columns: map[string]privguard.DataCategory{"email": "user.contact.email", "last_page": "user.behavior.browsing_history"}}

func TestPlanSubjectLevel(t *testing.T) {
	closed := map[privguard.SubjectID]time.Time{
		"alice": now.Add(-40 * day), // past a 30-day period
		"bob":   now.Add(-10 * day), // not yet
		"carol": now.Add(-31 * day),
	}
	type want struct {
		actions      map[string][]dsar.SweepAction
		deletions    []Deletion
		restrictions []Restriction
		skipped      []Skip
		kept         []Kept
		deferred     int
	}
	for _, tc := range []struct {
		name   string
		rules  []Rule
		stores []Store
		facts  *fakeFacts
		max    int
		want   want
	}{
		{
			name:   "account_closed_full_coverage_deletes_whole",
			rules:  []Rule{subjectRule("closed-30d", FromAccountClosed, ThenDelete, 30*day, "user.contact", "user.behavior")},
			stores: append(sql(customers), Store{Name: "zendesk", Kind: "webhook"}),
			facts:  &fakeFacts{closed: closed},
			want: want{
				actions: map[string][]dsar.SweepAction{},
				deletions: []Deletion{{Subject: "alice", Trigger: "service_ended", Rule: "closed-30d"},
					{Subject: "carol", Trigger: "service_ended", Rule: "closed-30d"}},
				skipped: []Skip{{Store: "zendesk", Reason: ReasonWebhook}},
			},
		},
		{
			name:   "max_subjects_defers",
			rules:  []Rule{subjectRule("closed-30d", FromAccountClosed, ThenDelete, 30*day, "user")},
			stores: sql(customers),
			facts:  &fakeFacts{closed: closed},
			max:    1,
			want: want{
				actions:   map[string][]dsar.SweepAction{},
				deletions: []Deletion{{Subject: "alice", Trigger: "service_ended", Rule: "closed-30d"}},
				deferred:  1,
			},
		},
		{
			name:   "partial_coverage_sweeps_subjects_rows",
			rules:  []Rule{subjectRule("closed-30d", FromAccountClosed, ThenDelete, 30*day, "user.contact")},
			stores: sql(customers), // last_page is covered by no rule
			facts:  &fakeFacts{closed: closed},
			want: want{actions: map[string][]dsar.SweepAction{"crm": {
				{Rule: "closed-30d", Table: "customers", Mode: dsar.SweepClear, Columns: []string{"email"}, Subjects: ids("alice", "carol")},
			}}},
		},
		{
			name: "anonymise_is_no_full_deletion",
			rules: []Rule{subjectRule("closed-30d", FromAccountClosed, ThenDelete, 30*day, "user.contact"),
				subjectRule("closed-anon", FromAccountClosed, ThenAnonymise, 30*day, "user.behavior")},
			stores: sql(customers),
			facts:  &fakeFacts{closed: closed},
			want: want{actions: map[string][]dsar.SweepAction{"crm": {
				{Rule: "closed-30d+closed-anon", Table: "customers", Mode: dsar.SweepAnonymise, Subjects: ids("alice", "carol")},
			}}},
		},
		{
			name: "collected_and_subject_rules_compose",
			rules: []Rule{collected("b1y", 365*day, ThenDelete, "user.behavior"),
				subjectRule("closed-30d", FromAccountClosed, ThenDelete, 30*day, "user.behavior")},
			stores: sql(views),
			facts:  &fakeFacts{closed: closed},
			want: want{
				actions: map[string][]dsar.SweepAction{"crm": {
					{Rule: "b1y+closed-30d", Table: "page_views", Mode: dsar.SweepDelete, Before: now.Add(-365 * day), Subjects: ids("alice", "carol")},
				}},
				kept: []Kept{
					{Store: "crm", Table: "page_views", Category: "user.behavior.browsing_history", Rule: "b1y", KeptBy: "closed-30d", Purposes: []privguard.Purpose{"essential.service"}},
					{Store: "crm", Table: "page_views", Category: "user.behavior.browsing_history", Rule: "closed-30d", KeptBy: "b1y", Purposes: []privguard.Purpose{"personalize.recommendation"}, Subjects: 2},
				},
			},
		},
		{
			name: "closure_ends_consent_purposes",
			rules: []Rule{subjectRule("closed-30d", FromAccountClosed, ThenDelete, 30*day, "user"),
				{Name: "sms-grace", Categories: []privguard.DataCategory{"user.contact"}, Purposes: []privguard.Purpose{"marketing.communications.sms"},
					Period: 7 * day, From: FromWithdrawn, Then: ThenDelete}},
			stores: sql(customers),
			facts: &fakeFacts{closed: closed, lapsed: map[privguard.Purpose]map[privguard.SubjectID]time.Time{
				"marketing.communications.sms": {"alice": now.Add(-5 * day), "bob": now.Add(-100 * day)}}}, // alice within the grace period
			// A closed account ends the consent purposes too (alice and carol: deleted whole,
			// though alice is within the SMS grace period); bob, who withdrew but keeps his
			// account, keeps his contact for the service.
			want: want{
				actions: map[string][]dsar.SweepAction{},
				deletions: []Deletion{{Subject: "alice", Trigger: "service_ended", Rule: "closed-30d+sms-grace"},
					{Subject: "carol", Trigger: "service_ended", Rule: "closed-30d+sms-grace"}},
				kept: []Kept{
					{Store: "crm", Table: "customers", Category: "user.contact.email", Rule: "sms-grace", KeptBy: "closed-30d", Purposes: []privguard.Purpose{"essential.service"}, Subjects: 1},
				},
			},
		},
		{
			name: "withdrawn_every_purpose_latest_lapse",
			rules: []Rule{{Name: "mkt", Categories: []privguard.DataCategory{"user"}, Purposes: []privguard.Purpose{"marketing.communications.sms", "marketing.communications.email"},
				Period: 7 * day, From: FromWithdrawn, Then: ThenDelete}},
			stores: sql(customers),
			facts: &fakeFacts{lapsed: map[privguard.Purpose]map[privguard.SubjectID]time.Time{
				"marketing.communications.sms":   {"alice": now.Add(-30 * day), "bob": now.Add(-30 * day), "dave": now.Add(-30 * day)},
				"marketing.communications.email": {"alice": now.Add(-8 * day), "bob": now.Add(-2 * day)}}},
			want: want{
				actions:   map[string][]dsar.SweepAction{},
				deletions: []Deletion{{Subject: "alice", Trigger: "consent_withdrawn", Rule: "mkt"}},
			},
		},
		{
			name:   "restrict_then_delete",
			rules:  []Rule{{Name: "accounting", Categories: []privguard.DataCategory{"user"}, Purposes: []privguard.Purpose{"essential.service"}, From: FromAccountClosed, Then: ThenRestrict, Ground: "accounting law", Keep: 35 * day}},
			stores: sql(customers),
			facts: &fakeFacts{closed: map[privguard.SubjectID]time.Time{"alice": now.Add(-40 * day), "bob": now.Add(-10 * day), "carol": now.Add(-20 * day)},
				restricted: map[privguard.SubjectID][]privguard.DataCategory{"carol": {"user"}}},
			want: want{
				actions:   map[string][]dsar.SweepAction{},
				deletions: []Deletion{{Subject: "alice", Trigger: "service_ended", Rule: "accounting"}},
				restrictions: []Restriction{{Subject: "bob", Categories: []privguard.DataCategory{"user"}, Until: now.Add(25 * day),
					Ground: "accounting law", Rule: "accounting"}}, // carol's is in force
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Planner{Rules: tc.rules, Stores: tc.stores, Facts: tc.facts, MaxSubjects: tc.max, Now: func() time.Time { return now }}
			plan, err := p.Plan(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got := want{plan.Actions, plan.Deletions, plan.Restrictions, plan.Skipped, plan.Kept, plan.Deferred}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlanLastActive(t *testing.T) {
	year := 365 * day
	crmActivity := fakeActivity{"customers": {
		"alice": now.Add(-400 * day), // inactive here and in the shop
		"bob":   now.Add(-400 * day), // inactive here, active in the shop
		"erin":  now.Add(-10 * day),
	}}
	shopActivity := fakeActivity{"accounts": {"alice": now.Add(-500 * day), "bob": now.Add(-3 * day), "frank": now.Add(-600 * day)}}
	accounts := dsar.TableMap{Table: "accounts", SubjectColumn: "sid", LastActiveBy: "seen_at", Erase: dsar.EraseMode("delete"),
		Columns: map[string]privguard.DataCategory{"phone": "user.contact.phone_number", "bio": "user.content"}}
	stores := []Store{
		{Name: "crm", Kind: "postgres", Tables: []dsar.TableMap{customers}, Sweeper: sweeper{}, Activity: crmActivity},
		{Name: "shop", Kind: "mysql", Tables: []dsar.TableMap{accounts}, Sweeper: sweeper{}, Activity: shopActivity},
	}
	rules := []Rule{subjectRule("idle-1y", FromLastActive, ThenDelete, year, "user.contact", "user.behavior")}
	plan, err := (&Planner{Rules: rules, Stores: stores, Now: func() time.Time { return now }}).Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// bob is active in the shop; erin everywhere; frank has no row in crm but is inactive
	// where he has one. shop.accounts.bio is covered by no rule, so no one is deleted whole.
	want := map[string][]dsar.SweepAction{
		"crm":  {{Rule: "idle-1y", Table: "customers", Mode: dsar.SweepDelete, Subjects: ids("alice", "frank")}},
		"shop": {{Rule: "idle-1y", Table: "accounts", Mode: dsar.SweepClear, Columns: []string{"phone"}, Subjects: ids("alice", "frank")}},
	}
	if diff := cmp.Diff(want, plan.Actions); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
	if len(plan.Deletions) != 0 {
		t.Errorf("deletions %v; want none (a category no rule covers is kept)", plan.Deletions)
	}

	// Full coverage: alice and frank are deleted whole, by retention_expired.
	full := append([]Rule(nil), rules...)
	full = append(full, subjectRule("idle-content", FromLastActive, ThenDelete, year, "user.content"))
	plan, err = (&Planner{Rules: full, Stores: stores, Now: func() time.Time { return now }}).Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantDel := []Deletion{{Subject: "alice", Trigger: "retention_expired", Rule: "idle-1y+idle-content"}, {Subject: "frank", Trigger: "retention_expired", Rule: "idle-1y+idle-content"}}
	if diff := cmp.Diff(wantDel, plan.Deletions); diff != "" || len(plan.Actions) != 0 {
		t.Errorf("deletions (-want +got):\n%s\nactions %v", diff, plan.Actions)
	}

	// A store that cannot read activity: the rule judges no one.
	stores[1].Activity = nil
	plan, err = (&Planner{Rules: rules, Stores: stores, Now: func() time.Time { return now }}).Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Actions) != 0 || !cmp.Equal(plan.Skipped, []Skip{{Store: "shop", Table: "accounts", Rule: "idle-1y", Reason: ReasonActivityLack}}) {
		t.Errorf("without the shop's activity: actions %v, skipped %v", plan.Actions, plan.Skipped)
	}
}

// Inactive pages: more subjects than a page are all found.
func TestPlanLastActivePages(t *testing.T) {
	a := fakeActivity{"customers": {}}
	for i := range 2500 {
		a["customers"][privguard.SubjectID(fmt.Sprintf("s%05d", i))] = now.Add(-400 * day)
	}
	rules := []Rule{subjectRule("idle", FromLastActive, ThenDelete, 365*day, "user")}
	stores := []Store{{Name: "crm", Kind: "postgres", Tables: []dsar.TableMap{customers}, Sweeper: sweeper{}, Activity: a}}
	plan, err := (&Planner{Rules: rules, Stores: stores, MaxSubjects: 2000, Now: func() time.Time { return now }}).Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Deletions) != 2000 || plan.Deferred != 500 || plan.Deletions[0].Subject != "s00000" {
		t.Errorf("%d deletions, %d deferred; want 2000 and 500", len(plan.Deletions), plan.Deferred)
	}
}

func TestPlanKeysAndDeterminism(t *testing.T) {
	closed := map[privguard.SubjectID]time.Time{"zed": now.Add(-90 * day), "amy": now.Add(-90 * day), "kim": now.Add(-1 * day)}
	rules := []Rule{
		subjectRule("closed", FromAccountClosed, ThenDelete, 30*day, "user.behavior"),
		collected("b1y", 365*day, ThenAnonymise, "user.behavior.purchase_history"),
	}
	stores := []Store{
		{Name: "cache", Kind: "redis", Sweeper: sweeper{}, Keys: []KeySpec{
			{Template: "recent:{subject}", Categories: []privguard.DataCategory{"user.behavior.browsing_history"}, DatedBy: "ttl"},
			{Template: "cart:{subject}", Categories: []privguard.DataCategory{"user.behavior.purchase_history"}, DatedBy: "ttl"},
			{Template: "prof:{subject}", Categories: []privguard.DataCategory{"user.behavior.purchase_history"}, DatedBy: "at"},
		}},
		sql(orders, views)[0],
	}
	p := &Planner{Rules: rules, Stores: stores, Facts: &fakeFacts{closed: closed}, Now: func() time.Time { return now }}
	first, err := p.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []dsar.SweepAction{
		{Rule: "closed+b1y", Table: "cart:{subject}", Mode: dsar.SweepExpire, Period: 365 * day, Subjects: ids("amy", "zed")},
		{Rule: "closed+b1y", Table: "prof:{subject}", Mode: dsar.SweepDelete, Before: now.Add(-365 * day), Subjects: ids("amy", "zed")},
		{Rule: "closed", Table: "recent:{subject}", Mode: dsar.SweepDelete, Subjects: ids("amy", "zed")},
	}
	if diff := cmp.Diff(want, first.Actions["cache"]); diff != "" {
		t.Errorf("cache actions (-want +got):\n%s", diff)
	}
	for range 20 {
		again, err := p.Plan(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(first, again); diff != "" {
			t.Fatalf("a second Plan differs (-first +again):\n%s", diff)
		}
	}
}
