package pia_test

import (
	"context"
	"encoding/csv"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/journal"
	"github.com/privguard/privguard/journal/journaltest"
	"github.com/privguard/privguard/pia"
)

var ctx = context.Background()

func openStore(t *testing.T) *boltstore.JournalStore {
	t.Helper()
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "privguard.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db.Journal()
}

func sms() pia.Assessment {
	return pia.Assessment{ID: "pia-sms", Title: "SMS campaigns", Purposes: []privguard.Purpose{"marketing.communications.sms"},
		Categories: []privguard.DataCategory{"user.contact.phone_number"}, Recipients: []string{"acme-sms"},
		Date: "2026-01-15", Review: "2027-01-15", Conclusion: pia.ApprovedWithMeasures,
		Legitimacy: "opted-in customers", Impact: "unwanted contact", Measures: "frequency caps", Assessor: "DPO office"}
}

func profiling() pia.Assessment {
	return pia.Assessment{ID: "pia-profiling", Purposes: []privguard.Purpose{"marketing.profiling"},
		Categories: []privguard.DataCategory{"user.derived"}, Date: "2025-06-01", Review: "2026-06-01", Conclusion: pia.Approved,
		Legitimacy: "l", Impact: "i", Measures: "m"}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t, _ = time.Parse(time.DateOnly, s)
	c.t = c.t.Add(9 * time.Hour)
}

