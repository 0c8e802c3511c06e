package privguard

import (
	"fmt"
	"slices"
	"time"
)

// DefaultConsentValidity is how long a consent lasts when its purpose sets no validity of its
// own: 13 months, the longest interval IAB TCF allows before choices must be asked again.
const DefaultConsentValidity = 395 * 24 * time.Hour

// PurposeInfo describes a registered purpose: which legal bases may serve it under each
// regime, how long consent for it lasts, and which subject-level facts block it.
type PurposeInfo struct {
	Purpose     Purpose
	Description string
	// Bases lists the lawful bases accepted for the purpose under each regime. A regime that
	// is absent does not allow the purpose at all.
	Bases map[Regime][]LegalBasis
	// Validity is how long a consent for the purpose counts before it expires. Zero means
	// the consent lasts until withdrawn.
	Validity time.Duration
	// Separate, if set, means consent for the purpose must be separate consent of this scope.
	Separate SeparateScope
	// DirectMarketing purposes are blocked absolutely by an objection to direct marketing
	// (GDPR Art. 21(3)) and by a marketing suppression.
	DirectMarketing bool
	// Personalised purposes rely on automated decision-making or profiling and are blocked
	// when the subject has turned personalisation off (PIPL Art. 24(2)).
	Personalised bool
	// SaleOrSharing purposes (sale, sharing, targeted advertising) are blocked by a Global
	// Privacy Control opt-out.
	SaleOrSharing bool
	// Retained purposes (storage, security, legal claims) remain allowed while processing
	// is restricted (PIPL Art. 47(2), GDPR Art. 18(2)).
	Retained bool
	// Categories are the data categories the purpose needs (minimum necessary); the policy
	// drops the others from what the purpose sees.
	Categories []DataCategory
	// Mask lists needed categories that the purpose sees only masked (138****5678).
	Mask []DataCategory
	// Prohibited lists categories the purpose must never use: a request that involves one
	// is denied (purpose.category_not_allowed), not merely minimised.
	Prohibited []DataCategory
	// NonPersonalisedFallback marks personalised purposes that have a non-personalised
	// alternative: with personalisation off they are served non-personalised instead of
	// denied (PIPL Art. 24(2)).
	NonPersonalisedFallback bool
	// AutomatedDecision purposes make decisions about people by automated means (PIPL
	// Arts. 24 and 55(2), GDPR Art. 22); LargeScale ones process many people's data (GDPR
	// Art. 35(3)). Both feed the impact-assessment gate.
	AutomatedDecision bool
	LargeScale        bool
}

// NeedsConsent reports whether consent is the only basis for p under regime r.
func (p *PurposeInfo) NeedsConsent(r Regime) bool {
	b := p.Bases[r]
	return len(b) == 1 && b[0] == BasisConsent
}

// AllowsBasis reports whether b may serve p under regime r.
func (p *PurposeInfo) AllowsBasis(r Regime, b LegalBasis) bool {
	return b.AllowedIn(r) && slices.Contains(p.Bases[r], b)
}

// Validate checks p for the mistakes a configuration file can make: a malformed name, a
// basis that is not lawful in its regime (legitimate interests under PIPL, CON-01), an
// unknown separate-consent scope, a negative validity.
func (p *PurposeInfo) Validate() error {
	if err := p.Purpose.Validate(); err != nil {
		return err
	}
	if len(p.Bases) == 0 {
		return fmt.Errorf("purpose %s: no legal basis for any regime: %w", p.Purpose, ErrInvalid)
	}
	for r, bases := range p.Bases {
		if !r.Valid() {
			return fmt.Errorf("purpose %s: unknown regime %q: %w", p.Purpose, r, ErrInvalid)
		}
		for _, b := range bases {
			if !b.AllowedIn(r) {
				return fmt.Errorf("purpose %s: legal basis %q is not lawful under %s: %w", p.Purpose, b, r, ErrInvalid)
			}
		}
	}
	if !p.Separate.Valid() {
		return fmt.Errorf("purpose %s: unknown separate-consent scope %q: %w", p.Purpose, p.Separate, ErrInvalid)
	}
	if p.Validity < 0 {
		return fmt.Errorf("purpose %s: negative validity: %w", p.Purpose, ErrInvalid)
	}
	for _, c := range p.Categories {
		if err := c.Validate(); err != nil {
			return fmt.Errorf("purpose %s: %w", p.Purpose, err)
		}
	}
	return nil
}

// Taxonomy is an immutable set of registered purposes and of the data categories declared
// beside the built-in ones. The zero value has no purposes, the built-in categories and the
// default sensitive categories.
type Taxonomy struct {
	byName map[Purpose]*PurposeInfo
	names  []Purpose
	// declared are the categories added beside the built-in ones, sorted by name;
	// sensitive, the category prefixes the policy treats as sensitive (nil: the defaults).
	declared  []CategoryInfo
	sensitive []DataCategory
}

// NewTaxonomy validates infos and cats and returns them as a Taxonomy. Duplicate names are
// an error, and so is a declared category that is not valid for [Taxonomy.Known]: see
// [CategoryInfo].
func NewTaxonomy(infos []PurposeInfo, cats ...CategoryInfo) (*Taxonomy, error) {
	t := &Taxonomy{byName: make(map[Purpose]*PurposeInfo, len(infos))}
	if err := t.declare(cats); err != nil {
		return nil, err
	}
	for i := range infos {
		p := infos[i]
		if err := p.Validate(); err != nil {
			return nil, err
		}
		if _, dup := t.byName[p.Purpose]; dup {
			return nil, fmt.Errorf("purpose %s registered twice: %w", p.Purpose, ErrInvalid)
		}
		p.Categories = slices.Clone(p.Categories)
		p.Mask = slices.Clone(p.Mask)
		p.Prohibited = slices.Clone(p.Prohibited)
		t.byName[p.Purpose] = &p
		t.names = append(t.names, p.Purpose)
	}
	slices.Sort(t.names)
	return t, nil
}

