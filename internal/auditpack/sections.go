package auditpack

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/audit"
	"github.com/privguard/privguard/disclosure"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/evidence"
	"github.com/privguard/privguard/incident"
	"github.com/privguard/privguard/internal/ropa"
	"github.com/privguard/privguard/internal/trail"
	"github.com/privguard/privguard/journal"
	"github.com/privguard/privguard/pia"
)

// RecordSection writes the record of processing (AUD-01) as ropa.json and ropa.csv
// (Chinese values; both have bilingual headings).
type RecordSection struct {
	Build func() (*ropa.Record, error)
}

func (RecordSection) Name() string { return "record of processing" }

func (s RecordSection) Write(_ context.Context, p *Pack) error {
	rec, err := s.Build()
	if err != nil {
		return err
	}
	if err := p.Member("ropa.json", rec.WriteJSON); err != nil {
		return err
	}
	if err := p.Member("ropa.csv", func(w io.Writer) error { return rec.WriteCSV(w, "zh") }); err != nil {
		return err
	}
	f := &RecordFigures{Activities: len(rec.Activities), Gaps: []string{}}
	for _, a := range rec.Activities {
		f.Recipients += len(a.Recipients)
		f.Transfers += len(a.Transfers)
	}
	for _, g := range rec.Gaps {
		gap := g.Field + " (" + g.Key + ")"
		if g.Activity != "" {
			gap = g.Activity + ": " + gap
		}
		f.Gaps = append(f.Gaps, gap)
	}
	p.Summary.Record = f
	return nil
}

// RequestsSection writes the register of the requests received in the period
// (requests.csv, DSR-16) and their timeliness per regime and per week. It reads the
// requests one at a time and keeps only their register entries.
type RequestsSection struct {
	Each func(ctx context.Context, fn func(dsar.Request) error) error
}

func (RequestsSection) Name() string { return "requests" }

