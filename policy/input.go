package policy

import (
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/privguard/privguard"
)

// terms builds policy inputs as AST values directly (no map or JSON in between), from
// terms made once: the keys, and the strings an input usually holds (purposes, categories,
// regimes, channels, consent states and reasons). It is read-only after newTerms, so
// shared by concurrent decisions; topdown does not modify its input.
type terms struct {
	strings map[string]*ast.Term
	result  resultKeys

	purpose, categories, regime, role, channel, gpc, recipient, piaID, today, consent, subject *ast.Term
	state, allowed, reason, guardian, separate, sensitive                                      *ast.Term
	restricted, objectedDM, personalisationOff, gpcOptOut, minor, ageBand, contacts            *ast.Term
}

func newTerms(tax *privguard.Taxonomy, freq map[string]FrequencyLimit, extra ...string) *terms {
	t := &terms{strings: map[string]*ast.Term{}, result: newResultKeys()}
	key := func(s string) *ast.Term { return ast.StringTerm(s) }
	t.purpose, t.categories, t.regime, t.role, t.channel = key("purpose"), key("categories"), key("regime"), key("role"), key("channel")
	t.gpc, t.recipient, t.piaID, t.today, t.consent, t.subject = key("gpc"), key("recipient"), key("pia_id"), key("today"), key("consent"), key("subject")
	t.state, t.allowed, t.reason, t.guardian, t.separate, t.sensitive = key("state"), key("allowed"), key("reason"), key("guardian"), key("separate"), key("sensitive")
	t.restricted, t.objectedDM, t.personalisationOff = key("restricted"), key("objected_dm"), key("personalisation_off")
	t.gpcOptOut, t.minor, t.ageBand, t.contacts = key("gpc_opt_out"), key("minor"), key("age_band"), key("contacts")

	add := func(s string) {
		if _, ok := t.strings[s]; !ok {
			t.strings[s] = ast.StringTerm(s)
		}
	}
	for _, p := range tax.Purposes() {
		add(string(p))
		info, _ := tax.Lookup(p)
		for _, list := range [][]privguard.DataCategory{info.Categories, info.Mask, info.Prohibited} {
			for _, c := range list {
				add(string(c))
			}
		}
	}
	for _, c := range tax.SensitiveCategories() {
		add(string(c))
	}
	for _, c := range tax.Categories() {
		add(string(c.Category))
	}
	for ch := range freq {
		add(ch)
	}
	for _, s := range extra {
		add(s) // assessment ids, recipient names
	}
	for _, s := range []string{"", string(privguard.RegimePIPL), string(privguard.RegimeGDPR), "18+",
		"given", "renewed", "withdrawn", "expired", "refused", "invalidated", "unknown",
		string(privguard.ReasonConsentGiven), string(privguard.ReasonConsentMissing), string(privguard.ReasonConsentRefused),
		string(privguard.ReasonConsentWithdrawn), string(privguard.ReasonConsentExpired), string(privguard.ReasonConsentInvalidated),
		string(privguard.ReasonGuardianConsentRequired), string(privguard.ReasonSeparateConsentRequired)} {
		add(s)
	}
	return t
}

func (t *terms) str(s string) *ast.Term {
	if x, ok := t.strings[s]; ok {
		return x
	}
	return ast.StringTerm(s)
}

// input returns the policy input for in on the date today. The subject's identity is left
// out: the policy decides on facts, not on who.
func (t *terms) input(in *privguard.Input, today *ast.Term) ast.Value {
	cats := make([]*ast.Term, len(in.Categories))
	for i, c := range in.Categories {
		cats[i] = t.str(string(c))
	}
	b := ast.InternedTerm[bool]
	c, f := &in.Consent, &in.Facts
	return ast.NewObject(
		[2]*ast.Term{t.purpose, t.str(string(in.Purpose))},
		[2]*ast.Term{t.categories, ast.ArrayTerm(cats...)},
		[2]*ast.Term{t.regime, t.str(string(in.Regime))},
		[2]*ast.Term{t.role, t.str(in.Role)},
		[2]*ast.Term{t.channel, t.str(in.Channel)},
		[2]*ast.Term{t.gpc, b(in.GPC)},
		[2]*ast.Term{t.recipient, t.str(in.Recipient)},
		[2]*ast.Term{t.piaID, t.str(in.PIAID)},
		[2]*ast.Term{t.today, today},
		[2]*ast.Term{t.consent, ast.NewTerm(ast.NewObject(
			[2]*ast.Term{t.state, t.str(c.State)},
			[2]*ast.Term{t.allowed, b(c.Allowed)},
			[2]*ast.Term{t.reason, t.str(string(c.Reason))},
			[2]*ast.Term{t.guardian, b(c.Guardian)},
			[2]*ast.Term{t.separate, b(c.Separate)},
			[2]*ast.Term{t.sensitive, b(c.Sensitive)},
		))},
		[2]*ast.Term{t.subject, ast.NewTerm(ast.NewObject(
			[2]*ast.Term{t.restricted, b(f.Restricted)},
			[2]*ast.Term{t.objectedDM, b(f.ObjectedToDM)},
			[2]*ast.Term{t.personalisationOff, b(f.PersonalisationOff)},
			[2]*ast.Term{t.gpcOptOut, b(f.GPCOptOut)},
			[2]*ast.Term{t.minor, b(f.Minor)},
			[2]*ast.Term{t.ageBand, t.str(f.AgeBand)},
			[2]*ast.Term{t.contacts, ast.InternedTerm(f.Contacts)},
		))},
	)
}
