package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/privguard/privguard"
)

// reference evaluates testdata/reference/privguard.rego, a frozen copy of the default
// policy as it was before issue 10 rewrote the bundle for speed, the way the engine did
// then: the whole module evaluated by topdown, the input built term by term, the result
// read through OPA's JSON conversion. Every optimisation is measured against it.
type reference struct {
	pq rego.PreparedEvalQuery
}

func newReference(t testing.TB, data map[string]any) *reference {
	t.Helper()
	src, err := os.ReadFile("testdata/reference/privguard.rego")
	if err != nil {
		t.Fatal(err)
	}
	pq, err := rego.New(rego.Query(Query), rego.Store(inmem.NewFromObject(map[string]any{"privguard": data})),
		rego.Module("privguard.rego", string(src))).PrepareForEval(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &reference{pq: pq}
}

// referenceAssessments are the assessments and recipients the differential tests decide
// with: current, lapsing and rejected assessments of overlapping scope, recipients inside
// and outside both regimes' areas and one without a country.
func referenceAssessments() ([]Assessment, []Recipient) {
	d := func(s string) time.Time {
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	return []Assessment{
			{ID: "pia-2026-07", Purposes: []privguard.Purpose{"marketing.profiling", "third_party.sharing", "cross_border"},
				Categories: []privguard.DataCategory{"user.derived", "user.behavior", "user.health", "user.contact"}, Recipients: []string{"Acme", "Overseas"},
				Date: d("2026-01-01"), Review: d("2027-01-01"), Conclusion: "approved"},
			{ID: "pia-ads", Purposes: []privguard.Purpose{"marketing.advertising"}, Categories: []privguard.DataCategory{"user"},
				Recipients: []string{"Acme"}, Date: d("2025-01-01"), Review: d("2026-06-01"), Conclusion: "approved_with_measures"},
			{ID: "pia-rejected", Purposes: []privguard.Purpose{"marketing", "sensitive", "third_party"}, Categories: []privguard.DataCategory{"user"},
				Recipients: []string{"Acme", "Overseas", "Local", "Nocountry"}, Date: d("2025-01-01"), Review: d("2030-01-01"), Conclusion: "rejected"},
			{ID: "pia-sensitive", Purposes: []privguard.Purpose{"sensitive.processing", "personalize"},
				Categories: []privguard.DataCategory{"user.health", "user.biometric", "user.behavior", "user.derived.inferred_health"},
				Date:       d("2026-03-01"), Review: d("2026-09-01"), Conclusion: "approved"},
		}, []Recipient{
			{Name: "Acme", Country: "CN", Role: "processor"}, {Name: "Overseas", Country: "US", Role: "handler"},
			{Name: "Local", Country: "DE", Role: "processor"}, {Name: "Nocountry"},
		}
}

func (r *reference) decide(t testing.TB, in *privguard.Input) privguard.Decision {
	t.Helper()
	rs, err := r.pq.Eval(context.Background(), rego.EvalParsedInput(referenceInput(in)))
	if err != nil || len(rs) != 1 || len(rs[0].Expressions) != 1 {
		t.Fatalf("reference: %v %v", rs, err)
	}
	d, err := referenceParse(rs[0].Expressions[0].Value)
	if err != nil {
		t.Fatalf("reference: %v", err)
	}
	return d
}

// referenceInput is the engine's input conversion before issue 10.
func referenceInput(in *privguard.Input) ast.Value {
	cats := make([]*ast.Term, len(in.Categories))
	for i, c := range in.Categories {
		cats[i] = ast.StringTerm(string(c))
	}
	c, f := &in.Consent, &in.Facts
	return ast.NewObject(
		ast.Item(ast.StringTerm("purpose"), ast.StringTerm(string(in.Purpose))),
		ast.Item(ast.StringTerm("categories"), ast.ArrayTerm(cats...)),
		ast.Item(ast.StringTerm("regime"), ast.StringTerm(string(in.Regime))),
		ast.Item(ast.StringTerm("role"), ast.StringTerm(in.Role)),
		ast.Item(ast.StringTerm("channel"), ast.StringTerm(in.Channel)),
		ast.Item(ast.StringTerm("gpc"), ast.BooleanTerm(in.GPC)),
		ast.Item(ast.StringTerm("recipient"), ast.StringTerm(in.Recipient)),
		ast.Item(ast.StringTerm("pia_id"), ast.StringTerm(in.PIAID)),
		ast.Item(ast.StringTerm("today"), ast.StringTerm(in.Time.UTC().Format(time.DateOnly))),
		ast.Item(ast.StringTerm("consent"), ast.ObjectTerm(
			ast.Item(ast.StringTerm("state"), ast.StringTerm(c.State)),
			ast.Item(ast.StringTerm("allowed"), ast.BooleanTerm(c.Allowed)),
			ast.Item(ast.StringTerm("reason"), ast.StringTerm(string(c.Reason))),
			ast.Item(ast.StringTerm("guardian"), ast.BooleanTerm(c.Guardian)),
			ast.Item(ast.StringTerm("separate"), ast.BooleanTerm(c.Separate)),
			ast.Item(ast.StringTerm("sensitive"), ast.BooleanTerm(c.Sensitive)),
		)),
		ast.Item(ast.StringTerm("subject"), ast.ObjectTerm(
			ast.Item(ast.StringTerm("restricted"), ast.BooleanTerm(f.Restricted)),
			ast.Item(ast.StringTerm("objected_dm"), ast.BooleanTerm(f.ObjectedToDM)),
			ast.Item(ast.StringTerm("personalisation_off"), ast.BooleanTerm(f.PersonalisationOff)),
			ast.Item(ast.StringTerm("gpc_opt_out"), ast.BooleanTerm(f.GPCOptOut)),
			ast.Item(ast.StringTerm("minor"), ast.BooleanTerm(f.Minor)),
			ast.Item(ast.StringTerm("age_band"), ast.StringTerm(f.AgeBand)),
			ast.Item(ast.StringTerm("contacts"), ast.IntNumberTerm(f.Contacts)),
		)),
	)
}

// referenceParse is the engine's result parsing before issue 10 (from OPA's JSON form).
func referenceParse(v any) (privguard.Decision, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return privguard.Decision{}, errMalformed
	}
	allow, ok := m["allow"].(bool)
	if !ok {
		return privguard.Decision{}, errMalformed
	}
	d := privguard.Decision{Effect: privguard.Deny}
	if allow {
		d.Effect = privguard.Allow
	}
	d.Assessment, _ = m["assessment"].(string)
	reasons, _ := m["reasons"].([]any)
	for _, r := range reasons {
		if s, ok := r.(string); ok {
			d.Reasons = append(d.Reasons, privguard.Reason(s))
		}
	}
	if !allow && len(d.Reasons) == 0 {
		return privguard.Decision{}, errMalformed
	}
	obligations, _ := m["obligations"].([]any)
	for _, o := range obligations {
		om, ok := o.(map[string]any)
		if !ok {
			return privguard.Decision{}, errMalformed
		}
		kind, _ := om["kind"].(string)
		ob := privguard.Obligation{Kind: privguard.ObligationKind(kind)}
		cats, _ := om["categories"].([]any)
		for _, c := range cats {
			if s, ok := c.(string); ok {
				ob.Categories = append(ob.Categories, privguard.DataCategory(s))
			}
		}
		if r, ok := om["remaining"].(json.Number); ok {
			n, _ := strconv.Atoi(string(r))
			ob.Remaining = n
		}
		d.Obligations = append(d.Obligations, ob)
	}
	slices.SortFunc(d.Obligations, func(a, b privguard.Obligation) int { return strings.Compare(string(a.Kind), string(b.Kind)) })
	return d, nil
}

// categoryPool is what generated inputs ask for: every category a purpose of the default
// taxonomy names, prohibits or masks, their children and parents, sensitive ones, near
// misses of the prefix rule ("user.contactX") and unknown ones.
func categoryPool(tax *privguard.Taxonomy) []privguard.DataCategory {
	seen := map[privguard.DataCategory]bool{}
	add := func(c privguard.DataCategory) { seen[c] = true }
	for _, p := range tax.Purposes() {
		info, _ := tax.Lookup(p)
		for _, list := range [][]privguard.DataCategory{info.Categories, info.Mask, info.Prohibited} {
			for _, c := range list {
				add(c)
				add(c + ".child")
				add(c + "X")
				if i := strings.LastIndexByte(string(c), '.'); i > 0 {
					add(c[:i])
				}
			}
		}
	}
	for _, c := range SensitiveCategories() {
		add(c)
		add(c + ".sub")
		add(c + "_not")
	}
	for _, c := range []privguard.DataCategory{"user", "user.contact.phone_number", "user.name.nickname", "user.behavior.browsing_history",
		"user.derived.inferred_health", "user.derived.rfm_score", "user.unknown", "system.operations", "",
		"user.contact.电话", "user.contact电话", "usér.contact", ".user", "user..contact", "user.contact."} {
		add(c)
	}
	out := make([]privguard.DataCategory, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// generateInputs returns n inputs covering every purpose of the taxonomy (and unknown
// ones), both regimes (and an unknown one), minors, restrictions, objections, GPC,
// personalisation off, separate and sensitive consent, every consent state, and contact
// counts around every channel's limit.
func generateInputs(tax *privguard.Taxonomy, n int, seed uint64) []privguard.Input {
	r := rand.New(rand.NewPCG(seed, 10))
	purposes := []privguard.Purpose{"marketing.fax", "", "marketing", "marketing.communications.sms.extra"}
	purposes = append(purposes, tax.Purposes()...)
	cats := categoryPool(tax)
	channels := []string{"", "sms", "email", "push", "wechat", "fax"}
	regimes := []privguard.Regime{privguard.RegimePIPL, privguard.RegimeGDPR, "ccpa", ""}
	states := []struct {
		state   string
		allowed bool
		reason  privguard.Reason
	}{
		{"given", true, privguard.ReasonConsentGiven}, {"renewed", true, privguard.ReasonConsentGiven},
		{"withdrawn", false, privguard.ReasonConsentWithdrawn}, {"expired", false, privguard.ReasonConsentExpired},
		{"refused", false, privguard.ReasonConsentRefused}, {"invalidated", false, privguard.ReasonConsentInvalidated},
		{"unknown", false, privguard.ReasonConsentMissing}, {"unknown", false, ""}, {"given", false, privguard.ReasonGuardianConsentRequired},
	}
	flag := func(p float64) bool { return r.Float64() < p }
	out := make([]privguard.Input, 0, n)
	for i := range n {
		p := purposes[i%len(purposes)] // every purpose, round robin
		in := privguard.Input{Purpose: p, Regime: regimes[r.IntN(len(regimes))]}
		if r.IntN(5) > 0 {
			in.Regime = regimes[r.IntN(2)]
		}
		in.Channel = privguard.ChannelOf(p)
		if flag(0.3) {
			in.Channel = channels[r.IntN(len(channels))]
		}
		for range r.IntN(5) {
			in.Categories = append(in.Categories, cats[r.IntN(len(cats))])
		}
		s := states[r.IntN(len(states))]
		if flag(0.5) {
			s = states[0]
		}
		in.Consent = privguard.ConsentFacts{State: s.state, Allowed: s.allowed, Reason: s.reason,
			Guardian: flag(0.3), Separate: flag(0.4), Sensitive: flag(0.3)}
		in.GPC = flag(0.15)
		if flag(0.3) {
			in.Role = "campaign"
		}
		if flag(0.4) {
			in.Recipient = []string{"Acme", "Overseas", "Local", "Nocountry", "Unknown"}[r.IntN(5)]
		}
		if flag(0.4) {
			in.PIAID = []string{"pia-2026-07", "pia-ads", "pia-rejected", "pia-sensitive", "nope"}[r.IntN(5)]
		}
		// Dates on and around every assessment's date and review.
		days := []string{"2024-12-31", "2025-01-01", "2025-12-31", "2026-01-01", "2026-02-28", "2026-03-01", "2026-05-31",
			"2026-06-01", "2026-08-31", "2026-09-01", "2026-12-31", "2027-01-01", "2031-01-01"}
		in.Time, _ = time.Parse(time.DateOnly, days[r.IntN(len(days))])
		in.Time = in.Time.Add(time.Duration(r.IntN(86400)) * time.Second)
		in.Facts = privguard.SubjectFacts{Restricted: flag(0.1), ObjectedToDM: flag(0.1), PersonalisationOff: flag(0.15),
			GPCOptOut: flag(0.1), Minor: flag(0.15), AgeBand: "18+"}
		if in.Facts.Minor {
			in.Facts.AgeBand = "13"
		}
		// Contact counts around the limits (sms 3, email 7, push 5, wechat 4), and beyond.
		in.Facts.Contacts = []int{0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 100, -1}[r.IntN(14)]
		out = append(out, in)
	}
	return out
}

// TestDecisionsMatchTheReference runs generated inputs through the reference (the policy
// and evaluation path before issue 10) and through the engine, memo on and off, and
// compares the whole decision: effect, reasons in order, obligations with their
// categories and budgets.
func TestDecisionsMatchTheReference(t *testing.T) {
	tax, err := privguard.NewTaxonomy(privguard.DefaultPurposes())
	if err != nil {
		t.Fatal(err)
	}
	// A second configuration: every purpose masks its first category, other limits, and
	// purposes that decide automatically or profile at large scale.
	infos := privguard.DefaultPurposes()
	for i := range infos {
		if len(infos[i].Categories) > 0 {
			infos[i].Mask = infos[i].Categories[:1]
		}
		switch infos[i].Purpose {
		case "marketing.profiling", "essential.pricing":
			infos[i].AutomatedDecision = true
		case "personalize.recommendation", "analytics.reporting":
			infos[i].LargeScale = true
		}
	}
	masked, err := privguard.NewTaxonomy(infos)
	if err != nil {
		t.Fatal(err)
	}
	freq := map[string]FrequencyLimit{"sms": {Max: 1, Window: "24h"}, "email": {Max: 0, Window: "24h"}, "fax": {Max: 2, Window: "1h"}}
	n := 6000
	if testing.Short() {
		n = 1500
	}
	for _, cfg := range []struct {
		name string
		tax  *privguard.Taxonomy
		freq map[string]FrequencyLimit
	}{{"default", tax, nil}, {"masks_and_limits", masked, freq}} {
		t.Run(cfg.name, func(t *testing.T) {
			f := cfg.freq
			if f == nil {
				f = DefaultFrequency()
			}
			as, rs := referenceAssessments()
			data, err := dataWith(Config{Taxonomy: cfg.tax, Frequency: f, Assessments: as, Recipients: rs})
			if err != nil {
				t.Fatal(err)
			}
			ref := newReference(t, data)
			inputs := generateInputs(cfg.tax, n, 1)
			want := make([]privguard.Decision, len(inputs))
			for i := range inputs {
				want[i] = ref.decide(t, &inputs[i])
			}
			for _, cacheSize := range []int{-1, 0, 64} {
				t.Run(fmt.Sprintf("cache_%d", cacheSize), func(t *testing.T) {
					e, err := New(context.Background(), Config{Taxonomy: cfg.tax, Frequency: cfg.freq, CacheSize: cacheSize, Assessments: as, Recipients: rs})
					if err != nil {
						t.Fatal(err)
					}
					compareWithReference(t, e, inputs, want)
				})
			}
		})
	}
}

// compareWithReference decides inputs twice, the second time in another order, so that
// memoised decisions are answered for inputs other than the one that filled the entry.
func compareWithReference(t *testing.T, e *Engine, inputs []privguard.Input, want []privguard.Decision) {
	t.Helper()
	order := rand.New(rand.NewPCG(2, 3)).Perm(len(inputs))
	fails := 0
	for round := range 2 {
		for j := range inputs {
			i := j
			if round == 1 {
				i = order[j]
			}
			in := inputs[i]
			in.Subject = privguard.SubjectID("s-" + strconv.Itoa(i))
			got, err := e.Decide(context.Background(), in)
			if err != nil {
				t.Fatalf("Decide(%+v): %v", in, err)
			}
			got.ID, got.Revision = "", ""
			if diff := cmp.Diff(want[i], got); diff != "" {
				t.Errorf("round %d: Decide(%+v) differs from the reference (-want +got):\n%s", round, in, diff)
				if fails++; fails > 5 {
					t.FailNow()
				}
			}
		}
	}
}

// TestConcurrentDecisionsMatchTheReference decides the generated inputs from several
// goroutines at once on a small memo (rotating and growing under them); run with -race.
func TestConcurrentDecisionsMatchTheReference(t *testing.T) {
	tax, err := privguard.NewTaxonomy(privguard.DefaultPurposes())
	if err != nil {
		t.Fatal(err)
	}
	as, rs := referenceAssessments()
	data, err := dataWith(Config{Taxonomy: tax, Frequency: DefaultFrequency(), Assessments: as, Recipients: rs})
	if err != nil {
		t.Fatal(err)
	}
	ref := newReference(t, data)
	inputs := generateInputs(tax, 800, 7)
	want := make([]privguard.Decision, len(inputs))
	for i := range inputs {
		want[i] = ref.decide(t, &inputs[i])
	}
	e, err := New(context.Background(), Config{Taxonomy: tax, CacheSize: 32, Assessments: as, Recipients: rs})
	if err != nil {
		t.Fatal(err)
	}
	const workers = 4
	errs := make(chan string, workers)
	for w := range workers {
		go func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range 3 * len(inputs) {
				i := r.IntN(len(inputs))
				got, err := e.Decide(context.Background(), inputs[i])
				got.ID, got.Revision = "", ""
				if err != nil || !cmp.Equal(want[i], got) {
					errs <- fmt.Sprintf("Decide(%+v) = %+v, %v; want %+v", inputs[i], got, err, want[i])
					return
				}
			}
			errs <- ""
		}()
	}
	for range workers {
		if msg := <-errs; msg != "" {
			t.Error(msg)
		}
	}
}
