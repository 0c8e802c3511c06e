package config

import (
	"fmt"
	"slices"

	"github.com/privguard/privguard"
)

// declaredCategories checks categories[] and returns the valid ones for
// privguard.NewTaxonomy, with a message by path for each problem: a name that is not below
// "user" or breaks the grammar, a built-in name, a name declared twice, a parent that is
// neither built in nor declared.
func (f *File) declaredCategories() ([]privguard.CategoryInfo, []string) {
	var msgs []string
	var cats []privguard.CategoryInfo
	listed := privguard.KnownCategories()
	first := map[string]int{}
	for i, c := range f.Categories {
		at := fmt.Sprintf("categories[%d].name", i)
		name := privguard.DataCategory(c.Name)
		if j, dup := first[c.Name]; dup {
			msgs = append(msgs, fmt.Sprintf("%s: %q is also categories[%d]", at, c.Name, j))
			continue
		}
		first[c.Name] = i
		switch {
		case name.Validate() != nil || name == "user" || !name.Within("user"):
			msgs = append(msgs, fmt.Sprintf("%s: %q is not a data category name: one below user, of dot-separated lower-case letters, digits and underscores (user.loyalty.tier)", at, c.Name))
			continue
		case slices.Contains(listed, name):
			msgs = append(msgs, fmt.Sprintf("%s: %q is a built-in category; declare a new one below it, or use it as it is", at, c.Name))
			continue
		}
		cats = append(cats, privguard.CategoryInfo{Category: name, Description: c.Description.In("en"), Sensitive: c.Sensitive})
	}
	var valid []privguard.CategoryInfo
	for _, c := range cats {
		parent := privguard.DataCategory(privguard.Purpose(c.Category).Parent())
		if !parent.Known() && !slices.ContainsFunc(cats, func(o privguard.CategoryInfo) bool { return o.Category == parent }) {
			msgs = append(msgs, fmt.Sprintf("categories[%d].name: the parent %q of %q is neither built in nor declared; declare it too ({name: %s})",
				first[string(c.Category)], parent, c.Category, parent))
			continue
		}
		valid = append(valid, c)
	}
	return valid, msgs
}

