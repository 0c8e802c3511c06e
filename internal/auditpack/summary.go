package auditpack

import (
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/disclosure"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/evidence"
)

// Summary is summary.json: the figures of every section, which the report draws and
// [Verify] checks against the members they come from.
type Summary struct {
	Period     Period    `json:"period"`
	AsOf       time.Time `json:"as_of"`
	Controller string    `json:"controller,omitempty"`
	// Heads are the chain heads the pack was made at (heads.json).
	Heads []Head `json:"heads"`

	Record      *RecordFigures          `json:"record,omitempty"`
	Requests    *RequestFigures         `json:"requests,omitempty"`
	Disclosures *DisclosureFigures      `json:"disclosures,omitempty"`
	CrossBorder []disclosure.Accounting `json:"cross_border,omitempty"`
	Assessments *AssessmentFigures      `json:"assessments,omitempty"`
	Trail       *TrailFigures           `json:"trail,omitempty"`
	Consent     *ConsentFigures         `json:"consent,omitempty"`
	Decisions   *DecisionFigures        `json:"decisions,omitempty"`
	Incidents   *IncidentFigures        `json:"incidents,omitempty"`
}

// ConsentFigures count the ledger's events in the period, in total and per purpose ("*":
// a withdrawal of every purpose).
type ConsentFigures struct {
	Grants      int                       `json:"grants"`
	Withdrawals int                       `json:"withdrawals"`
	Expiries    int                       `json:"expiries"`
	Refusals    int                       `json:"refusals"`
	ByPurpose   map[string]evidence.Count `json:"by_purpose"`
}

// DecisionFigures count the decision log's lines in the period.
type DecisionFigures struct {
	Lines   int64 `json:"lines"`
	Allowed int64 `json:"allowed"`
	Denied  int64 `json:"denied"`
	// DenyReasons counts the denials' reasons; ByPurpose the decisions per purpose.
	DenyReasons map[string]int64 `json:"deny_reasons"`
	ByPurpose   map[string]int64 `json:"by_purpose"`
}

// IncidentFigures count the incidents the controller became aware of in the period.
type IncidentFigures struct {
	Total  int `json:"total"`
	Closed int `json:"closed"`
	// Notified: to an authority or to the subjects; Overdue: a deadline passed without its
	// notice.
	Notified   int            `json:"notified"`
	Overdue    int            `json:"overdue"`
	BySeverity map[string]int `json:"by_severity"`
}

// RecordFigures count the record of processing.
type RecordFigures struct {
	Activities int `json:"activities"`
	Recipients int `json:"recipients"`
	Transfers  int `json:"transfers"`
	// Gaps are facts the record lacks, with the key that declares each.
	Gaps []string `json:"gaps"`
}

// RequestFigures are the request register's: every request received in the period.
type RequestFigures struct {
	Total    int                                     `json:"total"`
	ByRegime map[privguard.Regime]dsar.RegisterStats `json:"by_regime"`
	ByType   map[dsar.Type]int                       `json:"by_type"`
	// Weeks are the period's weeks (Monday to Sunday, UTC), each with the requests received
	// and those closed in it.
	Weeks []Week `json:"weeks"`
}

// Week is one week of the request register.
type Week struct {
	Start    string `json:"start"` // the Monday, YYYY-MM-DD
	Received int    `json:"received"`
	Closed   int    `json:"closed"`
	OnTime   int    `json:"on_time"`
	// OnTimePct is OnTime of Closed, in percent (0 when none closed).
	OnTimePct float64 `json:"on_time_pct"`
}

// DisclosureFigures count the disclosure log's entries in the period.
type DisclosureFigures struct {
	Entries int `json:"entries"`
	// ByKind counts entries per kind (provision, transfer, notice, refused...).
	ByKind map[string]int `json:"by_kind"`
	Abroad int            `json:"abroad"`
	// People is the sum of the entries' scale (people provided), not distinct people: the
	// cross-border register counts those.
	People int64 `json:"people"`
}

// AssessmentFigures count the impact assessments by status.
type AssessmentFigures struct {
	Total    int            `json:"total"`
	ByStatus map[string]int `json:"by_status"`
	// Verified says the assessment log's chain verified; Break where it did not.
	Verified bool   `json:"verified"`
	Break    string `json:"break,omitempty"`
}

// TrailFigures count the admin trail's acts in the period.
type TrailFigures struct {
	Acts      int            `json:"acts"`
	ByOutcome map[string]int `json:"by_outcome"`
	KeyEvents int            `json:"key_events"`
}

// weeks returns the Mondays (UTC) of the weeks p touches.
func weeks(p Period) []Week {
	start := monday(p.From)
	var out []Week
	for w := start; w.Before(p.To); w = w.AddDate(0, 0, 7) {
		out = append(out, Week{Start: w.Format(time.DateOnly)})
	}
	return out
}

// monday is the start of t's week (Monday 00:00 UTC).
func monday(t time.Time) time.Time {
	t = t.UTC()
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
}

// weekIndex is the index in weeks(p) of t's week, or -1 outside the period.
func weekIndex(p Period, t time.Time) int {
	if t.IsZero() || t.Before(p.From) || !t.Before(p.To) {
		return -1
	}
	return int(monday(t).Sub(monday(p.From)).Hours() / (24 * 7))
}
