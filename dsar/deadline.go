package dsar

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/privguard/privguard"
)

// Deadline defaults.
const (
	DefaultPIPLWorkdays   = 15 // App认定方法 §6: promised time ≤ 15 working days
	DefaultPIPLCapDays    = 30 // GB/T 35273-2020 §8.7: 30 days
	GDPRMaxExtensionMonth = 2  // Art. 12(3): "by two further months"
)

// ChinaTime is the zone PIPL working days are counted in (no daylight saving).
var ChinaTime = time.FixedZone("CST", 8*3600)

// ErrExtensionRefused means an extension breaks Art. 12(3): not GDPR, more than two months,
// no reason, or not recorded and notified within the first month.
var ErrExtensionRefused = errors.New("dsar: extension refused")

// Pause is a time the controller waited for the subject (identity, clarification); the
// clock stops. To is zero while still waiting.
type Pause struct {
	From, To time.Time
}

// Extension extends a GDPR deadline.
type Extension struct {
	Months     int       `json:"months"`
	Reason     string    `json:"reason"`
	RecordedAt time.Time `json:"recorded_at"`
	NotifiedAt time.Time `json:"notified_at"` // when the subject was told of the extension and its reasons
}

// UnmarshalJSON also reads the field names requests were stored with before they had JSON
// names (RecordedAt, NotifiedAt).
func (x *Extension) UnmarshalJSON(b []byte) error {
	type plain Extension
	var v struct {
		plain
		OldRecordedAt time.Time `json:"RecordedAt"`
		OldNotifiedAt time.Time `json:"NotifiedAt"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*x = Extension(v.plain)
	if x.RecordedAt.IsZero() {
		x.RecordedAt = v.OldRecordedAt
	}
	if x.NotifiedAt.IsZero() {
		x.NotifiedAt = v.OldNotifiedAt
	}
	return nil
}

// Deadlines computes request deadlines. The zero value is not usable: use NewDeadlines.
type Deadlines struct {
	cal          *Calendar
	piplWorkdays int
	piplCapDays  int
}

// NewDeadlines returns the deadline engine on cal (nil: the shipped calendar). piplWorkdays
// of 0 means DefaultPIPLWorkdays.
func NewDeadlines(cal *Calendar, piplWorkdays int) (*Deadlines, error) {
	if cal == nil {
		c, err := ParseCalendar(DefaultCNWorkdays)
		if err != nil {
			return nil, err
		}
		cal = c
	}
	if piplWorkdays == 0 {
		piplWorkdays = DefaultPIPLWorkdays
	}
	if piplWorkdays < 1 || piplWorkdays > 22 {
		return nil, fmt.Errorf("dsar: PIPL working days %d: want 1..22 (30 calendar days at most)", piplWorkdays)
	}
	return &Deadlines{cal: cal, piplWorkdays: piplWorkdays, piplCapDays: DefaultPIPLCapDays}, nil
}

// Deadline is when a request is due.
type Deadline struct {
	Due time.Time `json:"due"`
	// FirstDue is the due date before any extension (an extension must be decided and told
	// before it).
	FirstDue time.Time `json:"first_due"`
	Extended bool      `json:"extended"`
	// Warnings name what made the computation uncertain (a year missing from the calendar).
	Warnings []string `json:"warnings,omitempty"`
}

// Due computes the deadline of a request of regime received at received, with the pauses
// so far and an optional extension, as of now (an open pause counts up to now).
func (d *Deadlines) Due(regime privguard.Regime, received time.Time, pauses []Pause, ext *Extension, now time.Time) (Deadline, error) {
	switch regime {
	case privguard.RegimeGDPR:
		return d.gdpr(received, pauses, ext, now)
	case privguard.RegimePIPL:
		if ext != nil {
			return Deadline{}, fmt.Errorf("%w: PIPL has no extension; reply in time or refuse with reasons", ErrExtensionRefused)
		}
		return d.pipl(received, pauses, now), nil
	}
	return Deadline{}, fmt.Errorf("dsar: regime %q: %w", regime, privguard.ErrInvalid)
}

func (d *Deadlines) gdpr(received time.Time, pauses []Pause, ext *Extension, now time.Time) (Deadline, error) {
	paused := time.Duration(0)
	for _, p := range pauses {
		to := p.To
		if to.IsZero() {
			to = now
		}
		if to.After(p.From) {
			paused += to.Sub(p.From)
		}
	}
	first := addMonths(received, 1).Add(paused)
	dl := Deadline{Due: first, FirstDue: first}
	if ext != nil {
		switch {
		case ext.Months < 1 || ext.Months > GDPRMaxExtensionMonth:
			return Deadline{}, fmt.Errorf("%w: %d months (one or two)", ErrExtensionRefused, ext.Months)
		case ext.Reason == "":
			return Deadline{}, fmt.Errorf("%w: the reasons must be recorded and told to the subject", ErrExtensionRefused)
		case ext.RecordedAt.IsZero() || ext.RecordedAt.After(first):
			return Deadline{}, fmt.Errorf("%w: decided after the first month", ErrExtensionRefused)
		case ext.NotifiedAt.IsZero() || ext.NotifiedAt.After(first):
			return Deadline{}, fmt.Errorf("%w: the subject was not told within the first month", ErrExtensionRefused)
		}
		dl.Due, dl.Extended = addMonths(received, 1+ext.Months).Add(paused), true
	}
	return dl, nil
}

func (d *Deadlines) pipl(received time.Time, pauses []Pause, now time.Time) Deadline {
	r := received.In(ChinaTime)
	pausedDays, pausedCal := 0, time.Duration(0)
	for _, p := range pauses {
		to := p.To
		if to.IsZero() {
			to = now
		}
		if to.After(p.From) {
			pausedDays += d.cal.workdaysBetween(p.From.In(ChinaTime), to.In(ChinaTime))
			pausedCal += to.Sub(p.From)
		}
	}
	due, unknown := d.cal.AddWorkdays(r, d.piplWorkdays+pausedDays)
	if limit := endOfDay(r.AddDate(0, 0, d.piplCapDays)).Add(pausedCal); due.After(limit) {
		due = limit
	}
	dl := Deadline{Due: due, FirstDue: due}
	for _, y := range unknown {
		dl.Warnings = append(dl.Warnings, fmt.Sprintf("the working-day calendar does not list %d: counted weekends only", y))
	}
	return dl
}

// Overdue reports whether a request due at due and not closed is late at now.
func Overdue(due, now time.Time) bool { return now.After(due) }

// DueSoon reports whether due falls within the next window at now (and is not yet late).
func DueSoon(due, now time.Time, window time.Duration) bool {
	return !now.After(due) && due.Sub(now) <= window
}
