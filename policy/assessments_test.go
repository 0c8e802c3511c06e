package policy_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/policy"
)

func date(t testing.TB, s string) time.Time {
	t.Helper()
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// gateTaxonomy is the default taxonomy with marketing.profiling deciding automatically and
// personalize.recommendation profiling at large scale.
func gateTaxonomy(t testing.TB) *privguard.Taxonomy {
	t.Helper()
	infos := privguard.DefaultPurposes()
	for i := range infos {
		switch infos[i].Purpose {
		case "marketing.profiling":
			infos[i].AutomatedDecision = true
		case "personalize.recommendation":
			infos[i].LargeScale = true
		}
	}
	tax, err := privguard.NewTaxonomy(infos)
	if err != nil {
		t.Fatal(err)
	}
	return tax
}

// gateInputs are one input per trigger of the gate, each with the consent it needs
// otherwise, so that the assessment alone decides.
func gateInputs() map[string]privguard.Input {
	given := privguard.ConsentFacts{State: "given", Allowed: true, Reason: privguard.ReasonConsentGiven, Separate: true, Sensitive: true}
	in := func(p privguard.Purpose, r privguard.Regime, recipient string, cats ...privguard.DataCategory) privguard.Input {
		return privguard.Input{Subject: "cust-1", Purpose: p, Regime: r, Recipient: recipient, Categories: cats, Consent: given,
			Facts: privguard.SubjectFacts{AgeBand: "18+"}}
	}
	return map[string]privguard.Input{
		"sensitive":             in("marketing.advertising.first_party", privguard.RegimePIPL, "", "user.behavior.page_views", "user.derived.inferred_health"),
		"automated_decision":    in("marketing.profiling", privguard.RegimePIPL, "", "user.behavior.purchase_history"),
		"large_scale_profiling": in("personalize.recommendation", privguard.RegimeGDPR, "", "user.behavior.browsing_history"),
		"provision":             in("third_party.sharing", privguard.RegimePIPL, "acme-sms", "user.contact.phone_number"),
		"cross_border":          in("marketing.communications.email", privguard.RegimeGDPR, "us-mailer", "user.contact.email"),
	}
}

// gateAssessment covers every input of gateInputs from 2026-01-01 until 2027-01-01.
func gateAssessment(t testing.TB) policy.Assessment {
	return policy.Assessment{ID: "pia-2026-01", Conclusion: "approved_with_measures",
		Purposes:   []privguard.Purpose{"analytics.reporting", "marketing", "personalize", "third_party.sharing"},
		Categories: []privguard.DataCategory{"user.behavior", "user.derived", "user.contact.phone_number", "user.contact.email"},
		Recipients: []string{"acme-sms", "us-mailer"}, Date: date(t, "2026-01-01"), Review: date(t, "2027-01-01")}
}

var gateRecipients = []policy.Recipient{{Name: "acme-sms", Country: "CN", Role: "processor"}, {Name: "us-mailer", Country: "US", Role: "processor"}}

// proves AUD-04: each kind of high-impact processing is denied without a current impact
// assessment covering it, allowed with one (the decision naming it), denied once the review
// date has passed (the memo does not answer across it), and denied when the assessment
// leaves out a category or the recipient; a rejected assessment never covers.
func TestImpactAssessmentGate(t *testing.T) {
	tax := gateTaxonomy(t)
	var today time.Time
	clock := func() time.Time { return today }
	full := gateAssessment(t)
	rejected := full
	rejected.ID, rejected.Conclusion = "pia-rejected", "rejected"
	narrow := full
	narrow.ID, narrow.Categories, narrow.Recipients = "pia-narrow", []privguard.DataCategory{"user.name"}, nil
	engines := map[string]*policy.Engine{
		"none":     newEngine(t, policy.Config{Taxonomy: tax, Recipients: gateRecipients, Now: clock}),
		"full":     newEngine(t, policy.Config{Taxonomy: tax, Recipients: gateRecipients, Now: clock, Assessments: []policy.Assessment{full}}),
		"rejected": newEngine(t, policy.Config{Taxonomy: tax, Recipients: gateRecipients, Now: clock, Assessments: []policy.Assessment{rejected}}),
		"narrow":   newEngine(t, policy.Config{Taxonomy: tax, Recipients: gateRecipients, Now: clock, Assessments: []policy.Assessment{narrow}}),
	}
	cases := []struct {
		engine, day string
		want        privguard.Reason // "" for allow
	}{
		{"none", "2026-06-01", privguard.ReasonPIARequired},
		{"full", "2026-06-01", ""},
		{"full", "2026-12-31", ""},
		{"full", "2027-01-01", privguard.ReasonPIAExpired},  // the review date has come
		{"full", "2025-12-31", privguard.ReasonPIARequired}, // not concluded yet
		{"rejected", "2026-06-01", privguard.ReasonPIARequired},
		{"narrow", "2026-06-01", privguard.ReasonPIANotCovering},
	}
	for name, in := range gateInputs() {
		t.Run(name, func(t *testing.T) {
			for _, tc := range cases {
				today = date(t, tc.day).Add(15 * time.Hour)
				d, err := engines[tc.engine].Decide(ctx, in)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case tc.want == "" && (!d.Allowed() || d.Assessment != full.ID):
					t.Errorf("%s on %s: Decide = %v %v (assessment %q); want allowed on %s", tc.engine, tc.day, d.Effect, d.Reasons, d.Assessment, full.ID)
				case tc.want != "" && (d.Allowed() || !slices.Equal(d.Reasons, []privguard.Reason{tc.want}) || d.Assessment != ""):
					t.Errorf("%s on %s: Decide = %v %v (assessment %q); want denied %s alone", tc.engine, tc.day, d.Effect, d.Reasons, d.Assessment, tc.want)
				}
			}
		})
	}
	// The same uses without their trigger pass without any assessment.
	ordinary := gateInputs()["automated_decision"]
	ordinary.Purpose = "analytics.reporting"
	today = date(t, "2026-06-01")
	if d, _ := engines["none"].Decide(ctx, ordinary); !d.Allowed() || d.Assessment != "" {
		t.Errorf("ordinary processing: %v %v (assessment %q); want allowed without an assessment", d.Effect, d.Reasons, d.Assessment)
	}
}

