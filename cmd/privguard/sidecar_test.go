package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/privguard/privguard/audit"
	"github.com/privguard/privguard/internal/config"
)

func TestSidecarEnforcesRoutes(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasPrefix(r.URL.Path, "/api/profiles/"):
			w.Write([]byte(`{"id":"c-1","email":"li.lei@example.com","history":["p1"]}`))
		case strings.HasPrefix(r.URL.Path, "/api/campaigns/"):
			io.Copy(w, r.Body) // echo what the upstream received
		case r.URL.Path == "/xff":
			w.Write([]byte(r.Header.Get("X-Forwarded-For")))
		default:
			w.Write([]byte(`{"health":"ok"}`))
		}
	}))
	defer upstream.Close()
	sc := startSidecar(t, upstream.URL, `regime: pipl
routes:
  - {match: "GET /health", pass: true}
  - {match: "GET /xff", pass: true}
  - match: "GET /api/profiles/{id}"
    purpose: personalize.recommendation
    subject: {path: id}
    fields: {email: user.contact.email, history: user.behavior.browsing_history}
  - match: "POST /api/campaigns/{id}/send"
    purpose: marketing.communications.sms
    subjects: {json: recipients}
`)
	proxy, admin, tok, dir := sc.proxy, sc.admin, sc.token, sc.dir
	adminPost := func(path, body string) {
		req, _ := http.NewRequest("POST", admin+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode >= 300 {
			t.Fatalf("admin %s: %v %v", path, err, resp.Status)
		}
		resp.Body.Close()
	}
	get := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, proxy+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	if code, _ := get("GET", "/api/profiles/c-1", ""); code != http.StatusForbidden {
		t.Errorf("profile without consent through the sidecar = %d; want 403", code)
	}
	if code, body := get("GET", "/health", ""); code != http.StatusOK || !strings.Contains(body, "ok") {
		t.Errorf("pass route = %d %s; want it passed through", code, body)
	}
	if code, _ := get("GET", "/export", ""); code != http.StatusForbidden {
		t.Errorf("undeclared path = %d; want 403", code)
	}
	// An untrusted client's X-Forwarded-For is not passed on.
	xreq, _ := http.NewRequest("GET", proxy+"/xff", nil)
	xreq.Header.Set("X-Forwarded-For", "6.6.6.6")
	if resp, err := http.DefaultClient.Do(xreq); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "127.0.0.1" {
			t.Errorf("upstream saw X-Forwarded-For %q; want only the client's own address", b)
		}
	}
	adminPost("/v1/notices", `{"id":"n","version":1,"language":"en","text":"t","purposes":["marketing","personalize"],
		"controller":{"name":"E","contact":"p@example.com"},"retention":"1y","rights_channels":["x"]}`)
	for _, g := range []string{`{"subject":"c-1","purpose":"personalize.recommendation"`, `{"subject":"c-1","purpose":"marketing.communications.sms"`} {
		adminPost("/v1/consents", g+`,"action":"grant","regime":"pipl","notice":{"id":"n","version":1},"channel":"app","method":"explicit"}`)
	}
	code, body := get("GET", "/api/profiles/c-1", "")
	if code != http.StatusOK || strings.Contains(body, "example.com") || !strings.Contains(body, "p1") {
		t.Errorf("profile with consent = %d %s; want 200 with the email dropped", code, body)
	}
	code, body = get("POST", "/api/campaigns/3/send", `{"recipients":["c-1","c-2"]}`)
	var echoed struct{ Recipients []string }
	json.Unmarshal([]byte(body), &echoed)
	if code != http.StatusOK || len(echoed.Recipients) != 1 || echoed.Recipients[0] != "c-1" {
		t.Errorf("campaign through the sidecar = %d %s; want the upstream to see c-1 only", code, body)
	}
	req, _ := http.NewRequest("GET", admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("metrics: %v %v", err, resp)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, m := range []string{`privguard_decisions_total{effect="deny",reason="consent.missing",route="GET /api/profiles/{id}"} 1`,
			"privguard_consent_records 2", "privguard_decision_log_dropped_total 0"} {
			if !strings.Contains(string(b), m) {
				t.Errorf("metrics lack %q", m)
			}
		}
	}
	// proves DSR-10 (request path): a restriction request, made with the identifier only and
	// no identity check, stops every non-storage purpose on the subject's next request.
	adminPost("/v1/requests", `{"type":"restriction","subject":"c-1"}`)
	restricted := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !restricted; time.Sleep(100 * time.Millisecond) {
		code, body := get("GET", "/api/profiles/c-1", "")
		restricted = code == http.StatusForbidden && strings.Contains(body, "restricted")
	}
	if !restricted {
		t.Error("the profile is still served after a restriction request")
	}
	if c := sc.stop(); c != 0 {
		t.Errorf("serve exited %d", c)
	}
	// proves AUD-02: every decision is in the chained decision log, under a pseudonym.
	raw, err := os.ReadFile(filepath.Join(dir, "decisions.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(raw), "\n"); n < 4 || !strings.Contains(string(raw), `"subject":"hs_`) {
		t.Errorf("decision log has %d lines: %s", n, raw)
	}
	if strings.Contains(string(raw), `c-1`) || strings.Contains(string(raw), `c-2`) {
		t.Error("a subject id reached the decision log")
	}
	if _, bad, err := audit.Verify(strings.NewReader(string(raw))); bad != 0 || err != nil {
		t.Errorf("decision log chain breaks at line %d (%v)", bad, err)
	}
}

// TestSidecarExampleConfig runs serve with examples/sidecar/privguard.yaml (addresses and
// data directory replaced) in front of a stand-in upstream.
func TestSidecarExampleConfig(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"u-1","email":"li.lei@example.com","phone":"13812345678","history":["sku-1"]}`))
	}))
	defer upstream.Close()
	raw, err := os.ReadFile("../../examples/sidecar/privguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	text := string(raw)
	for old, new := range map[string]string{
		"listen: 127.0.0.1:8080": "listen: 127.0.0.1:0", "admin_listen: 127.0.0.1:8081": "admin_listen: 127.0.0.1:0",
		"upstream: http://127.0.0.1:9000": "upstream: " + upstream.URL, "data_dir: ./privguard-data": "data_dir: " + dir,
	} {
		if !strings.Contains(text, old) {
			t.Fatalf("the example config no longer has %q", old)
		}
		text = strings.Replace(text, old, new, 1)
	}
	cfg := filepath.Join(dir, "privguard.yaml")
	os.WriteFile(cfg, []byte(text), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", cfg}, os.Getenv, pw, io.Discard); pw.Close() }()
	sc := bufio.NewScanner(pr)
	proxy := ""
	for proxy == "" && sc.Scan() {
		if line := sc.Text(); strings.Contains(line, "sidecar on ") {
			proxy = strings.Fields(line[strings.Index(line, "http://"):])[0]
		}
	}
	go io.Copy(io.Discard, pr)
	if proxy == "" {
		t.Fatal("the example config did not start the sidecar")
	}
	resp, err := http.Get(proxy + "/api/profiles/u-1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("profile without consent via the example sidecar = %d; want 403", resp.StatusCode)
	}
	cancel()
	<-done
}

func TestFromTrusted(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for addr, want := range map[string]bool{"10.1.2.3:443": true, "[::1]:80": true, "192.168.1.1:80": false,
		"[::ffff:10.0.0.1]:80": true, "garbage": false} {
		if got := fromTrusted(addr, trusted); got != want {
			t.Errorf("fromTrusted(%s) = %v; want %v", addr, got, want)
		}
	}
}

// The sidecar keeps its upstream connections: 16 clients in parallel open about 16
// connections to the upstream, not one per request (net/http's default transport keeps 2
// idle per host, so most of such a load dials anew).
func TestSidecarReusesUpstreamConnections(t *testing.T) {
	var conns atomic.Int64
	upstream := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	}))
	upstream.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	upstream.Start()
	t.Cleanup(upstream.Close) // after the sidecar's cleanup, which closes its connections
	sc := startSidecar(t, upstream.URL, "routes:\n  - {match: \"GET /health\", pass: true}\n")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	const clients, each = 16, 50
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for range each {
				resp, err := client.Get(sc.proxy + "/health")
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if n := conns.Load(); n > 2*clients {
		t.Errorf("%d requests opened %d upstream connections; want at most %d", clients*each, n, 2*clients)
	}
}

