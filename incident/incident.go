package incident

import (
	"errors"
	"fmt"
	"time"

	"github.com/privguard/privguard"
)

// Log is the journal log of the incident register.
const Log = "incidents"

// Severity is the incident's level under the PRC incident reporting measures (国家网络安全
// 事件报告管理办法 and its classification annex), assessed by the controller.
type Severity string

// Severities, from the most severe.
const (
	EspeciallyMajor Severity = "especially_major" // 特别重大
	Major           Severity = "major"            // 重大
	RelativelyMajor Severity = "relatively_major" // 较大
	General         Severity = "general"          // 一般
)

var severityNames = map[Severity]string{EspeciallyMajor: "特别重大", Major: "重大", RelativelyMajor: "较大", General: "一般"}

// ParseSeverity reads a severity by its name (especially_major, major, relatively_major,
// general) or its Chinese name (特别重大, 重大, 较大, 一般).
func ParseSeverity(s string) (Severity, error) {
	for sev, zh := range severityNames {
		if s == string(sev) || s == zh {
			return sev, nil
		}
	}
	return "", errors.New("want especially_major (特别重大), major (重大), relatively_major (较大) or general (一般)")
}

// Chinese returns the level's Chinese name ("" for none).
func (s Severity) Chinese() string { return severityNames[s] }

// Reportable reports whether the level must be reported to the CAC (较大 or worse).
func (s Severity) Reportable() bool {
	return s == EspeciallyMajor || s == Major || s == RelativelyMajor
}

// Risk is the controller's assessment of the risk to the rights and freedoms of the
// individuals (GDPR Arts. 33(1), 34(1)).
type Risk string

// Risks.
const (
	NoRisk   Risk = "none" // unlikely to result in a risk: no notice to the authority
	SomeRisk Risk = "risk" // the authority is notified
	HighRisk Risk = "high" // the authority and the subjects are notified
)

// ParseRisk reads a risk: none, risk or high.
func ParseRisk(s string) (Risk, error) {
	switch r := Risk(s); r {
	case NoRisk, SomeRisk, HighRisk:
		return r, nil
	}
	return "", errors.New("want none, risk or high")
}

// Authorities an incident is notified to.
const (
	// AuthoritySA is the GDPR lead supervisory authority.
	AuthoritySA = "sa"
	// AuthorityCAC is the provincial office of the Cyberspace Administration of China
	// (for a CII operator: its protection department and the police as well).
	AuthorityCAC = "cac"
)

// Statuses of an incident.
const (
	StatusOpen   = "open"
	StatusClosed = "closed"
)

// Note is a dated text of the incident: a fact, an effect, a remedial action.
type Note struct {
	At   time.Time `json:"at"`
	Text string    `json:"text"`
	By   string    `json:"by,omitempty"`
}

// Notification is a notice made: to an authority or to the subjects.
type Notification struct {
	// To is AuthoritySA, AuthorityCAC or "subjects".
	To string    `json:"to"`
	At time.Time `json:"at"`
	// Reference is the authority's case number or the channel's reference.
	Reference string `json:"reference,omitempty"`
	// DelayReason says why a notice to the authority came after its deadline (GDPR
	// Art. 33(1)).
	DelayReason string `json:"delay_reason,omitempty"`
	// Tasks is how many subjects a notice to the subjects went to.
	Tasks int    `json:"tasks,omitempty"`
	By    string `json:"by,omitempty"`
	// Notice is the text notified, as rendered (no subject's data: it describes the
	// incident).
	Notice *Notice `json:"notice,omitempty"`
}

// Incident is an incident as the register holds it: its events folded.
type Incident struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	// Status is StatusOpen or StatusClosed.
	Status string `json:"status"`
	// AwareAt is when the controller became aware of it: every clock starts there.
	AwareAt    time.Time  `json:"aware_at"`
	OccurredAt *time.Time `json:"occurred_at,omitempty"`
	RecordedAt time.Time  `json:"recorded_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	// Severity and Risk are "" until assessed.
	Severity Severity `json:"severity,omitempty"`
	Risk     Risk     `json:"risk,omitempty"`
	// Cause of the incident, as last stated.
	Cause string `json:"cause,omitempty"`
	// Facts, Effects (the possible harm) and Actions (the remedial actions taken) as
	// recorded, oldest first.
	Facts   []Note `json:"facts"`
	Effects []Note `json:"effects"`
	Actions []Note `json:"actions"`
	// Advice is what an individual can do to reduce the harm (PIPL Art. 57(3)).
	Advice     string                   `json:"advice,omitempty"`
	Categories []privguard.DataCategory `json:"categories"`
	// SubjectCount is the (approximate) number of individuals affected.
	SubjectCount int64 `json:"subject_count"`
	// Subjects are the affected individuals named, as keyed pseudonyms; Named counts them
	// (a register page leaves the list out).
	Subjects      []string       `json:"subjects,omitempty"`
	Named         int            `json:"subjects_named"`
	Notifications []Notification `json:"notifications"`
	ClosedAt      *time.Time     `json:"closed_at,omitempty"`
	// Seq is the journal entry that recorded it; Events counts its events.
	Seq    uint64 `json:"seq"`
	Events int    `json:"events"`
}

// notified returns the first notification to to, if any.
func (in *Incident) notified(to string) *Notification {
	for i := range in.Notifications {
		if in.Notifications[i].To == to {
			return &in.Notifications[i]
		}
	}
	return nil
}

// Gaps names what the register still lacks for the incident (SEC-10: facts, effects and
// remedial actions recorded; the assessment made): "effects", "actions", "severity",
// "risk", "cause", "categories". An incident with gaps cannot be closed.
func (in *Incident) Gaps() []string {
	var gaps []string
	if len(in.Facts) == 0 {
		gaps = append(gaps, "facts")
	}
	if in.Cause == "" {
		gaps = append(gaps, "cause")
	}
	if len(in.Effects) == 0 {
		gaps = append(gaps, "effects")
	}
	if len(in.Actions) == 0 {
		gaps = append(gaps, "actions")
	}
	if len(in.Categories) == 0 {
		gaps = append(gaps, "categories")
	}
	if in.Severity == "" {
		gaps = append(gaps, "severity")
	}
	if in.Risk == "" {
		gaps = append(gaps, "risk")
	}
	return gaps
}

// AssessmentDue reports an incident whose severity or risk is not assessed yet.
func (in *Incident) AssessmentDue() bool { return in.Severity == "" || in.Risk == "" }

// FieldError is a change refused for one field's value. It wraps privguard.ErrInvalid.
type FieldError struct {
	Field  string
	Detail string
}

func (e *FieldError) Error() string { return fmt.Sprintf("incident: %s: %s", e.Field, e.Detail) }

// Unwrap returns privguard.ErrInvalid.
func (e *FieldError) Unwrap() error { return privguard.ErrInvalid }

// ErrClosed is returned for a change to a closed incident (other than a notice recorded).
var ErrClosed = fmt.Errorf("incident: the incident is closed: %w", privguard.ErrConflict)

// GapsError refuses to close an incident that lacks what the register must hold
// ([Incident.Gaps]) or still owes a notice ("notice " and the clock's name).
type GapsError struct{ Gaps []string }

func (e *GapsError) Error() string { return fmt.Sprintf("incident: cannot close: missing %v", e.Gaps) }

// Unwrap returns privguard.ErrConflict.
func (e *GapsError) Unwrap() error { return privguard.ErrConflict }
