package adminapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/audit"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/internal/adminapi"
)

// decisionLog writes n decisions, one a minute from start: purpose sms when i is even,
// profiling when odd; deny (consent.missing) when i%4 == 0.
func decisionLog(t *testing.T, start time.Time, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "decisions.log")
	now := start
	l, err := audit.Open(audit.Config{Path: path, Key: []byte("0123456789abcdef0123456789abcdef"), Now: func() time.Time { return now }, Buffer: n + 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		in := privguard.Input{Subject: privguard.SubjectID(fmt.Sprintf("canary-qzxw-%d", i)), Purpose: "marketing.communications.sms", Regime: privguard.RegimePIPL}
		if i%2 == 1 {
			in.Purpose = "marketing.profiling"
		}
		d := privguard.Decision{ID: fmt.Sprintf("d-%d", i), Effect: privguard.Allow, Reasons: []privguard.Reason{"allow"}}
		if i%4 == 0 {
			d.Effect, d.Reasons = privguard.Deny, []privguard.Reason{"consent.missing"}
		}
		l.Record("GET /profiles/{id}", &in, &d)
		now = now.Add(time.Minute)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDecisionStatsAPI(t *testing.T) {
	start := time.Date(2026, 5, 1, 23, 30, 0, 0, time.UTC)
	path := decisionLog(t, start, 100)
	tokens := adminapi.Tokens{}
	for _, role := range []string{"admin", "auditor", "dpo", "app", "importer"} {
		tokens.Add("pg_token-for-the-"+role+"-role", adminapi.Principal{Name: role, Roles: []string{role}})
	}
	api, err := adminapi.New(adminapi.Config{Ledger: consenttest.Open(t, "", consent.Config{}), Tokens: tokens, DecisionLog: path})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	get := func(role, query string) (int, string, map[string]any) {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/decisions/stats"+query, nil)
		req.Header.Set("Authorization", "Bearer pg_token-for-the-"+role+"-role")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out map[string]any
		json.Unmarshal(b, &out)
		return resp.StatusCode, resp.Header.Get("Content-Type"), out
	}
	// The auditor and the dpo read it; an app or an importer may not.
	for role, want := range map[string]int{"auditor": 200, "dpo": 200, "admin": 200, "app": 403, "importer": 403} {
		if st, _, out := get(role, ""); st != want {
			t.Errorf("GET as %s = %d %v; want %d", role, st, out, want)
		}
	}
	st, _, out := get("auditor", "")
	if st != 200 || out["lines"] != 100.0 {
		t.Fatalf("stats = %d %v", st, out)
	}
	want := map[string]map[string]any{
		"by_decision": {"allow": 75.0, "deny": 25.0},
		"by_purpose":  {"marketing.communications.sms": 50.0, "marketing.profiling": 50.0},
		"by_reason":   {"allow": 75.0, "consent.missing": 25.0},
		"by_route":    {"GET /profiles/{id}": 100.0},
		"by_day":      {"2026-05-01": 30.0, "2026-05-02": 70.0},
	}
	for k, w := range want {
		if fmt.Sprint(out[k]) != fmt.Sprint(w) {
			t.Errorf("%s = %v; want %v", k, out[k], w)
		}
	}
	// Filters: deny on the second day, for profiling (none: every deny is an even i).
	if _, _, out := get("auditor", "?decision=deny&from=2026-05-02"); out["lines"] != 17.0 {
		t.Errorf("denies from 2026-05-02 = %v; want 17 (i = 32, 36, ..., 96)", out["lines"])
	}
	if _, _, out := get("auditor", "?purpose=marketing.profiling&decision=deny"); out["lines"] != 0.0 {
		t.Errorf("profiling denies = %v; want 0", out["lines"])
	}
	if _, _, out := get("auditor", "?purpose=marketing&reason=allow&route=GET+/profiles/{id}&to=2026-05-02T00:00:00Z"); out["lines"] != 22.0 {
		t.Errorf("allows before midnight = %v; want 22", out["lines"])
	}
	// Bad queries are problems with a stable type, never a count.
	for _, q := range []string{"?subject=canary-qzxw-1", "?limit=5", "?decision=maybe", "?from=yesterday", "?from=2026-05-02&to=2026-05-01",
		"?purpose=" + strings.Repeat("a", 101), "?route=%00", "?decision=deny&decision=allow"} {
		st, ct, out := get("auditor", q)
		typ := fmt.Sprint(out["type"])
		if st != 400 || ct != "application/problem+json" || !(strings.HasSuffix(typ, ":validation") || strings.HasSuffix(typ, ":ambiguous-request")) {
			t.Errorf("GET %s = %d %s %v; want a 400 validation problem", q, st, ct, out)
		}
	}
	// A broken chain is a problem that says where, and names nobody.
	raw, _ := os.ReadFile(path)
	lines := strings.Split(string(raw), "\n")
	lines = append(lines[:40], lines[41:]...)
	os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600)
	st, _, out = get("auditor", "")
	b, _ := json.Marshal(out)
	if st != 500 || !strings.HasSuffix(fmt.Sprint(out["type"]), "chain-broken") || !strings.Contains(fmt.Sprint(out["detail"]), "line 41") || strings.Contains(string(b), "qzxw") {
		t.Errorf("stats of a log with line 41 removed = %d %s; want a chain-broken problem naming line 41", st, b)
	}
}
