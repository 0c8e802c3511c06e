package incident

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/journal"
)

// Bounds of what an incident holds.
const (
	MaxText     = 4000  // a title, a fact, a cause, an effect, an action, the advice
	MaxSubjects = 10000 // subjects named in one change
	// ClockSkew is how far in the future a time given may be (the caller's clock).
	ClockSkew = time.Minute
)

// Config configures [Open].
type Config struct {
	// Store keeps the logs. Required.
	Store journal.Store
	// Pseudonym returns the keyed pseudonym a subject is named by in the register.
	// Required to record affected subjects (a register only read needs none).
	Pseudonym func(subject string) string
	// Regimes whose clocks run; nil means both.
	Regimes []privguard.Regime
	// CII: the controller operates critical information infrastructure (the CAC window is
	// CIIWindow).
	CII bool
	// Contact is named in the notices.
	Contact Contact
	// Notifier sends the subjects' notices ([Register.Deliver]); nil: tasks wait.
	Notifier Notifier
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the clocks' alerts; nil discards.
	Logger *slog.Logger
}

// Register is the incident register. Safe for concurrent use.
type Register struct {
	cfg   Config
	j     *journal.Journal
	tasks *journal.Journal
	wake  chan struct{}
	// stepMu serialises Step and guards alerted, the clock states already logged; mu
	// guards the summary it keeps.
	stepMu  sync.Mutex
	alerted map[string]ClockState
	mu      sync.Mutex
	summary Summary
	// deliverMu serialises deliver and guards idle, the logs' heads when it last left
	// nothing to send.
	deliverMu sync.Mutex
	idle      *logHeads
}

