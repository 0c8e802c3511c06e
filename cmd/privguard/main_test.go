package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// startServe runs `privguard serve` in-process on a free port and returns its base URL, the
// admin token and a stop function that cancels it and returns the exit code. extra flags
// (such as --config FILE) are passed on to serve.
func startServe(t *testing.T, dir string, extra ...string) (url, token string, stop func() int, logs *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	logs = &syncBuffer{}
	code := make(chan int, 1)
	go func() {
		args := append([]string{"serve", "--data", dir, "--admin-listen", "127.0.0.1:0"}, extra...)
		code <- run(ctx, args, func(string) string { return "" }, pw, logs)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("serve printed no address (%v); logs:\n%s", err, logs.String())
	}
	go io.Copy(io.Discard, pr)
	url = strings.TrimSpace(line[strings.Index(line, "http://"):])
	b, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(dir, "admin.token"))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("admin.token mode = %v; want 0600", st.Mode().Perm())
	}
	stop = func() int {
		cancel()
		select {
		case c := <-code:
			return c
		case <-time.After(20 * time.Second):
			t.Fatal("serve did not stop within 20s of cancellation")
			return -1
		}
	}
	return url, strings.TrimSpace(string(b)), stop, logs
}

// callJSON sends an authenticated JSON request and decodes the JSON answer.
func callJSON(t *testing.T, url, token, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func post(t *testing.T, url, token, path, body string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestServeVerifyAndShutdown(t *testing.T) {
	dir := t.TempDir()
	url, token, stop, logs := startServe(t, dir)
	notice := `{"id":"marketing","version":1,"language":"en","text":"We send offers by SMS.","purposes":["marketing"],
		"controller":{"name":"Example","contact":"privacy@example.com"},"retention":"13 months","rights_channels":["https://example.com/p"]}`
	if c := post(t, url, token, "/v1/notices", notice); c != http.StatusCreated {
		t.Fatalf("notice = %d", c)
	}
	for i := range 20 {
		g := `{"subject":"cust-` + string(rune('a'+i)) + `","purpose":"marketing.communications.sms","action":"grant","regime":"gdpr",
			"notice":{"id":"marketing","version":1},"channel":"web","method":"explicit"}`
		if c := post(t, url, token, "/v1/consents", g); c != http.StatusCreated {
			t.Fatalf("grant %d = %d", i, c)
		}
	}
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d after SIGINT-equivalent cancellation; want 0. logs:\n%s", code, logs.String())
	}
	if strings.Contains(logs.String(), token) {
		t.Error("the admin token was logged")
	}
	if !strings.Contains(logs.String(), "admin.token") {
		t.Error("the token file's path was not logged")
	}

	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"consent", "verify", "--data", dir}, os.Getenv, &out, &errb); code != 0 {
		t.Fatalf("verify = %d: %s %s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "OK: 20 records, 1 notices") {
		t.Errorf("verify output = %q", out.String())
	}

	// Serve again on the same data: the state and the token survive.
	url, token2, stop, _ := startServe(t, dir)
	if token2 != token {
		t.Error("the admin token changed across restarts")
	}
	req, _ := http.NewRequest("GET", url+"/v1/subjects/cust-a/consents", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"allowed":true`) {
		t.Errorf("after restart: %s", body)
	}
	stop()
}

func TestCommandLine(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--help"}, 0, "Commands:"},
		{[]string{"version"}, 0, "privguard"},
		{nil, 2, "Usage:"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"consent"}, 2, "consent verify"},
		{[]string{"consent", "verify", "--data", "/nonexistent/dir"}, 2, "no data file at /nonexistent/dir/privguard.db"},
		{[]string{"serve", "--help"}, 0, "Usage: privguard serve"},
		{[]string{"serve", "--log-level", "loud"}, 2, "--log-level"},
		{[]string{"serve", "--config", "/nonexistent.yaml"}, 2, "config"},
	}
	for _, tc := range cases {
		var out, errb bytes.Buffer
		code := run(context.Background(), tc.args, os.Getenv, &out, &errb)
		if code != tc.code || !strings.Contains(out.String()+errb.String(), tc.want) {
			t.Errorf("privguard %v = %d %q; want %d containing %q", tc.args, code, out.String()+errb.String(), tc.code, tc.want)
		}
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "privguard.yaml")
	os.WriteFile(cfg, []byte("consent:\n  purposes:\n    analytics.reporting:\n      legal_bases: {pipl: [legitimate_interest]}\n"), 0o600)
	var out, errb bytes.Buffer
	// proves CON-01: configuration with legitimate interests for a PIPL-scoped purpose is rejected.
	code := run(context.Background(), []string{"serve", "--config", cfg, "--data", dir}, os.Getenv, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "legitimate_interest") {
		t.Errorf("serve with LI under PIPL = %d %q; want 2 naming legitimate_interest", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "privguard.db")); err == nil {
		t.Error("a refused configuration still created the data file")
	}
}

func TestPolicyTestCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"policy", "test", "../../policy/bundle"}, os.Getenv, &out, &errb); code != 0 {
		t.Fatalf("policy test on the default bundle = %d: %s %s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), " passed, 0 failed") {
		t.Errorf("output = %q", out.String())
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p.rego"), []byte("package x\nallow := false\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "p_test.rego"), []byte("package x\ntest_allow if data.x.allow\n"), 0o644)
	out.Reset()
	if code := run(context.Background(), []string{"policy", "test", dir}, os.Getenv, &out, &errb); code != 1 || !strings.Contains(out.String(), "FAIL data.x.test_allow") {
		t.Errorf("failing test = %d %q; want 1 naming the test", code, out.String())
	}
	os.WriteFile(filepath.Join(dir, "p.rego"), []byte("package x\nallow := {\n"), 0o644)
	if code := run(context.Background(), []string{"policy", "test", dir}, os.Getenv, &out, &errb); code != 2 {
		t.Errorf("broken policy = %d; want 2", code)
	}
}

func TestServeRefusesUnknownTokenRoles(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "privguard.yaml")
	os.WriteFile(cfg, []byte("admin:\n  tokens:\n    - {name: dpo-office, sha256: "+strings.Repeat("ab", 32)+", roles: [dpoo]}\n"), 0o600)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"serve", "--config", cfg, "--data", dir}, os.Getenv, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), `role \"dpoo\" is not in the role policy`) || !strings.Contains(errb.String(), "dpo") {
		t.Errorf("serve with a misspelt role = %d %q; want 2 naming the role and the known ones", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "privguard.db")); err == nil {
		t.Error("a refused configuration still created the data file")
	}
}

func TestServeWarnsRoutesWithoutListen(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "privguard.yaml")
	os.WriteFile(cfg, []byte("routes:\n  - {match: \"GET /api/profiles/{id}\", purpose: personalize.recommendation, subject: {path: id}}\n"+
		"upstream_transport: {max_idle_conns_per_host: 8}\npolicy: {memo_size: -1}\n"), 0o600)
	_, _, stop, logs := startServe(t, dir, "--config", cfg)
	defer stop()
	if !strings.Contains(logs.String(), "routes, policy.memo_*, upstream_transport set, but used by the sidecar only") {
		t.Errorf("serve with routes, a memo size and a transport and no listen did not name them:\n%s", logs.String())
	}
}

func TestDSARCommandWithoutServe(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"dsar", "list", "--admin", "http://" + addr}, func(k string) string {
		if k == "PRIVGUARD_ADMIN_TOKEN" {
			return "pg_x"
		}
		return ""
	}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "no privguard serve answers at http://"+addr) {
		t.Errorf("dsar list with no serve = %d %q; want a hint to start serve", code, errb.String())
	}
}
