package dsar

import (
	"encoding/json"
	"time"

	"github.com/privguard/privguard"
)

// Type is what a subject asks for.
type Type string

// Request types (GDPR Arts. 15-21, PIPL Arts. 44-47).
const (
	TypeAccess      Type = "access"      // a copy of the data
	TypePortability Type = "portability" // machine-readable copy
	TypeCategories  Type = "categories"  // what kinds of data, purposes, recipients only
	TypeCorrection  Type = "correction"  // a patch: category -> new value
	TypeDeletion    Type = "deletion"
	TypeRestriction Type = "restriction" // storage and security only
	TypeObjection   Type = "objection"   // to direct marketing
	// TypeExplanation asks why automated decisions about the subject were made: the logic,
	// the model and the data it uses, and the subject's recent decisions, with a route to a
	// human review (PIPL Art. 24(3), GDPR Arts. 15(1)(h), 22(3)). It runs no store task.
	TypeExplanation Type = "explanation"
	// TypeRetention is a retention run: the controller's own sweep of expired data
	// (PIPL Arts. 19, 47(1); GDPR Art. 5(1)(e)). It has no subject; each task carries the
	// store's sweep actions ([Engine.SubmitRetention]).
	TypeRetention Type = "retention"
	// TypeTagDeletion is a narrow erasure: the derived items the subject picked from its
	// profile (Request.Items; [Engine.SubmitTagDeletion]), erased on the stores that hold
	// them (Profiler.EraseDerived). The subject is not erased: no other data is touched,
	// the vault keys stay and the consent ledger records no erasure.
	TypeTagDeletion Type = "tag_deletion"
)

// ParseType returns the type named s, accepting the verbs as well (correct, delete,
// restrict, object). An unknown name comes back as is (and is not Valid).
func ParseType(s string) Type {
	switch s {
	case "correct":
		return TypeCorrection
	case "delete":
		return TypeDeletion
	case "restrict":
		return TypeRestriction
	case "object":
		return TypeObjection
	case "explain":
		return TypeExplanation
	}
	return Type(s)
}

// Valid reports whether t is a known type.
func (t Type) Valid() bool {
	switch t {
	case TypeAccess, TypePortability, TypeCategories, TypeCorrection, TypeDeletion, TypeRestriction, TypeObjection, TypeExplanation, TypeRetention, TypeTagDeletion:
		return true
	}
	return false
}

// needsStores reports whether requests of type t run a task on every store (a tag
// deletion runs one on each store of its items: see start).
func (t Type) needsStores() bool {
	switch t {
	case TypeAccess, TypePortability, TypeCategories, TypeCorrection, TypeDeletion:
		return true
	}
	return false
}

// deduplicated reports whether a new request of type t is answered by an open one of the
// same subject and type: not a correction or a tag deletion, which carry their own patch
// or items.
func (t Type) deduplicated() bool { return t != TypeCorrection && t != TypeTagDeletion }

// State is where a request is.
type State string

// Request states.
const (
	StateReceived       State = "received"
	StateAwaitingVerify State = "awaiting_verification"
	StateVerified       State = "verified"
	// StateAwaitingApproval: a verified correction waits for an operator to approve the
	// patch (GDPR Art. 16, PIPL Art. 46: the controller checks the new data is accurate).
	StateAwaitingApproval State = "awaiting_approval"
	StateInProgress       State = "in_progress"
	// StateAwaitingReview: an explanation whose subject asked for a human review waits for
	// a person to review the automated decision (PIPL Art. 24(3), GDPR Art. 22(3)); the
	// explanation itself is ready.
	StateAwaitingReview  State = "awaiting_review"
	StateCompleted       State = "completed"
	StatePartiallyFailed State = "partially_failed"
	StateRejected        State = "rejected"
	StateCancelled       State = "cancelled"
)

// States returns every state a request can be in, in the order a request passes them.
func States() []State {
	return []State{StateReceived, StateAwaitingVerify, StateVerified, StateAwaitingApproval, StateInProgress,
		StateAwaitingReview, StateCompleted, StatePartiallyFailed, StateRejected, StateCancelled}
}

// Final reports whether s ends a request.
func (s State) Final() bool {
	return s == StateCompleted || s == StateRejected || s == StateCancelled
}

// TaskState is where one store's part of a request is.
type TaskState string

// Task states.
const (
	TaskPending TaskState = "pending"
	TaskDone    TaskState = "done"
	TaskFailed  TaskState = "failed" // failed for now; retried at NextAttempt
	// TaskWaiting: the store accepted the work and reports completion by callback; it is
	// asked again at NextAttempt if the callback has not come.
	TaskWaiting TaskState = "waiting"
)

