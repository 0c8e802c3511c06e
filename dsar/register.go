package dsar

import (
	"cmp"
	"encoding/csv"
	"io"
	"strconv"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/internal/csvsafe"
)

// RegisterStats are the on-time figures of one regime's requests.
type RegisterStats struct {
	Total     int     `json:"total"`
	Open      int     `json:"open"`
	Overdue   int     `json:"overdue"`     // open and past due
	Closed    int     `json:"closed"`      // completed, rejected or cancelled
	OnTime    int     `json:"on_time"`     // closed by the due date
	OnTimePct float64 `json:"on_time_pct"` // of closed
}

// Register summarises requests per regime for the DPO's register (PIPL Arts. 50, 54;
// GDPR Art. 5(2)): every request counts, with its on-time ratio.
func Register(requests []Request, now time.Time) map[privguard.Regime]RegisterStats {
	out := map[privguard.Regime]RegisterStats{}
	for _, r := range requests {
		if r.Type == TypeRetention {
			continue // the controller's own sweep, not a subject's request
		}
		s := out[r.Regime]
		s.Total++
		if !r.State.Final() {
			s.Open++
			if Overdue(r.Deadline.Due, now) {
				s.Overdue++
			}
		} else {
			s.Closed++
			if closed := closedAt(r); !closed.IsZero() && !closed.After(r.Deadline.Due) {
				s.OnTime++
			}
		}
		if s.Closed > 0 {
			s.OnTimePct = 100 * float64(s.OnTime) / float64(s.Closed)
		}
		out[r.Regime] = s
	}
	return out
}

// closedAt is when r reached its final state.
func closedAt(r Request) time.Time {
	if !r.ClosedAt.IsZero() {
		return r.ClosedAt
	}
	if t := closingEvent(r); !t.IsZero() || len(r.Events) == 0 {
		return t
	}
	return r.Events[len(r.Events)-1].Time // a record without a closing event: its last one
}

// closingEvent is the time of the event that closed r (completed, cancelled, rejected):
// the writes after it (a download, the sweep) do not move it. Zero if there is none.
func closingEvent(r Request) time.Time {
	for i := len(r.Events) - 1; i >= 0; i-- {
		switch r.Events[i].What {
		case "completed", string(StateCancelled), string(StateRejected):
			return r.Events[i].Time
		}
	}
	return time.Time{}
}

// RegisterEntry is one request as the register shows it: what was asked, under which law,
// how and when it was handled. It names no subject and holds no free text (no patch, no
// operator note or cancellation reason): the request id leads to the rest inside privguard,
// and the register can travel without carrying personal data. The JSON register and
// [WriteRegisterCSV] show the same fields, one column each ([RegisterColumns]).
type RegisterEntry struct {
	ID             string           `json:"id"`
	Type           Type             `json:"type"`
	Regime         privguard.Regime `json:"regime"`
	State          State            `json:"state"`
	ReceivedAt     time.Time        `json:"received_at"`
	VerifiedAt     time.Time        `json:"verified_at,omitzero"`
	IdentityMethod string           `json:"identity_method,omitempty"` // operator, token, code, controller
	Trigger        string           `json:"trigger,omitempty"`
	Due            time.Time        `json:"due"`
	ExtendedMonths int              `json:"extended_months,omitempty"`
	ClosedAt       time.Time        `json:"closed_at,omitzero"`
	// OnTime is set once the request is closed: closed by its due date.
	OnTime  *bool `json:"on_time,omitempty"`
	Overdue bool  `json:"overdue"` // open and past due
	// Reason is the rejection reason code or the engine's cancellation code; an operator's
	// free-text cancellation reason shows as "cancelled_by_operator".
	Reason       string `json:"reason,omitempty"`
	Stores       int    `json:"stores"`
	StoresFailed int    `json:"stores_failed"`
	Recipients   int    `json:"recipients"`
	// HumanReview is an explanation's human review: "requested", then the reviewer's
	// outcome ("upheld" or "changed").
	HumanReview string `json:"human_review,omitempty"`
	// RequesterRole is who asked when not the subject (RequesterCloseRelative).
	RequesterRole string `json:"requester_role,omitempty"`
}

