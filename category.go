package privguard

import (
	"fmt"
	"strings"
)

// DataCategory is a kind of personal data, from a hierarchical taxonomy compatible with
// fideslang data categories, for example "user.contact.phone_number".
type DataCategory string

// Validate reports whether c is syntactically a category name (same rules as [Purpose]).
func (c DataCategory) Validate() error {
	if err := Purpose(c).Validate(); err != nil {
		return fmt.Errorf("data category: %w", ErrInvalid)
	}
	return nil
}

// Within reports whether c is ancestor itself or one of its descendants.
func (c DataCategory) Within(ancestor DataCategory) bool {
	return Purpose(c).Within(Purpose(ancestor))
}

// Sensitive reports whether c is sensitive personal information under PIPL Art. 28 (and,
// for most of these, a special category under GDPR Art. 9): biometrics, religion, specific
// identity, health, financial accounts, precise location tracks, and data of minors under 14.
func (c DataCategory) Sensitive() bool {
	for _, s := range sensitiveCategories {
		if c.Within(s) {
			return true
		}
	}
	return strings.HasPrefix(string(c), "user.minor")
}

var sensitiveCategories = [...]DataCategory{
	"user.biometric",
	"user.health",
	"user.financial",
	"user.location.precise",
	"user.government_id",
	"user.religion",
	"user.sexual_orientation",
	"user.criminal_history",
	"user.genetic",
}