// Task is a request's work on one store.
type Task struct {
	Store       string    `json:"store"`
	State       TaskState `json:"state"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// LastError names the failure without personal data: store, operation and kind
	// ("crm: erase failed: table_missing").
	LastError string `json:"last_error,omitempty"`
	// ErrorKind is the kind of the last failure (one of ErrorKinds).
	ErrorKind ErrorKind `json:"error_kind,omitempty"`
	Items     int       `json:"items"` // rows exported or items erased/corrected
	DoneAt    time.Time `json:"done_at,omitzero"`
	// Actions are a retention run's sweep actions on this store, carried out in order;
	// Counts[i] is what action i changed so far, and the actions before Next are finished.
	Actions []SweepAction `json:"actions,omitempty"`
	Counts  []int         `json:"counts,omitempty"`
	Next    int           `json:"next_action,omitempty"`
}

// Triggers of proactive erasure (PIPL Art. 47(1), GDPR Art. 17(1)): the controller
// must erase on its own initiative, not only when asked.
var Triggers = []string{
	"purpose_achieved",    // the purpose is achieved, cannot be, or the data is no longer needed
	"service_ended",       // the product or service stopped, or the account was closed
	"retention_expired",   // the retention period ended
	"consent_withdrawn",   // consent withdrawn and no other basis
	"unlawful_processing", // processed in breach of law or agreement
}

// Identity is how the requester's identity was verified.
type Identity struct {
	Method     string    `json:"method"` // "token", "code", "operator"
	Note       string    `json:"note,omitempty"`
	Operator   string    `json:"operator,omitempty"`
	VerifiedAt time.Time `json:"verified_at,omitzero"`
}

// Approval is an operator's approval of a correction.
type Approval struct {
	By   string    `json:"by"`
	Note string    `json:"note,omitempty"`
	At   time.Time `json:"at"`
}

// Event is one entry of a request's audit trail.
type Event struct {
	Time   time.Time `json:"time"`
	What   string    `json:"what"`
	Detail string    `json:"detail,omitempty"`
}

// Request is one data-subject request.
type Request struct {
	ID string `json:"id"`
	// Version counts the request's stored writes; a Step round that finds it changed
	// merges its results in instead of writing over the change.
	Version    uint64                            `json:"version"`
	Type       Type                              `json:"type"`
	Subject    privguard.SubjectID               `json:"subject"`
	Regime     privguard.Regime                  `json:"regime"`
	ReceivedAt time.Time                         `json:"received_at"`
	Deadline   Deadline                          `json:"deadline"`
	State      State                             `json:"state"`
	Identity   *Identity                         `json:"identity,omitempty"`
	Patch      map[privguard.DataCategory]string `json:"patch,omitempty"`
	// Items are what a tag deletion erases: derived items of the subject, as its profile
	// listed them when the request was made.
	Items []DerivedItem `json:"items,omitempty"`
	// TransferTo names the recipient a portability package goes to directly, instead of
	// a download link to the subject (GDPR Art. 20(2)).
	TransferTo string `json:"transfer_to,omitempty"`
	// Trigger marks a deletion the controller starts itself (one of Triggers), not the subject.
	Trigger string `json:"trigger,omitempty"`
	// AccountCancellation marks a deletion the subject asked for with the closing of its
	// account (注销, DSR-12): everything is deleted or anonymised, and the account is closed
	// in the ledger by whoever took the request.
	AccountCancellation bool   `json:"account_cancellation,omitempty"`
	Tasks               []Task `json:"tasks"`
	Reason              string `json:"reason,omitempty"` // rejection reason code, or why cancelled
	// Recourse tells a rejected subject where to complain and that a court remedy exists.
	Recourse  string     `json:"recourse,omitempty"`
	Events    []Event    `json:"events"`
	Pauses    []Pause    `json:"pauses,omitempty"`
	Extension *Extension `json:"extension,omitempty"`
	// ClosedAt is when the request reached its final state.
	ClosedAt time.Time `json:"closed_at,omitzero"`
	// Applied reports that a restriction or objection is recorded in the consent ledger.
	Applied bool `json:"applied,omitempty"`
	// Approval records who approved a correction's patch.
	Approval *Approval `json:"approval,omitempty"`
	// Result is the package of a finished access, portability or categories request.
	Result *Result `json:"result,omitempty"`
	// Challenge holds the request's one-time codes: the pending one (hashed) and the counts
	// of codes sent and wrong tries, which bound them.
	Challenge *challenge `json:"challenge,omitempty"`
	// ScrubbedAt is when the subject's personal data was removed from the request (patch
	// values and free-text notes replaced by MaskValue) because the subject's erasure
	// completed. On that erasure it also records that every earlier request of the
	// subject was scrubbed.
	ScrubbedAt time.Time `json:"scrubbed_at,omitzero"`
	// Lang is the language the answer is written in first ("zh-CN" or "en"); empty: by
	// regime (ReaderLang). Zone is the IANA zone its times are shown in; empty: by regime
	// (ReaderZone: Beijing time under PIPL, UTC under GDPR).
	Lang string `json:"lang,omitempty"`
	Zone string `json:"zone,omitempty"`
	// Requester is who asked when not the subject: a close relative of a deceased subject
	// (PIPL Art. 49). Nil: the subject.
	Requester *Requester `json:"requester,omitempty"`
	// Explanation is the answer of an explanation request: per automated-decision purpose,
	// the logic, the model, the features and the subject's recent decisions.
	Explanation *Explanation `json:"explanation,omitempty"`
	// HumanReview records that the subject asked for a person to review an automated
	// decision, and, once answered, the reviewer's outcome.
	HumanReview *Review `json:"human_review,omitempty"`
	// Plan is a retention run's account of its planning: what it skipped and kept, and why
	// (the planner's JSON, kept as it is).
	Plan json.RawMessage `json:"plan,omitempty"`
}

func (r *Request) event(now time.Time, what, detail string) {
	r.Events = append(r.Events, Event{Time: now, What: what, Detail: detail})
}
