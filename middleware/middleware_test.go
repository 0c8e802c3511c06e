package middleware_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/middleware"
	"github.com/privguard/privguard/policy"
	"github.com/privguard/privguard/vault"
)

var ctx = context.Background()

type env struct {
	t       *testing.T
	ledger  *consent.Ledger
	handler http.Handler
	calls   int
	seen    []string // recipients the campaign handler saw
}

var routes = []middleware.Route{
	{Match: "GET /api/profiles/{id}", Purpose: "personalize.recommendation", Subject: middleware.Locator{Path: "id"},
		Fields: map[string]privguard.DataCategory{"email": "user.contact.email", "phone": "user.contact.phone_number",
			"history": "user.behavior.browsing_history", "tags.name": "user.derived.tags"}},
	{Match: "POST /api/campaigns/{id}/send", Purpose: "marketing.communications.sms", Channel: "sms",
		Subjects: middleware.Locator{JSON: "recipients"}},
	{Match: "GET /api/ads", Purpose: "marketing.advertising.first_party", Subject: middleware.Locator{Header: "X-Customer"}},
	{Match: "POST /api/messages", Purposes: []privguard.Purpose{"marketing.communications.email", "marketing.communications.push"},
		Subject: middleware.Locator{JSON: "customer"}},
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, ledger: consenttest.Open(t, "", consent.Config{})}
	if _, _, err := e.ledger.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		t.Fatal(err)
	}
	engine, err := policy.New(ctx, policy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	mw, err := middleware.New(middleware.Config{Routes: routes, Decider: engine, Facts: e.ledger, Regime: privguard.RegimePIPL})
	if err != nil {
		t.Fatal(err)
	}
	e.handler = mw(http.HandlerFunc(e.app))
	return e
}

