package consent

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/privguard/privguard"
)

// SchemaVersion is the version of the record encoding written by this package.
const SchemaVersion = 1

// Action is what a record records.
type Action string

// Per-purpose actions.
const (
	ActionGrant    Action = "grant"    // consent given (or renewed) for a purpose
	ActionWithdraw Action = "withdraw" // consent withdrawn; an empty purpose withdraws every purpose
	ActionRefuse   Action = "refuse"   // consent asked for and refused
	ActionExpire   Action = "expire"   // consent reached the end of its validity
)

// Subject-level actions; their records name no purpose.
const (
	ActionRestrict           Action = "restrict"            // storage and security only (PIPL 47(2), GDPR 18)
	ActionLiftRestriction    Action = "lift_restriction"    // restriction ended
	ActionObject             Action = "object"              // objection to direct marketing (GDPR 21(3)), absolute
	ActionPersonalisationOff Action = "personalisation_off" // refuses automated personalisation (PIPL 24(2))
	ActionPersonalisationOn  Action = "personalisation_on"  // turns personalisation back on
	ActionGPCOptOut          Action = "gpc_opt_out"         // Global Privacy Control: opt-out of sale/sharing
	ActionDeclareAge         Action = "declare_age"         // records the subject's age band
	// ActionCloseAccount and ActionEndService record that the subject's account was closed
	// or the service to the subject ended: the time retention rules "from: account_closed"
	// run from (the first such record's; Record.EffectiveAt if it names an earlier time).
	ActionCloseAccount Action = "close_account"
	ActionEndService   Action = "end_service"
	// ActionErase records that the subject's personal data was erased: every purpose is
	// withdrawn and every fact cleared, except the suppression of direct marketing
	// (objection) and the GPC opt-out, which survive so that an unsubscribe still holds.
	ActionErase Action = "erase"
)

// perPurpose reports whether records of action a name a purpose.
func (a Action) perPurpose() bool {
	switch a {
	case ActionGrant, ActionWithdraw, ActionRefuse, ActionExpire:
		return true
	}
	return false
}

// ControllerFact reports whether records of action a state the controller's own act rather
// than a choice of the subject: erase (the data was erased), expire (consent ran out) and
// lift_restriction (a restriction ended). They are written by privguard itself (the request
// engine, the expiry sweep) or on an operator's word, never as the subject's: their
// ActorType must be operator or system.
func (a Action) ControllerFact() bool {
	return a == ActionErase || a == ActionExpire || a == ActionLiftRestriction
}

// Valid reports whether a is a known action.
func (a Action) Valid() bool {
	switch a {
	case ActionGrant, ActionWithdraw, ActionRefuse, ActionExpire, ActionRestrict, ActionLiftRestriction,
		ActionObject, ActionPersonalisationOff, ActionPersonalisationOn, ActionGPCOptOut, ActionDeclareAge, ActionErase,
		ActionCloseAccount, ActionEndService:
		return true
	}
	return false
}

// State is a consent state from the W3C Data Privacy Vocabulary (dpv:ConsentStatus).
// Only [StateGiven] and [StateRenewed], unexpired, count as consent.
type State uint8

// Consent states.
const (
	StateUnknown     State = iota // no record: dpv:ConsentUnknown
	StateGiven                    // dpv:ConsentGiven
	StateRenewed                  // dpv:RenewedConsentGiven
	StateRefused                  // dpv:ConsentRefused
	StateWithdrawn                // dpv:ConsentWithdrawn
	StateExpired                  // dpv:ConsentExpired
	StateInvalidated              // dpv:ConsentInvalidated (the notice changed materially)
)

var stateNames = [...]string{"unknown", "given", "renewed", "refused", "withdrawn", "expired", "invalidated"}

var stateIRIs = [...]string{"dpv:ConsentUnknown", "dpv:ConsentGiven", "dpv:RenewedConsentGiven",
	"dpv:ConsentRefused", "dpv:ConsentWithdrawn", "dpv:ConsentExpired", "dpv:ConsentInvalidated"}

// String returns the state's short name ("given").
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// IRI returns the state's DPV term ("dpv:ConsentGiven").
func (s State) IRI() string {
	if int(s) < len(stateIRIs) {
		return stateIRIs[s]
	}
	return stateIRIs[0]
}