// declaredPurposes applies purposes[] to infos (the built-in purposes with consent.purposes
// applied) and returns the result, with a message by path for each problem. An entry with
// a built-in name refines that purpose: what it sets replaces the built-in's description,
// legal bases, validity and categories, adds to its masked and prohibited categories, sets
// a separate-consent scope only where the built-in has none, and turns flags on (leaving a
// flag out never turns a built-in's off). An entry with a new name adds a purpose, and must
// give its legal bases. Either way the purpose must have a legal basis under the
// configured regime, name known categories (cats.Known: built in or declared), and mask
// only categories it needs.
func (f *File) declaredPurposes(infos []privguard.PurposeInfo, cats *privguard.Taxonomy) ([]privguard.PurposeInfo, []string) {
	var msgs []string
	regime := privguard.Regime(f.Regime)
	if regime == "" {
		regime = privguard.RegimePIPL
	}
	bases := knownBases()
	first := map[string]int{}
	for i, p := range f.Purposes {
		at := fmt.Sprintf("purposes[%d]", i)
		name := privguard.Purpose(p.Name)
		if j, dup := first[p.Name]; dup {
			msgs = append(msgs, fmt.Sprintf("%s.name: %q is also purposes[%d]", at, p.Name, j))
			continue
		}
		first[p.Name] = i
		if name.Validate() != nil {
			msgs = append(msgs, fmt.Sprintf("%s.name: %q is not a purpose name: dot-separated segments of lower-case letters, digits and underscores (loyalty.points)", at, p.Name))
			continue
		}
		k := slices.IndexFunc(infos, func(info privguard.PurposeInfo) bool { return info.Purpose == name })
		builtIn := k >= 0
		info := privguard.PurposeInfo{Purpose: name}
		if builtIn {
			info = infos[k]
		}
		bad := len(msgs)
		if o, ok := f.Consent.Purposes[p.Name]; ok && builtIn {
			if o.LegalBases != nil && p.LegalBases != nil {
				msgs = append(msgs, fmt.Sprintf("%s.legal_bases: also set in consent.purposes[%s]; set them in one place", at, p.Name))
			}
			if o.Validity != nil && p.Validity != nil {
				msgs = append(msgs, fmt.Sprintf("%s.validity: also set in consent.purposes[%s]; set it in one place", at, p.Name))
			}
		}
		if !builtIn && len(p.LegalBases) == 0 {
			msgs = append(msgs, fmt.Sprintf("%s.legal_bases: %s is not a built-in purpose, so it needs its legal bases per regime (pipl, gdpr), at least under %s, the configured regime", at, p.Name, regime))
		}
		if p.LegalBases != nil {
			info.Bases = map[privguard.Regime][]privguard.LegalBasis{}
			for _, r := range sortedKeys(p.LegalBases) {
				for j, b := range p.LegalBases[r] {
					bat := fmt.Sprintf("%s.legal_bases[%s][%d]", at, r, j)
					switch basis := privguard.LegalBasis(b); {
					case !slices.Contains(bases, b):
						msgs = append(msgs, fmt.Sprintf("%s: unknown legal basis %q%s", bat, b, suggest(b, bases, "legal bases")))
					case !basis.AllowedIn(privguard.Regime(r)):
						msgs = append(msgs, fmt.Sprintf("%s: %s is not a lawful basis under %s", bat, b, r))
					default:
						info.Bases[privguard.Regime(r)] = append(info.Bases[privguard.Regime(r)], basis)
					}
				}
			}
			if len(p.LegalBases) > 0 && len(p.LegalBases[string(regime)]) == 0 {
				msgs = append(msgs, fmt.Sprintf("%s.legal_bases: no legal basis under %s, the configured regime", at, regime))
			}
		}
		checkCategories := func(key string, list []string) []privguard.DataCategory {
			var out []privguard.DataCategory
			for j, c := range list {
				if !cats.Known(privguard.DataCategory(c)) {
					msgs = append(msgs, fmt.Sprintf("%s.%s[%d]: unknown data category %q%s", at, key, j, c, suggestCategory(c, cats)))
					continue
				}
				out = append(out, privguard.DataCategory(c))
			}
			return out
		}
		if cats := checkCategories("categories", p.Categories); len(p.Categories) > 0 {
			info.Categories = cats
		}
		for j, m := range checkCategories("mask", p.Mask) {
			if !slices.ContainsFunc(info.Categories, m.Within) {
				msgs = append(msgs, fmt.Sprintf("%s.mask[%d]: %s is not among the categories the purpose needs (mask lists needed categories it sees masked)", at, j, m))
			}
			if !slices.Contains(info.Mask, m) {
				info.Mask = append(info.Mask, m)
			}
		}
		for j, c := range checkCategories("prohibited", p.Prohibited) {
			if slices.ContainsFunc(info.Categories, func(n privguard.DataCategory) bool { return n.Within(c) || c.Within(n) }) {
				msgs = append(msgs, fmt.Sprintf("%s.prohibited[%d]: %s overlaps the categories the purpose needs", at, j, c))
			}
			if !slices.Contains(info.Prohibited, c) {
				info.Prohibited = append(info.Prohibited, c)
			}
		}
		if s := privguard.SeparateScope(p.Separate); s != "" {
			if info.Separate != "" && info.Separate != s {
				msgs = append(msgs, fmt.Sprintf("%s.separate: the built-in %s needs separate consent of scope %s, which cannot be changed", at, p.Name, info.Separate))
			}
			info.Separate = s
		}
		if d := p.Description["en"]; d != "" || !builtIn {
			info.Description = p.Description.In("en")
		}
		info.DirectMarketing = info.DirectMarketing || p.DirectMarketing
		info.Personalised = info.Personalised || p.Personalised
		info.SaleOrSharing = info.SaleOrSharing || p.SaleOrSharing
		info.Retained = info.Retained || p.Retained
		info.AutomatedDecision = info.AutomatedDecision || p.AutomatedDecision
		if x := p.Explanation; x != nil {
			if !info.AutomatedDecision {
				msgs = append(msgs, fmt.Sprintf("%s.explanation: only a purpose that makes automated decisions is explained; set automated_decision: true too", at))
			}
			if x.Logic.In("en") == "" {
				msgs = append(msgs, fmt.Sprintf("%s.explanation.logic: say in plain words how the decision is made (en, zh)", at))
			}
			checkCategories("explanation.features", x.Features)
		}
		info.LargeScale = info.LargeScale || p.LargeScale
		info.NonPersonalisedFallback = info.NonPersonalisedFallback || p.NonPersonalisedFallback
		if info.NonPersonalisedFallback && !info.Personalised {
			msgs = append(msgs, fmt.Sprintf("%s.non_personalised_fallback: only a personalised purpose has a non-personalised fallback; set personalised: true too", at))
		}
		_, overridden := f.Consent.Purposes[p.Name]
		switch {
		case p.Validity != nil:
			info.Validity = p.Validity.Duration
		case info.Validity == 0 && !(overridden && f.Consent.Purposes[p.Name].Validity != nil):
			for _, b := range info.Bases {
				if slices.Contains(b, privguard.BasisConsent) {
					info.Validity = privguard.DefaultConsentValidity
				}
			}
		}
		if len(msgs) > bad {
			continue
		}
		if builtIn {
			infos[k] = info
		} else {
			infos = append(infos, info)
		}
	}
	return infos, msgs
}