func (s RequestsSection) Write(ctx context.Context, p *Pack) error {
	var in []dsar.RegisterEntry
	one := make([]dsar.Request, 1)
	if err := s.Each(ctx, func(r dsar.Request) error {
		if r.ReceivedAt.Before(p.Period.From) || !r.ReceivedAt.Before(p.Period.To) {
			return nil
		}
		one[0] = r
		in = append(in, dsar.RegisterEntries(one, p.AsOf)...)
		return nil
	}); err != nil {
		return err
	}
	slices.SortStableFunc(in, func(a, b dsar.RegisterEntry) int {
		if c := a.ReceivedAt.Compare(b.ReceivedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if err := p.Member("requests.csv", func(w io.Writer) error { return dsar.WriteRegisterEntriesCSV(w, in) }); err != nil {
		return err
	}
	p.Summary.Requests = requestFigures(p.Period, in)
	return nil
}

// requestFigures counts entries per regime, type and week. [Verify] recomputes them from
// requests.csv with the same function.
func requestFigures(period Period, entries []dsar.RegisterEntry) *RequestFigures {
	f := &RequestFigures{ByRegime: map[privguard.Regime]dsar.RegisterStats{}, ByType: map[dsar.Type]int{}, Weeks: weeks(period)}
	for _, e := range entries {
		f.Total++
		f.ByType[e.Type]++
		st := f.ByRegime[e.Regime]
		st.Total++
		switch {
		case e.OnTime == nil:
			st.Open++
			if e.Overdue {
				st.Overdue++
			}
		default:
			st.Closed++
			if *e.OnTime {
				st.OnTime++
			}
		}
		if st.Closed > 0 {
			st.OnTimePct = round1(100 * float64(st.OnTime) / float64(st.Closed))
		}
		f.ByRegime[e.Regime] = st
		if i := weekIndex(period, e.ReceivedAt); i >= 0 {
			f.Weeks[i].Received++
		}
		if e.OnTime != nil {
			if i := weekIndex(period, e.ClosedAt); i >= 0 {
				f.Weeks[i].Closed++
				if *e.OnTime {
					f.Weeks[i].OnTime++
				}
			}
		}
	}
	for i := range f.Weeks {
		if w := &f.Weeks[i]; w.Closed > 0 {
			w.OnTimePct = round1(100 * float64(w.OnTime) / float64(w.Closed))
		}
	}
	return f
}

// DisclosuresSection writes the disclosure log of the period (disclosures.csv, AUD-07) and
// the cross-border register of each regime and calendar year the period touches
// (transfers.json, XB-02).
type DisclosuresSection struct {
	Store journal.Store
	// Accounting returns a regime's cross-border register of a year (disclosure.Gate).
	Accounting func(ctx context.Context, regime privguard.Regime, year int) (disclosure.Accounting, error)
	Regimes    []privguard.Regime
}

func (DisclosuresSection) Name() string { return "disclosures" }

func (s DisclosuresSection) Write(ctx context.Context, p *Pack) error {
	f := disclosure.Filter{From: p.Period.From, To: p.Period.To}
	if err := p.Member("disclosures.csv", func(w io.Writer) error { return disclosure.WriteCSV(ctx, w, s.Store, f) }); err != nil {
		return err
	}
	fig := &DisclosureFigures{ByKind: map[string]int{}}
	if err := disclosure.Entries(ctx, s.Store, f, func(e disclosure.Stored) error {
		fig.Entries++
		fig.ByKind[e.Kind]++
		fig.People += int64(e.People)
		if e.Abroad {
			fig.Abroad++
		}
		return nil
	}); err != nil {
		return err
	}
	p.Summary.Disclosures = fig
	accounts := []disclosure.Accounting{}
	for _, regime := range s.Regimes {
		// The calendar years the period's dates touch; each year's register counts that year
		// in China Standard Time.
		for y := p.Period.From.Year(); y <= p.Period.To.Add(-time.Nanosecond).Year(); y++ {
			a, err := s.Accounting(ctx, regime, y)
			if err != nil {
				return err
			}
			accounts = append(accounts, a)
		}
	}
	p.Summary.CrossBorder = accounts
	return p.JSON("transfers.json", accounts)
}

// AssessmentsSection writes the register of impact assessments (assessments.json and .csv,
// AUD-04) as of the pack.
type AssessmentsSection struct {
	Register func(ctx context.Context) (*pia.Register, error)
}

func (AssessmentsSection) Name() string { return "assessments" }

func (s AssessmentsSection) Write(ctx context.Context, p *Pack) error {
	reg, err := s.Register(ctx)
	if err != nil {
		return err
	}
	if err := p.JSON("assessments.json", reg); err != nil {
		return err
	}
	if err := p.Member("assessments.csv", func(w io.Writer) error { return pia.WriteCSV(w, reg) }); err != nil {
		return err
	}
	f := &AssessmentFigures{Total: len(reg.Assessments), ByStatus: map[string]int{}, Verified: reg.Log.Verified, Break: reg.Log.Break}
	for _, e := range reg.Assessments {
		f.ByStatus[string(e.Status)]++
	}
	p.Summary.Assessments = f
	return nil
}

// TrailSection writes the admin trail of the period (trail.csv) and its key events (acts
// on keys: rotation, shredding; key-events.csv).
type TrailSection struct {
	Store journal.Store
}

func (TrailSection) Name() string { return "admin trail" }

// keyActs is the prefix of the trail's acts on keys.
const keyActs = "keys "

func (s TrailSection) Write(ctx context.Context, p *Pack) error {
	f := trail.Filter{From: p.Period.From, To: p.Period.To}
	if err := p.Member("trail.csv", func(w io.Writer) error { return trail.WriteCSV(ctx, w, s.Store, f) }); err != nil {
		return err
	}
	keys := f
	keys.Act = keyActs
	if err := p.Member("key-events.csv", func(w io.Writer) error { return trail.WriteCSV(ctx, w, s.Store, keys) }); err != nil {
		return err
	}
	fig := &TrailFigures{ByOutcome: map[string]int{}}
	if err := trail.Entries(ctx, s.Store, f, func(e trail.Stored) error {
		fig.Acts++
		fig.ByOutcome[e.Outcome]++
		if strings.HasPrefix(e.Act, keyActs) {
			fig.KeyEvents++
		}
		return nil
	}); err != nil {
		return err
	}
	p.Summary.Trail = fig
	return nil
}

func round1(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }

// DecisionsSection writes the decision log's counts for the period (decisions.json,
// AUD-02): decisions by effect, purpose, reason, route and day, the denials by reason.
// It reads the log and its segments once, checking the chain: a break fails the pack.
type DecisionsSection struct {
	// Path is the decision log's active file (<data>/decisions.log).
	Path string
}

func (DecisionsSection) Name() string { return "decisions" }

func (s DecisionsSection) Write(ctx context.Context, p *Pack) error {
	st, err := audit.Count(ctx, s.Path, audit.Filter{From: p.Period.From, To: p.Period.To}, 0)
	if errors.Is(err, fs.ErrNotExist) {
		st, err = &audit.Stats{}, nil // no decision yet
	}
	if err != nil {
		return err
	}
	if err := p.JSON("decisions.json", st); err != nil {
		return err
	}
	p.Summary.Decisions = &DecisionFigures{Lines: st.Lines, Allowed: st.ByDecision[string(privguard.Allow)], Denied: st.ByDecision[string(privguard.Deny)],
		DenyReasons: orEmpty(st.DenyReasons), ByPurpose: orEmpty(st.ByPurpose)}
	return nil
}

func orEmpty(m map[string]int64) map[string]int64 {
	if m == nil {
		return map[string]int64{}
	}
	return m
}

// IncidentsSection writes the incident register (incidents.csv and incidents.json,
// SEC-10): the incidents the controller became aware of in the period, notified or not,
// with their clocks.
type IncidentsSection struct {
	Register *incident.Register
}

func (IncidentsSection) Name() string { return "incidents" }

func (s IncidentsSection) Write(ctx context.Context, p *Pack) error {
	f := incident.Filter{From: p.Period.From, To: p.Period.To}
	if err := p.Member("incidents.csv", func(w io.Writer) error { return s.Register.WriteCSV(ctx, w, f) }); err != nil {
		return err
	}
	fig := &IncidentFigures{BySeverity: map[string]int{}}
	views := []incident.View{}
	if err := s.Register.List(ctx, f, func(v incident.View) error {
		views = append(views, v)
		fig.Total++
		if v.Status == incident.StatusClosed {
			fig.Closed++
		}
		sev := string(v.Severity)
		if sev == "" {
			sev = "unassessed"
		}
		fig.BySeverity[sev]++
		if len(v.Notifications) > 0 {
			fig.Notified++
		}
		if v.Overdue {
			fig.Overdue++
		}
		return nil
	}); err != nil {
		return err
	}
	p.Summary.Incidents = fig
	return p.JSON("incidents.json", views)
}

// ConsentSection writes the consent statistics of the period (consent.json, CON-05): the
// grants, withdrawals, expiries and refusals per day and purpose, counted in one
// chain-checked walk of the ledger.
type ConsentSection struct {
	// Count returns the counts of the period (evidence.CountPeriod).
	Count func(ctx context.Context, from, to time.Time) (evidence.Counts, error)
}

func (ConsentSection) Name() string { return "consent" }

func (s ConsentSection) Write(ctx context.Context, p *Pack) error {
	c, err := s.Count(ctx, p.Period.From, p.Period.To)
	if err != nil {
		return err
	}
	if err := p.JSON("consent.json", c); err != nil {
		return err
	}
	f := &ConsentFigures{Grants: c.Totals.Grants, Withdrawals: c.Totals.Withdrawals, Expiries: c.Totals.Expiries, Refusals: c.Totals.Refusals,
		ByPurpose: map[string]evidence.Count{}}
	for _, d := range c.ByDay {
		x := f.ByPurpose[d.Purpose]
		x.Purpose = d.Purpose
		x.Grants += d.Grants
		x.Withdrawals += d.Withdrawals
		x.Expiries += d.Expiries
		x.Refusals += d.Refusals
		f.ByPurpose[d.Purpose] = x
	}
	p.Summary.Consent = f
	return nil
}
