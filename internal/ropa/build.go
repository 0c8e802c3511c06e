package ropa

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/internal/config"
)

// Options configures [Build].
type Options struct {
	// Now is the time the record is generated at (and transfer mechanisms are checked
	// against). If nil, time.Now.
	Now func() time.Time
	// Retention, if set, returns the enforced retention rules of a purpose, for the
	// record's retention.rules. Nil means none: the record then has the declared
	// retention statement only.
	Retention func(privguard.Purpose) []RetentionRule
}

// Build returns the record of processing of cfg, a configuration Parse validated. Its
// taxonomy is built and checked as serve does (cfg.Taxonomy); an error from that is
// returned as it is.
func Build(cfg *config.File, opts Options) (*Record, error) {
	if cfg == nil {
		return nil, errors.New("ropa: no configuration")
	}
	tax, err := cfg.Taxonomy()
	if err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	b := &builder{cfg: cfg, tax: tax, opts: opts, now: opts.Now().UTC(), regime: cfg.Regime, categories: map[string]bool{}}
	if b.regime == "" {
		b.regime = string(privguard.RegimePIPL)
	}
	return b.record(), nil
}

// builder holds what one Build call reads.
type builder struct {
	cfg        *config.File
	tax        *privguard.Taxonomy
	opts       Options
	now        time.Time
	regime     string
	categories map[string]bool // the categories the record names
	gaps       []Gap
}

func (b *builder) record() *Record {
	rec := &Record{Schema: SchemaID, GeneratedAt: b.now, Regime: b.regime, Controller: b.controller(),
		Activities: []Activity{}, Systems: []System{}, Categories: []Category{}}
	for _, p := range b.used() {
		rec.Activities = append(rec.Activities, b.activity(p))
	}
	for _, s := range b.cfg.DSAR.Stores {
		sys := System{Name: s.Name, Type: s.Type, Categories: []string{}}
		for _, c := range storeCategories(s) {
			sys.Categories = appendNew(sys.Categories, c)
			b.categories[c] = true
		}
		slices.Sort(sys.Categories)
		rec.Systems = append(rec.Systems, sys)
	}
	declared := map[privguard.DataCategory]privguard.CategoryInfo{}
	for _, c := range b.tax.Categories() {
		declared[c.Category] = c
	}
	for _, c := range sortedKeys(b.categories) {
		d, isDeclared := declared[privguard.DataCategory(c)]
		rec.Categories = append(rec.Categories, Category{Category: c, Description: d.Description,
			Sensitive: b.tax.Sensitive(privguard.DataCategory(c)), Declared: isDeclared})
	}
	rec.Gaps = append([]Gap{}, b.gaps...)
	return rec
}

// gap records that field (of activity, or of the record when activity is "") is not
// declared, and returns the field's name for the activity's list.
func (b *builder) gap(activity, field, key, detail string) string {
	b.gaps = append(b.gaps, Gap{Activity: activity, Field: field, Key: key, Detail: detail})
	return field
}

// controller returns the controller and its DPO; dsar.disclosure's controller stands in
// for a controller not declared under controller.
func (b *builder) controller() Controller {
	c := b.cfg.Controller
	out := Controller{Name: c.Name, Contact: c.Contact, Representative: c.Representative,
		DPO: DPO{Name: c.DPO.Name, Contact: c.DPO.Contact, FiledWith: c.DPO.FiledWith}}
	if c.DPO.FiledOn != nil {
		out.DPO.FiledOn = c.DPO.FiledOn.String()
	}
	if out.Name == "" {
		out.Name = b.cfg.DSAR.Disclosure.Controller.Name
	}
	if out.Contact == "" {
		out.Contact = b.cfg.DSAR.Disclosure.Controller.Contact
	}
	for _, g := range []struct{ value, field, key, detail string }{
		{out.Name, "controller.name", "controller.name", "the name of the controller (GDPR Art. 30(1)(a))"},
		{out.Contact, "controller.contact", "controller.contact", "the controller's contact details (GDPR Art. 30(1)(a))"},
		{out.DPO.Name, "controller.dpo.name", "controller.dpo.name", "the data protection officer (PIPL Art. 52, GDPR Art. 37)"},
		{out.DPO.Contact, "controller.dpo.contact", "controller.dpo.contact", "the DPO's published contact (PIPL Art. 52, GDPR Arts. 30(1)(a), 37(7))"},
	} {
		if g.value == "" {
			b.gap("", g.field, g.key, g.detail)
		}
	}
	return out
}

