package dsar

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/privguard/privguard"
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

// RegisterColumns are the columns of [WriteRegisterCSV].
var RegisterColumns = []string{"id", "type", "regime", "state", "received_at", "verified_at", "identity_method",
	"trigger", "due", "extended_months", "closed_at", "on_time", "overdue", "reason", "stores", "stores_failed", "recipients"}

// WriteRegisterCSV writes the register of requests as CSV for the DPO (PIPL Arts. 50, 54;
// GDPR Art. 5(2)): one line per request, oldest first. It names no subject: the request id
// leads to it inside privguard, and the export can travel without carrying personal data.
func WriteRegisterCSV(w io.Writer, requests []Request, now time.Time) error {
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
	for _, r := range requests {
		var verified, method string
		if r.Identity != nil {
			verified, method = ts(r.Identity.VerifiedAt), r.Identity.Method
		}
		months := ""
		if r.Extension != nil {
			months = strconv.Itoa(r.Extension.Months)
		}
		closed, onTime, overdue := "", "", strconv.FormatBool(!r.State.Final() && Overdue(r.Deadline.Due, now))
		if r.State.Final() {
			c := closedAt(r)
			closed, onTime = ts(c), strconv.FormatBool(!c.IsZero() && !c.After(r.Deadline.Due))
		}
		// Rejection reasons and the engine's own are codes; an operator's cancellation
		// reason is free text, which stays inside privguard.
		reason := r.Reason
		if r.State == StateCancelled && reason != "identity_not_verified" {
			reason = "cancelled_by_operator"
		}
		stores, failed, recipients := 0, 0, 0
		for _, t := range r.Tasks {
			switch {
			case IsRecipientTask(t.Store):
				recipients++
			default:
				stores++
				if t.State == TaskFailed {
					failed++
				}
			}
		}
		if err := cw.Write([]string{r.ID, string(r.Type), string(r.Regime), string(r.State), ts(r.ReceivedAt), verified, defuse(method),
			defuse(r.Trigger), ts(r.Deadline.Due), months, closed, onTime, overdue, defuse(reason),
			strconv.Itoa(stores), strconv.Itoa(failed), strconv.Itoa(recipients)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// defuse keeps a spreadsheet from running a cell as a formula.
func defuse(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
