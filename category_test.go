package privguard

import (
	"slices"
	"testing"
)

func TestKnownCategoriesAreSortedAndValid(t *testing.T) {
	list := KnownCategories()
	if !slices.IsSorted(list) {
		t.Error("knownCategories is not sorted; Known's binary search needs it")
	}
	for i, c := range list {
		if err := c.Validate(); err != nil {
			t.Errorf("KnownCategories()[%d] = %q: %v", i, c, err)
		}
		if i > 0 && list[i-1] == c {
			t.Errorf("%q listed twice", c)
		}
		if p := DataCategory(Purpose(c).Parent()); p != "" && !slices.Contains(list, p) {
			t.Errorf("%q is listed without its parent %q", c, p)
		}
	}
}

// Every category the shipped purposes and the sensitivity rule name must be known, or a
// configuration using them would be refused.
func TestShippedCategoriesAreKnown(t *testing.T) {
	var used []DataCategory
	for _, info := range DefaultPurposes() {
		used = append(used, info.Categories...)
		used = append(used, info.Mask...)
		used = append(used, info.Prohibited...)
	}
	used = append(used, sensitiveCategories[:]...)
	used = append(used, "user.minor")
	for _, c := range used {
		if !c.Known() {
			t.Errorf("%q is used by the defaults but not known", c)
		}
	}
}

func TestCategoryKnown(t *testing.T) {
	cases := []struct {
		c    DataCategory
		want bool
	}{
		{"user.contact.email", true},
		{"user.contact", true},
		{"user", true},
		{"user.derived.tags.loyalty", true},          // refines a leaf
		{"user.contact.email.work", true},            // refines a leaf
		{"user.contact.emial", false},                // a misspelt sibling under a listed parent
		{"user.contact.address.flat", false},         // address has listed sub-categories
		{"user.demographic.religious_belief", false}, // sensitive: use user.religion
		{"customer.email", false},
		{"", false},
	}
	for _, tc := range cases {
		if got := tc.c.Known(); got != tc.want {
			t.Errorf("DataCategory(%q).Known() = %v; want %v", tc.c, got, tc.want)
		}
	}
}
