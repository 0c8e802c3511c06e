package middleware_test

import (
	"bufio"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/middleware"
	"github.com/privguard/privguard/policy"
)

// recorder keeps what the middleware records.
type recorder struct {
	mu     sync.Mutex
	routes []string
	ds     []privguard.Decision
}

func (r *recorder) Record(route string, in *privguard.Input, d *privguard.Decision) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.routes = append(r.routes, route)
	r.ds = append(r.ds, *d)
}

// strictEnv is newEnv's ledger and routes, plus two pass routes, with StrictPaths and
// DenyUnmatched as given, the handler recording the requests it gets.
func strictEnv(t *testing.T, strict, deny bool) (*env, *recorder, *[]*http.Request) {
	t.Helper()
	e := newEnv(t)
	rec := &recorder{}
	rs := append([]middleware.Route{{Match: "GET /health", Pass: true}, {Match: "/static/", Pass: true}}, routes...)
	mw, err := middleware.New(middleware.Config{Routes: rs, Decider: mustEngine(t), Facts: e.ledger, Regime: privguard.RegimePIPL,
		Recorder: rec, StrictPaths: strict, DenyUnmatched: deny})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []*http.Request
	e.handler = mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r)
		mu.Unlock()
		e.app(w, r)
	}))
	return e, rec, &got
}

func TestStrictPaths(t *testing.T) {
	cases := []struct {
		name, method, target string
		header               map[string]string
		strict               int // status with StrictPaths
	}{
		{"canonical", "GET", "/api/profiles/c-1", nil, http.StatusOK},
		{"pass_route", "GET", "/health", nil, http.StatusOK},
		{"pass_subtree", "GET", "/static/app.js", nil, http.StatusOK},
		{"capitals", "GET", "/API/Profiles/c-2", nil, http.StatusBadRequest},
		{"trailing_slash", "GET", "/api/profiles/c-2/", nil, http.StatusBadRequest},
		{"encoded_slash", "GET", "/api%2Fprofiles/c-2", nil, http.StatusBadRequest},
		{"encoded_dot_segment", "GET", "/static/%2e%2e/api/profiles/c-2", nil, http.StatusBadRequest},
		{"double_encoded", "GET", "/static/%252e%252e/api/profiles/c-2", nil, http.StatusBadRequest},
		{"matrix_parameter", "GET", "/api/profiles;v=1/c-2", nil, http.StatusBadRequest},
		{"backslash", "GET", "/static/..%5Capi/profiles/c-2", nil, http.StatusBadRequest},
		{"other_method", "DELETE", "/api/profiles/c-2", nil, http.StatusMethodNotAllowed},
		{"other_method_capitals", "PUT", "/API/profiles/c-2", nil, http.StatusMethodNotAllowed},
		{"override_header", "GET", "/health", map[string]string{"X-HTTP-Method-Override": "DELETE"}, http.StatusBadRequest},
		{"original_url", "GET", "/health", map[string]string{"X-Original-URL": "/api/profiles/c-2"}, http.StatusBadRequest},
		{"rewrite_url_cgi_spelling", "GET", "/health", map[string]string{"X_Rewrite_Url": "/api/profiles/c-2"}, http.StatusBadRequest},
		{"override_param", "GET", "/health?_METHOD=delete", nil, http.StatusBadRequest},
		{"semicolon_query", "GET", "/health?a=1;b=2", nil, http.StatusBadRequest},
		{"unrouted", "GET", "/elsewhere", nil, http.StatusOK},
	}
	e, _, got := strictEnv(t, true, false)
	e.grant("c-1", "personalize.recommendation")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(*got)
			r := httptest.NewRequest(tc.method, "http://h"+tc.target, nil)
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			e.handler.ServeHTTP(w, r)
			if w.Code != tc.strict {
				t.Errorf("%s %s = %d %s; want %d", tc.method, tc.target, w.Code, w.Body, tc.strict)
			}
			if reached := len(*got) > before; reached != (tc.strict == http.StatusOK) {
				t.Errorf("the handler was reached: %v", reached)
			}
			if tc.strict != http.StatusOK {
				problem(t, w)
			}
		})
	}
	// Without StrictPaths the library matches as net/http does and passes unrouted requests.
	e, _, _ = strictEnv(t, false, false)
	if w := e.do("GET", "/API/Profiles/c-2", "", nil); w.Code != http.StatusOK {
		t.Errorf("without StrictPaths an unrouted path = %d; want it passed", w.Code)
	}
}

