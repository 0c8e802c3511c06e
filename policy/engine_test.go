package policy_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/policy"
)

var ctx = context.Background()

func newEngine(t testing.TB, cfg policy.Config) *policy.Engine {
	t.Helper()
	e, err := policy.New(ctx, cfg)
	if err != nil {
		t.Fatalf("policy.New: %v", err)
	}
	return e
}

// sms is a consenting adult under PIPL, asked about for an SMS campaign.
func sms() privguard.Input {
	return privguard.Input{
		Subject: "cust-1", Purpose: "marketing.communications.sms", Regime: privguard.RegimePIPL, Channel: "sms",
		Categories: []privguard.DataCategory{"user.contact.phone_number", "user.name.nickname"},
		Consent:    privguard.ConsentFacts{State: "given", Allowed: true, Reason: privguard.ReasonConsentGiven},
		Facts:      privguard.SubjectFacts{AgeBand: "18+"},
	}
}

func TestDecide(t *testing.T) {
	e := newEngine(t, policy.Config{})
	cases := []struct {
		name        string
		mutate      func(*privguard.Input)
		allow       bool
		reasons     []privguard.Reason
		obligations []privguard.Obligation
	}{
		{name: "consenting_adult", mutate: func(*privguard.Input) {}, allow: true, reasons: []privguard.Reason{"allow"},
			obligations: []privguard.Obligation{{Kind: privguard.ObligeContactBudget, Remaining: 3}}},
		// proves PUR-01: unknown purpose → deny.
		{name: "unknown_purpose", mutate: func(in *privguard.Input) { in.Purpose = "marketing.fax" }, reasons: []privguard.Reason{"purpose.unknown"}},
		// proves CON-11 (policy side): expired consent is absent.
		{name: "expired", mutate: func(in *privguard.Input) {
			in.Consent = privguard.ConsentFacts{State: "expired", Reason: privguard.ReasonConsentExpired}
		}, reasons: []privguard.Reason{privguard.ReasonConsentExpired}},
		// proves CON-06 (policy side): consent invalidated by a material notice change.
		{name: "invalidated", mutate: func(in *privguard.Input) {
			in.Consent = privguard.ConsentFacts{State: "invalidated", Reason: privguard.ReasonConsentInvalidated}
		}, reasons: []privguard.Reason{privguard.ReasonConsentInvalidated}},
		// proves PUR-07 and DSR-10: storage and security only.
		{name: "restricted", mutate: func(in *privguard.Input) { in.Facts.Restricted = true }, reasons: []privguard.Reason{privguard.ReasonRestricted}},
		// proves DSR-13 and MKT-04: objection blocks direct marketing at once.
		{name: "objected", mutate: func(in *privguard.Input) { in.Facts.ObjectedToDM = true }, reasons: []privguard.Reason{privguard.ReasonObjectionDirectMarketing}},
		// proves MKT-09: Sec-GPC opts out of targeted advertising.
		{name: "gpc_ads", mutate: func(in *privguard.Input) {
			in.Purpose, in.Channel, in.GPC, in.Categories = "marketing.advertising.first_party", "", true, nil
		}, reasons: []privguard.Reason{privguard.ReasonGPCOptOut}},
		// proves CON-12: providing data to another handler needs separate consent (and, as
		// no assessment is configured here, an impact assessment: AUD-04).
		{name: "sharing_without_separate", mutate: func(in *privguard.Input) {
			in.Purpose, in.Channel, in.Recipient, in.Categories = "third_party.sharing", "", "Acme", nil
		}, reasons: []privguard.Reason{privguard.ReasonPIARequired, privguard.ReasonSeparateConsentRequired}},
		// proves SEN-01: a minor needs a guardian's consent.
		{name: "minor_without_guardian", mutate: func(in *privguard.Input) { in.Facts.Minor, in.Facts.AgeBand = true, "13" },
			reasons: []privguard.Reason{privguard.ReasonGuardianConsentRequired}},
		// proves SEN-03 and SEN-04: sensitive (inferred) categories need separate consent and a PIA.
		{name: "inferred_health", mutate: func(in *privguard.Input) {
			in.Purpose, in.Channel, in.Categories = "marketing.profiling", "", []privguard.DataCategory{"user.derived.inferred_health"}
		}, reasons: []privguard.Reason{privguard.ReasonPIARequired, privguard.ReasonSeparateConsentRequired}},
		// proves MKT-06: personalisation off → non-personalised recommendations.
		{name: "personalisation_off", mutate: func(in *privguard.Input) {
			in.Purpose, in.Channel, in.Categories, in.Facts.PersonalisationOff = "personalize.recommendation", "", []privguard.DataCategory{"user.behavior.browsing_history"}, true
		}, allow: true, reasons: []privguard.Reason{"allow"}, obligations: []privguard.Obligation{{Kind: privguard.ObligeNonPersonalised}}},
		// proves PUR-03: only the categories the purpose needs.
		{name: "minimum_necessary", mutate: func(in *privguard.Input) {
			in.Categories = append(in.Categories, "user.government_id.id_card", "user.behavior.browsing_history")
		}, allow: true, reasons: []privguard.Reason{"allow"}, obligations: []privguard.Obligation{
			{Kind: privguard.ObligeContactBudget, Remaining: 3},
			{Kind: privguard.ObligeDrop, Categories: []privguard.DataCategory{"user.behavior.browsing_history", "user.government_id.id_card"}}}},
		// proves MKT-07: pricing is denied behavioural data.
		{name: "pricing", mutate: func(in *privguard.Input) {
			in.Purpose, in.Channel, in.Categories = "essential.pricing", "", []privguard.DataCategory{"user.derived.rfm_score", "user.account"}
		}, reasons: []privguard.Reason{privguard.ReasonCategoryNotAllowed}},
		// proves MKT-01: channel consent missing → the send is blocked.
		{name: "no_channel_consent", mutate: func(in *privguard.Input) {
			in.Consent = privguard.ConsentFacts{State: "unknown", Reason: privguard.ReasonConsentMissing}
		}, reasons: []privguard.Reason{privguard.ReasonConsentMissing}},
		{name: "frequency", mutate: func(in *privguard.Input) { in.Facts.Contacts = 3 }, reasons: []privguard.Reason{privguard.ReasonFrequencyExceeded}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := sms()
			tc.mutate(&in)
			d, err := e.Decide(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed() != tc.allow || !slices.Equal(d.Reasons, tc.reasons) {
				t.Errorf("Decide = allow %v %v; want allow %v %v", d.Allowed(), d.Reasons, tc.allow, tc.reasons)
			}
			if tc.obligations != nil || d.Allowed() {
				if diff := cmp.Diff(tc.obligations, d.Obligations); diff != "" {
					t.Errorf("obligations (-want +got):\n%s", diff)
				}
			}
			if d.ID == "" || d.Revision != e.Revision() {
				t.Errorf("decision id %q revision %q; want an id and %s", d.ID, d.Revision, e.Revision())
			}
		})
	}
}

