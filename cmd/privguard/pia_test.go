package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/pgstore"
)

// piaYAML declares two recipients and three assessments: pia-share current, pia-abroad
// with its review date today (expired), pia-rejected.
func piaYAML() string {
	today := time.Now().In(time.FixedZone("CST", 8*3600))
	d := func(days int) string { return today.AddDate(0, 0, days).Format(time.DateOnly) }
	return `dsar:
  recipients:
    - {name: acme-sms, country: CN, role: processor}
    - {name: us-mailer, country: US, role: processor, transfer: {mechanism: standard_contract, ref: "CAC-SC-2026-001"}}
assessments:
  - id: pia-share
    title: Phone numbers to Acme for SMS delivery
    purposes: [third_party.sharing]
    categories: [user.contact.phone_number]
    recipients: [acme-sms]
    date: ` + d(-30) + `
    review: ` + d(300) + `
    conclusion: approved_with_measures
    legitimacy: Delivery of the SMS the customer asked for; no other way to send them.
    impact: A leak exposes phone numbers.
    measures: DPA with audit rights; numbers deleted after delivery.
  - id: pia-abroad
    title: Email delivery through a US mailer
    purposes: [third_party.sharing]
    categories: [user.contact.email]
    recipients: [us-mailer]
    date: ` + d(-400) + `
    review: ` + d(0) + `
    conclusion: approved
    legitimacy: "=cmd|' /C calc'!A0"
    impact: Transfer to the US.
    measures: Standard contract filed.
  - id: pia-rejected
    purposes: [marketing, third_party]
    date: ` + d(-10) + `
    review: ` + d(100) + `
    conclusion: rejected
    legitimacy: l
    impact: i
    measures: m
`
}

// piaConfig writes a configuration of piaYAML with tokens for every role, and extra.
func piaConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	hash := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	text := `admin:
  tokens:
    - {name: ops, sha256: ` + hash("pg_admin-token-for-the-test") + `, roles: [admin]}
    - {name: crm, sha256: ` + hash("pg_app-token-for-the-test") + `}
    - {name: audit-firm, sha256: ` + hash("pg_auditor-token-for-the-test") + `, roles: [auditor]}
    - {name: dpo, sha256: ` + hash("pg_dpo-token-for-the-test") + `, roles: [dpo]}
` + piaYAML() + extra
	path := filepath.Join(dir, "privguard.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "admin.token"), []byte("pg_admin-token-for-the-test\n"), 0o600) // read by startServe
	return path
}

func getRegister(t *testing.T, url, token, query string) (int, map[string]any) {
	t.Helper()
	return callJSON(t, url, token, "GET", "/v1/assessments"+query, "")
}

func statuses(t *testing.T, reg map[string]any) map[string]string {
	t.Helper()
	out := map[string]string{}
	list, _ := reg["assessments"].([]any)
	for _, x := range list {
		e := x.(map[string]any)
		key := e["id"].(string)
		if e["configured"] != true {
			key += " (" + e["version"].(string)[:8] + ")"
		}
		out[key] = e["status"].(string)
	}
	return out
}