func TestStrictPathsRefusesRoutesOnlyCaseApart(t *testing.T) {
	rs := []middleware.Route{
		{Match: "GET /api/Profiles/{id}", Purpose: "essential.service", Subject: middleware.Locator{Path: "id"}},
		{Match: "GET /api/profiles/{id}", Purpose: "essential.service", Subject: middleware.Locator{Path: "id"}},
	}
	_, err := middleware.New(middleware.Config{Routes: rs, Decider: mustEngine(t), Facts: failing{}, Regime: privguard.RegimePIPL, StrictPaths: true})
	if err == nil || !strings.Contains(err.Error(), "differ only by case") {
		t.Errorf("New = %v; want the two routes named", err)
	}
}

func TestDenyUnmatchedIsRecorded(t *testing.T) {
	e, rec, got := strictEnv(t, true, true)
	w := e.do("GET", "/export/everyone", "", nil)
	if w.Code != http.StatusForbidden || len(*got) != 0 {
		t.Fatalf("= %d, handler reached %d times; want 403 and not reached", w.Code, len(*got))
	}
	if p := problem(t, w); len(p.Reasons) != 1 || p.Reasons[0] != privguard.ReasonRouteNotConfigured {
		t.Errorf("reasons %v", p.Reasons)
	}
	if len(rec.routes) != 1 || rec.routes[0] != middleware.UnmatchedRoute || rec.ds[0].Effect != privguard.Deny {
		t.Errorf("recorded %v %v; want one deny for %s", rec.routes, rec.ds, middleware.UnmatchedRoute)
	}
	if w := e.do("GET", "/health", "", nil); w.Code != http.StatusOK {
		t.Errorf("a pass route under DenyUnmatched = %d", w.Code)
	}
}

func TestCatchAllRoute(t *testing.T) {
	// A route for "/" replaces the unmatched handler instead of colliding with it.
	mw, err := middleware.New(middleware.Config{Routes: []middleware.Route{{Match: "/", Pass: true}}, Decider: mustEngine(t),
		Facts: failing{}, Regime: privguard.RegimePIPL, StrictPaths: true})
	if err != nil {
		t.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/anything", nil))
	if w.Code != 204 {
		t.Errorf("= %d", w.Code)
	}
}

func TestOwnHeaders(t *testing.T) {
	e, _, got := strictEnv(t, true, false)
	e.grant("c-1", "personalize.recommendation")
	e.grant("c-1", "marketing.communications.sms")
	forged := map[string]string{"X-Privguard-Decision": "forged", "X-Privguard-Non-Personalised": "1", "X_privguard_removed": "0"}
	last := func() http.Header { return (*got)[len(*got)-1].Header }
	w := e.do("GET", "/api/profiles/c-1", "", forged)
	h := last()
	if w.Code != 200 || h.Get(middleware.DecisionHeader) != w.Header().Get(middleware.DecisionHeader) ||
		h.Get(middleware.PurposeHeader) != "personalize.recommendation" || h.Get(middleware.NonPersonalisedHeader) != "" || h.Get("X_privguard_removed") != "" {
		t.Errorf("the handler saw %v; want privguard's decision only", h)
	}
	e.do("GET", "/health", "", forged)
	for k := range last() {
		if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(k, "_", "-")), "x-privguard-") {
			t.Errorf("a pass route forwarded %s", k)
		}
	}
	e.do("POST", "/api/campaigns/1/send", `{"recipients":["c-1","c-9"]}`, nil)
	if h := last(); h.Get(middleware.RemovedHeader) != "1" {
		t.Errorf("a batch told the handler removed=%q; want 1", h.Get(middleware.RemovedHeader))
	}
	for _, c := range []string{"X-Privguard-Non-Personalised", "X-Customer", "close, X-Anything"} {
		if w := e.do("GET", "/api/profiles/c-1", "", map[string]string{"Connection": c}); w.Code != http.StatusBadRequest {
			t.Errorf("Connection: %s = %d; want 400", c, w.Code)
		}
	}
	if w := e.do("GET", "/api/profiles/c-1", "", map[string]string{"Connection": "keep-alive"}); w.Code != 200 {
		t.Errorf("Connection: keep-alive = %d", w.Code)
	}
	r := httptest.NewRequest("GET", "/api/profiles/c-1", nil)
	r.Header["X-Privguard-Purpose"] = []string{"personalize.recommendation", "personalize.recommendation"}
	w = httptest.NewRecorder()
	e.handler.ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest {
		t.Errorf("two purpose headers = %d; want 400", w.Code)
	}
}

