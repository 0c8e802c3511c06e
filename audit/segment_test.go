package audit_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/audit"
	"github.com/privguard/privguard/journal"
	"github.com/privguard/privguard/journal/journaltest"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// writeEvents opens the log at path, records n decisions (one a minute on clk, a pattern
// of purposes, routes, reasons and effects a test can count) and closes it.
func writeEvents(t *testing.T, path string, store journal.Store, clk *clock, maxSize int64, retention time.Duration, n int) {
	t.Helper()
	l, err := audit.Open(audit.Config{Path: path, Key: testKey, Now: clk.now, Checkpoints: store, MaxSize: maxSize, Retention: retention, Buffer: n + 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		in, d := event(i)
		l.Record(routes[i%len(routes)], &in, &d)
		clk.add(time.Minute)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l.Dropped() != 0 {
		t.Fatalf("%d events dropped", l.Dropped())
	}
}

var (
	routes   = []string{"GET /profiles/{id}", "POST /send"}
	purposes = []privguard.Purpose{"marketing.communications.sms", "marketing.profiling", "analytics.ab_testing"}
)

// event i: purpose i%3, route i%2, deny when i%5 == 0 (reason consent.missing), else allow.
func event(i int) (privguard.Input, privguard.Decision) {
	in := privguard.Input{Subject: privguard.SubjectID(fmt.Sprintf("canary-qzxw-%d", i%7)), Purpose: purposes[i%3], Regime: privguard.RegimePIPL}
	d := privguard.Decision{ID: fmt.Sprintf("d-%d", i), Effect: privguard.Allow, Revision: "r1", Reasons: []privguard.Reason{"allow"}}
	if i%5 == 0 {
		d.Effect, d.Reasons = privguard.Deny, []privguard.Reason{"consent.missing"}
	}
	return in, d
}

func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "decisions-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func verify(t *testing.T, path string, store journal.Store) *audit.Report {
	t.Helper()
	rep, err := audit.VerifyDir(context.Background(), path, store, audit.VerifyOptions{})
	if err != nil {
		t.Fatalf("VerifyDir: %v", err)
	}
	return rep
}

func TestRotationChainsSegmentsAndCheckpointsThem(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.log")
	store := &journaltest.Mem{}
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	writeEvents(t, path, store, clk, 4000, 0, 300)
	// Reopening continues the chain and the numbering.
	writeEvents(t, path, store, clk, 4000, 0, 100)
	segs := segments(t, dir)
	if len(segs) < 5 {
		t.Fatalf("%d segments; want the 400 lines of ~300 bytes cut into many of 4000 bytes", len(segs))
	}
	for _, s := range segs {
		if fi, _ := os.Stat(s); fi.Size() > 4000 {
			t.Errorf("%s is %d bytes; want at most the 4000 of max_size", s, fi.Size())
		}
	}
	rep := verify(t, path, store)
	if rep.Break != nil || rep.Lines != 400 || rep.Segments != len(segs) || rep.Pending != 0 {
		t.Fatalf("VerifyDir = %+v (break %v); want 400 lines in %d checkpointed segments", rep, rep.Break, len(segs))
	}
	var n int
	journal.Scan(context.Background(), store, audit.CheckpointLog, 0, time.Time{}, func(e journal.Entry) error { n++; return nil })
	if n != len(segs) {
		t.Errorf("%d checkpoints; want one per closed segment (%d)", n, len(segs))
	}
}

func TestVerifyFindsASegmentRemovedTruncatedOrAltered(t *testing.T) {
	// proves AUD-02: across segments, a deleted or altered entry is detected.
	build := func(t *testing.T) (string, *journaltest.Mem, []string) {
		dir := t.TempDir()
		path := filepath.Join(dir, "decisions.log")
		store := &journaltest.Mem{}
		writeEvents(t, path, store, &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, 3000, 0, 200)
		segs := segments(t, dir)
		if len(segs) < 4 {
			t.Fatalf("%d segments", len(segs))
		}
		return path, store, segs
	}
	readLines := func(t *testing.T, file string) []string {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}
	writeLines := func(t *testing.T, file string, lines []string) {
		if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		tamper  func(t *testing.T, segs []string, path string)
		segment int // 1-based index into segs; 0: the active file; -1: the last segment
		line    int64
		problem string
	}{
		{name: "middle_segment_removed", segment: 2, line: 0, problem: "retention did not delete it",
			tamper: func(t *testing.T, segs []string, _ string) { os.Remove(segs[1]) }},
		{name: "last_segment_removed", segment: -1, line: 0, problem: "retention did not delete it",
			tamper: func(t *testing.T, segs []string, _ string) { os.Remove(segs[len(segs)-1]) }},
		{name: "first_segment_removed", segment: 1, line: 0, problem: "missing",
			tamper: func(t *testing.T, segs []string, _ string) { os.Remove(segs[0]) }},
		{name: "segment_truncated", segment: 2, problem: "truncated",
			tamper: func(t *testing.T, segs []string, _ string) {
				ls := readLines(t, segs[1])
				writeLines(t, segs[1], ls[:len(ls)-1])
			}},
		{name: "line_altered", segment: 2, line: 4, problem: "does not link",
			tamper: func(t *testing.T, segs []string, _ string) {
				ls := readLines(t, segs[1])
				ls[2] = strings.Replace(ls[2], `"allow"`, `"deny!"`, 1)
				writeLines(t, segs[1], ls)
			}},
		{name: "every_segment_removed", segment: 1, line: 0, problem: "retention did not delete it",
			tamper: func(t *testing.T, segs []string, _ string) {
				for _, s := range segs {
					os.Remove(s)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, store, segs := build(t)
			if rep := verify(t, path, store); rep.Break != nil {
				t.Fatalf("before tampering: %v", rep.Break)
			}
			tc.tamper(t, segs, path)
			rep := verify(t, path, store)
			if rep.Break == nil {
				t.Fatalf("VerifyDir after %s = %+v; want a break", tc.name, rep)
			}
			want := filepath.Base(path)
			switch {
			case tc.segment > 0:
				want = filepath.Base(segs[tc.segment-1])
			case tc.segment < 0:
				want = filepath.Base(segs[len(segs)-1])
			}
			if rep.Break.File != want || (tc.line != 0 && rep.Break.Line != tc.line) || !strings.Contains(rep.Break.Problem, tc.problem) {
				t.Errorf("break = %v; want %s line %d: %s", rep.Break, want, tc.line, tc.problem)
			}
		})
	}
}

func TestRetentionDeletesOldSegmentsAndVerifyStillPasses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.log")
	store := &journaltest.Mem{}
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	writeEvents(t, path, store, clk, 3000, audit.MinRetention, 200)
	old := segments(t, dir)
	// Within the retention nothing goes.
	clk.add(100 * 24 * time.Hour)
	writeEvents(t, path, store, clk, 3000, audit.MinRetention, 1)
	for _, s := range old {
		if _, err := os.Stat(s); err != nil {
			t.Fatalf("%s deleted 100 days after its last line: %v", filepath.Base(s), err)
		}
	}
	clk.add(audit.MinRetention - 100*24*time.Hour + 24*time.Hour)
	// Reopening applies the retention: every old segment but the newest goes.
	writeEvents(t, path, store, clk, 3000, audit.MinRetention, 49)
	left := segments(t, dir)
	// Reopening applied the retention and the new segments' rotations did again: every
	// old segment is gone (the newest closed one is always kept, and is a new one now).
	for _, s := range old {
		if _, err := os.Stat(s); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there past the retention", filepath.Base(s))
		}
	}
	if len(left) == 0 {
		t.Fatal("no segment left; the newest closed one is kept")
	}
	rep := verify(t, path, store)
	if rep.Break != nil || rep.Deleted != len(old) || rep.Segments != len(left) {
		t.Fatalf("VerifyDir = %+v (break %v); want %d deleted by retention, %d kept", rep, rep.Break, len(old), len(left))
	}
	// A segment retention did not delete, removed by hand, is found.
	os.Remove(left[0])
	rep = verify(t, path, store)
	if rep.Break == nil || rep.Break.File != filepath.Base(left[0]) || !strings.Contains(rep.Break.Problem, "retention did not delete it") {
		t.Fatalf("break = %v; want %s missing, not deleted by retention", rep.Break, filepath.Base(left[0]))
	}
}

