package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/agnivade/levenshtein"

	"github.com/privguard/privguard"
)

// checkNames reports every purpose and data category the file names that is not one of
// purposes (the registered purposes, sorted) or a known category (cats.Known: built in or
// declared), each with its path in the file and, where one is close, the
// known name that was probably meant. Without this check a misspelt purpose or category is
// accepted at start and then fails (or silently matches nothing in) every request.
//
// Rules:
//   - routes[].purpose and routes[].purposes name registered purposes exactly: a request's
//     purpose must be registered for the policy to allow it.
//   - dsar.recipients[].purposes name a registered purpose or a group of them
//     ("marketing.communications"), as notices may.
//   - routes[].fields values, dsar.stores[].tables[].columns values and
//     dsar.recipients[].categories name known data categories ([privguard.DataCategory.Known]).
//   - routes[].encrypt entries are paths or data categories. An entry that is one of the
//     route's field paths is a path; otherwise an entry starting with "user." (the root of
//     every data category) is a category: it must be known, and at least one of the route's
//     fields must be of it (or of a sub-category), or it would seal nothing. To seal a body
//     path that starts with "user.", map it in the route's fields.
func (f *File) checkNames(purposes []string, cats *privguard.Taxonomy) []string {
	var msgs []string
	registered := func(at, p string) {
		if !slices.Contains(purposes, p) {
			msgs = append(msgs, fmt.Sprintf("%s: unknown purpose %q%s", at, p, suggestPurpose(p, purposes)))
		}
	}
	category := func(at, c string) bool {
		if cats.Known(privguard.DataCategory(c)) {
			return true
		}
		msgs = append(msgs, fmt.Sprintf("%s: unknown data category %q%s", at, c, suggestCategory(c, cats)))
		return false
	}
	for i, r := range f.Routes {
		at := fmt.Sprintf("routes[%d]", i)
		if r.Purpose != "" {
			registered(at+".purpose", r.Purpose)
		}
		for j, p := range r.Purposes {
			registered(fmt.Sprintf("%s.purposes[%d]", at, j), p)
		}
		for _, path := range sortedKeys(r.Fields) {
			category(fmt.Sprintf("%s.fields[%s]", at, path), r.Fields[path])
		}
		for j, e := range r.Encrypt {
			if _, isField := r.Fields[e]; isField || (e != "user" && !strings.HasPrefix(e, "user.")) {
				continue // a path
			}
			eat := fmt.Sprintf("%s.encrypt[%d]", at, j)
			if !cats.Known(privguard.DataCategory(e)) {
				msgs = append(msgs, fmt.Sprintf("%s: unknown data category %q%s (an entry starting with \"user.\" is a data category; to seal a body path that starts so, map it in %s.fields)",
					eat, e, suggestCategory(e, cats), at))
				continue
			}
			covered := false
			for _, c := range r.Fields {
				covered = covered || privguard.DataCategory(c).Within(privguard.DataCategory(e))
			}
			if !covered {
				msgs = append(msgs, fmt.Sprintf("%s: no field of the route is of data category %q, so nothing would be sealed; map the field in %s.fields (path: category), or name its path", eat, e, at))
			}
		}
	}
	for i, s := range f.DSAR.Stores {
		for j, tb := range s.Tables {
			for _, col := range sortedKeys(tb.Columns) {
				category(fmt.Sprintf("dsar.stores[%d].tables[%d].columns[%s]", i, j, col), tb.Columns[col])
			}
		}
	}
	for i, rc := range f.DSAR.Recipients {
		for j, p := range rc.Purposes {
			if !slices.ContainsFunc(purposes, func(q string) bool { return privguard.Purpose(q).Within(privguard.Purpose(p)) }) {
				msgs = append(msgs, fmt.Sprintf("dsar.recipients[%d].purposes[%d]: unknown purpose %q%s", i, j, p, suggestPurpose(p, purposes)))
			}
		}
		for j, c := range rc.Categories {
			category(fmt.Sprintf("dsar.recipients[%d].categories[%d]", i, j), c)
		}
	}
	seen := map[string]bool{}
	for i, c := range f.Callers {
		if seen[c.Name] {
			msgs = append(msgs, fmt.Sprintf("callers[%d].name: %q names another caller too", i, c.Name))
		}
		seen[c.Name] = true
		for j, p := range c.Purposes {
			if !slices.ContainsFunc(purposes, func(q string) bool { return privguard.Purpose(q).Within(privguard.Purpose(p)) }) {
				msgs = append(msgs, fmt.Sprintf("callers[%d].purposes[%d]: unknown purpose %q%s", i, j, p, suggestPurpose(p, purposes)))
			}
		}
	}
	for i, t := range f.Admin.Tokens {
		for j, p := range t.Purposes {
			if !slices.ContainsFunc(purposes, func(q string) bool { return privguard.Purpose(q).Within(privguard.Purpose(p)) }) {
				msgs = append(msgs, fmt.Sprintf("admin.tokens[%d].purposes[%d]: unknown purpose %q%s", i, j, p, suggestPurpose(p, purposes)))
			}
		}
	}
	return msgs
}

