package dsar

import (
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

// closedAt is when r reached its final state (the last event).
func closedAt(r Request) time.Time {
	if len(r.Events) == 0 {
		return time.Time{}
	}
	return r.Events[len(r.Events)-1].Time
}