func TestUpstreamTransport(t *testing.T) {
	tr, err := upstreamTransport(config.Transport{})
	if err != nil {
		t.Fatal(err)
	}
	if tr.MaxIdleConnsPerHost != 256 || tr.IdleConnTimeout != 90*time.Second || tr.TLSHandshakeTimeout != 5*time.Second || tr.ResponseHeaderTimeout != 0 {
		t.Errorf("defaults = %d idle per host, %v idle timeout, %v handshake, %v header timeout", tr.MaxIdleConnsPerHost, tr.IdleConnTimeout, tr.TLSHandshakeTimeout, tr.ResponseHeaderTimeout)
	}
	tr, err = upstreamTransport(config.Transport{MaxIdleConnsPerHost: 8, MaxConnsPerHost: 16, ResponseHeaderTimeout: &config.Duration{Duration: time.Second}})
	if err != nil || tr.MaxIdleConnsPerHost != 8 || tr.MaxConnsPerHost != 16 || tr.ResponseHeaderTimeout != time.Second {
		t.Errorf("configured = %v %+v", err, tr)
	}
	if _, err := upstreamTransport(config.Transport{DialTimeout: &config.Duration{Duration: -time.Second}}); err == nil || !strings.Contains(err.Error(), "dial_timeout") {
		t.Errorf("a negative dial_timeout = %v; want it refused by name", err)
	}
}