// MarshalText implements encoding.TextMarshaler.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("consent: unknown state %q", b)
}

// Counts reports whether s is a state in which consent counts (before expiry is considered).
func (s State) Counts() bool { return s == StateGiven || s == StateRenewed }

// Channel is where consent was collected.
type Channel string

// Collection channels.
const (
	ChannelWeb    Channel = "web"
	ChannelApp    Channel = "app"
	ChannelSMS    Channel = "sms"
	ChannelStore  Channel = "store"
	ChannelImport Channel = "import"
	ChannelAPI    Channel = "api"
	// ChannelPortal is privguard's own privacy centre (the portal package).
	ChannelPortal Channel = "portal"
)

// Valid reports whether c is a known channel.
func (c Channel) Valid() bool {
	switch c {
	case ChannelWeb, ChannelApp, ChannelSMS, ChannelStore, ChannelImport, ChannelAPI, ChannelPortal:
		return true
	}
	return false
}

// Method is how the subject expressed the choice.
type Method string

// Expression methods.
const (
	MethodExplicit Method = "explicit" // an affirmative act of the subject (click, tick, reply)
	MethodGPC      Method = "gpc"      // a Global Privacy Control signal (opt-outs only)
	MethodGuardian Method = "guardian" // given by the guardian of a minor
	MethodImported Method = "imported" // imported from another system with its proof reference
)

// Valid reports whether m is a known method.
func (m Method) Valid() bool {
	switch m {
	case MethodExplicit, MethodGPC, MethodGuardian, MethodImported:
		return true
	}
	return false
}

// AgeBand is what is known of the subject's age. Bands are cut at 13, 14, 15, 16 and 18 so
// that the PIPL threshold (14) and every EU member state's age of digital consent (13 to 16)
// can be decided.
type AgeBand string

// Age bands.
const (
	AgeUnknown AgeBand = ""
	Age0to12   AgeBand = "0-12"
	Age13      AgeBand = "13"
	Age14      AgeBand = "14"
	Age15      AgeBand = "15"
	Age16to17  AgeBand = "16-17"
	AgeAdult   AgeBand = "18+"
)

// Valid reports whether b is a known band ("" included).
func (b AgeBand) Valid() bool { return b == AgeUnknown || b.upper() > 0 }

// upper returns the first age not in the band, or 0 for unknown.
func (b AgeBand) upper() int {
	switch b {
	case Age0to12:
		return 13
	case Age13:
		return 14
	case Age14:
		return 15
	case Age15:
		return 16
	case Age16to17:
		return 18
	case AgeAdult:
		return 200
	}
	return 0
}

// Under reports whether everyone in band b is younger than age. Unknown is never under.
func (b AgeBand) Under(age int) bool {
	u := b.upper()
	return u > 0 && u <= age
}

// ActorType says who made the choice a record records.
type ActorType string

// Actor types.
const (
	ActorSubject  ActorType = "subject"
	ActorGuardian ActorType = "guardian"
	ActorOperator ActorType = "operator"
	ActorSystem   ActorType = "system"
)

// NoticeRef identifies the exact notice text a subject was shown.
type NoticeRef struct {
	ID       string   `json:"id"`
	Version  uint32   `json:"version"`
	Language string   `json:"language"`
	Hash     [32]byte `json:"-"` // SHA-256 of the text in that language
}

// Recipient is the party personal data is provided to, as PIPL Arts. 23 and 39 require the
// subject be told: name, contact, purpose, method of processing and categories.
type Recipient struct {
	Name       string                   `json:"name"`
	Contact    string                   `json:"contact"`
	Purpose    string                   `json:"purpose"`
	Method     string                   `json:"method"`
	Categories []privguard.DataCategory `json:"categories"`
}

// Guardian is the evidence of a guardian's consent for a minor (PIPL Art. 31, GDPR Art. 8).
type Guardian struct {
	// Reference identifies the guardian in the controller's systems (not a name).
	Reference          string    `json:"reference"`
	Relationship       string    `json:"relationship"`
	VerificationMethod string    `json:"verification_method"`
	VerifiedAt         time.Time `json:"verified_at"`
}

