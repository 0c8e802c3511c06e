package privguard

import (
	"cmp"
	"fmt"
	"slices"
)

// CategoryInfo is a data category declared beside the built-in ones ([KnownCategories]),
// so that purposes, routes and stores may name it. Its name is below "user", is not a
// listed built-in category, and its parent is known: built in, or declared too.
type CategoryInfo struct {
	Category    DataCategory
	Description string
	// Sensitive makes the category sensitive personal information for the policy (PIPL
	// Art. 28, GDPR Art. 9): processing it needs separate consent. A category below a
	// sensitive one is sensitive whatever this says.
	Sensitive bool
}

// DefaultSensitiveCategories returns the category prefixes the policy treats as sensitive
// (PIPL Art. 28; GDPR Art. 9, inferred data included) unless a taxonomy adds to them: a
// category is sensitive if it is one of them or below one. The slice is a fresh copy.
func DefaultSensitiveCategories() []DataCategory {
	return []DataCategory{"user.biometric", "user.criminal_history", "user.derived.inferred_health",
		"user.derived.inferred_religion", "user.financial.account", "user.genetic", "user.government_id",
		"user.health", "user.location.precise", "user.minor", "user.religion", "user.sexual_orientation"}
}

// declare validates cats and records them in t, with the sensitive categories.
func (t *Taxonomy) declare(cats []CategoryInfo) error {
	listed := KnownCategories()
	names := make([]DataCategory, 0, len(cats))
	for _, c := range cats {
		if err := c.Category.Validate(); err != nil || c.Category == "user" || !c.Category.Within("user") {
			return fmt.Errorf("data category %q: a declared category is a name below user (user.loyalty.tier): %w", c.Category, ErrInvalid)
		}
		if _, found := slices.BinarySearch(listed, c.Category); found {
			return fmt.Errorf("data category %s is built in; declare a new category below it: %w", c.Category, ErrInvalid)
		}
		if slices.Contains(names, c.Category) {
			return fmt.Errorf("data category %s declared twice: %w", c.Category, ErrInvalid)
		}
		names = append(names, c.Category)
	}
	for _, c := range cats {
		parent := DataCategory(Purpose(c.Category).Parent())
		if !parent.Known() && !slices.Contains(names, parent) {
			return fmt.Errorf("data category %s: its parent %s is neither built in nor declared: %w", c.Category, parent, ErrInvalid)
		}
	}
	t.declared = slices.Clone(cats)
	slices.SortFunc(t.declared, func(a, b CategoryInfo) int { return cmp.Compare(string(a.Category), string(b.Category)) })
	t.sensitive = DefaultSensitiveCategories()
	for _, c := range t.declared {
		if c.Sensitive && !t.Sensitive(c.Category) {
			t.sensitive = append(t.sensitive, c.Category)
		}
	}
	slices.Sort(t.sensitive)
	return nil
}

// Known reports whether c is a data category of the taxonomy: known built in
// ([DataCategory.Known]), declared, or a refinement of a declared category that has no
// declared sub-categories of its own (the built-in rule, applied to the declared ones).
func (t *Taxonomy) Known(c DataCategory) bool {
	if c.Known() {
		return true
	}
	for p := c; p != ""; p = DataCategory(Purpose(p).Parent()) {
		i, found := slices.BinarySearchFunc(t.declared, p, func(ci CategoryInfo, p DataCategory) int {
			return cmp.Compare(string(ci.Category), string(p))
		})
		if !found {
			continue
		}
		return p == c || i+1 == len(t.declared) || !t.declared[i+1].Category.Within(p)
	}
	return false
}

// Sensitive reports whether the policy treats c as sensitive personal information: c is
// one of [Taxonomy.SensitiveCategories] or below one.
func (t *Taxonomy) Sensitive(c DataCategory) bool {
	for _, s := range t.SensitiveCategories() {
		if c.Within(s) {
			return true
		}
	}
	return false
}

// SensitiveCategories returns the category prefixes the policy treats as sensitive, sorted:
// [DefaultSensitiveCategories] and the declared categories marked sensitive. The slice is
// a fresh copy.
func (t *Taxonomy) SensitiveCategories() []DataCategory {
	if t.sensitive == nil {
		return DefaultSensitiveCategories()
	}
	return slices.Clone(t.sensitive)
}

// Categories returns the declared categories, sorted by name. The slice is a fresh copy.
func (t *Taxonomy) Categories() []CategoryInfo { return slices.Clone(t.declared) }