// used returns the purposes in use, sorted, each with what names it: a route (its purpose
// or purposes), purposes:, consent.purposes, a recipient (a registered purpose exactly).
func (b *builder) used() []usedPurpose {
	by := map[privguard.Purpose][]string{}
	add := func(p, why string) {
		if _, ok := b.tax.Lookup(privguard.Purpose(p)); ok && p != "" {
			by[privguard.Purpose(p)] = appendNew(by[privguard.Purpose(p)], why)
		}
	}
	for _, r := range b.cfg.Routes {
		add(r.Purpose, "routes")
		for _, p := range r.Purposes {
			add(p, "routes")
		}
	}
	for _, p := range b.cfg.Purposes {
		add(p.Name, "purposes")
	}
	for p := range b.cfg.Consent.Purposes {
		add(p, "consent.purposes")
	}
	for _, rc := range b.cfg.DSAR.Recipients {
		for _, p := range rc.Purposes {
			add(p, "dsar.recipients")
		}
	}
	var out []usedPurpose
	for _, p := range sortedKeys(by) {
		why := by[p]
		slices.Sort(why)
		out = append(out, usedPurpose{p, why})
	}
	return out
}

type usedPurpose struct {
	purpose privguard.Purpose
	by      []string
}

// activity returns the activity of purpose u.
func (b *builder) activity(u usedPurpose) Activity {
	info, _ := b.tax.Lookup(u.purpose)
	name := string(u.purpose)
	decl := b.declared(name)
	a := Activity{Purpose: name, DeclaredBy: u.by, LegalBases: map[string][]string{}, SeparateConsent: string(info.Separate),
		DataSubjects: nonNil(decl.Subjects), Categories: []CategoryUse{}, Prohibited: []string{}, Touched: []Touch{},
		Sources: nonNil(decl.Sources), Recipients: []Recipient{}, Transfers: []Transfer{}, Scale: decl.Scale, Scenario: decl.Scenario,
		Systems: nonNil(decl.Systems), Owner: decl.Owner, Routes: []string{}, Gaps: []string{}}
	gap := func(field, key, detail string) { a.Gaps = append(a.Gaps, b.gap(name, field, key, detail)) }
	key := b.purposeKey(name)

	// (a)-(b): what it is and why it is lawful.
	a.BuiltIn = slices.ContainsFunc(privguard.DefaultPurposes(), func(p privguard.PurposeInfo) bool { return p.Purpose == u.purpose })
	a.Description = Text{EN: decl.Description["en"], ZH: decl.Description["zh"]}
	if a.BuiltIn {
		if a.Description.EN == "" {
			a.Description.EN = info.Description
		}
		if a.Description.ZH == "" {
			a.Description.ZH = builtInZH[name]
		}
	}
	if a.Description.EN == "" {
		gap("description.en", key+".description.en", "what the purpose is, in English")
	}
	if a.Description.ZH == "" {
		gap("description.zh", key+".description.zh", "what the purpose is, in Chinese")
	}
	for r, bases := range info.Bases {
		for _, basis := range bases {
			a.LegalBases[string(r)] = append(a.LegalBases[string(r)], string(basis))
		}
	}
	if len(info.Bases[privguard.Regime(b.regime)]) == 0 {
		gap("legal_bases."+b.regime, key+".legal_bases", "no legal basis under "+b.regime+", the configured regime: every use is denied")
	}

	// (c): whose data, which data.
	if len(a.DataSubjects) == 0 {
		gap("data_subjects", key+".subjects", "the categories of data subjects (customers, members, prospects)")
	}
	sensitive := info.Separate == privguard.SeparateSensitive
	for _, c := range info.Categories {
		s := b.tax.Sensitive(c)
		sensitive = sensitive || s
		a.Categories = append(a.Categories, CategoryUse{Category: string(c), Sensitive: s,
			Masked: slices.ContainsFunc(info.Mask, func(m privguard.DataCategory) bool { return c.Within(m) })})
		b.categories[string(c)] = true
	}
	for _, c := range info.Prohibited {
		a.Prohibited = append(a.Prohibited, string(c))
		b.categories[string(c)] = true
	}
	needed := func(c privguard.DataCategory) bool { return slices.ContainsFunc(info.Categories, c.Within) }
	var sealed, minimised []string
	for _, r := range b.cfg.Routes {
		if r.Purpose != name && !slices.Contains(r.Purposes, name) {
			continue
		}
		a.Routes = append(a.Routes, r.Match)
		for _, path := range sortedKeys(r.Fields) {
			c := privguard.DataCategory(r.Fields[path])
			b.categories[string(c)] = true
			if !needed(c) {
				minimised = appendNew(minimised, string(c))
				continue
			}
			s := b.tax.Sensitive(c)
			sensitive = sensitive || s
			a.Touched = append(a.Touched, Touch{Category: string(c), Sensitive: s, Via: "route", At: r.Match + ": " + path})
		}
		for _, e := range r.Encrypt {
			if c, isField := r.Fields[e]; isField {
				sealed = appendNew(sealed, c)
			} else {
				sealed = appendNew(sealed, e) // a category, or a body path
			}
		}
	}
	for _, s := range b.cfg.DSAR.Stores {
		for _, t := range s.Tables {
			for _, col := range sortedKeys(t.Columns) {
				if c := privguard.DataCategory(t.Columns[col]); needed(c) {
					st := b.tax.Sensitive(c)
					sensitive = sensitive || st
					a.Touched = append(a.Touched, Touch{Category: string(c), Sensitive: st, Via: "store", At: s.Name + ": " + t.Table + "." + col})
					a.Systems = appendNew(a.Systems, "store "+s.Name)
				}
			}
		}
	}
	if len(a.Categories) == 0 && len(a.Touched) == 0 {
		gap("categories", key+".categories", "the categories of personal data the purpose needs (minimum necessary): with none, the policy drops every field it is shown")
	}

	// Sources.
	if len(a.Sources) == 0 {
		a.Sources = nonNil(b.cfg.DSAR.Disclosure.Sources)
	}
	if len(a.Sources) == 0 {
		gap("sources", key+".sources", "where the data comes from (collected from the subject, a partner, derived)")
	}

	// (d)-(e): recipients and transfers.
	b.recipients(&a, info, gap, key)

	// (f): retention.
	a.Retention.Rules = []RetentionRule{}
	if b.opts.Retention != nil {
		a.Retention.Rules = append(a.Retention.Rules, b.opts.Retention(u.purpose)...)
	} else {
		a.Retention.Rules = append(a.Retention.Rules, configuredRetention(b.cfg, u.purpose)...)
	}
	for _, bases := range info.Bases {
		if slices.Contains(bases, privguard.BasisConsent) {
			a.Retention.ConsentValidity = isoDuration(info.Validity)
		}
	}
	a.Retention.Statement = decl.Retention
	if a.Retention.Statement == "" {
		a.Retention.Statement = b.cfg.DSAR.Disclosure.Retention
	}
	if a.Retention.Statement == "" && len(a.Retention.Rules) == 0 {
		gap("retention", key+".retention", "the time limit for erasure (GDPR Art. 30(1)(f)); consent validity is not a retention period")
	}

	// (g): security.
	a.Security = Security{Sealed: nonNil(sealed), Minimised: nonNil(minimised), Masked: []string{}, Measures: decl.Security,
		DecisionLog: b.cfg.Listen != "" && len(a.Routes) > 0}
	slices.Sort(a.Security.Sealed)
	slices.Sort(a.Security.Minimised)
	for _, m := range info.Mask {
		a.Security.Masked = append(a.Security.Masked, string(m))
	}
	a.Security.EncryptionAtRest = b.encryptionAtRest(sealed)

	// GB/T 35273 §11.3.
	if a.Scale == "" {
		gap("scale", key+".scale", "the volume of people or records (GB/T 35273 §11.3)")
	}
	if a.Scenario == "" {
		gap("scenario", key+".scenario", "the business scenario the data is used in (GB/T 35273 §11.3)")
	}
	if len(a.Systems) == 0 {
		gap("systems", key+".systems", "the systems that carry the activity out (GB/T 35273 §11.3)")
	}
	if a.Owner == "" {
		gap("owner", key+".owner", "the team or person accountable (GB/T 35273 §11.3)")
	}
	a.Flags.Transferred = decl.Transferred
	a.Flags.Disclosed = info.Separate == privguard.SeparatePublic
	a.Flags.Sensitive = sensitive
	a.Flags.DirectMarketing, a.Flags.Personalised, a.Flags.SaleOrSharing = info.DirectMarketing, info.Personalised, info.SaleOrSharing
	a.Flags.AutomatedDecision, a.Flags.LargeScale = info.AutomatedDecision, info.LargeScale
	return a
}