// app is the wrapped marketing API.
func (e *env) app(w http.ResponseWriter, r *http.Request) {
	e.calls++
	w.Header().Set("Content-Type", "application/json")
	switch {
	case strings.HasPrefix(r.URL.Path, "/api/profiles/"):
		if middleware.NonPersonalised(r.Context()) {
			json.NewEncoder(w).Encode(map[string]any{"recommendations": "top sellers"})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"id": r.PathValue("id"), "email": "li.lei@example.com", "phone": "13812345678",
			"history": []string{"p1", "p2"}, "tags": []map[string]any{{"name": "vip", "score": 3}},
			"recommendations": "personalised",
		})
	case strings.HasPrefix(r.URL.Path, "/api/campaigns/"):
		var body struct {
			Recipients []string `json:"recipients"`
			Text       string   `json:"text"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		e.seen = body.Recipients
		json.NewEncoder(w).Encode(map[string]any{"sent": len(body.Recipients), "text": body.Text})
	default:
		json.NewEncoder(w).Encode(map[string]any{"ok": true})
	}
}

func (e *env) do(method, path, body string, header map[string]string) *httptest.ResponseRecorder {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, r)
	return w
}

func (e *env) grant(s privguard.SubjectID, p privguard.Purpose) {
	e.t.Helper()
	_, _, err := e.ledger.Append(ctx, consent.Request{Subject: s, Purpose: p, Action: consent.ActionGrant, Regime: privguard.RegimePIPL,
		Notice: &consent.NoticeRef{ID: "marketing", Version: 1}, Channel: consent.ChannelApp, Method: consent.MethodExplicit})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) append(req consent.Request) {
	e.t.Helper()
	if _, _, err := e.ledger.Append(ctx, req); err != nil {
		e.t.Fatal(err)
	}
}

func problem(t *testing.T, w *httptest.ResponseRecorder) privguard.Problem {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != privguard.ProblemContentType {
		t.Fatalf("status %d Content-Type %q; want a problem", w.Code, ct)
	}
	var p privguard.Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProfileFlow(t *testing.T) {
	e := newEnv(t)
	// proves PUR-01 and MKT-06 (no consent, no personalisation): denied, handler not called.
	w := e.do("GET", "/api/profiles/cust-1", "", nil)
	if w.Code != http.StatusForbidden || e.calls != 0 {
		t.Fatalf("no consent: %d, %d calls; want 403 and the handler not called", w.Code, e.calls)
	}
	if p := problem(t, w); !slices.Contains(p.Reasons, privguard.ReasonConsentMissing) {
		t.Errorf("reasons = %v; want consent.missing", p.Reasons)
	}

	// proves PUR-03: with consent, the purpose sees only the categories it needs.
	e.grant("cust-1", "personalize.recommendation")
	w = e.do("GET", "/api/profiles/cust-1", "", nil)
	if w.Code != http.StatusOK {
		t.Fatalf("with consent: %d %s", w.Code, w.Body)
	}
	var got map[string]any
	json.Unmarshal(w.Body.Bytes(), &got)
	if _, ok := got["email"]; ok {
		t.Errorf("email reached a recommendation response: %s", w.Body)
	}
	if _, ok := got["phone"]; ok {
		t.Errorf("phone reached a recommendation response: %s", w.Body)
	}
	if got["history"] == nil || got["tags"] == nil || got["recommendations"] != "personalised" {
		t.Errorf("needed fields were removed: %s", w.Body)
	}
	if w.Header().Get(middleware.DecisionHeader) == "" {
		t.Error("no decision id header")
	}

	// proves MKT-06: personalisation off → the non-personalised alternative, at once.
	e.append(consent.Request{Subject: "cust-1", Action: consent.ActionPersonalisationOff})
	w = e.do("GET", "/api/profiles/cust-1", "", nil)
	if w.Code != http.StatusOK || w.Header().Get(middleware.NonPersonalisedHeader) != "1" || !strings.Contains(w.Body.String(), "top sellers") {
		t.Errorf("personalisation off: %d %q %s; want the non-personalised answer", w.Code, w.Header().Get(middleware.NonPersonalisedHeader), w.Body)
	}

	// proves CON-08 (in-process): a withdrawal is enforced on the very next request.
	e.append(consent.Request{Subject: "cust-1", Purpose: "personalize.recommendation", Action: consent.ActionWithdraw})
	w = e.do("GET", "/api/profiles/cust-1", "", nil)
	if w.Code != http.StatusForbidden {
		t.Errorf("after withdrawal: %d; want 403", w.Code)
	}
}

func TestCampaignBatchIsFiltered(t *testing.T) {
	// proves MKT-01 (send-gate per channel consent), MKT-04 and DSR-13 (objection and
	// unsubscribe hold at send time).
	e := newEnv(t)
	e.grant("c-1", "marketing.communications.sms")
	e.grant("c-2", "marketing.communications.sms")
	e.grant("c-3", "marketing.communications.sms")
	e.grant("c-4", "marketing.communications.email") // another channel
	e.append(consent.Request{Subject: "c-3", Action: consent.ActionObject})
	w := e.do("POST", "/api/campaigns/7/send", `{"recipients":["c-1","c-2","c-3","c-4","c-5","bad id"],"text":"Sale!"}`,
		map[string]string{"Content-Type": "application/json"})
	if w.Code != http.StatusOK {
		t.Fatalf("send: %d %s", w.Code, w.Body)
	}
	if !slices.Equal(e.seen, []string{"c-1", "c-2"}) {
		t.Errorf("handler saw %v; want [c-1 c-2]", e.seen)
	}
	if got := w.Header().Get(middleware.RemovedHeader); got != "4" {
		t.Errorf("%s = %q; want 4", middleware.RemovedHeader, got)
	}
	if !strings.Contains(w.Body.String(), `"text":"Sale!"`) {
		t.Errorf("other body fields were lost: %s", w.Body)
	}
}

func TestGPCHeader(t *testing.T) {
	// proves MKT-09: Sec-GPC: 1 opts the request out of targeted advertising.
	e := newEnv(t)
	e.grant("c-9", "marketing.advertising.first_party")
	if w := e.do("GET", "/api/ads", "", map[string]string{"X-Customer": "c-9"}); w.Code != http.StatusOK {
		t.Fatalf("without GPC: %d", w.Code)
	}
	w := e.do("GET", "/api/ads", "", map[string]string{"X-Customer": "c-9", "Sec-GPC": "1"})
	if w.Code != http.StatusForbidden || !slices.Contains(problem(t, w).Reasons, privguard.ReasonGPCOptOut) {
		t.Errorf("with GPC: %d %s; want 403 gpc.opt_out", w.Code, w.Body)
	}
}

func TestDeclaredPurpose(t *testing.T) {
	e := newEnv(t)
	e.grant("c-7", "marketing.communications.push")
	h := map[string]string{"Content-Type": "application/json", middleware.PurposeHeader: "marketing.communications.push"}
	if w := e.do("POST", "/api/messages", `{"customer":"c-7"}`, h); w.Code != http.StatusOK {
		t.Errorf("push: %d %s", w.Code, w.Body)
	}
	h[middleware.PurposeHeader] = "marketing.communications.email"
	if w := e.do("POST", "/api/messages", `{"customer":"c-7"}`, h); w.Code != http.StatusForbidden {
		t.Errorf("email without consent: %d; want 403", w.Code)
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	big := `{"recipients":["` + strings.Repeat("a", middleware.DefaultMaxBody) + `"]}`
	cases := []struct {
		name, method, path, body string
		header                   map[string]string
		status                   int
		typ                      string
	}{
		{"malformed_batch", "POST", "/api/campaigns/1/send", `{"recipients":[`, nil, 400, middleware.TypeMalformedJSON},
		{"batch_not_array", "POST", "/api/campaigns/1/send", `{"recipients":"c-1"}`, nil, 400, middleware.TypeMalformedJSON},
		{"batch_missing", "POST", "/api/campaigns/1/send", `{"text":"hi"}`, nil, 400, middleware.TypeSubjectMissing},
		{"batch_too_large", "POST", "/api/campaigns/1/send", big, nil, 413, middleware.TypeBodyTooLarge},
		{"no_subject_header", "GET", "/api/ads", "", nil, 400, middleware.TypeSubjectMissing},
		{"hostile_subject", "GET", "/api/ads", "", map[string]string{"X-Customer": "'; DROP TABLE x;--"}, 400, middleware.TypeInvalidSubject},
		{"huge_subject", "GET", "/api/ads", "", map[string]string{"X-Customer": strings.Repeat("x", 4096)}, 400, middleware.TypeInvalidSubject},
		{"purpose_not_allowed", "POST", "/api/messages", `{"customer":"c-1"}`, map[string]string{middleware.PurposeHeader: "marketing.profiling"}, 400, middleware.TypePurposeNotAllowed},
		{"purpose_required", "POST", "/api/messages", `{"customer":"c-1"}`, nil, 400, middleware.TypePurposeNotAllowed},
		{"subject_not_string", "POST", "/api/messages", `{"customer":42}`, map[string]string{middleware.PurposeHeader: "marketing.communications.push"}, 400, middleware.TypeMalformedJSON},
		{"body_not_object", "POST", "/api/messages", `[1]`, map[string]string{middleware.PurposeHeader: "marketing.communications.push"}, 400, middleware.TypeMalformedJSON},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.calls
			w := e.do(tc.method, tc.path, tc.body, tc.header)
			if w.Code != tc.status {
				t.Fatalf("= %d %s; want %d", w.Code, w.Body, tc.status)
			}
			if p := problem(t, w); p.Type != privguard.ProblemTypePrefix+tc.typ {
				t.Errorf("type = %s; want %s", p.Type, tc.typ)
			}
			if e.calls != before {
				t.Error("the handler was called")
			}
		})
	}
}

// failing is a Decider or FactsReader that cannot answer.
type failing struct{}

func (failing) Decide(context.Context, privguard.Input) (privguard.Decision, error) {
	return privguard.Decision{}, errors.New("engine down")
}

func (failing) Facts(context.Context, *privguard.Input) error { return errors.New("store down") }

func TestFailsClosed(t *testing.T) {
	l := consenttest.Open(t, "", consent.Config{})
	engine, _ := policy.New(ctx, policy.Config{})
	cases := []struct {
		name    string
		decider middleware.Decider
		facts   middleware.FactsReader
	}{
		{"decider_error", failing{}, l},
		{"facts_error", engine, failing{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mw, err := middleware.New(middleware.Config{Routes: routes, Decider: tc.decider, Facts: tc.facts, Regime: privguard.RegimePIPL})
			if err != nil {
				t.Fatal(err)
			}
			called := false
			h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", "/api/profiles/c-1", nil))
			if w.Code != http.StatusServiceUnavailable || called {
				t.Errorf("= %d, called %v; want 503 and the handler not called", w.Code, called)
			}
		})
	}
}

func TestUnminimisableResponseIsWithheld(t *testing.T) {
	e := newEnv(t)
	e.grant("c-8", "personalize.recommendation")
	mw, _ := middleware.New(middleware.Config{Routes: routes, Decider: mustEngine(t), Facts: e.ledger, Regime: privguard.RegimePIPL})
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<p>li.lei@example.com</p>"))
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/api/profiles/c-8", nil))
	if w.Code != http.StatusBadGateway || bytes.Contains(w.Body.Bytes(), []byte("example.com")) {
		t.Errorf("= %d %s; want 502 without the body", w.Code, w.Body)
	}
}

func mustEngine(t *testing.T) *policy.Engine {
	e, err := policy.New(ctx, policy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestConfigErrorsNameTheRoute(t *testing.T) {
	engine := mustEngine(t)
	l := consenttest.Open(t, "", consent.Config{})
	cases := []struct {
		name  string
		route middleware.Route
		want  string
	}{
		{"no_purpose", middleware.Route{Match: "GET /a/{id}", Subject: middleware.Locator{Path: "id"}}, "no Purpose"},
		{"two_subjects", middleware.Route{Match: "GET /a/{id}", Purpose: "essential.service", Subject: middleware.Locator{Path: "id", Header: "X"}}, "exactly one"},
		{"path_not_in_pattern", middleware.Route{Match: "GET /a/{id}", Purpose: "essential.service", Subject: middleware.Locator{Path: "user"}}, "not a wildcard"},
		{"bad_pattern", middleware.Route{Match: "GET /a/{id", Purpose: "essential.service", Subject: middleware.Locator{Header: "X"}}, "GET /a/{id"},
		{"bad_category", middleware.Route{Match: "GET /a", Purpose: "essential.service", Subject: middleware.Locator{Header: "X"},
			Fields: map[string]privguard.DataCategory{"x": "Not A Category"}}, "Fields"},
		{"fields_on_batch", middleware.Route{Match: "POST /a", Purpose: "marketing.communications.sms", Subjects: middleware.Locator{JSON: "to"},
			Fields: map[string]privguard.DataCategory{"phone": "user.contact.phone_number"}}, "single-subject"},
		{"pass_with_purpose", middleware.Route{Match: "GET /a", Pass: true, Purpose: "essential.service"}, "Pass route"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := middleware.New(middleware.Config{Routes: []middleware.Route{tc.route}, Decider: engine, Facts: l, Regime: privguard.RegimePIPL})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestFrequencyLimitAcrossSends(t *testing.T) {
	// Over-frequent outreach is blocked: the default SMS limit is 3 per subject per week.
	e := newEnv(t)
	e.grant("f-1", "marketing.communications.sms")
	e.grant("f-2", "marketing.communications.sms")
	engine := mustEngine(t)
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	counter := middleware.NewContacts(map[string]time.Duration{"sms": 7 * 24 * time.Hour}, func() time.Time { return now })
	mw, err := middleware.New(middleware.Config{Routes: routes, Decider: engine, Facts: e.ledger, Regime: privguard.RegimePIPL, Contacts: counter})
	if err != nil {
		t.Fatal(err)
	}
	e.handler = mw(http.HandlerFunc(e.app))
	send := func(recipients string) []string {
		w := e.do("POST", "/api/campaigns/1/send", `{"recipients":[`+recipients+`]}`, nil)
		if w.Code != http.StatusOK {
			t.Fatalf("send = %d %s", w.Code, w.Body)
		}
		return e.seen
	}
	for i := range 3 {
		if got := send(`"f-1"`); len(got) != 1 {
			t.Fatalf("send %d to f-1 reached %v; want f-1", i+1, got)
		}
	}
	if got := send(`"f-1","f-2"`); !slices.Equal(got, []string{"f-2"}) {
		t.Errorf("fourth send reached %v; want only f-2 (f-1 is over the limit)", got)
	}
	now = now.Add(8 * 24 * time.Hour) // the window has passed
	if got := send(`"f-1"`); len(got) != 1 {
		t.Errorf("after the window: %v; want f-1 again", got)
	}
}

func TestContactsForgetExpiredSubjects(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	c := middleware.NewContacts(map[string]time.Duration{"sms": time.Hour}, func() time.Time { return now })
	for i := range 1 << 14 {
		c.AddContact(privguard.SubjectID(fmt.Sprintf("s-%d", i)), "sms")
	}
	now = now.Add(2 * time.Hour)
	for i := range 1 << 14 {
		c.AddContact(privguard.SubjectID(fmt.Sprintf("t-%d", i)), "sms")
	}
	if n := c.Len(); n > 1<<14 {
		t.Errorf("%d pairs held; the expired ones were not swept", n)
	}
	if got := c.Contacts("t-1", "sms"); got != 1 {
		t.Errorf("Contacts(t-1) = %d; want 1", got)
	}
	if got := c.Contacts("x", "email"); got != 0 {
		t.Errorf("a channel without a window counts %d", got)
	}
}

func TestEncryptedFields(t *testing.T) {
	// proves SEC-02 (sidecar/middleware side): the phone number is sealed before the
	// handler's database sees it, and opened on the way out for a purpose allowed to see it.
	e := newEnv(t)
	dir := t.TempDir()
	if err := vault.InitLocalKEK(filepath.Join(dir, "k.json")); err != nil {
		t.Fatal(err)
	}
	kek, _ := vault.LoadLocalKEK(filepath.Join(dir, "k.json"), nil)
	db, err := boltstore.Open(filepath.Join(dir, "v.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, _ := vault.New(vault.Config{Store: db.Vault(), KEK: kek, TombstoneKey: []byte("0123456789abcdef")})
	route := middleware.Route{Match: "/api/accounts/{id}", Purpose: "essential.service", Subject: middleware.Locator{Path: "id"},
		Fields:  map[string]privguard.DataCategory{"phone": "user.contact.phone_number", "nickname": "user.name.nickname"},
		Encrypt: []string{"user.contact.phone_number"}}
	mw, err := middleware.New(middleware.Config{Routes: []middleware.Route{route}, Decider: mustEngine(t), Facts: e.ledger,
		Regime: privguard.RegimePIPL, Crypter: v})
	if err != nil {
		t.Fatal(err)
	}
	var stored []byte // the "database"
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "PUT" {
			stored, _ = io.ReadAll(r.Body)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(stored)
	}))
	req := httptest.NewRequest("PUT", "/api/accounts/a-1", strings.NewReader(`{"phone":"13812345678","nickname":"Lei"}`))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusNoContent || bytes.Contains(stored, []byte("13812345678")) || !bytes.Contains(stored, []byte(vault.SealedPrefix)) {
		t.Fatalf("PUT = %d, stored %s; want the phone sealed before the handler", w.Code, stored)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/api/accounts/a-1", nil))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"phone":"13812345678"`) {
		t.Errorf("GET = %d %s; want the phone opened", w.Code, w.Body)
	}
	v.Shred(ctx, "a-1")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/api/accounts/a-1", nil))
	if !strings.Contains(w.Body.String(), `"phone":null`) {
		t.Errorf("after shred: %s; want the phone gone", w.Body)
	}
}
