package privguard

import "time"

// Input is what a policy decision is asked about: one use of personal data for one purpose.
type Input struct {
	Subject    SubjectID      `json:"-"`
	Purpose    Purpose        `json:"purpose"`
	Categories []DataCategory `json:"categories,omitempty"`
	Regime     Regime         `json:"regime"`
	Role       string         `json:"role,omitempty"`
	Channel    string         `json:"channel,omitempty"`
	GPC        bool           `json:"gpc,omitempty"`
	Time       time.Time      `json:"time"`
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
