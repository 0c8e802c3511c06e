package incident_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/incident"
	"github.com/privguard/privguard/journal"
	"github.com/privguard/privguard/journal/journaltest"
)

var t0 = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

func openBolt(t testing.TB) journal.Store {
	t.Helper()
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "privguard.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db.Journal()
}

func pseudonym(s string) string { return "hs_" + strings.ToUpper(s) }

var contact = incident.Contact{Controller: "Example Retail Ltd", DPO: "Li Wei", Contact: "dpo@example.com"}

func openRegister(t testing.TB, store journal.Store, c *clock, mut func(*incident.Config)) *incident.Register {
	t.Helper()
	cfg := incident.Config{Store: store, Pseudonym: pseudonym, Contact: contact, Now: c.Now}
	if mut != nil {
		mut(&cfg)
	}
	r, err := incident.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func complete() incident.Report {
	return incident.Report{Title: "CRM export left public", Facts: "a CSV of customers was readable by URL for 6 hours",
		Cause: "a storage bucket's policy was changed by mistake", AwareAt: t0,
		Categories: []privguard.DataCategory{"user.contact.phone_number", "user.name"}, SubjectCount: 1200,
		Effects: "phones and names may be used for fraud calls", Actions: "the bucket was closed and its access logs kept",
		Advice: "be wary of calls claiming to be from us; we never ask for codes"}
}

func clockOf(t *testing.T, v *incident.View, name string) incident.Clock {
	t.Helper()
	for _, c := range v.Clocks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no clock %s in %+v", name, v.Clocks)
	return incident.Clock{}
}

// proves SEC-09
// The clocks start at aware_at: the GDPR authority notice is due 72 h later and alerts 4 h
// before; the CAC report of a 较大-or-worse incident is due 4 h later (1 h for a CII
// operator) and alerts at once; an incident not assessed runs the strictest clocks.
func TestClocks(t *testing.T) {
	at := func(d time.Duration) *time.Time { x := t0.Add(d); return &x }
	cases := []struct {
		name     string
		severity incident.Severity
		risk     incident.Risk
		cii      bool
		now      time.Duration
		clock    string
		state    incident.ClockState
		due      *time.Time
	}{
		{"unassessed_gdpr_runs", "", "", false, time.Hour, incident.ClockSA, incident.Running, at(72 * time.Hour)},
		{"unassessed_cac_runs_strictest", "", "", false, time.Hour, incident.ClockCAC, incident.Alert, at(4 * time.Hour)},
		{"unassessed_subjects_due", "", "", false, time.Hour, incident.ClockSubjects, incident.Alert, nil},
		{"gdpr_before_alert", incident.Major, incident.SomeRisk, false, 68*time.Hour - time.Second, incident.ClockSA, incident.Running, at(72 * time.Hour)},
		{"gdpr_alert_at_t_minus_4h", incident.Major, incident.SomeRisk, false, 68 * time.Hour, incident.ClockSA, incident.Alert, at(72 * time.Hour)},
		{"gdpr_last_second", incident.Major, incident.SomeRisk, false, 72*time.Hour - time.Second, incident.ClockSA, incident.Alert, at(72 * time.Hour)},
		{"gdpr_overdue_at_72h", incident.Major, incident.SomeRisk, false, 72 * time.Hour, incident.ClockSA, incident.Overdue, at(72 * time.Hour)},
		{"gdpr_no_risk_not_required", incident.General, incident.NoRisk, false, 100 * time.Hour, incident.ClockSA, incident.NotRequired, nil},
		{"cac_relatively_major_alerts_at_once", incident.RelativelyMajor, incident.NoRisk, false, 0, incident.ClockCAC, incident.Alert, at(4 * time.Hour)},
		{"cac_relatively_major_last_second", incident.RelativelyMajor, incident.NoRisk, false, 4*time.Hour - time.Second, incident.ClockCAC, incident.Alert, at(4 * time.Hour)},
		{"cac_overdue_at_4h", incident.RelativelyMajor, incident.NoRisk, false, 4 * time.Hour, incident.ClockCAC, incident.Overdue, at(4 * time.Hour)},
		{"cac_especially_major", incident.EspeciallyMajor, incident.HighRisk, false, 5 * time.Hour, incident.ClockCAC, incident.Overdue, at(4 * time.Hour)},
		{"cac_general_not_required", incident.General, incident.SomeRisk, false, 5 * time.Hour, incident.ClockCAC, incident.NotRequired, nil},
		{"cii_due_in_1h", incident.Major, incident.SomeRisk, true, 59 * time.Minute, incident.ClockCAC, incident.Alert, at(time.Hour)},
		{"cii_overdue_at_1h", incident.Major, incident.SomeRisk, true, time.Hour, incident.ClockCAC, incident.Overdue, at(time.Hour)},
		{"cii_unassessed_1h", "", "", true, time.Hour, incident.ClockCAC, incident.Overdue, at(time.Hour)},
		{"subjects_high_risk", incident.General, incident.HighRisk, false, time.Hour, incident.ClockSubjects, incident.Alert, nil},
		{"subjects_no_risk", incident.General, incident.NoRisk, false, time.Hour, incident.ClockSubjects, incident.NotRequired, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := &incident.Incident{AwareAt: t0, Severity: tc.severity, Risk: tc.risk}
			var got *incident.Clock
			for _, c := range incident.Clocks(in, t0.Add(tc.now), nil, tc.cii) {
				if c.Name == tc.clock {
					got = &c
				}
			}
			if got == nil {
				t.Fatalf("no clock %s", tc.clock)
			}
			if got.State != tc.state {
				t.Errorf("Clocks(%s at +%s).State = %s; want %s (%s)", tc.clock, tc.now, got.State, tc.state, got.Why)
			}
			if (got.Due == nil) != (tc.due == nil) || (got.Due != nil && !got.Due.Equal(*tc.due)) {
				t.Errorf("Clocks(%s).Due = %v; want %v", tc.clock, got.Due, tc.due)
			}
		})
	}
}