// proves AUD-03 (impact assessments, through serve): serve records the assessments it
// enforces; one later dropped from the configuration stays in the register (removed, with
// its text), a changed one keeps its earlier version (superseded). The register is the
// auditor's and the DPO's to read, not an app's, and changes nothing.
func TestAssessmentRegisterThroughServe(t *testing.T) {
	dir := t.TempDir()
	cfg := piaConfig(t, dir, "")
	url, admin, stop, logs := startServe(t, dir, "--config", cfg)
	st, reg := getRegister(t, url, "pg_auditor-token-for-the-test", "")
	if st != http.StatusOK {
		t.Fatalf("auditor: %d %v", st, reg)
	}
	want := map[string]string{"pia-share": "current", "pia-abroad": "expired", "pia-rejected": "rejected"}
	if got := statuses(t, reg); !maps.Equal(got, want) {
		t.Errorf("register %v; want %v", got, want)
	}
	if log, _ := reg["log"].(map[string]any); log["verified"] != true || log["entries"] != float64(3) {
		t.Errorf("log %v; want 3 verified entries", log)
	}
	if !strings.Contains(logs.String(), "impact assessment past its review date") {
		t.Errorf("serve did not warn about the expired assessment:\n%s", logs.String())
	}
	for _, tc := range []struct {
		token, method, query string
		want                 int
	}{
		{"pg_app-token-for-the-test", "GET", "", http.StatusForbidden},
		{"pg_dpo-token-for-the-test", "GET", "", http.StatusOK},
		{admin, "GET", "?status=expired,rejected", http.StatusOK},
		{"pg_auditor-token-for-the-test", "POST", "", http.StatusMethodNotAllowed},
		{"pg_auditor-token-for-the-test", "GET", "?status=valid", http.StatusBadRequest},
		{"pg_auditor-token-for-the-test", "GET", "?format=xml", http.StatusBadRequest},
		{"pg_auditor-token-for-the-test", "GET", "?status=current&status=expired", http.StatusBadRequest},
		{"pg_auditor-token-for-the-test", "GET", "?subject=c-1", http.StatusBadRequest},
	} {
		req, _ := http.NewRequest(tc.method, url+"/v1/assessments"+tc.query, nil)
		req.Header.Set("Authorization", "Bearer "+tc.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s as %s: %d %s; want %d", tc.method, tc.query, tc.token, resp.StatusCode, body, tc.want)
		}
		if tc.want >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: %s is not a problem", tc.method, tc.query, resp.Header.Get("Content-Type"))
		}
	}
	if _, reg := getRegister(t, url, admin, "?status=expired,rejected"); len(statuses(t, reg)) != 2 {
		t.Errorf("filtered register: %v", statuses(t, reg))
	}
	// The CSV, defused.
	req, _ := http.NewRequest("GET", url+"/v1/assessments?format=csv", nil)
	req.Header.Set("Authorization", "Bearer pg_auditor-token-for-the-test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil || len(rows) != 4 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("CSV: %v %q", err, rows)
	}
	var cells []string
	for _, r := range rows[1:] {
		cells = append(cells, r...)
	}
	if !slices.Contains(cells, "'=cmd|' /C calc'!A0") {
		t.Errorf("the formula was not defused: %q", rows)
	}
	if c := stop(); c != 0 {
		t.Fatalf("serve exited %d", c)
	}

	// The file drops pia-rejected and changes pia-share; the register keeps both.
	text, _ := os.ReadFile(cfg)
	s := string(text)
	s = s[:strings.Index(s, "  - id: pia-rejected")]
	s = strings.Replace(s, "numbers deleted after delivery.", "numbers deleted within 24 hours of delivery.", 1)
	os.WriteFile(cfg, []byte(s), 0o600)
	url, _, stop, logs = startServe(t, dir, "--config", cfg)
	_, reg = getRegister(t, url, "pg_auditor-token-for-the-test", "")
	got := statuses(t, reg)
	if got["pia-share"] != "current" || len(got) != 4 {
		t.Errorf("register after the change: %v; want pia-share current, its earlier version superseded, pia-rejected removed", got)
	}
	var removed, superseded map[string]any
	for _, x := range reg["assessments"].([]any) {
		e := x.(map[string]any)
		switch {
		case e["status"] == "removed":
			removed = e
		case e["status"] == "superseded":
			superseded = e
		}
	}
	if removed == nil || removed["id"] != "pia-rejected" || removed["legitimacy"] != "l" || removed["ended_at"] == nil {
		t.Errorf("removed entry %v; want pia-rejected with its text and when it ended", removed)
	}
	if superseded == nil || superseded["id"] != "pia-share" || !strings.Contains(superseded["measures"].(string), "after delivery.") {
		t.Errorf("superseded entry %v; want the earlier pia-share", superseded)
	}
	if !strings.Contains(logs.String(), `"action":"removed"`) {
		t.Errorf("serve did not log the removal:\n%s", logs.String())
	}
	stop()

	// privguard pia list reads the same register from the data file, serve stopped.
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"pia", "list", "--config", cfg, "--data", dir}, os.Getenv, &out, &errb); code != 0 {
		t.Fatalf("pia list: %d %s", code, errb.String())
	}
	for _, w := range []string{"pia-share", "superseded", "removed", "expired", "log assessments: 5 entries", "verified"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("pia list lacks %q:\n%s", w, out.String())
		}
	}
	file := filepath.Join(dir, "register.json")
	out.Reset()
	if code := run(context.Background(), []string{"pia", "list", "--config", cfg, "--data", dir, "--format", "json", "--status", "removed", "--out", file}, os.Getenv, &out, &errb); code != 0 {
		t.Fatalf("pia list --out: %d %s", code, errb.String())
	}
	var fromFile map[string]any
	b, _ := os.ReadFile(file)
	if err := json.Unmarshal(b, &fromFile); err != nil || len(statuses(t, fromFile)) != 1 || out.Len() != 0 {
		t.Errorf("pia list --out wrote %s (stdout %q): %v", b, out.String(), err)
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
		t.Errorf("export mode %v; want 0600", st.Mode().Perm())
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".register.json.*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
	// Nothing new to record; a bad flag is a usage error.
	out.Reset()
	if code := run(context.Background(), []string{"pia", "record", "--config", cfg, "--data", dir}, os.Getenv, &out, &errb); code != 0 || !strings.Contains(out.String(), "0 recorded") {
		t.Errorf("pia record: %d %s %s", code, out.String(), errb.String())
	}
	if code := run(context.Background(), []string{"pia", "list", "--config", cfg, "--status", "valid"}, os.Getenv, &out, &errb); code != 2 {
		t.Errorf("pia list --status valid: exit %d; want 2", code)
	}
}

// proves AUD-04 (through the sidecar): providing data to a recipient is served while a
// current assessment covers it (the decision log naming it), and refused once its review
// date has come, for a recipient it does not cover, and on a route pinned to a rejected
// assessment.
func TestSidecarImpactAssessmentGate(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"sent":true}`))
	}))
	defer upstream.Close()
	sc := startSidecar(t, upstream.URL, `regime: pipl
