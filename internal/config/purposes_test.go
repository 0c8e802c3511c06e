package config

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/privguard/privguard"
)

// declaredYAML declares a category tree, a sensitive category, a new purpose that uses
// them, and a refinement of a built-in purpose; a route, a store and a recipient use the
// declared names.
const declaredYAML = `
regime: pipl
categories:
  - {name: user.loyalty, description: {en: Loyalty programme membership, zh: 会员计划}}
  - {name: user.loyalty.member_id}
  - {name: user.loyalty.points}
  - {name: user.skin_profile, sensitive: true, description: Skin type and concerns from the beauty quiz}
purposes:
  - name: loyalty.points
    description: {en: Running the points programme, zh: 积分计划}
    legal_bases: {pipl: [contract], gdpr: [contract]}
    categories: [user.loyalty, user.contact.phone_number]
    mask: [user.contact.phone_number]
    prohibited: [user.derived]
    retained: true
  - name: marketing.beauty_advice
    legal_bases: {pipl: [consent]}
    categories: [user.skin_profile, user.behavior.purchase_history]
    personalised: true
    automated_decision: true
  - name: marketing.communications.sms
    description: {zh: 营销短信}
    mask: [user.contact.phone_number]
    large_scale: true
routes:
  - match: "GET /api/members/{id}"
    purpose: loyalty.points
    subject: {path: id}
    fields: {points: user.loyalty.points, phone: user.contact.phone_number}
    encrypt: [user.loyalty]
dsar:
  stores:
    - {name: crm, type: postgres, dsn: d, tables: [{table: members, subject_column: id, columns: {card: user.loyalty.member_id}, erase: delete}]}
  recipients:
    - {name: points-partner, purposes: [loyalty], categories: [user.loyalty.points]}
`

func TestTaxonomyDeclaredPurposesAndCategories(t *testing.T) {
	f, err := Parse([]byte(declaredYAML))
	if err != nil {
		t.Fatal(err)
	}
	tax, err := f.Taxonomy()
	if err != nil {
		t.Fatal(err)
	}
	loyalty, ok := tax.Lookup("loyalty.points")
	if !ok {
		t.Fatal("the declared purpose loyalty.points is not registered")
	}
	want := privguard.PurposeInfo{Purpose: "loyalty.points", Description: "Running the points programme",
		Bases:      map[privguard.Regime][]privguard.LegalBasis{"pipl": {"contract"}, "gdpr": {"contract"}},
		Categories: []privguard.DataCategory{"user.loyalty", "user.contact.phone_number"},
		Mask:       []privguard.DataCategory{"user.contact.phone_number"}, Prohibited: []privguard.DataCategory{"user.derived"},
		Retained: true}
	if diff := cmp.Diff(want, *loyalty); diff != "" {
		t.Errorf("loyalty.points (-want +got):\n%s", diff)
	}
	beauty, _ := tax.Lookup("marketing.beauty_advice")
	if beauty == nil || beauty.Validity != privguard.DefaultConsentValidity || !beauty.Personalised || !beauty.AutomatedDecision || beauty.DirectMarketing {
		t.Errorf("marketing.beauty_advice = %+v; want consent for the default validity, personalised, automated", beauty)
	}
	// The refinement keeps what the built-in had and adds what it sets.
	sms, _ := tax.Lookup("marketing.communications.sms")
	defaults, _ := privguard.NewTaxonomy(privguard.DefaultPurposes())
	builtIn, _ := defaults.Lookup("marketing.communications.sms")
	if !sms.LargeScale || !sms.DirectMarketing || !slices.Equal(sms.Categories, builtIn.Categories) || !slices.Equal(sms.Mask, []privguard.DataCategory{"user.contact.phone_number"}) ||
		sms.Description != builtIn.Description || sms.Validity != builtIn.Validity {
		t.Errorf("refined marketing.communications.sms = %+v; want the built-in plus large_scale and the mask", sms)
	}
	if !tax.Known("user.loyalty.points") || !tax.Known("user.skin_profile") || tax.Known("user.loyalty.pionts") {
		t.Error("the declared categories are not (exactly) known")
	}
	if !tax.Sensitive("user.skin_profile") || tax.Sensitive("user.loyalty.points") {
		t.Error("sensitive: true does not make a declared category sensitive (or makes others so)")
	}
	if len(tax.Purposes()) != len(privguard.DefaultPurposes())+2 {
		t.Errorf("%d purposes; want the %d built-in ones and 2 declared", len(tax.Purposes()), len(privguard.DefaultPurposes()))
	}
}

