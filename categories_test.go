package privguard

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestTaxonomyDeclaredCategories(t *testing.T) {
	tax, err := NewTaxonomy(DefaultPurposes(),
		CategoryInfo{Category: "user.loyalty", Description: "Loyalty programme"},
		CategoryInfo{Category: "user.loyalty.tier"},
		CategoryInfo{Category: "user.loyalty.points"},
		CategoryInfo{Category: "user.contact.line_id"},
		CategoryInfo{Category: "user.health_survey", Sensitive: true},
		CategoryInfo{Category: "user.health.allergies"}, // below a sensitive built-in
	)
	if err != nil {
		t.Fatal(err)
	}
	known := []struct {
		c    DataCategory
		want bool
	}{
		{"user.contact.email", true},         // built in
		{"user.derived.tags.vip", true},      // refines a built-in leaf
		{"user.loyalty", true},               // declared
		{"user.loyalty.tier", true},          // declared
		{"user.loyalty.tier.gold", true},     // refines a declared leaf
		{"user.loyalty.teir", false},         // a misspelt sibling of declared ones
		{"user.contact.line_id", true},       // declared beside built-in siblings
		{"user.contact.lineid", false},       // still a misspelling
		{"user.health_survey.answers", true}, // refines a declared leaf
		{"customer.loyalty", false},
	}
	for _, tc := range known {
		if got := tax.Known(tc.c); got != tc.want {
			t.Errorf("Known(%q) = %v; want %v", tc.c, got, tc.want)
		}
	}
	sensitive := []struct {
		c    DataCategory
		want bool
	}{
		{"user.health_survey", true},         // declared sensitive
		{"user.health_survey.answers", true}, // below it
		{"user.health.allergies", true},      // below a sensitive built-in, whatever it says
		{"user.loyalty.tier", false},
		{"user.financial.account", true},
		{"user.contact.email", false},
	}
	for _, tc := range sensitive {
		if got := tax.Sensitive(tc.c); got != tc.want {
			t.Errorf("Sensitive(%q) = %v; want %v", tc.c, got, tc.want)
		}
	}
	got := tax.SensitiveCategories()
	if !slices.IsSorted(got) || !slices.Contains(got, "user.health_survey") || slices.Contains(got, "user.health.allergies") {
		t.Errorf("SensitiveCategories() = %v; want the defaults and user.health_survey, sorted", got)
	}
	if len(got) != len(DefaultSensitiveCategories())+1 {
		t.Errorf("SensitiveCategories() has %d entries; want the %d defaults and one declared", len(got), len(DefaultSensitiveCategories()))
	}
	var names []string
	for _, c := range tax.Categories() {
		names = append(names, string(c.Category))
	}
	if !slices.IsSorted(names) || len(names) != 6 {
		t.Errorf("Categories() = %v; want the 6 declared, sorted", names)
	}
}

func TestTaxonomyWithoutDeclaredCategories(t *testing.T) {
	tax, err := NewTaxonomy(DefaultPurposes())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tax.SensitiveCategories(), DefaultSensitiveCategories()) || !slices.Equal((&Taxonomy{}).SensitiveCategories(), DefaultSensitiveCategories()) {
		t.Error("a taxonomy without declared categories (or the zero one) does not have the default sensitive categories")
	}
	if !slices.IsSorted(DefaultSensitiveCategories()) {
		t.Error("DefaultSensitiveCategories is not sorted")
	}
	for _, c := range DefaultSensitiveCategories() {
		if !c.Known() {
			t.Errorf("default sensitive category %q is not known", c)
		}
	}
	if tax.Known("user.loyalty") || (&Taxonomy{}).Known("user.loyalty") || !(&Taxonomy{}).Known("user.contact.email") {
		t.Error("Known without declarations is not DataCategory.Known")
	}
}

func TestTaxonomyRefusesBadCategories(t *testing.T) {
	cases := []struct {
		name string
		cats []CategoryInfo
		want string
	}{
		{"not_below_user", []CategoryInfo{{Category: "customer.tier"}}, "below user"},
		{"user_itself", []CategoryInfo{{Category: "user"}}, "below user"},
		{"bad_grammar", []CategoryInfo{{Category: "user.Loyalty"}}, "below user"},
		{"built_in", []CategoryInfo{{Category: "user.contact.email"}}, "is built in"},
		{"twice", []CategoryInfo{{Category: "user.loyalty"}, {Category: "user.loyalty"}}, "declared twice"},
		{"unknown_parent", []CategoryInfo{{Category: "user.loyalty.tier"}}, "parent user.loyalty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewTaxonomy(DefaultPurposes(), tc.cats...)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewTaxonomy(%v) = %v; want ErrInvalid saying %q", tc.cats, err, tc.want)
			}
		})
	}
}