func registry(t *testing.T, store journal.Store, c *clock, list ...pia.Assessment) *pia.Registry {
	t.Helper()
	r, err := pia.New(pia.Config{Store: store, Assessments: list, Now: c.now, Replica: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// summary is what a test compares of a register: id, status, configured, recorded.
type summary struct {
	ID         string
	Title      string
	Status     pia.Status
	Configured bool
	Recorded   bool
	Ended      bool
}

func summarise(t *testing.T, r *pia.Registry) []summary {
	t.Helper()
	reg, err := r.Register(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reg.Log.Verified {
		t.Fatalf("the log does not verify: %s", reg.Log.Break)
	}
	var out []summary
	for _, e := range reg.Assessments {
		out = append(out, summary{e.ID, e.Title, e.Status, e.Configured, e.RecordedAt != nil, e.EndedAt != nil})
	}
	return out
}

func record(t *testing.T, r *pia.Registry) []pia.Change {
	t.Helper()
	ch, err := r.Record(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// proves AUD-03 (impact assessments): every version serve enforces is recorded, so that an
// assessment changed or removed from the configuration stays in the register, with its
// full text, marked superseded or removed; recording the same configuration again records
// nothing.
func TestRegisterKeepsEveryVersion(t *testing.T) {
	store := openStore(t)
	c := &clock{}
	c.set("2026-03-01")
	if ch := record(t, registry(t, store, c, sms(), profiling())); len(ch) != 2 {
		t.Fatalf("first record: %+v; want both assessments", ch)
	}
	if ch := record(t, registry(t, store, c, sms(), profiling())); len(ch) != 0 {
		t.Errorf("the same configuration again recorded %+v", ch)
	}
	// The SMS assessment is revised, the profiling one dropped from the file.
	c.set("2026-04-01")
	revised := sms()
	revised.Title, revised.Measures = "SMS campaigns (v2)", "frequency caps; numbers sealed"
	r := registry(t, store, c, revised)
	ch := record(t, r)
	if len(ch) != 2 || ch[0].Action != "enforced" || ch[0].ID != "pia-sms" || ch[1].Action != "removed" || ch[1].ID != "pia-profiling" {
		t.Fatalf("record after the change: %+v; want the new version and the removal", ch)
	}
	want := []summary{
		{"pia-profiling", "", pia.Removed, false, true, true},
		{"pia-sms", "SMS campaigns", pia.Superseded, false, true, true},
		{"pia-sms", "SMS campaigns (v2)", pia.Current, true, true, false},
	}
	if diff := cmp.Diff(want, summarise(t, r)); diff != "" {
		t.Errorf("register (-want +got):\n%s", diff)
	}
	reg, _ := r.Register(ctx)
	p := profiling()
	for _, e := range reg.Assessments {
		if e.ID == "pia-profiling" && (e.Legitimacy != "l" || e.Impact != "i" || e.Measures != "m" || e.Version != p.Version()) {
			t.Errorf("the removed assessment lost its text: %+v", e)
		}
	}
	// Configured again, unchanged: a new period, the removal kept.
	c.set("2026-05-10")
	r = registry(t, store, c, revised, profiling())
	if ch := record(t, r); len(ch) != 1 || ch[0].ID != "pia-profiling" {
		t.Errorf("record after configuring it again: %+v", ch)
	}
	got := summarise(t, r)
	if len(got) != 4 || got[0] != (summary{"pia-profiling", "", pia.Removed, false, true, true}) || got[1] != (summary{"pia-profiling", "", pia.DueForReview, true, true, false}) {
		t.Errorf("register: %+v; want the removed period and the one in force (due for review since 2026-05-02)", got)
	}
	if n, err := journal.Verify(ctx, store, pia.Log); err != nil || n != 5 {
		t.Errorf("Verify = %d, %v; want 5 entries in one chain", n, err)
	}
}

// The register shows what the configuration declares before serve recorded it, and what a
// changed configuration will record, without writing.
func TestRegisterBeforeRecording(t *testing.T) {
	store := openStore(t)
	c := &clock{}
	c.set("2026-03-01")
	record(t, registry(t, store, c, sms()))
	revised := sms()
	revised.Review = "2026-03-10"
	got := summarise(t, registry(t, store, c, revised, profiling()))
	want := []summary{
		{"pia-profiling", "", pia.Current, true, false, false},
		{"pia-sms", "SMS campaigns", pia.Superseded, false, true, false},
		{"pia-sms", "SMS campaigns", pia.DueForReview, true, false, false},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("register (-want +got):\n%s", diff)
	}
	if n, _ := journal.Verify(ctx, store, pia.Log); n != 1 {
		t.Errorf("Register wrote: %d entries", n)
	}
}

func TestStatusOn(t *testing.T) {
	a := sms() // 2026-01-15 .. 2027-01-15
	for today, want := range map[string]pia.Status{
		"2026-01-14": pia.Pending, "2026-01-15": pia.Current, "2026-12-15": pia.Current, "2026-12-16": pia.DueForReview,
		"2027-01-14": pia.DueForReview, "2027-01-15": pia.Expired, "2030-01-01": pia.Expired,
	} {
		if got := a.StatusOn(today); got != want {
			t.Errorf("StatusOn(%s) = %s; want %s", today, got, want)
		}
	}
	a.Conclusion = pia.Rejected
	if got := a.StatusOn("2026-06-01"); got != pia.StatusRejected {
		t.Errorf("rejected: %s", got)
	}
}

// An altered, removed or forged entry is reported where the chain breaks, the register
// rests on the entries before it, and nothing more is recorded on a broken log.
func TestRegisterOnABrokenLog(t *testing.T) {
	cases := map[string]func([]journal.Entry) []journal.Entry{
		"altered": func(es []journal.Entry) []journal.Entry {
			es[1].Body = []byte(strings.Replace(string(es[1].Body), "frequency caps", "none", 1))
			return es
		},
		"removed": func(es []journal.Entry) []journal.Entry { return append(es[:1:1], es[2:]...) },
		"not_a_record": func(es []journal.Entry) []journal.Entry {
			e := journal.Entry{Log: pia.Log, Seq: 4, Time: es[2].Time, Body: []byte(`[1,2]`), Prev: es[2].Hash}
			e.Hash = e.Sum()
			return append(es, e) // chained, but the head still says 3
		},
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			store := &journaltest.Mem{}
			c := &clock{}
			c.set("2026-03-01")
			record(t, registry(t, store, c, profiling()))
			record(t, registry(t, store, c, sms()))
			revised := sms()
			revised.Title = "v2"
			record(t, registry(t, store, c, revised))
			store.Tamper(pia.Log, tamper)
			r := registry(t, store, c, revised)
			reg, err := r.Register(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if reg.Log.Verified || reg.Log.Break == "" {
				t.Errorf("register of a tampered log: %+v; want it not verified, the break named", reg.Log)
			}
			if _, err := r.Record(ctx); !errors.As(err, new(*journal.BreakError)) {
				t.Errorf("Record on a broken log: %v; want a BreakError", err)
			}
		})
	}
}

// Two processes starting together record one version once.
func TestConcurrentRecords(t *testing.T) {
	store := openStore(t)
	c := &clock{}
	c.set("2026-03-01")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := registry(t, store, c, sms()).Record(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got := summarise(t, registry(t, store, c, sms()))
	if len(got) != 1 || got[0].Status != pia.Current || !got[0].Recorded {
		t.Errorf("register after concurrent records: %+v; want the version once", got)
	}
}

func TestNewRefusesRepeatedIDs(t *testing.T) {
	if _, err := pia.New(pia.Config{Store: &journaltest.Mem{}, Assessments: []pia.Assessment{sms(), sms()}}); err == nil {
		t.Error("New accepted an id twice")
	}
	if _, err := pia.ParseStatus("valid"); err == nil || !strings.Contains(err.Error(), "due_for_review") {
		t.Errorf("ParseStatus: %v", err)
	}
}

// The CSV has a line per version, and cells a spreadsheet would run are defused.
func TestWriteCSV(t *testing.T) {
	store := openStore(t)
	c := &clock{}
	c.set("2026-03-01")
	hostile := sms()
	hostile.Title, hostile.Measures, hostile.Assessor = "=HYPERLINK(\"http://x\")", "-1+1", "@SUM(A1)"
	r := registry(t, store, c, hostile)
	record(t, r)
	reg, err := r.Register(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := pia.WriteCSV(&b, reg); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(b.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || !slices.Equal(rows[0], pia.Columns) {
		t.Fatalf("rows %q", rows)
	}
	cell := func(name string) string { return rows[1][slices.Index(pia.Columns, name)] }
	if cell("title") != `'=HYPERLINK("http://x")` || cell("measures") != "'-1+1" || cell("assessor") != "'@SUM(A1)" {
		t.Errorf("cells not defused: %q", rows[1])
	}
	if cell("status") != "current" || cell("purposes") != "marketing.communications.sms" || cell("seq") != "1" || cell("recorded_at") == "" {
		t.Errorf("row %q", rows[1])
	}
}
