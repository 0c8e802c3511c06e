package policy_test

import (
	"slices"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/policy"
)

// What the policy reads comes from the one taxonomy the configuration builds: a purpose and
// a sensitive category declared in YAML are in its data and decide like built-in ones.
func TestDeclaredPurposesReachThePolicy(t *testing.T) {
	f, err := config.Parse([]byte(`
categories:
  - {name: user.skin_profile, sensitive: true}
  - {name: user.loyalty}
purposes:
  - {name: loyalty.points, legal_bases: {pipl: [contract]}, categories: [user.loyalty], prohibited: [user.derived]}
  - {name: marketing.beauty_advice, legal_bases: {pipl: [consent]}, categories: [user.skin_profile, user.loyalty], personalised: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	tax, err := f.Taxonomy()
	if err != nil {
		t.Fatal(err)
	}
	data := policy.Data(tax, nil)
	purposes := data["purposes"].(map[string]any)
	if _, ok := purposes["loyalty.points"]; !ok {
		t.Error("policy data lacks the declared purpose loyalty.points")
	}
	if s, _ := data["sensitive"].([]any); !slices.Contains(s, any("user.skin_profile")) {
		t.Errorf("policy data sensitive = %v; want the declared user.skin_profile among them", s)
	}
	e := newEngine(t, policy.Config{Taxonomy: tax})
	consented := privguard.ConsentFacts{State: "given", Allowed: true, Reason: privguard.ReasonConsentGiven}
	cases := []struct {
		name   string
		in     privguard.Input
		allow  bool
		reason privguard.Reason
	}{
		{"contract_basis_needs_no_consent", privguard.Input{Purpose: "loyalty.points", Regime: privguard.RegimePIPL, Categories: []privguard.DataCategory{"user.loyalty"}}, true, ""},
		{"prohibited_category_denies", privguard.Input{Purpose: "loyalty.points", Regime: privguard.RegimePIPL, Categories: []privguard.DataCategory{"user.derived.segments"}}, false, "purpose.category_not_allowed"},
		{"no_gdpr_basis_denies", privguard.Input{Purpose: "loyalty.points", Regime: privguard.RegimeGDPR, Categories: []privguard.DataCategory{"user.loyalty"}}, false, ""},
		{"consent_purpose_without_consent_denies", privguard.Input{Purpose: "marketing.beauty_advice", Regime: privguard.RegimePIPL, Categories: []privguard.DataCategory{"user.loyalty"}}, false, ""},
		{"consent_purpose_with_consent_allows", privguard.Input{Purpose: "marketing.beauty_advice", Regime: privguard.RegimePIPL, Consent: consented, Categories: []privguard.DataCategory{"user.loyalty"}}, true, ""},
		{"declared_sensitive_needs_separate_consent", privguard.Input{Purpose: "marketing.beauty_advice", Regime: privguard.RegimePIPL, Consent: consented, Categories: []privguard.DataCategory{"user.skin_profile"}}, false, privguard.ReasonSeparateConsentRequired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Subject, tc.in.Facts.AgeBand = "m-1", "18+"
			d, err := e.Decide(ctx, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed() != tc.allow || (tc.reason != "" && !slices.Contains(d.Reasons, tc.reason)) {
				t.Errorf("Decide(%s) = allow %v %v; want allow %v (reason %q)", tc.in.Purpose, d.Allowed(), d.Reasons, tc.allow, tc.reason)
			}
		})
	}
}