// recipients fills a's recipients, transfers and the flags they decide.
func (b *builder) recipients(a *Activity, info *privguard.PurposeInfo, gap func(field, key, detail string), key string) {
	purpose := privguard.Purpose(a.Purpose)
	byName := map[string]int{}
	add := func(rc config.Recipient, via string) {
		if i, ok := byName[rc.Name]; ok {
			a.Recipients[i].Via = appendNew(a.Recipients[i].Via, via)
			return
		}
		byName[rc.Name] = len(a.Recipients)
		r := Recipient{Name: rc.Name, Role: rc.Role, Country: rc.Country, Contact: rc.Contact, Categories: nonNil(rc.Categories), Via: []string{via}}
		if r.Role == "" {
			r.Role = "processor" // config.Recipient's documented default
		}
		for _, c := range r.Categories {
			b.categories[c] = true
		}
		a.Recipients = append(a.Recipients, r)
	}
	declared := map[string]config.Recipient{}
	for _, rc := range b.cfg.DSAR.Recipients {
		declared[rc.Name] = rc
		if slices.ContainsFunc(rc.Purposes, func(p string) bool { return purpose.Within(privguard.Purpose(p)) }) {
			add(rc, "dsar.recipients")
		}
	}
	for _, r := range b.cfg.Routes {
		if r.Recipient == "" || (r.Purpose != a.Purpose && !slices.Contains(r.Purposes, a.Purpose)) {
			continue
		}
		rc, ok := declared[r.Recipient]
		if !ok {
			rc = config.Recipient{Name: r.Recipient}
			gap(fmt.Sprintf("recipients[%s]", r.Recipient), "dsar.recipients", fmt.Sprintf("the route %s provides data to %s, which dsar.recipients does not declare (role, country, contact)", r.Match, r.Recipient))
		}
		add(rc, "route "+r.Match)
	}
	slices.SortFunc(a.Recipients, func(x, y Recipient) int { return strings.Compare(x.Name, y.Name) })
	for i := range a.Recipients {
		r := &a.Recipients[i]
		at := fmt.Sprintf("recipients[%s]", r.Name)
		rkey := fmt.Sprintf("dsar.recipients[%s]", r.Name)
		if _, ok := declared[r.Name]; !ok {
			continue // reported once above
		}
		switch r.Role {
		case "processor":
			a.Flags.Entrusted = true
		default:
			a.Flags.Shared = true
		}
		if r.Contact == "" {
			gap(at+".contact", rkey+".contact", "how to reach the recipient (PIPL Arts. 23, 39)")
		}
		if len(r.Categories) == 0 {
			gap(at+".categories", rkey+".categories", "the categories of personal data the recipient receives")
		}
		if r.Country == "" {
			gap(at+".country", rkey+".country", "where the recipient is: without it, whether this is a transfer abroad is unknown")
			continue
		}
		if !abroad(b.regime, r.Country) {
			continue
		}
		r.CrossBorder, a.Flags.CrossBorder = true, true
		t := Transfer{Recipient: r.Name, Country: r.Country}
		if tr := declared[r.Name].Transfer; tr != nil {
			t.Mechanism, t.Reference = tr.Mechanism, tr.Ref
			if !lawfulMechanism(b.regime, t.Mechanism) {
				gap(at+".transfer.mechanism", rkey+".transfer.mechanism", fmt.Sprintf("%s is not a transfer mechanism under %s (%s)", t.Mechanism, b.regime, mechanisms(b.regime)))
			}
			if tr.Date != nil {
				t.Date = tr.Date.String()
			}
			if tr.Expires != nil {
				t.Expires = tr.Expires.String()
				if tr.Expires.Before(b.now) {
					gap(at+".transfer.expires", rkey+".transfer.expires", fmt.Sprintf("the transfer mechanism lapsed on %s", t.Expires))
				}
			}
		} else {
			gap(at+".transfer", rkey+".transfer", fmt.Sprintf("%s is outside %s: the transfer needs a mechanism (%s)", r.Country, area(b.regime), mechanisms(b.regime)))
		}
		a.Transfers = append(a.Transfers, t)
	}
	switch info.Separate {
	case privguard.SeparateProvide:
		a.Flags.Shared = true
		if len(a.Recipients) == 0 {
			gap("recipients", "dsar.recipients", "the purpose provides data to another handler, but no recipient declares it")
		}
	case privguard.SeparateCrossBorder:
		a.Flags.CrossBorder = true
		if len(a.Transfers) == 0 {
			gap("transfers", "dsar.recipients", "the purpose transfers data abroad, but no recipient abroad declares it")
		}
	}
}