func TestAnySecGPCCounts(t *testing.T) {
	e := newEnv(t)
	e.grant("g-1", "marketing.advertising.first_party")
	r := httptest.NewRequest("GET", "/api/ads", nil)
	r.Header["X-Customer"] = []string{"g-1"}
	r.Header["Sec-Gpc"] = []string{"0", "1"}
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "gpc") {
		t.Errorf("Sec-GPC 0 then 1 = %d %s; want the opt-out honoured", w.Code, w.Body)
	}
}

func TestChannelFromPurpose(t *testing.T) {
	e := newEnv(t)
	e.grant("f-1", "marketing.communications.sms")
	counter := middleware.NewContacts(map[string]time.Duration{"sms": time.Hour}, nil)
	rs := []middleware.Route{{Match: "POST /send", Purpose: "marketing.communications.sms", Subjects: middleware.Locator{JSON: "recipients"}}}
	mw, _ := middleware.New(middleware.Config{Routes: rs, Decider: mustEngine(t), Facts: e.ledger, Regime: privguard.RegimePIPL, Contacts: counter})
	e.handler = mw(http.HandlerFunc(e.app))
	e.do("POST", "/send", `{"recipients":["f-1"]}`, nil)
	if n := counter.Contacts("f-1", "sms"); n != 1 {
		t.Errorf("contacts on sms = %d; want 1 (the channel comes from the purpose)", n)
	}
	for p, want := range map[privguard.Purpose]string{"marketing.communications.sms": "sms", "marketing.communications.email.newsletter": "email",
		"marketing.communications": "", "marketing.communications.smsx": "", "personalize.recommendation": ""} {
		if got := privguard.ChannelOf(p); got != want {
			t.Errorf("ChannelOf(%s) = %q; want %q", p, got, want)
		}
	}
}

// TestMinimisedResponseDecidedWhole: on a route whose response is rewritten, nothing reaches
// the client before the whole response is decided on.
func TestMinimisedResponseDecidedWhole(t *testing.T) {
	e := newEnv(t)
	e.grant("c-1", "personalize.recommendation")
	serve := func(app http.HandlerFunc, header map[string]string) *http.Response {
		mw, _ := middleware.New(middleware.Config{Routes: routes, Decider: mustEngine(t), Facts: e.ledger, Regime: privguard.RegimePIPL})
		srv := httptest.NewServer(mw(app))
		defer srv.Close()
		req, _ := http.NewRequest("GET", srv.URL+"/api/profiles/c-1", nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	body := func(resp *http.Response) string {
		var b strings.Builder
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			b.WriteString(sc.Text())
		}
		resp.Body.Close()
		return b.String()
	}
	// A handler that streams, then turns out not to be JSON: the status is the 502.
	resp := serve(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"email":"li.lei@example.com"`))
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush = %v; want it absorbed", err)
		}
		w.Write([]byte(` not JSON`))
	}, nil)
	if b := body(resp); resp.StatusCode != http.StatusBadGateway || strings.Contains(b, "li.lei") {
		t.Errorf("streamed = %d %s; want 502", resp.StatusCode, b)
	}
	// Early hints, a hijack and trailers.
	resp = serve(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</x>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		if _, _, err := http.NewResponseController(w).Hijack(); !errors.Is(err, http.ErrNotSupported) {
			t.Errorf("Hijack = %v; want ErrNotSupported", err)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Trailer", "X-Email")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(`{"id":"c-1","email":"li.lei@example.com","history":["p1"]}`))
		w.Header().Set("X-Email", "li.lei@example.com")
		w.Header().Set(http.TrailerPrefix+"X-Phone", "13812345678")
	}, nil)
	b := body(resp)
	if resp.StatusCode != 200 || strings.Contains(b, "li.lei") || resp.Header.Get("Trailer") != "" ||
		resp.Trailer.Get("X-Email") != "" || resp.Trailer.Get("X-Phone") != "" || resp.Header.Get("X-Email") != "" {
		t.Errorf("= %d %s header %v trailer %v; want 200, minimised, no trailers", resp.StatusCode, b, resp.Header, resp.Trailer)
	}
	// Range and Accept-Encoding never reach the handler of a minimised route.
	resp = serve(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" || r.Header.Get("Accept-Encoding") != "" || r.Header.Get("If-Range") != "" {
			t.Errorf("the handler got %v", r.Header)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"c-1"}`))
	}, map[string]string{"Range": "bytes=10-30", "If-Range": `"x"`, "Accept-Encoding": "gzip"})
	body(resp)
	// An upgrade would bypass the rewrite.
	if resp := serve(func(w http.ResponseWriter, r *http.Request) { t.Error("an upgrade reached the handler") },
		map[string]string{"Upgrade": "websocket", "Connection": "Upgrade"}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("upgrade = %d; want 400", resp.StatusCode)
	}
}