// Open returns the register in cfg.Store.
func Open(cfg Config) (*Register, error) {
	if cfg.Store == nil {
		return nil, errors.New("incident: Config.Store is nil")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	j, err := journal.Open(cfg.Store, Log, cfg.Now)
	if err != nil {
		return nil, err
	}
	t, err := journal.Open(cfg.Store, TaskLog, cfg.Now)
	if err != nil {
		return nil, err
	}
	return &Register{cfg: cfg, j: j, tasks: t, wake: make(chan struct{}, 1), alerted: map[string]ClockState{}}, nil
}

// Store returns the store the register is in.
func (r *Register) Store() journal.Store { return r.cfg.Store }

// Report is a new incident, as the DPO records it.
type Report struct {
	Title string `json:"title"`
	// Facts is required: what is known of what happened.
	Facts      string                   `json:"facts"`
	Cause      string                   `json:"cause,omitempty"`
	AwareAt    time.Time                `json:"aware_at"`
	OccurredAt *time.Time               `json:"occurred_at,omitempty"`
	Severity   string                   `json:"severity,omitempty"`
	Risk       string                   `json:"risk,omitempty"`
	Categories []privguard.DataCategory `json:"categories,omitempty"`
	// SubjectCount is the approximate number affected; Subjects those named (their ids).
	SubjectCount int64                 `json:"subject_count,omitempty"`
	Subjects     []privguard.SubjectID `json:"subjects,omitempty"`
	Effects      string                `json:"effects,omitempty"`
	Actions      string                `json:"actions,omitempty"`
	Advice       string                `json:"advice,omitempty"`
}

// Change is an event on a recorded incident. Kind says which fields it takes:
//   - "assess": Severity and/or Risk (one at least), Reason;
//   - "update": any of Facts, Cause, Effects, Actions, Advice, Categories (added),
//     SubjectCount, Subjects (added);
//   - "notify-authority": Authority (sa or cac), Reference, At (default now),
//     DelayReason (required when At is past the deadline);
//   - "notify-subjects": renders the subject notice and releases one task per subject;
//   - "close": Note; refused while the incident has gaps ([Incident.Gaps]).
type Change struct {
	Kind         string                   `json:"kind"`
	Severity     string                   `json:"severity,omitempty"`
	Risk         string                   `json:"risk,omitempty"`
	Reason       string                   `json:"reason,omitempty"`
	Facts        string                   `json:"facts,omitempty"`
	Cause        string                   `json:"cause,omitempty"`
	Effects      string                   `json:"effects,omitempty"`
	Actions      string                   `json:"actions,omitempty"`
	Advice       string                   `json:"advice,omitempty"`
	Categories   []privguard.DataCategory `json:"categories,omitempty"`
	SubjectCount *int64                   `json:"subject_count,omitempty"`
	Subjects     []privguard.SubjectID    `json:"subjects,omitempty"`
	Authority    string                   `json:"authority,omitempty"`
	Reference    string                   `json:"reference,omitempty"`
	At           *time.Time               `json:"at,omitempty"`
	DelayReason  string                   `json:"delay_reason,omitempty"`
	Note         string                   `json:"note,omitempty"`
}

// event is one entry of the log.
type event struct {
	Kind     string `json:"kind"` // record, assess, update, notify, close
	Incident string `json:"incident"`
	By       string `json:"by,omitempty"`

	Title        string                   `json:"title,omitempty"`
	AwareAt      *time.Time               `json:"aware_at,omitempty"`
	OccurredAt   *time.Time               `json:"occurred_at,omitempty"`
	Severity     Severity                 `json:"severity,omitempty"`
	Risk         Risk                     `json:"risk,omitempty"`
	Reason       string                   `json:"reason,omitempty"`
	Facts        string                   `json:"facts,omitempty"`
	Cause        string                   `json:"cause,omitempty"`
	Effects      string                   `json:"effects,omitempty"`
	Actions      string                   `json:"actions,omitempty"`
	Advice       string                   `json:"advice,omitempty"`
	Categories   []privguard.DataCategory `json:"categories,omitempty"`
	SubjectCount *int64                   `json:"subject_count,omitempty"`
	Subjects     []string                 `json:"subjects,omitempty"` // pseudonyms
	Notification *Notification            `json:"notification,omitempty"`
	Note         string                   `json:"note,omitempty"`

	// pendingIDs are the subjects named by this event, for their tasks; never stored here.
	pendingIDs []privguard.SubjectID
}

// fold applies ev, stored at time at as entry seq, to in (nil for a record).
func fold(in *Incident, ev *event, at time.Time, seq uint64) *Incident {
	if ev.Kind == "record" {
		in = &Incident{ID: ev.Incident, Title: ev.Title, Status: StatusOpen, RecordedAt: at, Seq: seq,
			Facts: []Note{}, Effects: []Note{}, Actions: []Note{}, Categories: []privguard.DataCategory{}, Notifications: []Notification{}}
		if ev.AwareAt != nil {
			in.AwareAt = *ev.AwareAt
		}
		in.OccurredAt = ev.OccurredAt
	}
	in.UpdatedAt, in.Events = at, in.Events+1
	if ev.Severity != "" {
		in.Severity = ev.Severity
	}
	if ev.Risk != "" {
		in.Risk = ev.Risk
	}
	if ev.Cause != "" {
		in.Cause = ev.Cause
	}
	if ev.Advice != "" {
		in.Advice = ev.Advice
	}
	for _, x := range []struct {
		text string
		to   *[]Note
	}{{ev.Facts, &in.Facts}, {ev.Effects, &in.Effects}, {ev.Actions, &in.Actions}} {
		if x.text != "" {
			*x.to = append(*x.to, Note{At: at, Text: x.text, By: ev.By})
		}
	}
	for _, c := range ev.Categories {
		if !slices.Contains(in.Categories, c) {
			in.Categories = append(in.Categories, c)
		}
	}
	for _, s := range ev.Subjects {
		if !slices.Contains(in.Subjects, s) {
			in.Subjects = append(in.Subjects, s)
		}
	}
	if ev.SubjectCount != nil {
		in.SubjectCount = *ev.SubjectCount
	}
	in.Named = len(in.Subjects)
	in.SubjectCount = max(in.SubjectCount, int64(in.Named))
	if ev.Notification != nil {
		in.Notifications = append(in.Notifications, *ev.Notification)
	}
	if ev.Kind == "close" {
		in.Status = StatusClosed
		t := at
		in.ClosedAt = &t
	}
	return in
}

// state is the register read up to head.
type state struct {
	byID  map[string]*Incident
	order []*Incident
	head  journal.Entry
}

// read replays the log, checking its chain (a *journal.BreakError if it breaks).
func (r *Register) read(ctx context.Context) (*state, error) {
	st := &state{byID: map[string]*Incident{}}
	err := journal.Scan(ctx, r.cfg.Store, Log, 0, time.Time{}, func(e journal.Entry) error {
		var ev event
		if err := e.Decode(&ev); err != nil {
			return err
		}
		st.head = e
		prev := st.byID[ev.Incident]
		if (ev.Kind == "record") != (prev == nil) {
			return fmt.Errorf("incident: entry %d: %s of incident %s out of order", e.Seq, ev.Kind, ev.Incident)
		}
		in := fold(prev, &ev, e.Time, e.Seq)
		if prev == nil {
			st.byID[ev.Incident] = in
			st.order = append(st.order, in)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// Get returns the incident id. Returns an error wrapping privguard.ErrNotFound if there is
// none.
func (r *Register) Get(ctx context.Context, id string) (*View, error) {
	st, err := r.read(ctx)
	if err != nil {
		return nil, err
	}
	in := st.byID[id]
	if in == nil {
		return nil, fmt.Errorf("incident %q: %w", id, privguard.ErrNotFound)
	}
	v := r.view(in, r.cfg.Now())
	return &v, nil
}

// Notice renders the notice of kind (AuthorityNotice or SubjectNotice) for incident id as
// it would be sent now, for the DPO to read first. Errors: privguard.ErrNotFound, a
// *NoticeError naming what the incident lacks.
func (r *Register) Notice(ctx context.Context, id, kind string) (*Notice, error) {
	if _, ok := Elements[kind]; !ok {
		return nil, &FieldError{Field: "kind", Detail: "want authority or subject"}
	}
	v, err := r.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return Render(v.Incident, kind, r.cfg.Contact)
}

// View is an incident with its clocks at the time of reading.
type View struct {
	*Incident
	Clocks []Clock `json:"clocks"`
	// Gaps names what is still to be recorded or assessed ([Incident.Gaps]).
	Gaps []string `json:"gaps"`
	// AssessmentDue: severity or risk not assessed; the strictest clocks run.
	AssessmentDue bool `json:"assessment_due"`
	// Overdue: a clock's deadline passed without its notice; Alert: one is alerting.
	Overdue bool `json:"overdue"`
	Alert   bool `json:"alert"`
}

func (r *Register) view(in *Incident, now time.Time) View {
	v := View{Incident: in, Clocks: Clocks(in, now, r.cfg.Regimes, r.cfg.CII), Gaps: in.Gaps(), AssessmentDue: in.AssessmentDue()}
	if v.Gaps == nil {
		v.Gaps = []string{}
	}
	for _, c := range v.Clocks {
		v.Overdue = v.Overdue || c.State == Overdue
		v.Alert = v.Alert || c.State == Alert
	}
	return v
}

// Filter selects incidents of the register: aware From ≤ aware_at < To, of a status, only
// overdue ones, recorded after entry After.
type Filter struct {
	From, To time.Time
	Status   string
	Overdue  bool
	After    uint64
}

// List calls fn for every incident f selects, in the order recorded.
func (r *Register) List(ctx context.Context, f Filter, fn func(View) error) error {
	st, err := r.read(ctx)
	if err != nil {
		return err
	}
	now := r.cfg.Now()
	for _, in := range st.order {
		if in.Seq <= f.After || (!f.From.IsZero() && in.AwareAt.Before(f.From)) || (!f.To.IsZero() && !in.AwareAt.Before(f.To)) ||
			(f.Status != "" && in.Status != f.Status) {
			continue
		}
		v := r.view(in, now)
		if f.Overdue && !v.Overdue {
			continue
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	return nil
}

// Record records a new incident reported by by. It returns a *FieldError for a report
// that breaks a rule: no title or facts, aware_at missing or in the future, occurred_at
// after aware_at, an unknown severity, risk or category.
func (r *Register) Record(ctx context.Context, by string, rep Report) (*View, error) {
	now := r.cfg.Now()
	ev := &event{Kind: "record", Incident: newID(), By: by, Title: strings.TrimSpace(rep.Title), Facts: strings.TrimSpace(rep.Facts),
		Cause: strings.TrimSpace(rep.Cause), Effects: strings.TrimSpace(rep.Effects), Actions: strings.TrimSpace(rep.Actions),
		Advice: strings.TrimSpace(rep.Advice)}
	if ev.Title == "" {
		return nil, &FieldError{Field: "title", Detail: "required"}
	}
	if ev.Facts == "" {
		return nil, &FieldError{Field: "facts", Detail: "required: what is known of what happened (GDPR Art. 33(5))"}
	}
	if rep.AwareAt.IsZero() {
		return nil, &FieldError{Field: "aware_at", Detail: "required: when the controller became aware; every clock starts there"}
	}
	if rep.AwareAt.After(now.Add(ClockSkew)) {
		return nil, &FieldError{Field: "aware_at", Detail: "is in the future"}
	}
	aware := rep.AwareAt.UTC()
	ev.AwareAt = &aware
	if rep.OccurredAt != nil {
		if rep.OccurredAt.After(rep.AwareAt) {
			return nil, &FieldError{Field: "occurred_at", Detail: "is after aware_at"}
		}
		o := rep.OccurredAt.UTC()
		ev.OccurredAt = &o
	}
	if err := r.assessInto(ev, rep.Severity, rep.Risk); err != nil {
		return nil, err
	}
	count := rep.SubjectCount
	if err := r.detailsInto(ctx, ev, rep.Categories, &count, rep.Subjects); err != nil {
		return nil, err
	}
	if err := checkTexts(ev); err != nil {
		return nil, err
	}
	return r.append(ctx, ev, nil)
}

// Apply applies ch, made by by, to incident id. Errors: privguard.ErrNotFound (no such
// incident), ErrClosed, *FieldError, *NoticeError (a notice that would lack an element),
// *GapsError (closing an incident with gaps).
func (r *Register) Apply(ctx context.Context, id, by string, ch Change) (*View, error) {
	ev := &event{Incident: id, By: by}
	switch ch.Kind {
	case "assess":
		ev.Kind, ev.Reason = "assess", strings.TrimSpace(ch.Reason)
		if ch.Severity == "" && ch.Risk == "" {
			return nil, &FieldError{Field: "severity", Detail: "an assessment gives severity, risk or both"}
		}
		if err := r.assessInto(ev, ch.Severity, ch.Risk); err != nil {
			return nil, err
		}
	case "update":
		ev.Kind = "update"
		ev.Facts, ev.Cause, ev.Effects = strings.TrimSpace(ch.Facts), strings.TrimSpace(ch.Cause), strings.TrimSpace(ch.Effects)
		ev.Actions, ev.Advice = strings.TrimSpace(ch.Actions), strings.TrimSpace(ch.Advice)
		if err := r.detailsInto(ctx, ev, ch.Categories, ch.SubjectCount, ch.Subjects); err != nil {
			return nil, err
		}
		if ev.Facts == "" && ev.Cause == "" && ev.Effects == "" && ev.Actions == "" && ev.Advice == "" && len(ev.Categories) == 0 &&
			ev.SubjectCount == nil && len(ev.Subjects) == 0 {
			return nil, &FieldError{Field: "kind", Detail: "an update changes nothing"}
		}
	case "notify-authority":
		if ch.Authority != AuthoritySA && ch.Authority != AuthorityCAC {
			return nil, &FieldError{Field: "authority", Detail: "want sa (GDPR supervisory authority) or cac (the provincial CAC)"}
		}
		ev.Kind = "notify"
	case "notify-subjects":
		ev.Kind = "notify"
	case "close":
		ev.Kind, ev.Note = "close", strings.TrimSpace(ch.Note)
	default:
		return nil, &FieldError{Field: "kind", Detail: "want assess, update, notify-authority, notify-subjects or close"}
	}
	if err := checkTexts(ev); err != nil {
		return nil, err
	}
	// The rest depends on the incident as recorded: checked against the head it is
	// appended after.
	return r.append(ctx, ev, func(in *Incident, now time.Time) error {
		if in.Status == StatusClosed {
			return ErrClosed
		}
		switch ch.Kind {
		case "notify-authority", "notify-subjects":
			return r.notification(in, ev, ch, now)
		case "close":
			gaps := in.Gaps()
			// A notice still owed keeps the incident open: assess it (no risk, a lower
			// level) or record the notice first.
			for _, c := range Clocks(in, now, r.cfg.Regimes, r.cfg.CII) {
				if c.Open() {
					gaps = append(gaps, "notice "+c.Name)
				}
			}
			if len(gaps) > 0 {
				return &GapsError{Gaps: gaps}
			}
		}
		return nil
	})
}

// notification fills ev's notification of in from ch.
func (r *Register) notification(in *Incident, ev *event, ch Change, now time.Time) error {
	n := &Notification{At: now.UTC(), Reference: strings.TrimSpace(ch.Reference), DelayReason: strings.TrimSpace(ch.DelayReason), By: ev.By}
	if ch.At != nil {
		if ch.At.After(now.Add(ClockSkew)) {
			return &FieldError{Field: "at", Detail: "is in the future"}
		}
		if ch.At.Before(in.AwareAt) {
			return &FieldError{Field: "at", Detail: "is before aware_at"}
		}
		n.At = ch.At.UTC()
	}
	if len(n.Reference) > MaxText || len(n.DelayReason) > MaxText {
		return &FieldError{Field: "reference", Detail: fmt.Sprintf("at most %d bytes", MaxText)}
	}
	kind := SubjectNotice
	n.To = "subjects"
	if ch.Kind == "notify-authority" {
		kind, n.To = AuthorityNotice, ch.Authority
		for _, c := range Clocks(in, n.At, nil, r.cfg.CII) {
			// GDPR Art. 33(1): a notice after the deadline comes with the reasons for the delay.
			if c.To == n.To && c.Due != nil && n.At.After(*c.Due) && n.DelayReason == "" {
				return &FieldError{Field: "delay_reason", Detail: "the notice is after its deadline (" + c.Due.Format(time.RFC3339) + "): say why"}
			}
		}
	}
	if in.notified(n.To) != nil {
		return &FieldError{Field: "kind", Detail: "already notified: " + n.To}
	}
	notice, err := Render(in, kind, r.cfg.Contact)
	if err != nil {
		return err
	}
	n.Notice = notice
	if kind == SubjectNotice {
		n.Tasks = len(in.Subjects)
	}
	ev.Notification = n
	return nil
}

// assessInto parses severity and risk into ev.
func (r *Register) assessInto(ev *event, severity, risk string) error {
	if severity != "" {
		s, err := ParseSeverity(severity)
		if err != nil {
			return &FieldError{Field: "severity", Detail: err.Error()}
		}
		ev.Severity = s
	}
	if risk != "" {
		k, err := ParseRisk(risk)
		if err != nil {
			return &FieldError{Field: "risk", Detail: err.Error()}
		}
		ev.Risk = k
	}
	return nil
}

// detailsInto checks categories and subjects into ev; the subjects' ids go to the task
// log, their pseudonyms into ev.
func (r *Register) detailsInto(ctx context.Context, ev *event, cats []privguard.DataCategory, count *int64, subjects []privguard.SubjectID) error {
	for i, c := range cats {
		if !c.Known() {
			return &FieldError{Field: fmt.Sprintf("categories[%d]", i), Detail: "not a known data category"}
		}
		if !slices.Contains(ev.Categories, c) {
			ev.Categories = append(ev.Categories, c)
		}
	}
	if count != nil {
		if *count < 0 {
			return &FieldError{Field: "subject_count", Detail: "must not be negative"}
		}
		n := *count
		ev.SubjectCount = &n
	}
	if len(subjects) > MaxSubjects {
		return &FieldError{Field: "subjects", Detail: fmt.Sprintf("at most %d in one change", MaxSubjects)}
	}
	if len(subjects) > 0 && r.cfg.Pseudonym == nil {
		return errors.New("incident: no Config.Pseudonym: this register cannot record subjects")
	}
	var ids []privguard.SubjectID
	for i, s := range subjects {
		if s.Validate() != nil {
			// The value itself is never echoed: it is a subject's id.
			return &FieldError{Field: fmt.Sprintf("subjects[%d]", i), Detail: "not a valid subject id"}
		}
		p := r.cfg.Pseudonym(string(s))
		if !slices.Contains(ev.Subjects, p) {
			ev.Subjects = append(ev.Subjects, p)
			ids = append(ids, s)
		}
	}
	ev.pendingIDs = ids
	return nil
}

// checkTexts bounds ev's texts.
func checkTexts(ev *event) error {
	for _, f := range []struct{ name, v string }{{"title", ev.Title}, {"facts", ev.Facts}, {"cause", ev.Cause}, {"effects", ev.Effects},
		{"actions", ev.Actions}, {"advice", ev.Advice}, {"reason", ev.Reason}, {"note", ev.Note}} {
		if len(f.v) > MaxText {
			return &FieldError{Field: f.name, Detail: fmt.Sprintf("at most %d bytes", MaxText)}
		}
	}
	return nil
}

// append appends ev after checking it, with check, against the incident as recorded at
// the log's head; it retries on a head moved by another process.
func (r *Register) append(ctx context.Context, ev *event, check func(*Incident, time.Time) error) (*View, error) {
	for attempt := 0; ; attempt++ {
		st, err := r.read(ctx)
		if err != nil {
			return nil, err
		}
		now := r.cfg.Now()
		in := st.byID[ev.Incident]
		if ev.Kind != "record" && in == nil {
			return nil, fmt.Errorf("incident %q: %w", ev.Incident, privguard.ErrNotFound)
		}
		if check != nil {
			if err := check(in, now); err != nil {
				return nil, err
			}
		}
		// The ids go to the tasks first: an incident never names a subject whose task is
		// not stored. A task whose event then fails is never released. A subject the
		// incident names already has its task.
		if in != nil && attempt == 0 {
			var subjects []string
			var ids []privguard.SubjectID
			for i, p := range ev.Subjects {
				if !slices.Contains(in.Subjects, p) {
					subjects, ids = append(subjects, p), append(ids, ev.pendingIDs[i])
				}
			}
			ev.Subjects, ev.pendingIDs = subjects, ids
		}
		if len(ev.pendingIDs) > 0 && attempt == 0 {
			if err := r.addTasks(ctx, ev.Incident, ev.pendingIDs); err != nil {
				return nil, err
			}
		}
		entries, err := r.j.AppendAfter(ctx, st.head, ev)
		if errors.Is(err, journal.ErrHeadMoved) && attempt < 20 {
			// Another process appended: check again on its head, after a jittered pause.
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(1+mathrand.IntN(5*(attempt+1))) * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		in = fold(in, ev, entries[0].Time, entries[0].Seq)
		r.Wake() // Run checks the clocks (and sends released notices) now
		v := r.view(in, now)
		return &v, nil
	}
}

// newID returns a new incident id: "inc_" and 16 hex digits.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "inc_" + hex.EncodeToString(b[:])
}
