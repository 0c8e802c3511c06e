package privguard

import (
	"fmt"
	"slices"
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

// Known reports whether c is a data category privguard knows: one of [KnownCategories], or
// a refinement of a listed category that has no sub-categories of its own
// ("user.derived.tags.loyalty" refines "user.derived.tags"). A new sibling of listed
// categories ("user.contact.emial" beside "user.contact.email") is not known, so that a
// misspelling is caught rather than silently matching nothing.
func (c DataCategory) Known() bool {
	for p := c; p != ""; p = DataCategory(Purpose(p).Parent()) {
		i, found := slices.BinarySearch(knownCategories[:], p)
		if !found {
			continue
		}
		if p == c {
			return true
		}
		// p is listed: c refines it only if p is a leaf of the list.
		return i+1 == len(knownCategories) || !knownCategories[i+1].Within(p)
	}
	return false
}

// KnownCategories returns the data categories privguard knows, sorted: the fideslang user
// data categories the default purposes and policy use, and privguard's additions for
// marketing stacks (user.derived.tags, user.contact.wechat_openid, user.device.push_token,
// ...). Sensitive data is listed only under the roots [DataCategory.Sensitive] recognises
// (user.religion, not fideslang's user.demographic.religious_belief), so that every known
// sensitive category is treated as sensitive. The slice is a fresh copy.
func KnownCategories() []DataCategory { return slices.Clone(knownCategories[:]) }

// knownCategories is sorted; a test holds it so.
var knownCategories = [...]DataCategory{
	"user",
	"user.account",
	"user.account.settings",
	"user.account.username",
	"user.authorization",
	"user.authorization.credentials",
	"user.authorization.password",
	"user.behavior",
	"user.behavior.browsing_history",
	"user.behavior.media_consumption",
	"user.behavior.purchase_history",
	"user.behavior.search_history",
	"user.biometric",
	"user.biometric.fingerprint",
	"user.biometric.health",
	"user.biometric.retinal",
	"user.biometric.voice",
	"user.contact",
	"user.contact.address",
	"user.contact.address.city",
	"user.contact.address.country",
	"user.contact.address.postal_code",
	"user.contact.address.state",
	"user.contact.address.street",
	"user.contact.email",
	"user.contact.fax_number",
	"user.contact.organization",
	"user.contact.phone_number",
	"user.contact.url",
	"user.contact.wechat_openid",
	"user.content",
	"user.content.private",
	"user.content.public",
	"user.content.self_image",
	"user.criminal_history",
	"user.demographic",
	"user.demographic.age_range",
	"user.demographic.date_of_birth",
	"user.demographic.gender",
	"user.demographic.language",
	"user.demographic.marital_status",
	"user.demographic.profile",
	"user.derived",
	"user.derived.inferred_health",
	"user.derived.inferred_interests",
	"user.derived.inferred_religion",
	"user.derived.propensity_score",
	"user.derived.rfm_score",
	"user.derived.segments",
	"user.derived.tags",
	"user.device",
	"user.device.cookie",
	"user.device.cookie_id",
	"user.device.device_id",
	"user.device.ip_address",
	"user.device.push_token",
	"user.financial",
	"user.financial.account",
	"user.financial.bank_account",
	"user.financial.credit_card",
	"user.financial.transaction",
	"user.genetic",
	"user.government_id",
	"user.government_id.birth_certificate",
	"user.government_id.drivers_license_number",
	"user.government_id.id_card",
	"user.government_id.immigration",
	"user.government_id.national_identification_number",
	"user.government_id.passport_number",
	"user.government_id.vehicle_registration",
	"user.health",
	"user.location",
	"user.location.imprecise",
	"user.location.precise",
	"user.minor",
	"user.name",
	"user.name.first",
	"user.name.last",
	"user.name.nickname",
	"user.privacy_preferences",
	"user.religion",
	"user.sensor",
	"user.sexual_orientation",
	"user.social",
	"user.unique_id",
	"user.unique_id.pseudonymous",
	"user.workplace",
}