// RegisterColumns are the columns of [WriteRegisterCSV], the JSON names of [RegisterEntry].
var RegisterColumns = []string{"id", "type", "regime", "state", "received_at", "verified_at", "identity_method",
	"trigger", "due", "extended_months", "closed_at", "on_time", "overdue", "reason", "stores", "stores_failed", "recipients",
	"human_review", "requester_role"}

// RegisterEntries returns the register entries of requests, in their order, as of now.
func RegisterEntries(requests []Request, now time.Time) []RegisterEntry {
	out := make([]RegisterEntry, 0, len(requests))
	for _, r := range requests {
		if r.Type == TypeRetention {
			continue // the controller's own sweep, not a subject's request
		}
		x := RegisterEntry{ID: r.ID, Type: r.Type, Regime: r.Regime, State: r.State, ReceivedAt: second(r.ReceivedAt),
			Trigger: r.Trigger, Due: second(r.Deadline.Due), Overdue: !r.State.Final() && Overdue(r.Deadline.Due, now)}
		if r.Identity != nil {
			x.VerifiedAt, x.IdentityMethod = second(r.Identity.VerifiedAt), r.Identity.Method
		}
		if r.Extension != nil {
			x.ExtendedMonths = r.Extension.Months
		}
		if r.State.Final() {
			c := closedAt(r)
			onTime := !c.IsZero() && !c.After(r.Deadline.Due)
			x.ClosedAt, x.OnTime = second(c), &onTime
		}
		// Rejection reasons and the engine's own are codes; an operator's cancellation
		// reason is free text, which stays inside privguard.
		x.Reason = r.Reason
		if r.State == StateCancelled && !engineCancellation(x.Reason) {
			x.Reason = "cancelled_by_operator"
		}
		if r.Requester != nil {
			x.RequesterRole = r.Requester.Role
		}
		if rv := r.HumanReview; rv != nil {
			x.HumanReview = cmp.Or(rv.Outcome, "requested")
		}
		for _, t := range r.Tasks {
			switch {
			case IsRecipientTask(t.Store):
				x.Recipients++
			default:
				x.Stores++
				if t.State == TaskFailed {
					x.StoresFailed++
				}
			}
		}
		out = append(out, x)
	}
	return out
}

// second is t in UTC to the second, as the register shows times (on time is judged on the
// exact times).
func second(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// WriteRegisterCSV writes the register of requests as CSV for the DPO (PIPL Arts. 50, 54;
// GDPR Art. 5(2)): one line per request in the order given, the fields of [RegisterEntry]
// (no subject ids). Cells that a spreadsheet would run as a formula are defused.
func WriteRegisterCSV(w io.Writer, requests []Request, now time.Time) error {
	return WriteRegisterEntriesCSV(w, RegisterEntries(requests, now))
}

// WriteRegisterEntriesCSV writes entries as [WriteRegisterCSV] does.
func WriteRegisterEntriesCSV(w io.Writer, entries []RegisterEntry) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(RegisterColumns); err != nil {
		return err
	}
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, x := range entries {
		months, onTime := "", ""
		if x.ExtendedMonths != 0 {
			months = strconv.Itoa(x.ExtendedMonths)
		}
		if x.OnTime != nil {
			onTime = strconv.FormatBool(*x.OnTime)
		}
		if err := cw.Write([]string{x.ID, string(x.Type), string(x.Regime), string(x.State), ts(x.ReceivedAt), ts(x.VerifiedAt),
			defuse(x.IdentityMethod), defuse(x.Trigger), ts(x.Due), months, ts(x.ClosedAt), onTime, strconv.FormatBool(x.Overdue),
			defuse(x.Reason), strconv.Itoa(x.Stores), strconv.Itoa(x.StoresFailed), strconv.Itoa(x.Recipients),
			x.HumanReview, x.RequesterRole}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// defuse keeps a spreadsheet from running a cell as a formula.
func defuse(s string) string { return csvsafe.Defuse(s) }
