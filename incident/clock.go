package incident

import (
	"time"

	"github.com/privguard/privguard"
)

// The legal windows, from aware_at.
const (
	// GDPRWindow: the supervisory authority is notified within 72 hours (GDPR Art. 33(1)).
	GDPRWindow = 72 * time.Hour
	// CACWindow: an incident of level 较大 or worse is reported to the provincial CAC within
	// 4 hours (国家网络安全事件报告管理办法 Art. 4).
	CACWindow = 4 * time.Hour
	// CIIWindow replaces CACWindow for an operator of critical information infrastructure.
	CIIWindow = 1 * time.Hour
	// AlertLead: a clock alerts this long before its deadline (at once for a window
	// shorter than that).
	AlertLead = 4 * time.Hour
)

// Clock names.
const (
	ClockSA       = "gdpr.authority"
	ClockCAC      = "pipl.authority"
	ClockSubjects = "subjects"
)

// ClockState is where a clock stands.
type ClockState string

// Clock states.
const (
	// NotRequired: the assessment says no notice is due (no risk; a level below 较大).
	NotRequired ClockState = "not_required"
	// Running: before its alert.
	Running ClockState = "running"
	// Alert: within AlertLead of the deadline, or due "without undue delay".
	Alert ClockState = "alert"
	// Overdue: the deadline passed and no notice is recorded.
	Overdue ClockState = "overdue"
	// Met: notified by the deadline (or, without a deadline, notified).
	Met ClockState = "met"
	// MetLate: notified after the deadline.
	MetLate ClockState = "met_late"
)

// Clock is one notice an incident may owe, with its deadline.
type Clock struct {
	Name   string           `json:"name"`
	Regime privguard.Regime `json:"regime"`
	// To is AuthoritySA, AuthorityCAC or "subjects".
	To    string     `json:"to"`
	State ClockState `json:"state"`
	// Due is the deadline (nil: without undue delay); AlertAt when the clock alerts.
	Due     *time.Time `json:"due,omitempty"`
	AlertAt *time.Time `json:"alert_at,omitempty"`
	// Left is the time to the deadline in seconds at reading, negative when past.
	Left *float64 `json:"seconds_left,omitempty"`
	// Why says what makes the notice due or not: "assessment due: the strictest clock
	// applies", "risk high", "level 较大 or worse", ...
	Why    string     `json:"why"`
	Notice *time.Time `json:"notified_at,omitempty"`
}

// Open reports a clock still waiting for its notice.
func (c *Clock) Open() bool { return c.State == Running || c.State == Alert || c.State == Overdue }

// Clocks returns the clocks of in at now, for the regimes given (both if none) and with
// the CII operator's window if cii.
func Clocks(in *Incident, now time.Time, regimes []privguard.Regime, cii bool) []Clock {
	has := func(r privguard.Regime) bool {
		if len(regimes) == 0 {
			return true
		}
		for _, x := range regimes {
			if x == r {
				return true
			}
		}
		return false
	}
	var out []Clock
	if has(privguard.RegimeGDPR) {
		c := Clock{Name: ClockSA, Regime: privguard.RegimeGDPR, To: AuthoritySA}
		required := true
		switch in.Risk {
		case "":
			c.Why = "risk not assessed: the strictest clock applies"
		case NoRisk:
			c.Why, required = "risk none: unlikely to result in a risk to the individuals (Art. 33(1))", false
		default:
			c.Why = "risk " + string(in.Risk)
		}
		out = append(out, c.run(in, now, required, GDPRWindow))
	}
	if has(privguard.RegimePIPL) {
		c := Clock{Name: ClockCAC, Regime: privguard.RegimePIPL, To: AuthorityCAC}
		window := CACWindow
		if cii {
			window = CIIWindow
		}
		required := true
		switch {
		case in.Severity == "":
			c.Why = "level not assessed: the strictest clock applies"
		case in.Severity.Reportable():
			c.Why = "level " + in.Severity.Chinese() + ": 较大 or worse"
		default:
			c.Why, required = "level "+in.Severity.Chinese()+": below 较大", false
		}
		if cii {
			c.Why += " (CII operator: 1 h)"
		}
		out = append(out, c.run(in, now, required, window))
	}
	// The subjects: when the risk is high (GDPR Art. 34(1)); under PIPL Art. 57 unless the
	// measures avoid the harm (no risk). Without undue delay: no fixed deadline.
	c := Clock{Name: ClockSubjects, To: "subjects"}
	required := false
	switch {
	case in.Risk == "":
		c.Why, required = "risk not assessed: the strictest clock applies", true
	case in.Risk == HighRisk:
		c.Why, required = "risk high", true
	case in.Risk == SomeRisk && has(privguard.RegimePIPL):
		c.Why, required = "risk: PIPL Art. 57 notifies the individuals unless the measures avoid the harm", true
	default:
		c.Why = "risk " + string(in.Risk) + ": the subjects need not be notified"
	}
	out = append(out, c.run(in, now, required, 0))
	return out
}

// run sets the clock's deadline and state; window 0 means without undue delay.
func (c Clock) run(in *Incident, now time.Time, required bool, window time.Duration) Clock {
	var due time.Time
	if window > 0 {
		due = in.AwareAt.Add(window)
		alert := due.Add(-AlertLead)
		if alert.Before(in.AwareAt) {
			alert = in.AwareAt
		}
		c.Due, c.AlertAt = &due, &alert
	}
	if n := in.notified(c.To); n != nil {
		at := n.At
		c.Notice, c.State = &at, Met
		if window > 0 && at.After(due) {
			c.State = MetLate
		}
		return c
	}
	if !required {
		c.State, c.Due, c.AlertAt = NotRequired, nil, nil
		return c
	}
	if window == 0 {
		c.State = Alert
		return c
	}
	left := due.Sub(now).Seconds()
	c.Left = &left
	switch {
	case !now.Before(due):
		c.State = Overdue
	case !now.Before(*c.AlertAt):
		c.State = Alert
	default:
		c.State = Running
	}
	return c
}