// declared returns purposes[]'s entry for name, or the zero one.
func (b *builder) declared(name string) config.DeclaredPurpose {
	for _, p := range b.cfg.Purposes {
		if p.Name == name {
			return p
		}
	}
	return config.DeclaredPurpose{}
}

// purposeKey is where the configuration declares name's facts: purposes[i], or a new
// entry of purposes: for it.
func (b *builder) purposeKey(name string) string {
	for i, p := range b.cfg.Purposes {
		if p.Name == name {
			return fmt.Sprintf("purposes[%d]", i)
		}
	}
	return "purposes[name: " + name + "]"
}

// encryptionAtRest says what privguard encrypts at rest of an activity whose routes seal
// sealed, and how the keys are protected: by a KMS key (its scheme only: the URI may name
// an account), or by the local master key file.
func (b *builder) encryptionAtRest(sealed []string) string {
	if len(sealed) == 0 {
		return "none sealed by privguard: the stores keep the data as they do"
	}
	keys := "the local master key file"
	if u := b.cfg.Vault.KEKURI; u != "" {
		scheme, _, _ := strings.Cut(u, "://")
		if parsed, err := url.Parse(u); err == nil && parsed.Scheme != "" {
			scheme = parsed.Scheme
		}
		keys = "a KMS key (" + scheme + ")"
	}
	return "sealed fields stored encrypted: per-subject AES-256-GCM keys (Tink), wrapped by " + keys + "; crypto-shredded on erasure"
}

