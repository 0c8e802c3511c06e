package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/audit"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/pgstore"
)

// decisionData makes a data directory as serve leaves it: the data file with the decision
// log's key and checkpoints, and a log of n decisions cut into segments, one a minute from
// 2026-03-01T00:00Z: purpose sms when i is even, profiling when odd; deny
// (consent.missing) when i%3 == 0; subject canary-qzxw-(i%10).
func decisionData(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	db, err := boltstore.Open(filepath.Join(dir, dataFile), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key, err := db.Consent().Secret(context.Background(), "audit.subject-hmac", func() ([]byte, error) { return bytes.Repeat([]byte{7}, 32), nil })
	if err != nil {
		t.Fatal(err)
	}
	var now atomic.Int64 // the writer reads the clock too (checkpoints)
	now.Store(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	l, err := audit.Open(audit.Config{Path: filepath.Join(dir, decisionLogFile), Key: key, Checkpoints: db.Journal(), MaxSize: 4000,
		Now: func() time.Time { return time.Unix(0, now.Load()).UTC() }, Buffer: n + 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		in := privguard.Input{Subject: privguard.SubjectID(fmt.Sprintf("canary-qzxw-%d", i%10)), Purpose: "marketing.communications.sms", Regime: privguard.RegimePIPL}
		if i%2 == 1 {
			in.Purpose = "marketing.profiling"
		}
		d := privguard.Decision{ID: fmt.Sprintf("d-%d", i), Effect: privguard.Allow, Reasons: []privguard.Reason{"allow"}}
		if i%3 == 0 {
			d.Effect, d.Reasons = privguard.Deny, []privguard.Reason{"consent.missing"}
		}
		l.Record("GET /profiles/{id}", &in, &d)
		now.Add(int64(time.Minute))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func runDecisions(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"decisions"}, args...), os.Getenv, &out, &errb)
	return code, out.String(), errb.String()
}

func TestDecisionsCommands(t *testing.T) {
	dir := decisionData(t, 300)
	code, out, errs := runDecisions("verify", "--data", dir)
	if code != 0 || !strings.HasPrefix(out, "OK: 300 lines in ") {
		t.Fatalf("verify = %d %q %q; want OK with 300 lines", code, out, errs)
	}
	// stats: the counts of the generator.
	code, out, errs = runDecisions("stats", "--data", dir, "--format", "json")
	var st audit.Stats
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("stats = %d %q %q (%v)", code, out, errs, err)
	}
	if st.Lines != 300 || st.ByDecision["deny"] != 100 || st.ByDecision["allow"] != 200 || st.ByPurpose["marketing.profiling"] != 150 ||
		st.ByReason["consent.missing"] != 100 || st.ByRoute["GET /profiles/{id}"] != 300 || st.ByDay["2026-03-01"] != 300 {
		t.Errorf("stats = %+v", st)
	}
	if code, out, _ := runDecisions("stats", "--data", dir, "--decision", "deny", "--purpose", "marketing.profiling"); code != 0 ||
		!strings.HasPrefix(out, "50 decisions selected of 300 read\n") || !strings.Contains(out, "consent.missing  50") {
		t.Errorf("stats table of profiling denies = %d\n%s", code, out)
	}
	// query: a subject's decisions, found by its pseudonym, the id never printed.
	code, out, errs = runDecisions("query", "--data", dir, "--subject", "canary-qzxw-4", "--to", "2026-03-01T02:00:00Z")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 12 || strings.Contains(out+errs, "qzxw") {
		t.Fatalf("query --subject = %d, %d lines %q %q; want the 12 lines of i = 4, 14, ..., 114 without the id", code, len(lines), out, errs)
	}
	for i, line := range lines {
		var e audit.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.DecisionID != fmt.Sprintf("d-%d", 4+10*i) {
			t.Errorf("line %d = %s (%v); want d-%d", i, line, err, 4+10*i)
		}
	}
	code, out, _ = runDecisions("query", "--data", dir, "--decision", "deny", "--from", "2026-03-01T04:00:00Z", "--format", "csv")
	if rows := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || !strings.HasPrefix(out, "\ufeff时间 / Time (UTC)") || len(rows) != 1+20 {
		t.Errorf("query --format csv = %d, %d rows; want the heading and the 20 denies of i ≥ 240", code, len(rows))
	}
	// Bad filters are usage errors (2), and a hostile one is not echoed raw.
	for _, args := range [][]string{
		{"query", "--decision", "maybe"}, {"stats", "--from", "yesterday"}, {"query", "--from", "2026-03-02", "--to", "2026-03-01"},
		{"query", "--purpose", "\x1b[2Jmarketing"}, {"stats", "--route", strings.Repeat("r", 301)}, {"query", "--format", "xml"},
		{"stats", "--format", "csv"}, {"stats", "canary-qzxw-5"}, {"verify", "--subject", "x"}, {"query", "--subject", "a\nb"},
	} {
		code, out, errs := runDecisions(append(args, "--data", dir)...)
		if code != 2 || out != "" || strings.Contains(errs, "\x1b") || strings.Contains(errs, "panic") || strings.Contains(errs, "qzxw") {
			t.Errorf("decisions %q = %d %q %q; want exit 2 with a message", args, code, out, errs)
		}
	}
	if code, _, errs := runDecisions("stats", "--data", filepath.Join(dir, "nothing")); code != 2 || !strings.Contains(errs, "no data directory") {
		t.Errorf("stats on no directory = %d %q", code, errs)
	}

	// A segment removed: verify names it and exits 1; stats refuses to count past the break.
	segs, _ := filepath.Glob(filepath.Join(dir, "decisions-*.log"))
	if len(segs) < 3 {
		t.Fatalf("%d segments", len(segs))
	}
	os.Remove(segs[1])
	code, out, _ = runDecisions("verify", "--data", dir)
	if code != 1 || !strings.Contains(out, "FAIL: decision log "+filepath.Base(segs[1])+": missing") || !strings.Contains(out, "where: segment 2") {
		t.Errorf("verify with segment 2 removed = %d %q; want FAIL naming it", code, out)
	}
	if code, out, errs := runDecisions("stats", "--data", dir); code != 1 || out != "" || !strings.Contains(errs, filepath.Base(segs[2])+" line 1") {
		t.Errorf("stats with segment 2 removed = %d %q %q; want exit 1 naming where the link breaks", code, out, errs)
	}
}

// On a shared PostgreSQL store, each replica's checkpoints are told apart: verify checks a
// replica's directory against its own chains, and finds one whose files are gone.
func TestDecisionsVerifyOnPostgres(t *testing.T) {
	dsn := os.Getenv("PRIVGUARD_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("PRIVGUARD_TEST_POSTGRES_DSN is not set (CI sets it; see .ci/run)")
	}
	ctx := context.Background()
	schema := "pgt_dl_" + strings.ToLower(rand.Text()[:10])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, dsn); err == nil {
			c.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
			c.Close(ctx)
		}
	})
	db, err := pgstore.Open(ctx, dsn, pgstore.Options{Schema: schema, Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	key, err := db.Consent().Secret(ctx, "audit.subject-hmac", func() ([]byte, error) { return bytes.Repeat([]byte{3}, 32), nil })
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{}
	for _, replica := range []string{"r1", "r2"} {
		dir := t.TempDir()
		dirs[replica] = dir
		l, err := audit.Open(audit.Config{Path: filepath.Join(dir, decisionLogFile), Key: key, Checkpoints: db.Journal(), MaxSize: 3000, Replica: replica, Buffer: 200})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 100 {
			in := privguard.Input{Subject: privguard.SubjectID(fmt.Sprintf("canary-qzxw-%d", i%4)), Purpose: "marketing.profiling"}
			l.Record("GET /x", &in, &privguard.Decision{ID: fmt.Sprint(replica, "-", i), Effect: privguard.Allow})
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	cfgPath := filepath.Join(t.TempDir(), "privguard.yaml")
	os.WriteFile(cfgPath, []byte("store:\n  postgres: {dsn: \""+dsn+"\", schema: "+schema+"}\n"), 0o600)
	for _, replica := range []string{"r1", "r2"} {
		if code, out, errs := runDecisions("verify", "--config", cfgPath, "--data", dirs[replica], "--replica", replica); code != 0 || !strings.HasPrefix(out, "OK: 100 lines") {
			t.Errorf("verify %s = %d %q %q", replica, code, out, errs)
		}
	}
	// r2's directory checked as r1's: r1's chain is not there.
	if code, out, _ := runDecisions("verify", "--config", cfgPath, "--data", dirs["r2"], "--replica", "r1"); code != 1 || !strings.Contains(out, "not in this directory") {
		t.Errorf("verify r2's directory as r1 = %d %q; want FAIL", code, out)
	}
	// --subject reads the key from the shared store.
	code, out, errs := runDecisions("query", "--config", cfgPath, "--data", dirs["r1"], "--subject", "canary-qzxw-1")
	if n := strings.Count(out, "\n"); code != 0 || n != 25 || strings.Contains(out+errs, "qzxw") {
		t.Errorf("query --subject on postgres = %d, %d lines %q", code, n, errs)
	}
	// r1's files all removed: its checkpoints say they were there.
	files, _ := filepath.Glob(filepath.Join(dirs["r1"], "decisions*.log"))
	for _, f := range files {
		os.Remove(f)
	}
	if code, out, _ := runDecisions("verify", "--config", cfgPath, "--data", dirs["r1"], "--replica", "r1"); code != 1 || !strings.Contains(out, "FAIL") {
		t.Errorf("verify of r1's emptied directory = %d %q; want FAIL", code, out)
	}
}

// Through serve: the sidecar's decisions rotate at decision_log.max_size with their
// checkpoints in the data file, GET /v1/decisions/stats counts them while serve runs, and
// decisions verify and stats check them after it stops.
func TestServeDecisionLogSegments(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.Copy(w, r.Body)
	}))
	defer upstream.Close()
	sc := startSidecar(t, upstream.URL, `decision_log: {max_size: 1MiB, retention: 8784h}
routes:
  - match: "POST /api/campaigns/{id}/send"
    purpose: marketing.communications.sms
    subjects: {json: recipients}
`)
	const n = 4000 // ~350 bytes a line: more than 1 MiB
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf(`"canary-qzxw-%d"`, i))
	}
	resp, err := http.Post(sc.proxy+"/api/campaigns/7/send", "application/json", strings.NewReader(`{"recipients":[`+strings.Join(ids, ",")+`]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	get := func() (int, map[string]any) {
		req, _ := http.NewRequest("GET", sc.admin+"/v1/decisions/stats?route=POST+/api/campaigns/{id}/send", nil)
		req.Header.Set("Authorization", "Bearer "+sc.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, out := get()
		if st == 200 && out["lines"] == float64(n) {
			if d := out["by_reason"].(map[string]any); d["consent.missing"] != float64(n) {
				t.Errorf("by_reason = %v; want all %d consent.missing", d, n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats = %d %v; want %d lines", st, out, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := sc.stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	segs, _ := filepath.Glob(filepath.Join(sc.dir, "decisions-*.log"))
	if len(segs) == 0 {
		t.Fatal("no segment: the decision log did not rotate at max_size")
	}
	code, out, errs := runDecisions("verify", "--data", sc.dir)
	if code != 0 || !strings.HasPrefix(out, fmt.Sprintf("OK: %d lines in %d closed segments", n, len(segs))) {
		t.Fatalf("verify after serve = %d %q %q", code, out, errs)
	}
	raw, _ := os.ReadFile(segs[0])
	if bytes.Contains(raw, []byte("qzxw")) {
		t.Error("a subject id reached a segment")
	}
}
