package pia

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/journal"
)

// Log is the journal log the assessments' versions are recorded in.
const Log = "assessments"

// ReviewNotice is how many days before its review date an assessment is due for review.
const ReviewNotice = 30

// Conclusions of an assessment.
const (
	Approved             = "approved"
	ApprovedWithMeasures = "approved_with_measures"
	Rejected             = "rejected" // covers nothing
)

// Assessment is one version of an impact assessment, as the configuration declares it and
// the register keeps it.
type Assessment struct {
	ID    string `json:"id"`
	Title string `json:"title,omitempty"`
	// Purposes, Categories and Recipients are its scope: it covers processing for the
	// purposes (and those below them) of those categories, provided to those recipients.
	Purposes   []privguard.Purpose      `json:"purposes"`
	Categories []privguard.DataCategory `json:"categories,omitempty"`
	Recipients []string                 `json:"recipients,omitempty"`
	// Date it was concluded and Review, the date by which it must be reviewed (it covers
	// processing from Date until the day before Review), as 2026-03-01.
	Date   string `json:"date"`
	Review string `json:"review"`
	// Conclusion is Approved, ApprovedWithMeasures or Rejected.
	Conclusion string `json:"conclusion"`
	// Legitimacy (lawfulness, legitimate need and necessity), Impact (on the individuals'
	// rights, and the security risks) and Measures (the protective measures and their
	// effectiveness): what PIPL Art. 56 requires an assessment to contain.
	Legitimacy string `json:"legitimacy"`
	Impact     string `json:"impact"`
	Measures   string `json:"measures"`
	Assessor   string `json:"assessor,omitempty"`
}