// storeCategories returns the categories a store's data map holds.
func storeCategories(s config.Store) []string {
	var out []string
	for _, t := range s.Tables {
		for _, col := range sortedKeys(t.Columns) {
			out = appendNew(out, t.Columns[col])
		}
	}
	return out
}

// isoDuration writes d as an ISO 8601 duration in whole days, hours or minutes;
// "until_withdrawn" for zero.
func isoDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "until_withdrawn"
	case d%(24*time.Hour) == 0:
		return "P" + strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "D"
	case d%time.Hour == 0:
		return "PT" + strconv.FormatInt(int64(d/time.Hour), 10) + "H"
	}
	return "PT" + strconv.FormatInt(int64((d+time.Minute-1)/time.Minute), 10) + "M"
}

// appendNew appends s to list unless it is there.
func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// nonNil returns list, or an empty list for nil (so that JSON has [] and not null).
func nonNil(list []string) []string {
	if list == nil {
		return []string{}
	}
	return slices.Clone(list)
}

// sortedKeys returns m's keys in order.
func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// configuredRetention is the configuration's retention rules for purpose p, each as the
// retention of its categories: the period, what it runs from, what happens then (erase,
// anonymise, or restrict to storage and security only for its keep, then erase), and the
// ground of a restriction.
func configuredRetention(cfg *config.File, p privguard.Purpose) []RetentionRule {
	var out []RetentionRule
	for _, r := range cfg.RetentionRules() {
		if !slices.Contains(r.Purposes, p) {
			continue
		}
		rr := RetentionRule{Period: isoDuration(r.Period), From: string(r.From), Action: string(r.Then), Basis: r.Ground, Rule: r.Name}
		if r.Period == 0 {
			rr.Period = "P0D"
		}
		if r.Then == "delete" {
			rr.Action = "erase"
		}
		if r.Keep > 0 {
			rr.Keep = isoDuration(r.Keep)
		}
		for _, c := range r.Categories {
			rr.Categories = append(rr.Categories, string(c))
		}
		out = append(out, rr)
	}
	return out
}
