package privguard

import "time"

// Input is what a policy decision is asked about: one use of personal data for one purpose,
// with the facts the consent ledger holds about the subject. The subject's identity is not
// part of what the policy sees: decisions depend only on the other fields, so they can be
// memoised and logged without personal data.
type Input struct {
	Subject    SubjectID      `json:"-"`
	Purpose    Purpose        `json:"purpose"`
	Categories []DataCategory `json:"categories,omitempty"`
	Regime     Regime         `json:"regime"`
	// Role is the calling service or operator role.
	Role string `json:"role,omitempty"`
	// Channel is the outreach channel (sms, email, push, wechat) for frequency limits.
	Channel string `json:"channel,omitempty"`
	// GPC is set when the request carried Sec-GPC: 1.
	GPC bool `json:"gpc,omitempty"`
	// Recipient names the handler data is provided to, for separate-consent purposes.
	Recipient string `json:"recipient,omitempty"`
	// PIAID, if set, names the impact assessment the use rests on (a route's): only that
	// one may then cover it. Empty: the policy looks for any current assessment that covers
	// the use, when it needs one (sensitive data, automated decisions, large-scale
	// profiling, providing data to a recipient, a transfer abroad).
	PIAID string `json:"pia_id,omitempty"`
	// Caller names the authenticated calling service (an entrusted processor's caller
	// credential), for the decision log; the policy does not see it.
	Caller  string       `json:"-"`
	Consent ConsentFacts `json:"consent"`
	Facts   SubjectFacts `json:"subject"`
	// Time, if set, is when the use happens, for the policy's date (impact assessments'
	// review dates); zero means now.
	Time time.Time `json:"-"`
}

// ConsentFacts is what the consent ledger says about the subject and the purpose.
type ConsentFacts struct {
	// State is the DPV consent state name ("given", "withdrawn", ...).
	State string `json:"state"`
	// Allowed reports that consent counts now (the ledger's own checks included).
	Allowed bool `json:"allowed"`
	// Reason is the ledger's reason code.
	Reason Reason `json:"reason"`
	// Guardian reports consent given by a guardian.
	Guardian bool `json:"guardian,omitempty"`
	// Separate reports separate consent (单独同意) for the purpose (and recipient).
	Separate bool `json:"separate,omitempty"`
	// Sensitive reports separate consent that covers sensitive categories.
	Sensitive bool `json:"sensitive,omitempty"`
	// Quarantined reports that the deciding grant came from a bought or partner list
	// without its provenance (imported or third-party, without source, proof or contract;
	// MKT-11): the send gate does not rely on it.
	Quarantined bool `json:"quarantined,omitempty"`
	// Regime is the law the deciding record was made under (empty without one).
	Regime Regime `json:"regime,omitempty"`
}

// SubjectFacts are subject-level facts the policy needs.
type SubjectFacts struct {
	Restricted         bool   `json:"restricted,omitempty"`
	ObjectedToDM       bool   `json:"objected_dm,omitempty"`
	PersonalisationOff bool   `json:"personalisation_off,omitempty"`
	GPCOptOut          bool   `json:"gpc_opt_out,omitempty"`
	Minor              bool   `json:"minor,omitempty"`
	AgeBand            string `json:"age_band,omitempty"`
	// Contacts is how many times the subject was contacted on Channel in the current
	// frequency window.
	Contacts int `json:"contacts,omitempty"`
}

// Effect is the outcome of a decision.
type Effect string

// Effects.
const (
	Allow Effect = "allow"
	Deny  Effect = "deny"
)

// Decision is the answer to an [Input]. A deny is a Decision, not an error: an error means
// no decision could be made, and enforcement then fails closed.
type Decision struct {
	ID          string       `json:"id,omitempty"`
	Effect      Effect       `json:"effect"`
	Reasons     []Reason     `json:"reasons,omitempty"`
	Obligations []Obligation `json:"obligations,omitempty"`
	// Revision identifies the policy (and consent state) that produced the decision.
	Revision string `json:"revision,omitempty"`
	// Assessment is the impact assessment the decision rests on, when the use needed one
	// (high-impact processing) and one covered it.
	Assessment string `json:"assessment,omitempty"`
}

// Allowed reports whether d allows the use.
func (d Decision) Allowed() bool { return d.Effect == Allow }

// Reason is a stable, machine-readable reason code such as "consent.withdrawn".
type Reason string