func TestDecisionsAreMemoisedWithoutTheSubject(t *testing.T) {
	e := newEngine(t, policy.Config{})
	a, b := sms(), sms()
	b.Subject = "someone-else"
	b.Categories = []privguard.DataCategory{"user.name.nickname", "user.contact.phone_number"} // same set, other order
	da, err := e.Decide(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := e.Decide(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.Evaluations != 1 || st.MemoHits != 1 {
		t.Errorf("stats = %+v; want 1 evaluation and 1 memo hit", st)
	}
	if da.ID == db.ID || da.Effect != db.Effect {
		t.Errorf("decisions %+v and %+v: want the same effect under different ids", da, db)
	}
	// A withdrawal changes the input, so it is never answered from a stale entry (CON-08,
	// in-process: enforced on the next request).
	c := sms()
	c.Consent = privguard.ConsentFacts{State: "withdrawn", Reason: privguard.ReasonConsentWithdrawn}
	if d, _ := e.Decide(ctx, c); d.Allowed() {
		t.Error("a withdrawn consent was allowed from the memo")
	}
}

func TestMemoIsBounded(t *testing.T) {
	e := newEngine(t, policy.Config{CacheSize: 4})
	for i := range 20 {
		in := sms()
		in.Facts.Contacts = i % 3
		in.Role = string(rune('a' + i))
		if _, err := e.Decide(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	if st := e.Stats(); st.Evaluations != 20 {
		t.Errorf("evaluations = %d; want 20 distinct inputs evaluated", st.Evaluations)
	}
}

func TestBrokenPoliciesFailClosed(t *testing.T) {
	if _, err := policy.New(ctx, policy.Config{Modules: map[string]string{"p.rego": "package privguard\ndecision := {"}}); err == nil {
		t.Error("New accepted a policy that does not parse")
	}
	// A policy that compiles but leaves the decision undefined: Decide must error, not allow.
	e := newEngine(t, policy.Config{Modules: map[string]string{"p.rego": "package privguard\ndecision := {\"allow\": true} if input.never\n"}})
	if _, err := e.Decide(ctx, sms()); !errors.Is(err, privguard.ErrUnavailable) {
		t.Errorf("undefined decision: err = %v; want ErrUnavailable", err)
	}
	// A deny without reasons is malformed.
	e = newEngine(t, policy.Config{Modules: map[string]string{"p.rego": "package privguard\ndecision := {\"allow\": false}\n"}})
	if _, err := e.Decide(ctx, sms()); !errors.Is(err, privguard.ErrUnavailable) {
		t.Errorf("deny without reasons: err = %v; want ErrUnavailable", err)
	}
	e = newEngine(t, policy.Config{Modules: map[string]string{"p.rego": "package privguard\ndecision := {\"allow\": \"yes\"}\n"}})
	if _, err := e.Decide(ctx, sms()); !errors.Is(err, privguard.ErrUnavailable) {
		t.Errorf("non-boolean allow: err = %v; want ErrUnavailable", err)
	}
}

func TestConfiguredDataReachesThePolicy(t *testing.T) {
	infos := privguard.DefaultPurposes()
	for i := range infos {
		if infos[i].Purpose == "marketing.communications.sms" {
			infos[i].Mask = []privguard.DataCategory{"user.contact.phone_number"}
		}
	}
	tax, err := privguard.NewTaxonomy(infos)
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, policy.Config{Taxonomy: tax, Frequency: map[string]policy.FrequencyLimit{"sms": {Max: 1, Window: "24h"}}})
	in := sms()
	in.Facts.Contacts = 1
	d, err := e.Decide(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed() || !slices.Contains(d.Reasons, privguard.ReasonFrequencyExceeded) {
		t.Errorf("with max 1 and 1 contact: %+v; want frequency.exceeded", d)
	}
	in.Facts.Contacts = 0
	d, _ = e.Decide(ctx, in)
	if !slices.ContainsFunc(d.Obligations, func(o privguard.Obligation) bool { return o.Kind == privguard.ObligeMask }) {
		t.Errorf("configured mask not applied: %+v", d.Obligations)
	}
}

// An evaluation that overruns the context's deadline is cancelled and is no decision.
func TestEvaluationStopsAtTheDeadline(t *testing.T) {
	e := newEngine(t, policy.Config{CacheSize: -1, Modules: map[string]string{"p.rego": `package privguard
decision := {"allow": n > 0, "reasons": ["allow"]} if {
	n := count([1 | some x in numbers.range(1, 4000); some y in numbers.range(1, 4000); x * y == 7])
}
`}})
	dctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := e.Decide(dctx, sms())
	if !errors.Is(err, privguard.ErrUnavailable) {
		t.Fatalf("Decide past its deadline = %v; want ErrUnavailable", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the evaluation ran %v past a 20 ms deadline", took)
	}
}