// Version identifies a's contents: the hex SHA-256 of its JSON encoding. Any change to any
// field is another version.
func (a *Assessment) Version() string {
	b, _ := json.Marshal(a) // strings and slices of strings always encode
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Status is where an assessment stands in the register.
type Status string

// Statuses.
const (
	// Current: approved, in force, its review more than ReviewNotice days away.
	Current Status = "current"
	// DueForReview: current, its review date within ReviewNotice days.
	DueForReview Status = "due_for_review"
	// Expired: its review date has come; it no longer covers processing.
	Expired Status = "expired"
	// StatusRejected: its conclusion was rejected; it never covers processing.
	StatusRejected Status = "rejected"
	// Pending: dated after today; it covers processing from its date.
	Pending Status = "pending"
	// Superseded: a later version of the same assessment replaced it.
	Superseded Status = "superseded"
	// Removed: the configuration no longer declares it; it covers nothing.
	Removed Status = "removed"
)

// StatusOn returns the status of a on the date today (2026-03-01) from its conclusion and
// dates alone (a current configuration version's status).
func (a *Assessment) StatusOn(today string) Status {
	switch {
	case a.Conclusion == Rejected:
		return StatusRejected
	case today < a.Date:
		return Pending
	case today >= a.Review:
		return Expired
	}
	if review, err := time.Parse(time.DateOnly, a.Review); err == nil && today >= review.AddDate(0, 0, -ReviewNotice).Format(time.DateOnly) {
		return DueForReview
	}
	return Current
}

// Actions of the log's entries.
const (
	actionEnforced = "enforced"
	actionRemoved  = "removed"
)

// record is the body of one entry of the log.
type record struct {
	Action     string      `json:"action"`
	ID         string      `json:"id"`
	Version    string      `json:"version"`
	Assessment *Assessment `json:"assessment,omitempty"` // with enforced
	Replica    string      `json:"replica,omitempty"`    // the process that recorded it
}

// Config configures [New].
type Config struct {
	// Store keeps the log. Required.
	Store journal.Store
	// Assessments are those the configuration declares (and the policy enforces). IDs must
	// be unique.
	Assessments []Assessment
	// Location is the time zone whose date is today for the statuses. If nil, UTC.
	Location *time.Location
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
	// Replica names the process in the entries it records (optional).
	Replica string
}

// Registry is the register of a store's assessments beside those the configuration
// declares.
type Registry struct {
	store   journal.Store
	log     *journal.Journal
	current []Assessment
	loc     *time.Location
	now     func() time.Time
	replica string
}

// New returns the registry of cfg. Repeated or empty ids are an error.
func New(cfg Config) (*Registry, error) {
	if cfg.Store == nil {
		return nil, errors.New("pia: nil store")
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	seen := map[string]bool{}
	for _, a := range cfg.Assessments {
		if a.ID == "" || seen[a.ID] {
			return nil, fmt.Errorf("pia: assessment id %q is empty or repeated", a.ID)
		}
		seen[a.ID] = true
	}
	j, err := journal.Open(cfg.Store, Log, cfg.Now)
	if err != nil {
		return nil, err
	}
	return &Registry{store: cfg.Store, log: j, current: slices.Clone(cfg.Assessments), loc: cfg.Location, now: cfg.Now, replica: cfg.Replica}, nil
}

// Change is one entry Record appended.
type Change struct {
	Action  string // enforced or removed
	ID      string
	Version string
	Seq     uint64 // in the log
}

// Record appends to the log, in one write, every configured assessment whose version is
// not the one in force in the log (new, changed, or configured again after a removal), and
// a removal for every assessment in force in the log that the configuration no longer
// declares. Nothing is appended when the log already says what the configuration does. It
// returns what it appended. A log whose chain does not verify is not appended to: the
// error is a *journal.BreakError.
func (r *Registry) Record(ctx context.Context) ([]Change, error) {
	h, err := r.replay(ctx)
	if err != nil {
		return nil, err
	}
	if h.broken != nil {
		return nil, fmt.Errorf("pia: the register does not verify, so nothing was recorded: %w", h.broken)
	}
	var bodies []any
	var changes []Change
	configured := map[string]bool{}
	for i := range r.current {
		a := &r.current[i]
		configured[a.ID] = true
		v := a.Version()
		if p := h.open(a.ID); p != nil && p.version == v {
			continue
		}
		bodies = append(bodies, record{Action: actionEnforced, ID: a.ID, Version: v, Assessment: a, Replica: r.replica})
		changes = append(changes, Change{Action: actionEnforced, ID: a.ID, Version: v})
	}
	for _, id := range h.ids() {
		if p := h.open(id); p != nil && !configured[id] {
			bodies = append(bodies, record{Action: actionRemoved, ID: id, Version: p.version, Replica: r.replica})
			changes = append(changes, Change{Action: actionRemoved, ID: id, Version: p.version})
		}
	}
	if len(bodies) == 0 {
		return nil, nil
	}
	entries, err := r.log.Append(ctx, bodies...)
	if err != nil {
		return nil, fmt.Errorf("pia: record: %w", err)
	}
	for i := range changes {
		changes[i].Seq = entries[i].Seq
	}
	return changes, nil
}

// period is one version of an assessment in force, from the entry that recorded it until
// the next version of it or its removal.
type period struct {
	a        Assessment
	version  string
	seq      uint64
	from     time.Time
	until    *time.Time
	replaced bool // ended by another version (else, if until is set, by a removal)
}

// history is the log replayed: the periods of each assessment, in order.
type history struct {
	periods map[string][]*period
	entries uint64
	head    string
	broken  error // a *journal.BreakError, or nil
}

// open returns the period of id still in force in the log, or nil.
func (h *history) open(id string) *period {
	ps := h.periods[id]
	if len(ps) == 0 || ps[len(ps)-1].until != nil {
		return nil
	}
	return ps[len(ps)-1]
}

func (h *history) ids() []string {
	ids := make([]string, 0, len(h.periods))
	for id := range h.periods {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// replay reads the log, checking each entry against the one before it and the last
// against the stored head; it stops at the first break (h.broken).
func (r *Registry) replay(ctx context.Context) (*history, error) {
	h := &history{periods: map[string][]*period{}}
	var prev *journal.Entry
	err := r.log.Entries(ctx, 1, func(e journal.Entry) error {
		if err := journal.Check(Log, prev, &e); err != nil {
			return err
		}
		var rec record
		if err := e.Decode(&rec); err != nil {
			return &journal.BreakError{Log: Log, Seq: e.Seq, Problem: "its body is not an assessment record"}
		}
		h.apply(&e, &rec)
		prev, h.entries, h.head = &e, e.Seq, e.Hash
		return nil
	})
	var be *journal.BreakError
	switch {
	case errors.As(err, &be):
		h.broken = be
		return h, nil
	case err != nil:
		return nil, fmt.Errorf("pia: read the register: %w", err)
	}
	head, err := r.store.JournalHead(ctx, Log)
	if err != nil {
		return nil, fmt.Errorf("pia: read the register: %w", err)
	}
	if head.Seq != h.entries || head.Hash != h.head {
		h.broken = &journal.BreakError{Log: Log, Seq: h.entries + 1,
			Problem: fmt.Sprintf("the head says %d entries, the chain has %d", head.Seq, h.entries)}
	}
	return h, nil
}

// apply replays one record: a version enforced (ending the one before it; the version
// already in force recorded again changes nothing) or a removal.
func (h *history) apply(e *journal.Entry, rec *record) {
	open := h.open(rec.ID)
	switch rec.Action {
	case actionEnforced:
		if rec.Assessment == nil || (open != nil && open.version == rec.Version) {
			return
		}
		if open != nil {
			open.until, open.replaced = &e.Time, true
		}
		h.periods[rec.ID] = append(h.periods[rec.ID], &period{a: *rec.Assessment, version: rec.Version, seq: e.Seq, from: e.Time})
	case actionRemoved:
		if open != nil {
			open.until = &e.Time
		}
	}
}

// Register is the register of impact assessments.
type Register struct {
	// Today is the date the statuses are for.
	Today string `json:"today"`
	// Assessments lists every version, by id and then in the order they came into force: each
	// version the log recorded, and the configured version if it is not recorded yet.
	Assessments []Entry `json:"assessments"`
	// Log describes the log the register was read from.
	Log LogState `json:"log"`
}

// Entry is one version of an assessment in the register.
type Entry struct {
	Assessment
	Version string `json:"version"`
	Status  Status `json:"status"`
	// Configured: this version is the one the configuration declares now (so the one the
	// policy enforces).
	Configured bool `json:"configured"`
	// RecordedAt is when the version was recorded in force (nil: not recorded yet), Seq its
	// entry in the log.
	RecordedAt *time.Time `json:"recorded_at,omitempty"`
	Seq        uint64     `json:"seq,omitempty"`
	// EndedAt is when a later version replaced it or it was removed from the configuration.
	EndedAt *time.Time `json:"ended_at,omitempty"`
}

// LogState says how much of the log the register rests on and whether its chain verified.
type LogState struct {
	Name     string `json:"name"`
	Entries  uint64 `json:"entries"`
	Head     string `json:"head,omitempty"` // hash of the last entry read
	Verified bool   `json:"verified"`
	// Break says where the chain breaks; the register uses only the entries before it.
	Break string `json:"break,omitempty"`
}

// Register returns the register today: every version the log recorded and the configured
// versions, with their statuses. An error means the log could not be read; a broken chain
// is reported in Log.
func (r *Registry) Register(ctx context.Context) (*Register, error) {
	h, err := r.replay(ctx)
	if err != nil {
		return nil, err
	}
	today := r.now().In(r.loc).Format(time.DateOnly)
	reg := &Register{Today: today, Assessments: []Entry{},
		Log: LogState{Name: Log, Entries: h.entries, Head: h.head, Verified: h.broken == nil}}
	if h.broken != nil {
		reg.Log.Break = h.broken.Error()
	}
	configured := map[string]*Assessment{}
	for i := range r.current {
		configured[r.current[i].ID] = &r.current[i]
	}
	ids := h.ids()
	for id := range configured {
		if _, ok := h.periods[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		conf := configured[id]
		var confVersion string
		if conf != nil {
			confVersion = conf.Version()
		}
		ps := h.periods[id]
		for i, p := range ps {
			e := Entry{Assessment: p.a, Version: p.version, RecordedAt: &p.from, Seq: p.seq, EndedAt: p.until}
			last := i == len(ps)-1
			switch {
			case p.until != nil && p.replaced, last && p.until == nil && conf != nil && confVersion != p.version:
				e.Status = Superseded
			case p.until != nil, conf == nil:
				e.Status = Removed
			default:
				e.Status, e.Configured = p.a.StatusOn(today), true
			}
			reg.Assessments = append(reg.Assessments, e)
		}
		if conf != nil && (len(ps) == 0 || !reg.Assessments[len(reg.Assessments)-1].Configured) {
			reg.Assessments = append(reg.Assessments, Entry{Assessment: *conf, Version: confVersion, Status: conf.StatusOn(today), Configured: true})
		}
	}
	return reg, nil
}

// Filter keeps the entries whose status is one of statuses (all when none is given).
func (reg *Register) Filter(statuses ...Status) {
	if len(statuses) == 0 {
		return
	}
	reg.Assessments = slices.DeleteFunc(reg.Assessments, func(e Entry) bool { return !slices.Contains(statuses, e.Status) })
}

// ParseStatus returns the status named s, or an error listing them.
func ParseStatus(s string) (Status, error) {
	all := []Status{Current, DueForReview, Expired, StatusRejected, Pending, Superseded, Removed}
	if slices.Contains(all, Status(s)) {
		return Status(s), nil
	}
	names := make([]string, len(all))
	for i, st := range all {
		names[i] = string(st)
	}
	return "", fmt.Errorf("pia: unknown status %q (one of %s)", s, strings.Join(names, ", "))
}