// Lookup returns the registered purpose p, or nil and false if p is not registered.
// The returned value must not be modified.
func (t *Taxonomy) Lookup(p Purpose) (*PurposeInfo, bool) {
	info, ok := t.byName[p]
	return info, ok
}

// Purposes returns the registered purpose names in sorted order.
func (t *Taxonomy) Purposes() []Purpose { return slices.Clone(t.names) }

// DefaultPurposes returns the precision-marketing purposes privguard ships with. Callers may
// change the returned slice (it is a fresh copy) before passing it to [NewTaxonomy].
func DefaultPurposes() []PurposeInfo {
	consentOnly := func() map[Regime][]LegalBasis {
		return map[Regime][]LegalBasis{RegimePIPL: {BasisConsent}, RegimeGDPR: {BasisConsent}}
	}
	essential := func() map[Regime][]LegalBasis {
		return map[Regime][]LegalBasis{
			RegimePIPL: {BasisContract, BasisLegalObligation},
			RegimeGDPR: {BasisContract, BasisLegalObligation, BasisLegitimateInterest},
		}
	}
	contact := []DataCategory{"user.name.nickname", "user.contact"}
	infos := []PurposeInfo{
		{Purpose: "essential.service", Description: "Providing the service the subject asked for", Bases: essential(),
			Categories: []DataCategory{"user.account", "user.contact", "user.name", "user.location.imprecise", "user.financial.transaction"}},
		{Purpose: "essential.storage", Description: "Storing data that must be kept (statutory retention)", Bases: essential(), Retained: true},
		{Purpose: "essential.security", Description: "Security, fraud prevention and incident response", Bases: essential(), Retained: true,
			Categories: []DataCategory{"user.account", "user.device"}},
		// No differential pricing from profiling (PIPL Art. 24(1); MKT-07).
		{Purpose: "essential.pricing", Description: "Prices and terms offered to the subject", Bases: essential(),
			Categories: []DataCategory{"user.account", "user.financial.transaction", "user.location.imprecise"},
			Prohibited: []DataCategory{"user.behavior", "user.derived"}},
		{Purpose: "essential.legal_claims", Description: "Establishing, exercising or defending legal claims", Bases: essential(), Retained: true},
		{Purpose: "analytics.reporting", Description: "Aggregate reporting on use of the service",
			Bases:      map[Regime][]LegalBasis{RegimePIPL: {BasisConsent}, RegimeGDPR: {BasisConsent, BasisLegitimateInterest}},
			Categories: []DataCategory{"user.behavior", "user.device"}},
		{Purpose: "analytics.ab_testing", Description: "A/B tests of features and messages", Bases: consentOnly(),
			Categories: []DataCategory{"user.behavior", "user.device"}},
		{Purpose: "marketing.profiling", Description: "Tags, segments, RFM scores and inferred interests", Bases: consentOnly(),
			Personalised: true, DirectMarketing: true,
			Categories: []DataCategory{"user.behavior", "user.derived", "user.financial.transaction", "user.location.imprecise"}},
		{Purpose: "marketing.communications.sms", Description: "Marketing text messages", Bases: consentOnly(), DirectMarketing: true,
			Categories: append(slices.Clone(contact), "user.contact.phone_number")},
		{Purpose: "marketing.communications.email", Description: "Marketing email", Bases: consentOnly(), DirectMarketing: true,
			Categories: append(slices.Clone(contact), "user.contact.email")},
		{Purpose: "marketing.communications.push", Description: "Marketing app push notifications", Bases: consentOnly(), DirectMarketing: true,
			Categories: append(slices.Clone(contact), "user.device.push_token")},
		{Purpose: "marketing.communications.wechat", Description: "Marketing messages on WeChat", Bases: consentOnly(), DirectMarketing: true,
			Categories: append(slices.Clone(contact), "user.contact.wechat_openid")},
		{Purpose: "marketing.advertising.first_party", Description: "Targeted advertising on the controller's own properties",
			Bases: consentOnly(), DirectMarketing: true, Personalised: true, SaleOrSharing: true,
			Categories: []DataCategory{"user.behavior", "user.derived", "user.device"}},
		{Purpose: "marketing.advertising.third_party", Description: "Lookalike and custom audiences shared with ad platforms",
			Bases: consentOnly(), DirectMarketing: true, Personalised: true, SaleOrSharing: true, Separate: SeparateProvide,
			Categories: []DataCategory{"user.contact.email", "user.contact.phone_number", "user.derived"}},
		{Purpose: "personalize.recommendation", Description: "Personalised recommendations", Bases: consentOnly(), Personalised: true,
			NonPersonalisedFallback: true, Categories: []DataCategory{"user.behavior", "user.derived"}},
		{Purpose: "third_party.sharing", Description: "Providing personal data to another handler", Bases: consentOnly(),
			SaleOrSharing: true, Separate: SeparateProvide},
		{Purpose: "cross_border.transfer", Description: "Transfer of personal data outside the PRC", Bases: consentOnly(),
			Separate: SeparateCrossBorder},
		{Purpose: "sensitive.processing", Description: "Processing sensitive personal information", Bases: consentOnly(),
			Separate: SeparateSensitive},
	}
	for i := range infos {
		for _, bases := range infos[i].Bases {
			if slices.Contains(bases, BasisConsent) {
				infos[i].Validity = DefaultConsentValidity
			}
		}
	}
	return infos
}