// proves SEC-09
// Both notices, in both languages, carry every element SEC-09 lists (categories, cause,
// possible harm, remedies, what the individual can do, the DPO's contact; the authority's
// also the number affected), and a notice lacking any one of them is refused, naming it.
func TestNoticeElements(t *testing.T) {
	rep := complete()
	in := &incident.Incident{ID: "inc_1", Title: rep.Title, AwareAt: t0, Cause: rep.Cause, Categories: rep.Categories, SubjectCount: rep.SubjectCount,
		Effects: []incident.Note{{Text: rep.Effects}}, Actions: []incident.Note{{Text: rep.Actions}}, Advice: rep.Advice}
	values := map[string]string{"categories": "user.contact.phone_number, user.name", "subject_count": "1200", "cause": rep.Cause,
		"harm": rep.Effects, "remedies": rep.Actions, "advice": rep.Advice, "contact": "dpo@example.com"}
	for _, kind := range []string{incident.AuthorityNotice, incident.SubjectNotice} {
		n, err := incident.Render(in, kind, contact)
		if err != nil {
			t.Fatalf("Render(%s) = %v", kind, err)
		}
		for _, lang := range incident.Languages {
			for _, e := range incident.Elements[kind] {
				if !strings.Contains(n.Texts[lang], values[e]) {
					t.Errorf("the %s notice (%s) lacks %s (%q):\n%s", kind, lang, e, values[e], n.Texts[lang])
				}
			}
		}
		for _, e := range incident.Elements[kind] {
			broken := *in
			ct := contact
			switch e {
			case "categories":
				broken.Categories = nil
			case "subject_count":
				broken.SubjectCount = 0
			case "cause":
				broken.Cause = ""
			case "harm":
				broken.Effects = nil
			case "remedies":
				broken.Actions = nil
			case "advice":
				broken.Advice = ""
			case "contact":
				ct.Contact = ""
			}
			_, err := incident.Render(&broken, kind, ct)
			var ne *incident.NoticeError
			if !errors.As(err, &ne) || !slices.Equal(ne.Missing, []string{e}) {
				t.Errorf("Render(%s without %s) = %v; want a NoticeError naming %s", kind, e, err, e)
			}
		}
	}
	want := map[string][]string{incident.AuthorityNotice: {"categories", "subject_count", "cause", "harm", "remedies", "contact"},
		incident.SubjectNotice: {"categories", "cause", "harm", "remedies", "advice", "contact"}}
	for kind, els := range want {
		if !slices.Equal(incident.Elements[kind], els) {
			t.Errorf("Elements[%s] = %v; want %v", kind, incident.Elements[kind], els)
		}
	}
}