// A refinement may set a built-in's validity and bases in purposes[] or consent.purposes,
// not both; its validity otherwise stays.
func TestTaxonomyRefinementValidity(t *testing.T) {
	f, err := Parse([]byte(`
consent:
  purposes:
    marketing.profiling: {validity: 720h}
purposes:
  - {name: marketing.profiling, legal_bases: {pipl: [consent], gdpr: [consent]}, owner: CRM team}
  - {name: analytics.reporting, validity: 48h}
`))
	if err != nil {
		t.Fatal(err)
	}
	tax, err := f.Taxonomy()
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := tax.Lookup("marketing.profiling"); p.Validity != 720*time.Hour {
		t.Errorf("marketing.profiling validity = %v; want consent.purposes' 720h", p.Validity)
	}
	if p, _ := tax.Lookup("analytics.reporting"); p.Validity != 48*time.Hour {
		t.Errorf("analytics.reporting validity = %v; want 48h", p.Validity)
	}
}

func TestTaxonomyRefusesBadDeclarations(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"purpose_twice", "purposes:\n  - {name: loyalty.points, legal_bases: {pipl: [contract]}}\n  - {name: loyalty.points, legal_bases: {pipl: [contract]}}\n",
			`purposes[1].name: "loyalty.points" is also purposes[0]`},
		{"purpose_bad_name", "purposes:\n  - {name: Loyalty.Points, legal_bases: {pipl: [contract]}}\n",
			`purposes[0].name: "Loyalty.Points" is not a purpose name`},
		{"purpose_trailing_dot", "purposes:\n  - {name: loyalty., legal_bases: {pipl: [contract]}}\n",
			`purposes[0].name: "loyalty." is not a purpose name`},
		{"new_purpose_no_bases", "purposes:\n  - {name: loyalty.points}\n",
			"purposes[0].legal_bases: loyalty.points is not a built-in purpose, so it needs its legal bases per regime (pipl, gdpr), at least under pipl"},
		{"no_basis_for_regime", "purposes:\n  - {name: loyalty.points, legal_bases: {gdpr: [contract]}}\n",
			"purposes[0].legal_bases: no legal basis under pipl, the configured regime"},
		{"no_basis_for_gdpr", "regime: gdpr\npurposes:\n  - {name: loyalty.points, legal_bases: {pipl: [contract]}}\n",
			"purposes[0].legal_bases: no legal basis under gdpr, the configured regime"},
		{"refinement_drops_regime", "purposes:\n  - {name: marketing.profiling, legal_bases: {gdpr: [consent]}}\n",
			"purposes[0].legal_bases: no legal basis under pipl, the configured regime"},
		{"unknown_basis", "purposes:\n  - {name: loyalty.points, legal_bases: {pipl: [contrat]}}\n",
			`purposes[0].legal_bases[pipl][0]: unknown legal basis "contrat"; did you mean "contract"?`},
		// proves CON-01 (declared purposes): PIPL has no legitimate-interests basis.
		{"legitimate_interest_pipl", "purposes:\n  - {name: loyalty.points, legal_bases: {pipl: [legitimate_interest]}}\n",
			"purposes[0].legal_bases[pipl][0]: legitimate_interest is not a lawful basis under pipl"},
		{"unknown_category", "purposes:\n  - {name: loyalty.points, legal_bases: {pipl: [contract]}, categories: [user.loyalty.points]}\n",
			`purposes[0].categories[0]: unknown data category "user.loyalty.points"`},
		{"misspelt_declared_category", "categories: [{name: user.loyalty}, {name: user.loyalty.points}]\npurposes:\n  - {name: loyalty.points, legal_bases: {pipl: [contract]}, categories: [user.loyalty.pionts]}\n",
			`purposes[0].categories[0]: unknown data category "user.loyalty.pionts"; did you mean "user.loyalty.points"?`},
		{"unknown_mask", "purposes:\n  - {name: loyalty.points, legal_bases: {pipl: [contract]}, mask: [user.contact.emial]}\n",
			`purposes[0].mask[0]: unknown data category "user.contact.emial"; did you mean "user.contact.email"?`},
		{"mask_not_needed", "purposes:\n  - {name: loyalty.points, legal_bases: {pipl: [contract]}, categories: [user.account], mask: [user.contact.email]}\n",
			"purposes[0].mask[0]: user.contact.email is not among the categories the purpose needs"},
		{"prohibited_needed", "purposes:\n  - {name: loyalty.points, legal_bases: {pipl: [contract]}, categories: [user.behavior.purchase_history], prohibited: [user.behavior]}\n",
			"purposes[0].prohibited[0]: user.behavior overlaps the categories the purpose needs"},
		{"separate_changed", "purposes:\n  - {name: third_party.sharing, separate: sensitive}\n",
			"purposes[0].separate: the built-in third_party.sharing needs separate consent of scope provide_to_handler, which cannot be changed"},
		{"fallback_not_personalised", "purposes:\n  - {name: loyalty.points, legal_bases: {pipl: [contract]}, non_personalised_fallback: true}\n",
			"purposes[0].non_personalised_fallback: only a personalised purpose"},
		{"explanation_not_automated", "purposes:\n  - {name: loyalty.points, legal_bases: {pipl: [contract]}, explanation: {model: m1, logic: {en: points}, features: [user.account]}}\n",
			"purposes[0].explanation: only a purpose that makes automated decisions is explained"},
		{"explanation_unknown_feature", "purposes:\n  - {name: credit.score, legal_bases: {pipl: [contract]}, automated_decision: true, explanation: {model: m1, logic: {zh: 评分}, features: [user.finance]}}\n",
			`purposes[0].explanation.features[0]: unknown data category "user.finance"`},
		{"bases_twice", "consent:\n  purposes:\n    marketing.profiling: {legal_bases: {pipl: [consent]}}\npurposes:\n  - {name: marketing.profiling, legal_bases: {pipl: [consent]}}\n",
			"purposes[0].legal_bases: also set in consent.purposes[marketing.profiling]; set them in one place"},
		{"category_twice", "categories: [{name: user.loyalty}, {name: user.loyalty}]\n",
			`categories[1].name: "user.loyalty" is also categories[0]`},
		{"category_bad_name", "categories: [{name: loyalty.tier}]\n",
			`categories[0].name: "loyalty.tier" is not a data category name: one below user`},
		{"category_upper", "categories: [{name: user.Loyalty}]\n",
			`categories[0].name: "user.Loyalty" is not a data category name`},
		{"category_built_in", "categories: [{name: user.contact.email}]\n",
			`categories[0].name: "user.contact.email" is a built-in category`},
		{"category_no_parent", "categories: [{name: user.loyalty.tier}]\n",
			`categories[0].name: the parent "user.loyalty" of "user.loyalty.tier" is neither built in nor declared`},
		{"route_misspelt_declared", "categories: [{name: user.loyalty}, {name: user.loyalty.points}]\nroutes:\n  - {match: 'GET /m/{id}', purpose: essential.service, subject: {path: id}, fields: {p: user.loyalty.pionts}}\n",
			`routes[0].fields[p]: unknown data category "user.loyalty.pionts"; did you mean "user.loyalty.points"?`},
		{"route_undeclared_purpose", "routes:\n  - {match: 'GET /m/{id}', purpose: loyalty.points, subject: {path: id}}\n",
			`routes[0].purpose: unknown purpose "loyalty.points"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if _, err := f.Taxonomy(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Taxonomy() = %v\nwant an error containing %s", err, tc.want)
			}
		})
	}
}