routes:
  - {match: "POST /api/sms/{id}", purpose: third_party.sharing, recipient: acme-sms, subject: {path: id}}
  - {match: "POST /api/mail/{id}", purpose: third_party.sharing, recipient: us-mailer, subject: {path: id}}
  - {match: "POST /api/partner/{id}", purpose: third_party.sharing, recipient: partner-x, subject: {path: id}}
  - {match: "POST /api/pinned/{id}", purpose: third_party.sharing, recipient: acme-sms, subject: {path: id}, pia: pia-rejected}
`+piaYAML())
	if st := post(t, sc.admin, sc.token, "/v1/notices", `{"id":"n","version":1,"language":"en","text":"t","purposes":["third_party.sharing"],
		"controller":{"name":"E","contact":"p@example.com"},"retention":"1y","rights_channels":["x"]}`); st != http.StatusCreated {
		t.Fatalf("notice: %d", st)
	}
	for _, rcp := range []string{"acme-sms", "us-mailer", "partner-x"} {
		body := `{"subject":"c-1","purpose":"third_party.sharing","action":"grant","regime":"pipl","notice":{"id":"n","version":1},
			"channel":"app","method":"explicit","separate":true,
			"recipient":{"name":"` + rcp + `","contact":"dpo@` + rcp + `.example","purpose":"delivery","method":"API","categories":["user.contact.phone_number"]}}`
		if st := post(t, sc.admin, sc.token, "/v1/consents", body); st != http.StatusCreated {
			t.Fatalf("grant for %s: %d", rcp, st)
		}
	}
	for _, tc := range []struct {
		path   string
		status int
		reason string
	}{
		{"/api/sms/c-1", http.StatusOK, ""},
		{"/api/mail/c-1", http.StatusForbidden, "pia.expired"},
		{"/api/partner/c-1", http.StatusForbidden, "pia.not_covering"},
		{"/api/pinned/c-1", http.StatusForbidden, "pia.required"},
	} {
		resp, err := http.Post(sc.proxy+tc.path, "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		var p struct{ Reasons []string }
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		json.Unmarshal(body, &p)
		if resp.StatusCode != tc.status || (tc.reason != "" && !slices.Equal(p.Reasons, []string{tc.reason})) {
			t.Errorf("POST %s: %d %s; want %d %s", tc.path, resp.StatusCode, body, tc.status, tc.reason)
		}
	}
	if c := sc.stop(); c != 0 {
		t.Fatalf("serve exited %d", c)
	}
	raw, err := os.ReadFile(filepath.Join(sc.dir, "decisions.log"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		found = found || (strings.Contains(line, `"route":"POST /api/sms/{id}"`) && strings.Contains(line, `"effect":"allow"`) && strings.Contains(line, `"assessment":"pia-share"`))
		if strings.Contains(line, "c-1") {
			t.Errorf("a decision line names the subject: %s", line)
		}
	}
	if !found {
		t.Errorf("no decision line names the assessment the allowed provision rested on:\n%s", raw)
	}
}

// On a shared PostgreSQL store, replicas starting together record each version once, and
// privguard pia list reads the register while they run.
func TestAssessmentRegisterOnPostgres(t *testing.T) {
	dsn := os.Getenv("PRIVGUARD_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("PRIVGUARD_TEST_POSTGRES_DSN is not set (CI sets it; see .ci/run)")
	}
	ctx := context.Background()
	schema := "pgt_pia_" + strings.ToLower(rand.Text()[:10])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, dsn); err == nil {
			c.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
			c.Close(ctx)
		}
	})
	dir := t.TempDir()
	path := filepath.Join(dir, "privguard.yaml")
	os.WriteFile(path, []byte("store:\n  postgres: {dsn: \""+dsn+"\", schema: "+schema+"}\n"+piaYAML()), 0o600)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			db, err := pgstore.Open(ctx, dsn, pgstore.Options{Schema: schema, Migrate: true})
			if err != nil {
				t.Error(err)
				return
			}
			defer db.Close()
			c := *cfg
			c.Replica = fmt.Sprintf("r%d", i)
			reg, err := newRegistry(&c, db.Journal())
			if err == nil {
				_, err = reg.Record(ctx)
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var out, errb bytes.Buffer
	if code := run(ctx, []string{"pia", "list", "--config", path, "--format", "json"}, os.Getenv, &out, &errb); code != 0 {
		t.Fatalf("pia list: %d %s", code, errb.String())
	}
	var reg map[string]any
	if err := json.Unmarshal(out.Bytes(), &reg); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"pia-share": "current", "pia-abroad": "expired", "pia-rejected": "rejected"}
	if got := statuses(t, reg); !maps.Equal(got, want) {
		t.Errorf("register on PostgreSQL: %v; want each version once: %v", got, want)
	}
	if log := reg["log"].(map[string]any); log["verified"] != true {
		t.Errorf("log %v", log)
	}
}