// proves SEC-10
// The register keeps an incident that was never notified, with its facts, effects and
// remedial actions, after it is closed and when read again from the store; an incident
// without facts is refused, one without effects or remedial actions is flagged and
// cannot be closed.
func TestRegisterKeepsUnnotified(t *testing.T) {
	store := openBolt(t)
	c := &clock{now: t0.Add(2 * time.Hour)}
	r := openRegister(t, store, c, nil)
	ctx := context.Background()

	noFacts := complete()
	noFacts.Facts = " "
	if _, err := r.Record(ctx, "dpo", noFacts); !isField(err, "facts") {
		t.Fatalf("Record without facts = %v; want a FieldError on facts", err)
	}

	rep := complete()
	rep.Effects, rep.Actions = "", ""
	v, err := r.Record(ctx, "dpo", rep)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(v.Gaps, "effects") || !slices.Contains(v.Gaps, "actions") {
		t.Errorf("Gaps = %v; want effects and actions flagged", v.Gaps)
	}
	if _, err := r.Apply(ctx, v.ID, "dpo", incident.Change{Kind: "assess", Severity: "一般", Risk: "none"}); err != nil {
		t.Fatal(err)
	}
	var ge *incident.GapsError
	if _, err := r.Apply(ctx, v.ID, "dpo", incident.Change{Kind: "close"}); !errors.As(err, &ge) || !slices.Equal(ge.Gaps, []string{"effects", "actions"}) {
		t.Fatalf("close with gaps = %v; want a GapsError naming effects and actions", err)
	}
	if _, err := r.Apply(ctx, v.ID, "dpo", incident.Change{Kind: "update", Effects: "none expected: the file was encrypted"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Apply(ctx, v.ID, "dpo", incident.Change{Kind: "close"}); !errors.As(err, &ge) || !slices.Equal(ge.Gaps, []string{"actions"}) {
		t.Fatalf("close without actions = %v; want a GapsError naming actions", err)
	}
	if _, err := r.Apply(ctx, v.ID, "dpo", incident.Change{Kind: "update", Actions: "the key was rotated"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Apply(ctx, v.ID, "dpo", incident.Change{Kind: "close", Note: "no notice due"}); err != nil {
		t.Fatal(err)
	}

	// A new register on the same store: nothing lives only in memory.
	c.Set(t0.Add(400 * 24 * time.Hour))
	r2 := openRegister(t, store, c, nil)
	var all []incident.View
	if err := r2.List(ctx, incident.Filter{}, func(v incident.View) error { all = append(all, v); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Fatalf("the register holds %d incidents; want 1", len(all))
	}
	got := all[0]
	if got.Status != incident.StatusClosed || len(got.Notifications) != 0 {
		t.Errorf("status %s, %d notifications; want closed, never notified", got.Status, len(got.Notifications))
	}
	texts := func(ns []incident.Note) []string {
		var out []string
		for _, n := range ns {
			out = append(out, n.Text)
		}
		return out
	}
	if !slices.Equal(texts(got.Facts), []string{rep.Facts}) || !slices.Equal(texts(got.Effects), []string{"none expected: the file was encrypted"}) ||
		!slices.Equal(texts(got.Actions), []string{"the key was rotated"}) {
		t.Errorf("facts %v effects %v actions %v; want them as recorded", texts(got.Facts), texts(got.Effects), texts(got.Actions))
	}
	if len(got.Gaps) != 0 || got.Overdue {
		t.Errorf("gaps %v overdue %v; want none", got.Gaps, got.Overdue)
	}
	if _, err := r2.Apply(ctx, v.ID, "dpo", incident.Change{Kind: "update", Facts: "more"}); !errors.Is(err, incident.ErrClosed) {
		t.Errorf("update of a closed incident = %v; want ErrClosed", err)
	}
	if _, err := journal.Verify(ctx, store, incident.Log); err != nil {
		t.Errorf("Verify = %v", err)
	}
}

func isField(err error, field string) bool {
	var fe *incident.FieldError
	return errors.As(err, &fe) && fe.Field == field && errors.Is(err, privguard.ErrInvalid)
}

func TestRecordRefusesBadInput(t *testing.T) {
	c := &clock{now: t0}
	r := openRegister(t, &journaltest.Mem{}, c, nil)
	future := t0.Add(time.Hour)
	cases := []struct {
		name  string
		mut   func(*incident.Report)
		field string
	}{
		{"no_title", func(r *incident.Report) { r.Title = "" }, "title"},
		{"no_aware_at", func(r *incident.Report) { r.AwareAt = time.Time{} }, "aware_at"},
		{"aware_at_future", func(r *incident.Report) { r.AwareAt = future }, "aware_at"},
		{"occurred_after_aware", func(r *incident.Report) { x := t0.Add(time.Second); r.OccurredAt = &x }, "occurred_at"},
		{"unknown_severity", func(r *incident.Report) { r.Severity = "catastrophic" }, "severity"},
		{"unknown_risk", func(r *incident.Report) { r.Risk = "medium" }, "risk"},
		{"unknown_category", func(r *incident.Report) { r.Categories = []privguard.DataCategory{"user.contact.emial"} }, "categories[0]"},
		{"bad_subject", func(r *incident.Report) { r.Subjects = []privguard.SubjectID{"a\x00b"} }, "subjects[0]"},
		{"negative_count", func(r *incident.Report) { r.SubjectCount = -1 }, "subject_count"},
		{"long_cause", func(r *incident.Report) { r.Cause = strings.Repeat("x", incident.MaxText+1) }, "cause"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := complete()
			tc.mut(&rep)
			if _, err := r.Record(context.Background(), "dpo", rep); !isField(err, tc.field) {
				t.Errorf("Record = %v; want a FieldError on %s", err, tc.field)
			}
		})
	}
	var n int
	_ = r.List(context.Background(), incident.Filter{}, func(incident.View) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d incidents recorded from refused reports", n)
	}
}

func TestNotifyAuthority(t *testing.T) {
	c := &clock{now: t0.Add(time.Hour)}
	r := openRegister(t, &journaltest.Mem{}, c, nil)
	ctx := context.Background()
	rep := complete()
	rep.Cause = ""
	v, err := r.Record(ctx, "dpo", rep)
	if err != nil {
		t.Fatal(err)
	}
	var ne *incident.NoticeError
	if _, err := r.Apply(ctx, v.ID, "dpo", incident.Change{Kind: "notify-authority", Authority: "sa"}); !errors.As(err, &ne) || !slices.Equal(ne.Missing, []string{"cause"}) {
		t.Fatalf("notify without a cause = %v; want a NoticeError naming cause", err)
	}
	if _, err := r.Apply(ctx, v.ID, "dpo", incident.Change{Kind: "notify-authority", Authority: "police"}); !isField(err, "authority") {
		t.Fatalf("notify an unknown authority = %v", err)
	}
	if _, err := r.Apply(ctx, v.ID, "dpo", incident.Change{Kind: "update", Cause: "misconfiguration"}); err != nil {
		t.Fatal(err)
	}
	// The CAC report (unassessed: the strictest clock, 4 h) made at +5 h needs a reason.
	c.Set(t0.Add(5 * time.Hour))
	if _, err := r.Apply(ctx, v.ID, "dpo", incident.Change{Kind: "notify-authority", Authority: "cac", Reference: "GD-2026-1"}); !isField(err, "delay_reason") {
		t.Fatalf("late notice without a reason = %v; want a FieldError on delay_reason", err)
	}
	v, err = r.Apply(ctx, v.ID, "dpo", incident.Change{Kind: "notify-authority", Authority: "cac", Reference: "GD-2026-1", DelayReason: "the scope was unknown until the logs were read"})
	if err != nil {
		t.Fatal(err)
	}
	if c := clockOf(t, v, incident.ClockCAC); c.State != incident.MetLate {
		t.Errorf("CAC clock = %s; want met_late", c.State)
	}
	v, err = r.Apply(ctx, v.ID, "dpo", incident.Change{Kind: "notify-authority", Authority: "sa", Reference: "SA-77"})
	if err != nil {
		t.Fatal(err)
	}
	if c := clockOf(t, v, incident.ClockSA); c.State != incident.Met {
		t.Errorf("SA clock = %s; want met", c.State)
	}
	if n := v.Notifications[1]; n.Notice == nil || !strings.Contains(n.Notice.Texts["en"], "misconfiguration") || n.Reference != "SA-77" {
		t.Errorf("the notification does not keep the notice sent: %+v", n)
	}
	if _, err := r.Apply(ctx, v.ID, "dpo", incident.Change{Kind: "notify-authority", Authority: "sa"}); !isField(err, "kind") {
		t.Errorf("a second notice to the same authority = %v; want refused", err)
	}
}

// A subject notice creates one task per affected subject, sent through the outbox
// notifier once; the ids are in the task log only, never in the register's log.
func TestNotifySubjects(t *testing.T) {
	store := &journaltest.Mem{}
	c := &clock{now: t0.Add(time.Hour)}
	outbox := filepath.Join(t.TempDir(), "outbox.jsonl")
	notifier := &fileNotifier{path: outbox}
	r := openRegister(t, store, c, func(cfg *incident.Config) { cfg.Notifier = notifier })
	ctx := context.Background()
	rep := complete()
	rep.Advice = ""
	rep.Subjects = []privguard.SubjectID{"alice-1001", "bob-1002", "alice-1001"}
	v, err := r.Record(ctx, "dpo", rep)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(v.Subjects, []string{"hs_ALICE-1001", "hs_BOB-1002"}) || v.SubjectCount != 1200 {
		t.Errorf("subjects %v count %d; want two pseudonyms, 1200", v.Subjects, v.SubjectCount)
	}
	if n, err := r.Deliver(ctx); n != 0 || err != nil {
		t.Fatalf("Deliver before the notice = %d, %v; want nothing sent", n, err)
	}
	var ne *incident.NoticeError
	if _, err := r.Apply(ctx, v.ID, "dpo", incident.Change{Kind: "notify-subjects"}); !errors.As(err, &ne) || !slices.Equal(ne.Missing, []string{"advice"}) {
		t.Fatalf("notify-subjects without advice = %v; want a NoticeError naming advice", err)
	}
	if _, err := r.Apply(ctx, v.ID, "dpo", incident.Change{Kind: "update", Advice: "change your password"}); err != nil {
		t.Fatal(err)
	}
	if v, err = r.Apply(ctx, v.ID, "dpo", incident.Change{Kind: "notify-subjects"}); err != nil {
		t.Fatal(err)
	}
	if c := clockOf(t, v, incident.ClockSubjects); c.State != incident.Met || v.Notifications[0].Tasks != 2 {
		t.Errorf("subjects clock %s, tasks %d; want met, 2", c.State, v.Notifications[0].Tasks)
	}
	if n, err := r.Deliver(ctx); n != 2 || err != nil {
		t.Fatalf("Deliver = %d, %v; want 2", n, err)
	}
	if n, err := r.Deliver(ctx); n != 0 || err != nil {
		t.Fatalf("Deliver again = %d, %v; want 0 (sent once)", n, err)
	}
	// A subject found later is sent the notice too.
	if _, err := r.Apply(ctx, v.ID, "dpo", incident.Change{Kind: "update", Subjects: []privguard.SubjectID{"carol-1003", "bob-1002"}}); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Deliver(ctx); n != 1 || err != nil {
		t.Fatalf("Deliver after a new subject = %d, %v; want 1", n, err)
	}
	counts, err := r.Tasks(ctx, v.ID)
	if err != nil || counts != (incident.TaskCounts{Sent: 3}) {
		t.Errorf("Tasks = %+v, %v; want 3 sent", counts, err)
	}
	msgs := readOutbox(t, outbox)
	var to []string
	for _, m := range msgs {
		to = append(to, m["to"])
		if m["kind"] != "incident" || m["incident"] != v.ID || !strings.Contains(m["text"], "change your password") || !strings.Contains(m["text"], "您可以采取") {
			t.Errorf("outbox message %v; want the incident's bilingual notice", m)
		}
	}
	if !slices.Equal(to, []string{"alice-1001", "bob-1002", "carol-1003"}) {
		t.Errorf("sent to %v; want each subject once", to)
	}
	// The register's log names no subject.
	_ = store.JournalEntries(ctx, incident.Log, 1, func(e journal.Entry) error {
		for _, id := range []string{"alice", "bob", "carol"} {
			if bytes.Contains(e.Body, []byte(id+"-")) {
				t.Errorf("entry %d of the register holds a subject id: %s", e.Seq, e.Body)
			}
		}
		return nil
	})
}

// fileNotifier appends each notice to a file, one JSON line each, as an outbox does.
type fileNotifier struct{ path string }

func (f *fileNotifier) SendIncidentNotice(ctx context.Context, s privguard.SubjectID, id, text string) error {
	line, _ := json.Marshal(map[string]string{"to": string(s), "incident": id, "kind": "incident", "text": text})
	b, _ := os.ReadFile(f.path)
	return os.WriteFile(f.path, append(append(b, line...), '\n'), 0o600)
}

// unreachable cannot reach the subjects of no, and records whom it sent to.
type unreachable struct {
	no   map[string]bool
	sent []string
}

func (u *unreachable) SendIncidentNotice(ctx context.Context, s privguard.SubjectID, id, text string) error {
	if u.no[string(s)] {
		return fmt.Errorf("no verified phone or email: %w", incident.ErrUnreachable)
	}
	u.sent = append(u.sent, string(s))
	return nil
}

// A subject without an address does not hold up the others' notices; its task stays
// pending and is sent once it can be reached.
func TestDeliverSkipsUnreachable(t *testing.T) {
	u := &unreachable{no: map[string]bool{"s1": true}}
	r := openRegister(t, &journaltest.Mem{}, &clock{now: t0.Add(time.Hour)}, func(cfg *incident.Config) { cfg.Notifier = u })
	ctx := context.Background()
	rep := complete()
	rep.Subjects = []privguard.SubjectID{"s1", "s2", "s3"}
	v, err := r.Record(ctx, "dpo", rep)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Apply(ctx, v.ID, "dpo", incident.Change{Kind: "notify-subjects"}); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Deliver(ctx); n != 2 || err != nil {
		t.Fatalf("Deliver with s1 unreachable = %d, %v; want 2 sent, no error", n, err)
	}
	if counts, err := r.Tasks(ctx, v.ID); err != nil || counts.Sent != 2 {
		t.Errorf("Tasks = %+v, %v; want 2 sent", counts, err)
	}
	u.no = nil
	if n, err := r.Deliver(ctx); n != 1 || err != nil {
		t.Fatalf("Deliver once s1 can be reached = %d, %v; want 1", n, err)
	}
	if !slices.Equal(u.sent, []string{"s2", "s3", "s1"}) {
		t.Errorf("sent %v; want s2, s3, then s1", u.sent)
	}
}

// failing fails after ok sends.
type failing struct {
	ok   int
	sent []string
}

func (f *failing) SendIncidentNotice(ctx context.Context, s privguard.SubjectID, id, text string) error {
	if len(f.sent) == f.ok {
		return errors.New("gateway down")
	}
	f.sent = append(f.sent, string(s))
	return nil
}

func TestDeliverResumes(t *testing.T) {
	store := &journaltest.Mem{}
	c := &clock{now: t0.Add(time.Hour)}
	f := &failing{ok: 1}
	r := openRegister(t, store, c, func(cfg *incident.Config) { cfg.Notifier = f })
	ctx := context.Background()
	rep := complete()
	rep.Subjects = []privguard.SubjectID{"s1", "s2", "s3"}
	v, err := r.Record(ctx, "dpo", rep)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Apply(ctx, v.ID, "dpo", incident.Change{Kind: "notify-subjects"}); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Deliver(ctx); n != 1 || err == nil {
		t.Fatalf("Deliver with a failing gateway = %d, %v; want 1 and an error", n, err)
	}
	// Another process (a restart) sends the rest, not the first again.
	f.ok = 10
	r2 := openRegister(t, store, c, func(cfg *incident.Config) { cfg.Notifier = f })
	if n, err := r2.Deliver(ctx); n != 2 || err != nil {
		t.Fatalf("Deliver after the restart = %d, %v; want 2", n, err)
	}
	if !slices.Equal(f.sent, []string{"s1", "s2", "s3"}) {
		t.Errorf("sent %v; want each once", f.sent)
	}
}

// Run's round logs a clock's alert and its overdue once each, naming the incident, never
// a subject, and keeps the summary the metrics read.
func TestStepAlerts(t *testing.T) {
	var logs bytes.Buffer
	c := &clock{now: t0.Add(time.Hour)}
	r := openRegister(t, &journaltest.Mem{}, c, func(cfg *incident.Config) {
		cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		cfg.Regimes = []privguard.Regime{privguard.RegimeGDPR}
	})
	ctx := context.Background()
	rep := complete()
	rep.Risk, rep.Severity = "risk", "major"
	rep.Subjects = []privguard.SubjectID{"alice-1001"}
	v, err := r.Record(ctx, "dpo", rep)
	if err != nil {
		t.Fatal(err)
	}
	r.Step(ctx)
	if s := r.Summary(); s.Open != 1 || s.Alerting != 0 || s.Overdue != 0 || s.NextDeadline != (71*time.Hour).Seconds() {
		t.Errorf("Summary at +1h = %+v; want 1 open, nothing alerting, 71 h left", s)
	}
	c.Set(t0.Add(69 * time.Hour))
	r.Step(ctx)
	r.Step(ctx)
	c.Set(t0.Add(73 * time.Hour))
	r.Step(ctx)
	if s := r.Summary(); s.Overdue != 1 || s.NextDeadline != -(time.Hour).Seconds() {
		t.Errorf("Summary at +73h = %+v; want 1 overdue, -1 h", s)
	}
	var states []string
	sc := bufio.NewScanner(&logs)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "alice") {
			t.Errorf("a log line names a subject: %s", line)
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(line), &m)
		if m["msg"] == "privguard: incident notice deadline" && m["incident"] == v.ID && m["clock"] == incident.ClockSA {
			states = append(states, m["state"].(string))
			if m["level"] != "WARN" {
				t.Errorf("alert logged at %v; want WARN", m["level"])
			}
		}
	}
	if !slices.Equal(states, []string{"alert", "overdue"}) {
		t.Errorf("alerts logged %v; want alert then overdue, once each", states)
	}
}

func TestBrokenChainIsAnError(t *testing.T) {
	store := &journaltest.Mem{}
	c := &clock{now: t0.Add(time.Hour)}
	r := openRegister(t, store, c, nil)
	ctx := context.Background()
	v, err := r.Record(ctx, "dpo", complete())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Apply(ctx, v.ID, "dpo", incident.Change{Kind: "update", Facts: "more"}); err != nil {
		t.Fatal(err)
	}
	store.Tamper(incident.Log, func(es []journal.Entry) []journal.Entry { return es[1:] })
	var br *journal.BreakError
	if err := r.List(ctx, incident.Filter{}, func(incident.View) error { return nil }); !errors.As(err, &br) {
		t.Errorf("List on a log missing its first entry = %v; want a BreakError", err)
	}
	if _, err := r.Apply(ctx, v.ID, "dpo", incident.Change{Kind: "update", Facts: "more"}); !errors.As(err, &br) {
		t.Errorf("Apply on a broken log = %v; want a BreakError", err)
	}
}

func readOutbox(t *testing.T, path string) []map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var m map[string]string
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// An incident that still owes a notice cannot be closed; once notified (or assessed as
// owing none) it can.
func TestCloseWaitsForNotices(t *testing.T) {
	c := &clock{now: t0.Add(time.Hour)}
	r := openRegister(t, &journaltest.Mem{}, c, func(cfg *incident.Config) { cfg.Regimes = []privguard.Regime{privguard.RegimePIPL} })
	ctx := context.Background()
	rep := complete()
	rep.Severity, rep.Risk = "较大", "none"
	v, err := r.Record(ctx, "dpo", rep)
	if err != nil {
		t.Fatal(err)
	}
	var ge *incident.GapsError
	if _, err := r.Apply(ctx, v.ID, "dpo", incident.Change{Kind: "close"}); !errors.As(err, &ge) || !slices.Equal(ge.Gaps, []string{"notice pipl.authority"}) {
		t.Fatalf("close owing the CAC report = %v; want a GapsError naming it", err)
	}
	if _, err := r.Apply(ctx, v.ID, "dpo", incident.Change{Kind: "notify-authority", Authority: "cac", Reference: "GD-1"}); err != nil {
		t.Fatal(err)
	}
	if v, err = r.Apply(ctx, v.ID, "dpo", incident.Change{Kind: "close"}); err != nil || v.Status != incident.StatusClosed {
		t.Fatalf("close after the report = %v", err)
	}
}