func TestOpenRefusesRetentionUnderTheFloor(t *testing.T) {
	_, err := audit.Open(audit.Config{Path: filepath.Join(t.TempDir(), "decisions.log"), Key: testKey, Checkpoints: &journaltest.Mem{},
		Retention: audit.MinRetention - time.Hour})
	if err == nil || !strings.Contains(err.Error(), "six months") {
		t.Fatalf("Open with a retention under 184 days = %v; want refused", err)
	}
}

// A crash between the rename of the active file and its checkpoint leaves a segment
// without one: the next Open writes it.
func TestOpenCheckpointsASegmentACrashLeftUnrecorded(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.log")
	store := &journaltest.Mem{}
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	writeEvents(t, path, store, clk, 3000, 0, 100)
	n := len(segments(t, dir))
	if err := os.Rename(path, filepath.Join(dir, fmt.Sprintf("decisions-%06d.log", n+1))); err != nil {
		t.Fatal(err)
	}
	if rep := verify(t, path, store); rep.Break != nil || rep.Pending != 1 {
		t.Fatalf("before reopening: %+v (%v); want one segment pending", rep, rep.Break)
	}
	writeEvents(t, path, store, clk, 3000, 0, 10)
	if rep := verify(t, path, store); rep.Break != nil || rep.Pending != 0 || rep.Lines != 110 {
		t.Fatalf("after reopening: %+v (%v); want every segment checkpointed, 110 lines", rep, rep.Break)
	}
}

