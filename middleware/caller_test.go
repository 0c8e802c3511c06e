package middleware_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/internal/callers"
	"github.com/privguard/privguard/middleware"
	"github.com/privguard/privguard/policy"
)

// callerTable is a fixed set of callers by token.
type callerTable map[string]middleware.Caller

func (c callerTable) Caller(token string) (middleware.Caller, bool) { x, ok := c[token]; return x, ok }

type recorded struct {
	mu   sync.Mutex
	ins  []privguard.Input
	decs []privguard.Decision
}

func (r *recorded) Record(route string, in *privguard.Input, d *privguard.Decision) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ins, r.decs = append(r.ins, *in), append(r.decs, *d)
}

// A request that carries a caller credential is decided only for the purposes the caller
// is scoped to: an SMS gateway's credential sends its campaign but reads no profile; an
// unknown or revoked credential is 401; the decision log records the caller's name, and
// the credential never reaches the handler.
func TestCallerScopedToItsPurposes(t *testing.T) {
	ledger := consenttest.Open(t, "", consent.Config{})
	if _, _, err := ledger.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		t.Fatal(err)
	}
	engine, err := policy.New(ctx, policy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorded{}
	callers := callerTable{"pg_sms": {Name: "sms-gateway", Purposes: []privguard.Purpose{"marketing.communications.sms"}}}
	var seen []http.Header
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Clone())
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	})
	build := func(c middleware.Callers) http.Handler {
		mw, err := middleware.New(middleware.Config{Routes: routes, Decider: engine, Facts: ledger, Regime: privguard.RegimePIPL, Recorder: rec, Callers: c})
		if err != nil {
			t.Fatal(err)
		}
		return mw(app)
	}
	h := build(callers)
	for _, p := range []privguard.Purpose{"personalize.recommendation", "marketing.communications.sms"} {
		if _, _, err := ledger.Append(ctx, consent.Request{Subject: "cust-42", Purpose: p, Action: consent.ActionGrant, Regime: privguard.RegimePIPL,
			Notice: &consent.NoticeRef{ID: "marketing", Version: 1}, Channel: consent.ChannelApp, Method: consent.MethodExplicit}); err != nil {
			t.Fatal(err)
		}
	}
	do := func(h http.Handler, method, path, body string, header ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Add(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	wantProblem := func(what string, w *httptest.ResponseRecorder, status int, slug string) {
		t.Helper()
		if p := problem(t, w); w.Code != status || p.Type != privguard.ProblemTypePrefix+slug {
			t.Errorf("%s: %d %s; want %d %s", what, w.Code, p.Type, status, slug)
		}
	}

	// The SMS gateway cannot read the subject's profile (personalize.recommendation).
	wantProblem("sms gateway reads a profile", do(h, "GET", "/api/profiles/cust-42", "", middleware.CallerHeader, "pg_sms"), 403, middleware.TypeCallerPurposeNotAllowed)
	if len(seen) != 0 {
		t.Fatalf("the handler was called for a refused caller")
	}
	if n := len(rec.ins); n != 1 || rec.ins[0].Caller != "sms-gateway" || rec.decs[0].Allowed() ||
		rec.decs[0].Reasons[0] != privguard.ReasonCallerPurposeNotAllowed {
		t.Errorf("recorded %+v %+v; want one deny caller.purpose_not_allowed by sms-gateway", rec.ins, rec.decs)
	}
	// It sends its campaign, recorded as its own; the handler never sees the credential.
	w := do(h, "POST", "/api/campaigns/c1/send", `{"recipients":["cust-42"],"text":"hi"}`, middleware.CallerHeader, "pg_sms")
	if w.Code != 200 || len(seen) != 1 || seen[0].Get(middleware.CallerHeader) != "" {
		t.Fatalf("sms gateway's campaign: %d, handler saw %v", w.Code, seen)
	}
	if last := rec.ins[len(rec.ins)-1]; last.Caller != "sms-gateway" {
		t.Errorf("the campaign's decision was recorded for caller %q; want sms-gateway", last.Caller)
	}
	wantProblem("unknown caller", do(h, "GET", "/api/profiles/cust-42", "", middleware.CallerHeader, "pg_guess"), 401, middleware.TypeCallerUnknown)
	wantProblem("caller credential twice", do(h, "GET", "/api/profiles/cust-42", "", middleware.CallerHeader, "pg_sms", middleware.CallerHeader, "pg_sms"),
		400, middleware.TypeAmbiguous)
	wantProblem("caller credential with no callers configured", do(build(nil), "GET", "/api/profiles/cust-42", "", middleware.CallerHeader, "pg_sms"),
		401, middleware.TypeCallerUnknown)
	// Without a credential the request is decided as before.
	if w := do(h, "GET", "/api/profiles/cust-42", ""); w.Code != 200 {
		t.Errorf("a request without a caller credential: %d; want 200", w.Code)
	}
	for _, in := range rec.ins {
		if strings.Contains(in.Caller, "pg_") {
			t.Errorf("the credential reached the decision log: %q", in.Caller)
		}
	}
}

// BenchmarkCallerProfile is BenchmarkProfile/wrapped with a caller register (the
// sidecar's, on a bbolt file): without a credential, with one scoped to the route's
// purpose, and with one that is refused.
func BenchmarkCallerProfile(b *testing.B) {
	l, _ := benchEnv(b, 1000)
	engine, err := policy.New(ctx, policy.Config{})
	if err != nil {
		b.Fatal(err)
	}
	db, err := boltstore.Open(filepath.Join(b.TempDir(), "p.db"), boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	reg, err := callers.Open(ctx, db.Journal(), []callers.Caller{
		{Name: "recommender", SHA256: callers.Hash("pg_rec_0123456789abcdef"), Purposes: []privguard.Purpose{"personalize"}},
		{Name: "sms-gateway", SHA256: callers.Hash("pg_sms_0123456789abcdef"), Purposes: []privguard.Purpose{"marketing.communications.sms"}},
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	wrap, err := middleware.New(middleware.Config{Routes: routes, Decider: engine, Facts: l, Regime: privguard.RegimePIPL,
		StrictPaths: true, DenyUnmatched: true, Callers: reg})
	if err != nil {
		b.Fatal(err)
	}
	h := wrap(http.HandlerFunc(profileHandler))
	for _, c := range []struct {
		name, token string
		want        int
	}{{"no_caller", "", 200}, {"caller_allowed", "pg_rec_0123456789abcdef", 200}, {"caller_refused", "pg_sms_0123456789abcdef", 403}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r := httptest.NewRequest("GET", "/api/profiles/c-"+fmt.Sprint(i%1000), nil)
				if c.token != "" {
					r.Header.Set(middleware.CallerHeader, c.token)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != c.want {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
				i++
			}
		})
	}
}