// proves AUD-04: a route that names an assessment (Input.PIAID) rests on that one only.
func TestRoutePinsTheAssessment(t *testing.T) {
	full := gateAssessment(t)
	other := full
	other.ID = "pia-other"
	now := date(t, "2026-06-01")
	e := newEngine(t, policy.Config{Taxonomy: gateTaxonomy(t), Recipients: gateRecipients, Assessments: []policy.Assessment{full, other},
		Now: func() time.Time { return now }})
	in := gateInputs()["provision"]
	for _, tc := range []struct {
		pin, used string
		want      privguard.Reason
	}{{"", "pia-2026-01", ""}, {"pia-other", "pia-other", ""}, {"pia-2026-01", "pia-2026-01", ""}, {"pia-missing", "", privguard.ReasonPIARequired}} {
		in.PIAID = tc.pin
		d, err := e.Decide(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if d.Assessment != tc.used || (tc.want == "") != d.Allowed() || (tc.want != "" && !slices.Contains(d.Reasons, tc.want)) {
			t.Errorf("pinned %q: %v %v (assessment %q); want %q used, reason %q", tc.pin, d.Effect, d.Reasons, d.Assessment, tc.used, tc.want)
		}
	}
}

// The date is the use's own (Input.Time) when set, read in Config.Location; without
// Config.Now the engine's clock gives today's date.
func TestPolicyDate(t *testing.T) {
	shanghai := time.FixedZone("CST", 8*3600)
	a := gateAssessment(t)
	in := gateInputs()["provision"]
	utc := newEngine(t, policy.Config{Taxonomy: gateTaxonomy(t), Assessments: []policy.Assessment{a}})
	cst := newEngine(t, policy.Config{Taxonomy: gateTaxonomy(t), Assessments: []policy.Assessment{a}, Location: shanghai})
	in.Time = time.Date(2026, 12, 31, 20, 0, 0, 0, time.UTC) // 2027-01-01 04:00 in Shanghai
	if d, _ := utc.Decide(ctx, in); !d.Allowed() {
		t.Errorf("UTC engine on 2026-12-31: %v; want allowed", d.Reasons)
	}
	if d, _ := cst.Decide(ctx, in); d.Allowed() || !slices.Contains(d.Reasons, privguard.ReasonPIAExpired) {
		t.Errorf("Shanghai engine on 2027-01-01 local: %v %v; want pia.expired", d.Effect, d.Reasons)
	}
	// The system clock: an assessment to be reviewed tomorrow covers, one due today does not.
	now := time.Now().UTC()
	a.Date, a.Review = now.AddDate(0, 0, -10), now.AddDate(0, 0, 1)
	due := a
	due.ID, due.Review = "pia-due", now
	in.Time = time.Time{}
	if d, _ := newEngine(t, policy.Config{Taxonomy: gateTaxonomy(t), Assessments: []policy.Assessment{a}}).Decide(ctx, in); !d.Allowed() {
		t.Errorf("reviewed tomorrow: %v; want allowed today", d.Reasons)
	}
	if d, _ := newEngine(t, policy.Config{Taxonomy: gateTaxonomy(t), Assessments: []policy.Assessment{due}}).Decide(ctx, in); d.Allowed() {
		t.Error("an assessment due for review today still covered processing")
	}
}

func TestAssessmentConfigErrors(t *testing.T) {
	a := gateAssessment(t)
	for name, cfg := range map[string]policy.Config{
		"repeated_id":        {Assessments: []policy.Assessment{a, a}},
		"empty_id":           {Assessments: []policy.Assessment{{Purposes: a.Purposes}}},
		"repeated_recipient": {Recipients: []policy.Recipient{{Name: "x"}, {Name: "x"}}},
	} {
		if _, err := policy.New(ctx, cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

// What a purpose alone implies, per regime, as the policy data states it.
func TestAssessmentNeededByPurpose(t *testing.T) {
	cases := []struct {
		name       string
		info       privguard.PurposeInfo
		pipl, gdpr bool
	}{
		{"ordinary", privguard.PurposeInfo{}, false, false},
		{"automated_decision", privguard.PurposeInfo{AutomatedDecision: true}, true, true},
		{"large_scale_profiling", privguard.PurposeInfo{LargeScale: true, Personalised: true}, true, true},
		{"large_scale_alone", privguard.PurposeInfo{LargeScale: true}, false, false},
		{"profiling_alone", privguard.PurposeInfo{Personalised: true}, false, false},
		{"sensitive", privguard.PurposeInfo{Separate: privguard.SeparateSensitive}, true, true},
		{"cross_border", privguard.PurposeInfo{Separate: privguard.SeparateCrossBorder}, true, true},
		{"provide_to_handler", privguard.PurposeInfo{Separate: privguard.SeparateProvide}, true, false},
		{"public_disclosure", privguard.PurposeInfo{Separate: privguard.SeparatePublic}, true, false},
		{"public_place_image", privguard.PurposeInfo{Separate: privguard.SeparatePublicImage}, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			info := tc.info
			info.Purpose, info.Bases = "marketing.test", map[privguard.Regime][]privguard.LegalBasis{privguard.RegimePIPL: {privguard.BasisConsent}}
			tax, err := privguard.NewTaxonomy([]privguard.PurposeInfo{info})
			if err != nil {
				t.Fatal(err)
			}
			got := policy.Data(tax, nil)["purposes"].(map[string]any)["marketing.test"].(map[string]any)["assessment_needed"]
			want := map[string]any{"pipl": tc.pipl, "gdpr": tc.gdpr}
			if !cmp.Equal(got, want) {
				t.Errorf("assessment_needed = %v; want %v", got, want)
			}
		})
	}
}