// Reason codes shared by the consent ledger and the policy engine.
const (
	ReasonConsentGiven             Reason = "consent.given"
	ReasonConsentMissing           Reason = "consent.missing"
	ReasonConsentRefused           Reason = "consent.refused"
	ReasonConsentWithdrawn         Reason = "consent.withdrawn"
	ReasonConsentExpired           Reason = "consent.expired"
	ReasonConsentInvalidated       Reason = "consent.invalidated" // a material notice change needs fresh consent
	ReasonSeparateConsentRequired  Reason = "separate_consent.required"
	ReasonGuardianConsentRequired  Reason = "guardian_consent.required"
	ReasonObjectionDirectMarketing Reason = "objection.direct_marketing"
	ReasonRestricted               Reason = "subject.restricted"
	ReasonPersonalisationOff       Reason = "personalisation.off"
	ReasonGPCOptOut                Reason = "gpc.opt_out"
	ReasonSuppressed               Reason = "subject.suppressed"
	ReasonPurposeUnknown           Reason = "purpose.unknown"
	ReasonCategoryNotAllowed       Reason = "purpose.category_not_allowed"
	ReasonFrequencyExceeded        Reason = "frequency.exceeded"
	ReasonLegalBasisMissing        Reason = "legal_basis.missing"
	ReasonPIARequired              Reason = "pia.required"
	// ReasonPIAExpired: the impact assessment that covered the use is past its review date.
	ReasonPIAExpired Reason = "pia.expired"
	// ReasonPIANotCovering: a current impact assessment for the purpose (or the one the route
	// names) does not cover a category the use processes, or its recipient.
	ReasonPIANotCovering Reason = "pia.not_covering"
	// ReasonRouteNotConfigured: the request matched no route, so it declared no purpose
	// (PUR-01); the sidecar denies it by default.
	ReasonRouteNotConfigured Reason = "route.not_configured"
	// ReasonFrequencyUnavailable: the contact count could not be checked (the shared
	// counter did not answer) on a channel whose sends are then refused.
	ReasonFrequencyUnavailable Reason = "frequency.unavailable"
	// ReasonTransferNoMechanism: the recipient is abroad (outside the PRC under PIPL,
	// outside the EEA under GDPR) and has no current transfer mechanism for the regime
	// (PIPL Art. 38; GDPR Art. 44).
	ReasonTransferNoMechanism Reason = "transfer.no_mechanism"
	// ReasonTransferThreshold: the transfer would take the people exported this calendar
	// year past what the recipient's mechanism allows (the 2024 cross-border provisions:
	// 100,000 / 1,000,000 people, 10,000 with sensitive data).
	ReasonTransferThreshold Reason = "transfer.threshold"
	// ReasonDisclosureUnavailable: the provision to a recipient could not be logged (the
	// store did not answer), so it was refused (AUD-07).
	ReasonDisclosureUnavailable Reason = "disclosure.unavailable"
	// ReasonFrequencyUncounted is added to an allow let through without being counted,
	// because the counter did not answer on a channel configured to allow sends then.
	ReasonFrequencyUncounted Reason = "frequency.uncounted"
	// ReasonCallerPurposeNotAllowed: the calling service identified itself as a caller
	// (an entrusted processor) scoped to other purposes than the request's (PUR-08).
	ReasonCallerPurposeNotAllowed Reason = "caller.purpose_not_allowed"
)

// ObligationKind says what an [Obligation] asks the enforcement point to do.
type ObligationKind string

// Obligation kinds.
const (
	// ObligeMask: replace values of the listed categories with a masked form.
	ObligeMask ObligationKind = "mask"
	// ObligeDrop: remove values of the listed categories.
	ObligeDrop ObligationKind = "drop"
	// ObligeDropSubjects: remove the listed subjects from a batch.
	ObligeDropSubjects ObligationKind = "drop_subjects"
	// ObligeNonPersonalised: serve the non-personalised alternative (PIPL Art. 24(2)).
	ObligeNonPersonalised ObligationKind = "non_personalised"
	// ObligeContactBudget: the remaining contacts allowed on a channel in the window.
	ObligeContactBudget ObligationKind = "contact_budget"
)

// Obligation is a condition attached to an allow.
type Obligation struct {
	Kind       ObligationKind `json:"kind"`
	Categories []DataCategory `json:"categories,omitempty"`
	Subjects   []SubjectID    `json:"-"`
	Remaining  int            `json:"remaining,omitempty"`
}
