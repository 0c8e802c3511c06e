package middleware_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/middleware"
	"github.com/privguard/privguard/policy"
)

// FuzzRequest sends hostile requests (paths, bodies, subject and purpose headers) through
// the middleware: no panic, never a 5xx but the documented 503/502, problems for errors.
func FuzzRequest(f *testing.F) {
	for _, s := range []struct{ method, path, body, hdr string }{
		{"GET", "/api/profiles/c-1", "", "c-1"},
		{"POST", "/api/campaigns/1/send", `{"recipients":["c-1","c-2"]}`, ""},
		{"POST", "/api/campaigns/1/send", `{"recipients":[` + strings.Repeat(`[`, 100) + `]}`, ""},
		{"POST", "/api/messages", `{"customer":"c-1"}`, "marketing.communications.push"},
		{"GET", "/api/ads", "", "\x00\xff"},
		{"GET", "/api/profiles/%2e%2e", "", ""},
		{"POST", "/api/messages", "--B\r\nContent-Disposition: form-data; name=\"customer\"\r\n\r\nc-1\r\n--B--\r\n", "multipart/form-data; boundary=B"},
		{"POST", "/api/campaigns/1/send", `recipients=c-1&x=y`, "application/x-www-form-urlencoded"},
	} {
		f.Add(s.method, s.path, s.body, s.hdr)
	}
	l := consenttest.Open(f, "", consent.Config{})
	if _, _, err := l.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		f.Fatal(err)
	}
	engine, err := policy.New(ctx, policy.Config{})
	if err != nil {
		f.Fatal(err)
	}
	// DenyUnmatched: so that every request the handler sees went through a decision; StrictPaths
	// as the sidecar runs it.
	mw, err := middleware.New(middleware.Config{Routes: routes, Decider: engine, Facts: l, Regime: privguard.RegimePIPL, DenyUnmatched: true, StrictPaths: true})
	if err != nil {
		f.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := middleware.DecisionFromContext(r.Context()); !ok {
			panic("handler called without a decision")
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"email":"a@b.c","history":[1]}`))
	}))
	f.Fuzz(func(t *testing.T, method, path, body, hdr string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\x00") || strings.ContainsAny(method, " \r\n\x00/") || method == "" {
			return
		}
		r, err := http.NewRequest(method, "http://x"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		r.Header["X-Customer"] = []string{hdr}
		r.Header[middleware.PurposeHeader] = []string{hdr}
		r.Header["Content-Type"] = []string{hdr} // JSON, form, multipart (with boundaries), nonsense
		r.Header["Cookie"] = []string{hdr}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 && w.Code != http.StatusServiceUnavailable && w.Code != http.StatusBadGateway {
			t.Fatalf("%s %s: status %d", method, path, w.Code)
		}
		if w.Code >= 400 && w.Code != http.StatusNotFound && w.Header().Get("Content-Type") != privguard.ProblemContentType {
			t.Fatalf("%s %s: status %d without a problem body", method, path, w.Code)
		}
	})
}

// FuzzMinimise feeds arbitrary handler responses to the minimiser: it never panics, and a
// response it passes on is valid JSON without the dropped field anywhere it looked.
func FuzzMinimise(f *testing.F) {
	for _, s := range []string{`{"email":"a@b.c","history":[1]}`, `[{"email":"x"},{"email":"y"}]`, `{"email":{"email":1}}`,
		`"just a string"`, `{`, `null`, strings.Repeat(`[`, 5000), `{"email":"a"} trailing`} {
		f.Add(s)
	}
	l := consenttest.Open(f, "", consent.Config{})
	if _, _, err := l.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		f.Fatal(err)
	}
	_, _, err := l.Append(ctx, consent.Request{Subject: "c-1", Purpose: "personalize.recommendation", Action: consent.ActionGrant,
		Regime: privguard.RegimePIPL, Notice: &consent.NoticeRef{ID: "marketing", Version: 1}, Channel: consent.ChannelApp, Method: consent.MethodExplicit})
	if err != nil {
		f.Fatal(err)
	}
	engine, _ := policy.New(ctx, policy.Config{})
	mw, _ := middleware.New(middleware.Config{Routes: routes, Decider: engine, Facts: l, Regime: privguard.RegimePIPL})
	f.Fuzz(func(t *testing.T, resp string) {
		h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(resp))
		}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/api/profiles/c-1", nil))
		if w.Code != http.StatusOK {
			if w.Code != http.StatusBadGateway {
				t.Fatalf("status %d for %q", w.Code, resp)
			}
			return
		}
		if w.Body.Len() == 0 {
			return // nothing to leak
		}
		var v any
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			t.Fatalf("passed on invalid JSON %q for %q", w.Body, resp)
		}
		if m, ok := v.(map[string]any); ok {
			if _, has := m["email"]; has {
				t.Fatalf("email survived in %s (from %q)", w.Body, resp)
			}
		}
	})
}