// Evidence is how the choice was captured. The subject's IP address is never stored: only
// its network prefix (/24 for IPv4, /48 for IPv6) and a keyed hash of the whole address.
type Evidence struct {
	UserAgent   string `json:"user_agent,omitempty"`
	IPPrefix    string `json:"ip_prefix,omitempty"`
	IPHash      []byte `json:"ip_hash,omitempty"`
	UIScreen    string `json:"ui_screen,omitempty"`
	CMPVersion  string `json:"cmp_version,omitempty"`
	CollectedBy string `json:"collected_by,omitempty"` // "first_party" or "third_party"
	ContractRef string `json:"contract_ref,omitempty"` // for consent collected by a partner
	ProofRef    string `json:"proof_ref,omitempty"`    // for imported consent: where the original proof is
	TCString    string `json:"tc_string,omitempty"`
	GPC         bool   `json:"gpc,omitempty"`
	// Identifier is the verified identifier the subject acted through (a privacy-centre
	// sign-in): its type and keyed hash ("phone:<hash>", "token:app"), never its value.
	Identifier string `json:"identifier,omitempty"`
}

// Record is one immutable ledger entry.
type Record struct {
	SchemaVersion uint32               `json:"schema_version"`
	ID            string               `json:"id"`
	Seq           uint64               `json:"seq"`
	Subject       privguard.SubjectID  `json:"subject"`
	Purpose       privguard.Purpose    `json:"purpose,omitempty"`
	Action        Action               `json:"action"`
	LegalBasis    privguard.LegalBasis `json:"legal_basis,omitempty"`
	Regime        privguard.Regime     `json:"regime,omitempty"`
	Notice        *NoticeRef           `json:"notice,omitempty"`
	Channel       Channel              `json:"channel,omitempty"`
	Method        Method               `json:"method,omitempty"`
	// Separate marks separate consent (单独同意); SeparateScope says for what.
	Separate      bool                    `json:"separate,omitempty"`
	SeparateScope privguard.SeparateScope `json:"separate_scope,omitempty"`
	Recipient     *Recipient              `json:"recipient,omitempty"`
	Guardian      *Guardian               `json:"guardian,omitempty"`
	AgeBand       AgeBand                 `json:"age_band,omitempty"`
	Evidence      Evidence                `json:"evidence"`
	// Categories are the personal-data categories the consent covers. On a restrict record
	// they scope the restriction (storage and security only for those categories and their
	// descendants); on a lift_restriction record they name the categories lifted.
	Categories []privguard.DataCategory `json:"categories,omitempty"`
	// Written marks consent given in writing where a law requires it.
	Written bool      `json:"written,omitempty"`
	Time    time.Time `json:"time"`
	// ExpiresAt is when a grant's consent, or a scoped restriction, ends (zero: never).
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// EffectiveAt, on a close_account or end_service record, is when the account closed or
	// the service ended, if earlier than Time (zero: at Time).
	EffectiveAt time.Time `json:"effective_at,omitzero"`
	// Ground is the legal ground a restriction rests on (a retention rule's, for example).
	Ground    string    `json:"ground,omitempty"`
	Actor     string    `json:"actor,omitempty"`
	ActorType ActorType `json:"actor_type,omitempty"`
	PrevHash  [32]byte  `json:"-"`
	Hash      [32]byte  `json:"-"`
}

// MarshalJSON renders the record with its hashes in hex.
func (r Record) MarshalJSON() ([]byte, error) {
	type plain Record
	var notice *noticeJSON
	if r.Notice != nil {
		notice = &noticeJSON{NoticeRef: *r.Notice, SHA256: hexHash(r.Notice.Hash)}
	}
	return json.Marshal(struct {
		plain
		Notice   *noticeJSON `json:"notice,omitempty"`
		State    string      `json:"state"`
		PrevHash string      `json:"prev_hash"`
		Hash     string      `json:"hash"`
	}{plain(r), notice, actionState(r.Action).IRI(), hexHash(r.PrevHash), hexHash(r.Hash)})
}

type noticeJSON struct {
	NoticeRef
	SHA256 string `json:"sha256"`
}