// TestMaskObligation: a purpose that sees a category masked gets 138****5678, and a value
// the masking rule has no case for (an email with an empty local part) is masked too.
func TestMaskObligation(t *testing.T) {
	infos := privguard.DefaultPurposes()
	for i := range infos {
		if infos[i].Purpose == "essential.service" {
			infos[i].Categories = append(infos[i].Categories, "user.contact")
			infos[i].Mask = []privguard.DataCategory{"user.contact"}
		}
	}
	tax, err := privguard.NewTaxonomy(infos)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policy.New(ctx, policy.Config{Taxonomy: tax})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	rs := []middleware.Route{{Match: "GET /api/accounts/{id}", Purpose: "essential.service", Subject: middleware.Locator{Path: "id"},
		Fields: map[string]privguard.DataCategory{"phone": "user.contact.phone_number", "email": "user.contact.email"}}}
	mw, err := middleware.New(middleware.Config{Routes: rs, Decider: engine, Facts: e.ledger, Regime: privguard.RegimePIPL})
	if err != nil {
		t.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"phone":"13812345678","email":"@example.com","id":"a-1"}`))
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/api/accounts/a-1", nil))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"phone":"138****5678"`) || !strings.Contains(w.Body.String(), `"email":"***@example.com"`) {
		t.Errorf("= %d %s; want both masked", w.Code, w.Body)
	}
}

// batchRecorder is a recorder that also takes batches.
type batchRecorder struct {
	recorder
	batches [][]middleware.BatchEntry
}

func (r *batchRecorder) RecordBatch(route string, in *privguard.Input, entries []middleware.BatchEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, entries)
}

// A batch reaches the recorder as one call with every valid subject's own decision, and a
// recorder without RecordBatch gets each of them through Record.
func TestBatchDecisionsRecorded(t *testing.T) {
	for _, batched := range []bool{true, false} {
		e := newEnv(t)
		e.grant("c-1", "marketing.communications.sms")
		e.grant("c-2", "marketing.communications.sms")
		var rec middleware.Recorder = &recorder{}
		br := &batchRecorder{}
		if batched {
			rec = br
		}
		mw, err := middleware.New(middleware.Config{Routes: routes, Decider: mustEngine(t), Facts: e.ledger, Regime: privguard.RegimePIPL, Recorder: rec})
		if err != nil {
			t.Fatal(err)
		}
		e.handler = mw(http.HandlerFunc(e.app))
		w := e.do("POST", "/api/campaigns/7/send", `{"recipients":["c-1","c-3","c-2","c-1","bad id"]}`, map[string]string{"Content-Type": "application/json"})
		if w.Code != http.StatusOK {
			t.Fatalf("send: %d %s", w.Code, w.Body)
		}
		var got []string
		if batched {
			if len(br.batches) != 1 || len(br.routes) != 0 {
				t.Fatalf("%d batches and %d single records; want the batch in one call", len(br.batches), len(br.routes))
			}
			for _, b := range br.batches[0] {
				got = append(got, string(b.Subject)+":"+string(b.Decision.Effect)+":"+b.Consent)
			}
		} else {
			r := rec.(*recorder)
			for _, d := range r.ds {
				got = append(got, string(d.Effect))
			}
		}
		want := []string{"c-1:allow:given", "c-3:deny:unknown", "c-2:allow:given"}
		if !batched {
			want = []string{"allow", "deny", "allow"}
		}
		if !slices.Equal(got, want) {
			t.Errorf("batched=%v: recorded %v; want %v (the duplicate and the malformed id are nobody)", batched, got, want)
		}
	}
}