// checkBases reports every legal basis in consent.purposes that is not one, with its path.
func (f *File) checkBases() []string {
	var msgs []string
	bases := knownBases()
	for _, name := range sortedKeys(f.Consent.Purposes) {
		o := f.Consent.Purposes[name]
		for _, regime := range sortedKeys(o.LegalBases) {
			for j, b := range o.LegalBases[regime] {
				if !slices.Contains(bases, b) {
					at := fmt.Sprintf("consent.purposes[%s].legal_bases[%s][%d]", name, regime, j)
					msgs = append(msgs, fmt.Sprintf("%s: unknown legal basis %q%s", at, b, suggest(b, bases, "legal bases")))
				}
			}
		}
	}
	return msgs
}

// knownBases returns the legal bases' names.
func knownBases() []string {
	return []string{string(privguard.BasisConsent), string(privguard.BasisContract), string(privguard.BasisLegalObligation),
		string(privguard.BasisVitalInterests), string(privguard.BasisPublicTask), string(privguard.BasisLegitimateInterest),
		string(privguard.BasisHRManagement), string(privguard.BasisPublicDisclosed)}
}

// suggestPurpose is suggest for purposes; with no close name, it lists them all.
func suggestPurpose(name string, purposes []string) string {
	return suggest(name, purposes, "known purposes")
}

// suggestCategory says which known category (built in, or declared in cats, which may be
// nil) name probably meant: the nearest by edit distance, or one ending in the same
// segment; else the known categories under its longest known ancestor.
func suggestCategory(name string, cats *privguard.Taxonomy) string {
	var known []string
	for _, c := range privguard.KnownCategories() {
		known = append(known, string(c))
	}
	if cats != nil {
		for _, c := range cats.Categories() {
			known = append(known, string(c.Category))
		}
		slices.Sort(known)
	}
	if s, ok := nearest(name, known); ok {
		return fmt.Sprintf("; did you mean %q?", s)
	}
	for p := privguard.Purpose(name).Parent(); p != ""; p = p.Parent() {
		var under []string
		for _, c := range known {
			if privguard.Purpose(c).Parent() == p {
				under = append(under, c)
			}
		}
		if len(under) > 0 {
			return fmt.Sprintf("; known categories under %s: %s", p, strings.Join(under, ", "))
		}
	}
	return "; data categories start with \"user.\" (see privguard.KnownCategories: user.contact.email, user.behavior, ...)"
}

// suggest returns "; did you mean X?" for the known name nearest to name, or, when none is
// close, "; <what>: a, b, c".
func suggest(name string, known []string, what string) string {
	if s, ok := nearest(name, known); ok {
		return fmt.Sprintf("; did you mean %q?", s)
	}
	return fmt.Sprintf("; %s: %s", what, strings.Join(known, ", "))
}

// nearest returns the known name closest to name (case-insensitive Levenshtein distance),
// if it is close: at most a third of name's length away (at least 2 edits). Failing that, the
// one known name whose last dotted segment equals name's ("marketing.sms" for
// "marketing.communications.sms").
func nearest(name string, known []string) (string, bool) {
	lower := strings.ToLower(name)
	best, bestD := "", -1
	for _, k := range known {
		if d := levenshtein.ComputeDistance(lower, k); bestD < 0 || d < bestD {
			best, bestD = k, d
		}
	}
	if bestD >= 0 && bestD <= max(2, len(name)/3) {
		return best, true
	}
	last := lower[strings.LastIndexByte(lower, '.')+1:]
	var same []string
	for _, k := range known {
		if k[strings.LastIndexByte(k, '.')+1:] == last {
			same = append(same, k)
		}
	}
	if len(same) == 1 {
		return same[0], true
	}
	return "", false
}

// sortedKeys returns m's keys in order, so that errors come out the same way every time.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