func TestQueryAndCountSelectTheGeneratedLines(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.log")
	start := time.Date(2026, 3, 1, 23, 0, 0, 0, time.UTC)
	const n = 500
	writeEvents(t, path, &journaltest.Mem{}, &clock{t: start}, 5000, 0, n)
	// The generator's pattern, counted by hand.
	want := map[string]int64{}
	for i := range n {
		in, d := event(i)
		want["purpose "+string(in.Purpose)]++
		want["route "+routes[i%2]]++
		want["decision "+string(d.Effect)]++
		want["reason "+string(d.Reasons[0])]++
		want["day "+start.Add(time.Duration(i)*time.Minute).Format(time.DateOnly)]++
	}
	st, err := audit.Count(context.Background(), path, audit.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for k, v := range st.ByPurpose {
		got["purpose "+k] = v
	}
	for k, v := range st.ByRoute {
		got["route "+k] = v
	}
	for k, v := range st.ByDecision {
		got["decision "+k] = v
	}
	for k, v := range st.ByReason {
		got["reason "+k] = v
	}
	for k, v := range st.ByDay {
		got["day "+k] = v
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || st.Lines != n || st.Scanned != n {
		t.Fatalf("Count = %v (%d of %d lines); want %v", got, st.Lines, st.Scanned, want)
	}
	subject := audit.Pseudonym(testKey, "canary-qzxw-3")
	for _, tc := range []struct {
		name string
		f    audit.Filter
		want func(i int) bool
	}{
		{"purpose_group", audit.Filter{Purpose: "marketing"}, func(i int) bool { return i%3 != 2 }},
		{"purpose_exact", audit.Filter{Purpose: "marketing.profiling"}, func(i int) bool { return i%3 == 1 }},
		{"purpose_not_a_prefix_of_a_word", audit.Filter{Purpose: "market"}, func(i int) bool { return false }},
		{"deny", audit.Filter{Effect: privguard.Deny}, func(i int) bool { return i%5 == 0 }},
		{"reason", audit.Filter{Reason: "consent.missing"}, func(i int) bool { return i%5 == 0 }},
		{"route", audit.Filter{Route: "POST /send"}, func(i int) bool { return i%2 == 1 }},
		{"subject", audit.Filter{Subject: subject}, func(i int) bool { return i%7 == 3 }},
		{"period", audit.Filter{From: start.Add(time.Hour), To: start.Add(2 * time.Hour)}, func(i int) bool { return i >= 60 && i < 120 }},
		{"all_of_them", audit.Filter{Purpose: "marketing", Effect: privguard.Allow, Route: "GET /profiles/{id}", To: start.Add(100 * time.Minute)},
			func(i int) bool { return i%3 != 2 && i%5 != 0 && i%2 == 0 && i < 100 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			err := audit.Query(path, tc.f, func(l *audit.Line) error {
				got = append(got, string(l.Value.GetStringBytes("decision_id")))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for i := range n {
				if tc.want(i) {
					want = append(want, fmt.Sprintf("d-%d", i))
				}
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("Query(%+v) = %d lines %v; want %d lines %v", tc.f, len(got), got, len(want), want)
			}
			st, err := audit.Count(context.Background(), path, tc.f, 0)
			if err != nil || st.Lines != int64(len(want)) {
				t.Errorf("Count(%+v) = %d lines, %v; want %d", tc.f, st.Lines, err, len(want))
			}
		})
	}
}

func TestCountBoundsDistinctValues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.log")
	writeEvents(t, path, &journaltest.Mem{}, &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, 0, 0, 30)
	st, err := audit.Count(context.Background(), path, audit.Filter{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.ByPurpose) != 3 || st.ByPurpose[audit.OtherKey] != 10 {
		t.Errorf("ByPurpose = %v; want 2 purposes and the third's 10 under %s", st.ByPurpose, audit.OtherKey)
	}
}

// Reading while the writer rotates never reports a break that is not there.
func TestWalkDuringRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.log")
	l, err := audit.Open(audit.Config{Path: path, Key: testKey, Checkpoints: &journaltest.Mem{}, MaxSize: 2000})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			in, d := event(i)
			l.Record("r", &in, &d)
			if i%50 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	for range 30 {
		if err := audit.Walk(path, func(*audit.Line) error { return nil }); err != nil {
			t.Errorf("Walk during writing: %v", err)
			break
		}
	}
	close(stop)
	<-done
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

var testStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// The checkpoints are a journal log: one altered is a break, and serve does not start on it.
func TestAlteredCheckpointIsABreak(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.log")
	store := &journaltest.Mem{}
	writeEvents(t, path, store, &clock{t: testStart}, 3000, 0, 100)
	store.Tamper(audit.CheckpointLog, func(es []journal.Entry) []journal.Entry {
		es[1].Body = []byte(strings.Replace(string(es[1].Body), `"kind":"closed"`, `"kind":"deleted"`, 1))
		return es
	})
	rep := verify(t, path, store)
	if rep.Break == nil || rep.Break.File != "checkpoint log" || !strings.Contains(rep.Break.Problem, "altered") {
		t.Fatalf("VerifyDir with an altered checkpoint = %+v (%v); want a break in the checkpoint log", rep, rep.Break)
	}
	if _, err := audit.Open(audit.Config{Path: path, Key: testKey, Checkpoints: store}); err == nil {
		t.Fatal("Open on an altered checkpoint log succeeded; want it refused")
	}
}
