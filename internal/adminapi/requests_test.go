package adminapi_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/internal/adminapi"
	"github.com/privguard/privguard/internal/authz"
	"github.com/privguard/privguard/vault"
)

var idSecret = []byte("app-secret-0123456789abcdef-0123456789")

type codes map[string]string

func (c codes) SendCode(_ context.Context, _ privguard.SubjectID, id, code string) error {
	c[id] = code
	return nil
}

func newRequestsEnv(t *testing.T, conns ...dsar.Connector) (*env, codes) {
	t.Helper()
	return newRequestsEnvClock(t, nil, conns...)
}

// newRequestsEnvClock is newRequestsEnv with the engine and the API on clock now (nil:
// the system clock).
func newRequestsEnvClock(t *testing.T, now func() time.Time, conns ...dsar.Connector) (*env, codes) {
	t.Helper()
	return newRequestsEnvWith(t, now, nil, conns...)
}

// newRequestsEnvWith is newRequestsEnvClock with more configuration: configure, if not
// nil, changes the API's Config (its store is the request store's bbolt file) before New.
func newRequestsEnvWith(t *testing.T, now func() time.Time, configure func(*adminapi.Config, *boltstore.DB), conns ...dsar.Connector) (*env, codes) {
	t.Helper()
	dir := t.TempDir()
	db, err := boltstore.Open(filepath.Join(dir, "p.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := vault.InitLocalKEK(filepath.Join(dir, "kek.json")); err != nil {
		t.Fatal(err)
	}
	kek, err := vault.LoadLocalKEK(filepath.Join(dir, "kek.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	vlt, err := vault.New(vault.Config{Store: db.Vault(), KEK: kek, TombstoneKey: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := dsar.New(dsar.Config{Store: db.DSAR(), Sealer: vlt, Connectors: conns, Now: now, Explain: testExplain})
	if err != nil {
		t.Fatal(err)
	}
	v, err := dsar.NewTokenVerifier(nil, idSecret)
	if err != nil {
		t.Fatal(err)
	}
	sent := codes{}
	l := consenttest.Open(t, "", consent.Config{})
	logs := &bytes.Buffer{}
	tokens := adminapi.Tokens{}
	tokens.Add(token, adminapi.Principal{Name: "portal", Roles: []string{"admin"}})
	tokens.Add("app-token", adminapi.Principal{Name: "crm-backend"}) // no roles: an app
	tokens.Add("auditor-token", adminapi.Principal{Name: "internal-audit", Roles: []string{"auditor"}})
	tokens.Add("dpo-token", adminapi.Principal{Name: "dpo-office", Roles: []string{"dpo"}})
	tokens.Add("operator-token", adminapi.Principal{Name: "credit-officer", Roles: []string{"operator"}})
	// An entrusted SMS gateway: an app scoped to one purpose, kept off the requests.
	tokens.Add("sms-token", adminapi.Principal{Name: "sms-gateway", Purposes: []privguard.Purpose{"marketing.communications.sms"}, NoRequests: true})
	cfg := adminapi.Config{Ledger: l, Tokens: tokens, TokenHint: "the token hint", Requests: eng, IdentityTokens: v, Notifier: sent, Now: now,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if configure != nil {
		configure(&cfg, db)
	}
	api, err := adminapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, ledger: l, logs: logs, eng: eng}, sent
}

// testExplain explains one credit-scoring purpose.
func testExplain(context.Context, dsar.Request) (dsar.Explanation, error) {
	return dsar.Explanation{Decisions: []dsar.AutomatedDecision{{Purpose: "credit.scoring", Model: "score-v3",
		Features: []privguard.DataCategory{"user.financial"}, Logic: map[string]string{"en": "points for income and history", "zh": "按收入和记录评分"},
		Recent: []dsar.DecisionRecord{}}}}, nil
}

func appToken(t *testing.T, key []byte, sub string) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	b, _ := json.Marshal(map[string]any{"sub": sub, "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()})
	jws, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

func TestRequestIdentityByTokenAndCode(t *testing.T) {
	// proves DSR-02: a request is verified by the app's signed token for that very subject,
	// or by a one-time code; a token for someone else, a forged token or a wrong code is refused.
	e, sent := newRequestsEnv(t)
	var view map[string]any
	body := `{"type":"access","subject":"cust-1","regime":"pipl","identity_token":"` + appToken(t, idSecret, "cust-1") + `"}`
	if resp := e.do("POST", "/v1/requests", body, nil, &view); resp.StatusCode != 201 || view["state"] != "verified" {
		t.Fatalf("valid token: %d %v", resp.StatusCode, view)
	}
	for name, tok := range map[string]string{
		"someone else's token": appToken(t, idSecret, "cust-2"),
		"forged token":         appToken(t, []byte("attacker-secret-0123456789abcdef-xx"), "cust-3"),
	} {
		var p map[string]any
		body := `{"type":"deletion","subject":"cust-3","regime":"gdpr","identity_token":"` + tok + `"}`
		if resp := e.do("POST", "/v1/requests", body, nil, &p); resp.StatusCode != 403 || !strings.HasSuffix(p["type"].(string), adminapi.TypeIdentityNotVerified) {
			t.Errorf("%s: %d %v; want 403 identity-not-verified", name, resp.StatusCode, p)
		}
	}

	// One-time code.
	var r map[string]any
	e.do("POST", "/v1/requests", `{"type":"deletion","subject":"cust-4","regime":"gdpr"}`, nil, &r)
	id, _ := r["id"].(string)
	if r["state"] != "awaiting_verification" {
		t.Fatalf("without identity: %v", r)
	}
	if resp := e.do("POST", "/v1/requests/"+id+"/code", "", nil, nil); resp.StatusCode != 202 || len(sent[id]) != 6 {
		t.Fatalf("send code: %d, sent %q", resp.StatusCode, sent[id])
	}
	var got map[string]any
	e.do("GET", "/v1/requests/"+id, "", nil, &got)
	if _, shown := got["challenge"]; shown {
		t.Errorf("the code's hash is shown: %v", got["challenge"])
	}
	wrong := "000000"
	if sent[id] == wrong {
		wrong = "111111"
	}
	for _, tc := range []struct {
		body   string
		status int
	}{
		{`{"code":"12345"}`, 422},
		{`{"code":"abcdef"}`, 422},
		{`{"code":"` + wrong + `"}`, 403},
		{`{"code":"` + sent[id] + `"}`, 200},
		{`{"code":"` + sent[id] + `"}`, 409},
	} {
		if resp := e.do("POST", "/v1/requests/"+id+"/code/verify", tc.body, nil, nil); resp.StatusCode != tc.status {
			t.Errorf("verify %s: %d; want %d", tc.body, resp.StatusCode, tc.status)
		}
	}
	if resp := e.do("POST", "/v1/requests/nope/code", "", nil, nil); resp.StatusCode != 404 {
		t.Errorf("code for an unknown request: %d; want 404", resp.StatusCode)
	}
	if strings.Contains(e.logs.String(), sent[id]) {
		t.Error("a one-time code reached the log")
	}
}

func TestRequestExtendCancelReject(t *testing.T) {
	e, _ := newRequestsEnv(t)
	var g, p map[string]any
	e.do("POST", "/v1/requests", `{"type":"access","subject":"cust-1","regime":"gdpr"}`, nil, &g)
	e.do("POST", "/v1/requests", `{"type":"access","subject":"cust-2","regime":"pipl"}`, nil, &p)
	gid, pid := g["id"].(string), p["id"].(string)
	for _, tc := range []struct {
		path, body string
		status     int
		problem    string
	}{
		{"/v1/requests/" + pid + "/extend", `{"months":1,"reason":"complex"}`, 422, adminapi.TypeExtensionRefused},
		{"/v1/requests/" + gid + "/extend", `{"months":3,"reason":"complex"}`, 422, adminapi.TypeValidation},
		{"/v1/requests/" + gid + "/extend", `{"months":1}`, 422, adminapi.TypeValidation},
		{"/v1/requests/" + gid + "/extend", `{"months":2,"reason":"complex, many stores"}`, 200, ""},
		{"/v1/requests/" + pid + "/reject", `{}`, 422, adminapi.TypeValidation},
		{"/v1/requests/" + pid + "/reject", `{"reason":"because"}`, 422, adminapi.TypeValidation},
		{"/v1/requests/" + pid + "/reject", `{"reason":"manifestly_unfounded"}`, 200, ""},
		{"/v1/requests/" + pid + "/cancel", `{"reason":"withdrawn"}`, 409, adminapi.TypeConflict},
		{"/v1/requests/" + gid + "/cancel", `{"reason":"withdrawn by the subject"}`, 200, ""},
		{"/v1/requests/nope/cancel", `{"reason":"x"}`, 404, adminapi.TypeNotFound},
	} {
		var out map[string]any
		resp := e.do("POST", tc.path, tc.body, nil, &out)
		if resp.StatusCode != tc.status || (tc.problem != "" && !strings.HasSuffix(out["type"].(string), tc.problem)) {
			t.Errorf("%s %s: %d %v; want %d %s", tc.path, tc.body, resp.StatusCode, out, tc.status, tc.problem)
		}
	}
	var got map[string]any
	e.do("GET", "/v1/requests/"+gid, "", nil, &got)
	dl, _ := got["deadline"].(map[string]any)
	if got["state"] != "cancelled" || dl["extended"] != true {
		t.Errorf("after extend and cancel: %v", got)
	}
}

// rowsStore is a one-table connector holding one row per subject.
type rowsStore struct{}

func (rowsStore) Name() string { return "crm" }
func (rowsStore) Export(_ context.Context, s privguard.SubjectID) (dsar.Export, error) {
	return dsar.Export{Store: "crm", Tables: []dsar.Table{{Name: "customers",
		Categories: map[string]privguard.DataCategory{"email": "user.contact.email"},
		Rows:       []map[string]any{{"id": string(s), "email": "li.lei@example.com"}}}}}, nil
}
func (rowsStore) Erase(context.Context, privguard.SubjectID) (dsar.Erased, error) {
	return dsar.Erased{}, nil
}

func TestRequestResultDownloadOnce(t *testing.T) {
	e, _ := newRequestsEnv(t, rowsStore{})
	var made map[string]any
	body := `{"type":"access","subject":"cust-1","regime":"pipl","identity":{"method":"operator","note":"ID card seen at the store"}}`
	if resp := e.do("POST", "/v1/requests", body, nil, &made); resp.StatusCode != 201 {
		t.Fatalf("submit: %d", resp.StatusCode)
	}
	id := made["id"].(string)
	var p map[string]any
	if resp := e.do("POST", "/v1/requests/"+id+"/link", "", nil, &p); resp.StatusCode != 409 || p["type"] != privguard.ProblemTypePrefix+"no-result" {
		t.Errorf("link before the result: %d %v", resp.StatusCode, p)
	}
	if _, err := e.eng.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	var link map[string]any
	if resp := e.do("POST", "/v1/requests/"+id+"/link", "", nil, &link); resp.StatusCode != 201 {
		t.Fatalf("link: %d %v", resp.StatusCode, link)
	}
	tok := link["token"].(string)
	var view map[string]any
	e.do("GET", "/v1/requests/"+id, "", nil, &view)
	res, _ := view["result"].(map[string]any)
	if res == nil || res["sha256"] == "" || res["token"] != nil {
		t.Errorf("request view result: %v; want the checksum and no token hash", res)
	}

	get := func(query, header string) (*http.Response, []byte) {
		return fetchResult(t, "GET", e.srv.URL+"/v1/requests/"+id+"/result"+query, header)
	}
	for _, tc := range []struct {
		name, query, header string
		status              int
	}{
		{"no token", "", "", 403},
		{"token in the URL (a link checker must not use the download up)", "?token=" + "TOKEN", "", 403},
		{"wrong token", "", strings.Repeat("a", 64), 403},
		{"huge token", "", strings.Repeat("a", 5000), 403},
	} {
		query := strings.ReplaceAll(tc.query, "TOKEN", tok)
		if resp, b := get(query, tc.header); resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s %s", tc.name, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	}
	if resp, _ := fetchResult(t, "HEAD", e.srv.URL+"/v1/requests/"+id+"/result", tok); resp.StatusCode != 405 {
		t.Errorf("HEAD: %d; want 405 (it must not use the download up)", resp.StatusCode)
	}
	if resp, _ := fetchResult(t, "GET", e.srv.URL+"/v1/requests/nope/result", tok); resp.StatusCode != 403 {
		t.Errorf("unknown request: %d; want 403 like a wrong token", resp.StatusCode)
	}
	resp, zb := get("", tok)
	sum := sha256.Sum256(zb)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/zip" ||
		resp.Header.Get("Repr-Digest") != "sha-256=:"+base64.StdEncoding.EncodeToString(sum[:])+":" ||
		resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("download: %d %v", resp.StatusCode, resp.Header)
	}
	if _, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb))); err != nil {
		t.Errorf("the download is not a zip: %v", err)
	}
	if resp, b := get("", tok); resp.StatusCode != 410 || !strings.Contains(string(b), "result-gone") {
		t.Errorf("second download: %d %s; want 410", resp.StatusCode, b)
	}
	if strings.Contains(e.logs.String(), tok) || strings.Contains(e.logs.String(), "cust-1") {
		t.Error("the token or the subject reached the log")
	}
	// The schemas are published.
	sresp, err := http.Get(e.srv.URL + "/v1/schema/disclosure.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	sresp.Body.Close()
	if sresp.StatusCode != 200 || sresp.Header.Get("Content-Type") != "application/schema+json" {
		t.Errorf("schema: %d", sresp.StatusCode)
	}
	if resp := e.do("GET", "/v1/schema/..%2Fresult.go", "", nil, nil); resp.StatusCode != 404 {
		t.Errorf("schema path traversal: %d", resp.StatusCode)
	}
}

func TestEveryRightCanBeRequestedWithIdentifiersOnly(t *testing.T) {
	// proves DSR-01: every right has an intake through the API with no mandatory field
	// beyond the subject's identifier (a correction also says what to correct); the regime
	// defaults; objection and restriction need no identity check (DSR-02).
	e, _ := newRequestsEnv(t, rowsStore{})
	for _, tc := range []struct {
		body, state string
	}{
		{`{"type":"access","subject":"cust-1"}`, "awaiting_verification"},
		{`{"type":"portability","subject":"cust-1"}`, "awaiting_verification"},
		{`{"type":"categories","subject":"cust-1"}`, "awaiting_verification"},
		{`{"type":"correction","subject":"cust-1","patch":{"user.contact.email":"new@example.com"}}`, "awaiting_verification"},
		{`{"type":"deletion","subject":"cust-1"}`, "awaiting_verification"},
		{`{"type":"restriction","subject":"cust-1"}`, "verified"},
		{`{"type":"objection","subject":"cust-1"}`, "verified"},
		{`{"type":"explanation","subject":"cust-1"}`, "awaiting_verification"},
	} {
		var out map[string]any
		resp := e.do("POST", "/v1/requests", tc.body, nil, &out)
		if resp.StatusCode != 201 || out["state"] != tc.state || out["regime"] != "pipl" || out["deadline"] == nil {
			t.Errorf("%s: %d %v; want 201 %s with the default regime and a deadline", tc.body, resp.StatusCode, out, tc.state)
		}
	}
	// A correction of something no store holds is refused up front.
	var p map[string]any
	if resp := e.do("POST", "/v1/requests", `{"type":"correction","subject":"cust-1","patch":{"user.contact.phone_number":"1"}}`, nil, &p); resp.StatusCode != 422 ||
		p["detail"] != "patch category user.contact.phone_number: no store holds it" {
		t.Errorf("correction of an unheld category: %d %v", resp.StatusCode, p)
	}
}

func (rowsStore) Correct(context.Context, privguard.SubjectID, map[privguard.DataCategory]string) (int, error) {
	return 1, nil
}

func (rowsStore) Categories() []privguard.DataCategory {
	return []privguard.DataCategory{"user.contact.email"}
}

func TestRequestListPagesAndIssueNames(t *testing.T) {
	e, _ := newRequestsEnv(t, rowsStore{})
	for i := range 5 {
		var out map[string]any
		// The issue's verbs are accepted as well as the nouns.
		resp := e.do("POST", "/v1/requests", `{"type":"object","subject":"cust-`+strconv.Itoa(i)+`"}`, nil, &out)
		if resp.StatusCode != 201 || out["type"] != "objection" || out["status"] != "verified" || out["due_date"] == nil {
			t.Fatalf("submit: %d %v", resp.StatusCode, out)
		}
	}
	var del map[string]any
	if resp := e.do("POST", "/v1/requests", `{"type":"delete","subject":"cust-9"}`, nil, &del); resp.StatusCode != 201 || del["type"] != "deletion" {
		t.Errorf("type delete: %d %v", resp.StatusCode, del)
	}
	var ids []string
	after := ""
	for pages := 0; ; pages++ {
		var page struct {
			Requests []struct{ ID string }
			Next     string
		}
		e.do("GET", "/v1/requests?status=verified&limit=2&after="+after, "", nil, &page)
		for _, r := range page.Requests {
			ids = append(ids, r.ID)
		}
		if page.Next == "" {
			break
		}
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		after = page.Next
	}
	if len(ids) != 5 || !slices.IsSorted(ids) {
		t.Errorf("paged ids %v; want the 5 verified objections, oldest first", ids)
	}
	e.eng.Step(context.Background())
	var done struct {
		Requests []struct{ ID string }
		Next     string
	}
	e.do("GET", "/v1/requests?status=completed&limit=3", "", nil, &done)
	if len(done.Requests) != 3 || done.Next != done.Requests[2].ID {
		t.Errorf("completed page: %+v", done)
	}
	for _, route := range []string{"DELETE /v1/requests/" + ids[0], "PUT /v1/requests", "GET /v1/callbacks/x", "DELETE /v1/requests/" + ids[0] + "/approve"} {
		method, path, _ := strings.Cut(route, " ")
		var p map[string]any
		if resp := e.do(method, path, "", nil, &p); resp.StatusCode != 405 || p["type"] == nil {
			t.Errorf("%s: %d %v; want a 405 problem", route, resp.StatusCode, p)
		}
	}
	for _, q := range []string{"limit=0", "limit=5000", "limit=x", "overdue=maybe", "after=" + strings.Repeat("a", 100)} {
		var p map[string]any
		if resp := e.do("GET", "/v1/requests?"+q, "", nil, &p); resp.StatusCode != 400 {
			t.Errorf("?%s: %d %v", q, resp.StatusCode, p)
		}
	}
}

func TestRolesDecideWhoMayDoWhat(t *testing.T) {
	e, _ := newRequestsEnv(t, rowsStore{})
	as := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	status := func(tok, method, path, body string) (int, map[string]any) {
		var out map[string]any
		resp := e.do(method, path, body, as(tok), &out)
		return resp.StatusCode, out
	}
	// An app submits for its users and follows; it cannot vouch for an identity itself.
	st, made := status("app-token", "POST", "/v1/requests", `{"type":"access","subject":"cust-1"}`)
	if st != 201 {
		t.Fatalf("app submit: %d %v", st, made)
	}
	id := made["id"].(string)
	st, cor := status("dpo-token", "POST", "/v1/requests", `{"type":"correction","subject":"cust-2","patch":{"user.contact.email":"n@example.com"},"identity":{"method":"operator","note":"desk"}}`)
	if st != 201 || cor["state"] != "awaiting_approval" {
		t.Fatalf("dpo submit with attestation: %d %v", st, cor)
	}
	cid := cor["id"].(string)
	for _, tc := range []struct {
		tok, method, path, body string
		want                    int
	}{
		{"app-token", "POST", "/v1/requests", `{"type":"deletion","subject":"cust-1","identity":{"method":"operator","note":"trust me"}}`, 403},
		{"app-token", "POST", "/v1/requests", `{"type":"deletion","subject":"cust-1","trigger":"retention_expired"}`, 403},
		{"app-token", "POST", "/v1/requests/" + id + "/verify", `{"method":"operator","note":"x"}`, 403},
		{"app-token", "POST", "/v1/requests/" + cid + "/approve", `{"note":"x"}`, 403},
		{"app-token", "POST", "/v1/requests/" + id + "/link", ``, 403},
		{"app-token", "POST", "/v1/requests/" + id + "/reject", `{"reason":"excessive"}`, 403},
		{"app-token", "GET", "/v1/requests/register", ``, 403},
		{"app-token", "GET", "/v1/requests/" + id, ``, 200},
		{"auditor-token", "GET", "/v1/requests/register", ``, 200},
		{"auditor-token", "GET", "/v1/requests/register?format=xml", ``, 400},
		{"auditor-token", "GET", "/v1/requests?limit=5", ``, 200},
		{"auditor-token", "POST", "/v1/requests", `{"type":"objection","subject":"cust-3"}`, 403},
		{"auditor-token", "POST", "/v1/requests/" + cid + "/approve", `{"note":"x"}`, 403},
		{"dpo-token", "POST", "/v1/requests/" + cid + "/approve", `{"note":"checked against the order"}`, 200},
		{"dpo-token", "POST", "/v1/requests", `{"type":"deletion","subject":"cust-4","trigger":"service_ended"}`, 201},
	} {
		st, out := status(tc.tok, tc.method, tc.path, tc.body)
		if st != tc.want || (st == 403 && out["type"] != privguard.ProblemTypePrefix+"forbidden") {
			t.Errorf("%s %s %s: %d %v; want %d", tc.tok, tc.method, tc.path, st, out, tc.want)
		}
	}
	var r map[string]any
	e.do("GET", "/v1/requests/"+cid, "", nil, &r)
	if a, _ := r["approval"].(map[string]any); a["by"] != "dpo-office" {
		t.Errorf("approval recorded as %v; want the dpo's principal", r["approval"])
	}
	// proves SEC-08 (request views): a correction's new value is shown in full only to a
	// principal who may approve corrections; an app or an auditor sees it masked.
	for tok, want := range map[string]string{"dpo-token": "n@example.com", "app-token": "n***@example.com", "auditor-token": "n***@example.com"} {
		_, got := status(tok, "GET", "/v1/requests/"+cid, "")
		if p, _ := got["patch"].(map[string]any); p["user.contact.email"] != want {
			t.Errorf("%s sees the patch as %v; want %q", tok, got["patch"], want)
		}
		_, list := status(tok, "GET", "/v1/requests?limit=100", "")
		if strings.Contains(fmt.Sprint(list), "n@example.com") != (tok == "dpo-token") {
			t.Errorf("%s: the request list shows the patch value: %v", tok, strings.Contains(fmt.Sprint(list), "n@example.com"))
		}
	}
}

// fetchResult calls the download route with the token in its header.
func fetchResult(t *testing.T, method, url, token string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if token != "" {
		req.Header.Set("X-Privguard-Download-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestRegisterCSVExport(t *testing.T) {
	e, _ := newRequestsEnv(t, rowsStore{})
	e.do("POST", "/v1/requests", `{"type":"objection","subject":"cust-1"}`, nil, nil)
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/requests/register?format=csv", nil)
	req.Header.Set("Authorization", "Bearer auditor-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" ||
		!strings.HasPrefix(string(b), "id,type,regime,state,") || strings.Count(string(b), "\n") != 2 || strings.Contains(string(b), "cust-1") {
		t.Errorf("register CSV: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
}

func TestNoPersonalDataInRequestLogs(t *testing.T) {
	// proves SEC-08 (for the request API): canary subject ids, patch values, notes and
	// download tokens sent to every request endpoint, valid or not, never reach the logs.
	e, sent := newRequestsEnv(t, rowsStore{})
	const canary = "canary-qzxw9"
	dpo := map[string]string{"Authorization": "Bearer dpo-token"}
	var acc, cor map[string]any
	e.do("POST", "/v1/requests", `{"type":"access","subject":"`+canary+`","identity":{"method":"operator","note":"passport `+canary+`"}}`, dpo, &acc)
	e.do("POST", "/v1/requests", `{"type":"correction","subject":"`+canary+`","patch":{"user.contact.email":"`+canary+`@example.com"},"identity":{"method":"operator","note":"x"}}`, dpo, &cor)
	e.do("POST", "/v1/requests", `{"type":"correction","subject":"`+canary+`","patch":{"user.`+canary+`":"v"}}`, dpo, nil)
	e.do("POST", "/v1/requests", `{"type":"deletion","subject":"`+canary+` x"}`, dpo, nil)
	e.do("POST", "/v1/requests", `{"type":"deletion","subject":"`+canary+`","`+canary+`":1}`, dpo, nil)
	e.do("POST", "/v1/requests", `{"type":"deletion","subject":"`+canary+`",`, dpo, nil)
	var code map[string]any
	e.do("POST", "/v1/requests", `{"type":"deletion","subject":"`+canary+`-2"}`, dpo, &code)
	cid, _ := code["id"].(string)
	e.do("POST", "/v1/requests/"+cid+"/code", "", dpo, nil)
	e.do("POST", "/v1/requests/"+cid+"/code/verify", `{"code":"000000"}`, dpo, nil)
	e.do("POST", "/v1/requests/"+cid+"/code/verify", `{"code":"`+sent[cid]+`"}`, dpo, nil)
	corID, _ := cor["id"].(string)
	e.do("POST", "/v1/requests/"+corID+"/approve", `{"note":"matches `+canary+`"}`, dpo, nil)
	e.eng.Step(context.Background())
	accID, _ := acc["id"].(string)
	var link map[string]any
	e.do("POST", "/v1/requests/"+accID+"/link", "", dpo, &link)
	tok, _ := link["token"].(string)
	fetchResult(t, "GET", e.srv.URL+"/v1/requests/"+accID+"/result", tok)
	fetchResult(t, "GET", e.srv.URL+"/v1/requests/"+accID+"/result", canary)
	e.do("POST", "/v1/callbacks/crm", `{"id":"`+canary+`"}`, map[string]string{"Privguard-Signature": "t=1,v1=" + canary}, nil)
	e.do("GET", "/v1/requests?after="+canary, "", dpo, nil)
	e.do("GET", "/v1/requests/register?format=csv", "", dpo, nil)
	e.do("GET", "/v1/requests/"+canary, "", dpo, nil)
	logs := e.logs.String()
	if !strings.Contains(logs, `"route"`) || tok == "" {
		t.Fatalf("nothing was logged, or no download happened; the test would prove nothing:\n%s", logs)
	}
	for _, c := range []string{"qzxw9", tok, sent[cid]} {
		if c != "" && strings.Contains(logs, c) {
			t.Errorf("logs contain %q:\n%s", c, logs)
		}
	}
}

func FuzzRequestBody(f *testing.F) {
	for _, seed := range []string{`{"type":"access","subject":"a"}`, `{"type":"correction","subject":"a","patch":{"user.contact.email":"x"}}`,
		`{"type":"deletion","subject":"a","trigger":"retention_expired"}`, `{"type":"portability","subject":"a","transfer_to":"x"}`,
		`{"type":"delete","subject":"a","identity":{"method":"operator","note":"n"}}`, `{"type":"object","subject":"a","regime":"ccpa"}`,
		`{}`, `[`, `{"patch":{"":""}}`, `{"type":"access","subject":"a","identity_token":"x.y.z"}`} {
		f.Add(seed)
	}
	db, err := boltstore.Open(filepath.Join(f.TempDir(), "p.db"), boltstore.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	eng, err := dsar.New(dsar.Config{Store: db.DSAR(), Connectors: []dsar.Connector{rowsStore{}}})
	if err != nil {
		f.Fatal(err)
	}
	v, _ := dsar.NewTokenVerifier(nil, idSecret)
	tokens := adminapi.Tokens{}
	tokens.Add(token, adminapi.Principal{Name: "fuzz", Roles: []string{"admin"}})
	api, err := adminapi.New(adminapi.Config{Ledger: consenttest.Open(f, "", consent.Config{}), Tokens: tokens, Requests: eng, IdentityTokens: v})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/v1/requests", "/v1/callbacks/crm"} {
			req := httptest.NewRequest("POST", path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Privguard-Signature", body)
			w := httptest.NewRecorder()
			api.ServeHTTP(w, req)
			if w.Code >= 500 && w.Code != http.StatusServiceUnavailable {
				t.Fatalf("%s: status %d for %q: %s", path, w.Code, body, w.Body)
			}
			if w.Code >= 400 && w.Header().Get("Content-Type") != privguard.ProblemContentType {
				t.Fatalf("%s: status %d without a problem body for %q", path, w.Code, body)
			}
		}
	})
}

func TestRegisterJSONAndCSVAgree(t *testing.T) {
	// The register is the DPO's export: JSON and CSV carry the same fields, and neither
	// names a subject or repeats free text (notes, patches, cancellation reasons).
	e, _ := newRequestsEnv(t, rowsStore{})
	const canary = "qzreg7"
	dpo := map[string]string{"Authorization": "Bearer dpo-token"}
	var cancel map[string]any
	e.do("POST", "/v1/requests", `{"type":"objection","subject":"cust-`+canary+`-1"}`, nil, nil)
	e.do("POST", "/v1/requests", `{"type":"deletion","subject":"cust-`+canary+`-2"}`, nil, nil)
	e.do("POST", "/v1/requests", `{"type":"access","subject":"cust-`+canary+`-3","identity":{"method":"operator","note":"passport `+canary+`"}}`, dpo, nil)
	e.do("POST", "/v1/requests", `{"type":"correction","subject":"cust-`+canary+`-4","patch":{"user.contact.email":"`+canary+`@example.com"}}`, nil, nil)
	e.do("POST", "/v1/requests", `{"type":"categories","subject":"cust-`+canary+`-5"}`, nil, &cancel)
	e.do("POST", "/v1/requests/"+cancel["id"].(string)+"/cancel", `{"reason":"asked by `+canary+` on the phone"}`, dpo, nil)
	if _, err := e.eng.Step(context.Background()); err != nil {
		t.Fatal(err)
	}

	get := func(query string) []byte {
		req, _ := http.NewRequest("GET", e.srv.URL+"/v1/requests/register"+query, nil)
		req.Header.Set("Authorization", "Bearer auditor-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("register%s: %d %s", query, resp.StatusCode, b)
		}
		if strings.Contains(string(b), canary) {
			t.Errorf("register%s carries a subject id or free text:\n%s", query, b)
		}
		return b
	}
	var reg struct {
		Summary  map[string]any   `json:"summary"`
		Requests []map[string]any `json:"requests"`
	}
	if err := json.Unmarshal(get(""), &reg); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(get("?format=csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(reg.Requests) != 5 || len(rows) != 6 || !slices.Equal(rows[0], dsar.RegisterColumns) || reg.Summary["pipl"] == nil {
		t.Fatalf("register: %d JSON entries, %d CSV lines (header %v), summary %v; want 5 requests each", len(reg.Requests), len(rows), rows[0], reg.Summary)
	}
	for i, entry := range reg.Requests {
		for k := range entry {
			if !slices.Contains(dsar.RegisterColumns, k) {
				t.Errorf("JSON entry %d has %q, which the CSV has no column for", i, k)
			}
		}
		for j, col := range dsar.RegisterColumns {
			want := ""
			switch v := entry[col].(type) {
			case nil:
			case string:
				want = v
			case bool:
				want = strconv.FormatBool(v)
			case float64:
				want = strconv.FormatFloat(v, 'f', -1, 64)
			default:
				t.Fatalf("entry %d %s: unexpected %T", i, col, v)
			}
			if col == "extended_months" && want == "0" {
				want = ""
			}
			if got := rows[i+1][j]; got != want {
				t.Errorf("request %d column %s: CSV %q, JSON %q", i, col, got, want)
			}
		}
	}
}

func TestRefusalsSayWhatWouldWork(t *testing.T) {
	// A 401 or 403 names the roles the policy lets make the call, and a 401 for an unknown
	// token says that configured tokens replace the generated one.
	e, _ := newRequestsEnv(t, rowsStore{})
	for _, tc := range []struct {
		name, tok, method, path, body string
		status                        int
		says                          []string
	}{
		{"app approves", "app-token", "POST", "/v1/requests/x/approve", `{"note":"x"}`, 403, []string{"dpo", "admin"}},
		{"auditor records consent", "auditor-token", "POST", "/v1/consents", `{"subject":"cust-1","action":"object"}`, 403, []string{"app (a token configured without roles)", "admin"}},
		{"app reads the register", "app-token", "GET", "/v1/requests/register", "", 403, []string{"auditor", "dpo", "admin"}},
		{"app attests", "app-token", "POST", "/v1/requests", `{"type":"deletion","subject":"cust-1","identity":{"method":"operator","note":"x"}}`, 403, []string{"dpo", "admin", "identity_token"}},
		{"unknown token", "pg_not-a-token", "POST", "/v1/requests/x/approve", `{"note":"x"}`, 401, []string{"not accepted", "the token hint", "dpo"}},
		{"no token", "", "GET", "/v1/requests/register", "", 401, []string{"Bearer", "auditor"}},
	} {
		h := map[string]string{"Authorization": "Bearer " + tc.tok}
		if tc.tok == "" {
			h["Authorization"] = ""
		}
		var p privguard.Problem
		resp := e.do(tc.method, tc.path, tc.body, h, &p)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d %+v; want %d", tc.name, resp.StatusCode, p, tc.status)
		}
		for _, s := range tc.says {
			if !strings.Contains(p.Detail, s) {
				t.Errorf("%s: detail %q does not mention %q", tc.name, p.Detail, s)
			}
		}
		if tc.status == 403 && strings.Contains(p.Detail, "auditor") && !slices.Contains(tc.says, "auditor") {
			t.Errorf("%s: detail %q names a role that may not", tc.name, p.Detail)
		}
	}
}

func TestRefusalsFollowACustomPolicy(t *testing.T) {
	// The roles named come from the policy in force, not from a list kept by hand.
	l := consenttest.Open(t, "", consent.Config{})
	az, err := authz.New("p, support, /v1/subjects/*, GET\np, app, /v1/consents, POST\n")
	if err != nil {
		t.Fatal(err)
	}
	tokens := adminapi.Tokens{}
	tokens.Add("app-token", adminapi.Principal{Name: "crm"})
	api, err := adminapi.New(adminapi.Config{Ledger: l, Tokens: tokens, Authorizer: az})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/v1/subjects/cust-1/consents", nil)
	req.Header.Set("Authorization", "Bearer app-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p privguard.Problem
	json.NewDecoder(resp.Body).Decode(&p)
	if resp.StatusCode != 403 || !strings.HasSuffix(p.Detail, "needs a token with the role support") {
		t.Errorf("under a custom policy: %d %q; want 403 naming support alone", resp.StatusCode, p.Detail)
	}
}

func TestAnOperatorCannotClaimACodeOrToken(t *testing.T) {
	// How an identity was verified is part of the request's proof (DSR-02): an operator's
	// word is recorded as an operator's, never as a checked code or token.
	e, _ := newRequestsEnv(t)
	dpo := map[string]string{"Authorization": "Bearer dpo-token"}
	var made map[string]any
	e.do("POST", "/v1/requests", `{"type":"deletion","subject":"cust-1"}`, nil, &made)
	id := made["id"].(string)
	for _, body := range []string{`{"method":"code","note":"x"}`, `{"method":"token","note":"x"}`} {
		var p privguard.Problem
		if resp := e.do("POST", "/v1/requests/"+id+"/verify", body, dpo, &p); resp.StatusCode != 422 || p.Field != "method" {
			t.Errorf("verify %s: %d %+v; want 422 on method", body, resp.StatusCode, p)
		}
		var q privguard.Problem
		sub := `{"type":"access","subject":"cust-2","identity":` + body + `}`
		if resp := e.do("POST", "/v1/requests", sub, dpo, &q); resp.StatusCode != 422 || q.Field != "identity.method" {
			t.Errorf("submit with %s: %d %+v; want 422 on identity.method", body, resp.StatusCode, q)
		}
	}
	var got map[string]any
	if resp := e.do("POST", "/v1/requests/"+id+"/verify", `{"method":"operator","note":"ID card"}`, dpo, &got); resp.StatusCode != 200 {
		t.Fatalf("operator verify: %d %v", resp.StatusCode, got)
	}
	if idn, _ := got["identity"].(map[string]any); idn["method"] != "operator" || idn["operator"] != "dpo-office" {
		t.Errorf("identity = %v; want operator dpo-office", got["identity"])
	}
}

func TestCodeSendsAreBounded(t *testing.T) {
	// Codes are bounded per request (one a minute, five in all) and per subject (ten a day
	// over all its requests), answered 429 with Retry-After when waiting helps; guessing is
	// bounded per request, not per code.
	clk := &consenttest.Clock{}
	e, sent := newRequestsEnvClock(t, clk.Now, rowsStore{})
	app := map[string]string{"Authorization": "Bearer app-token"}
	submit := func(body string) string {
		var r map[string]any
		if resp := e.do("POST", "/v1/requests", body, app, &r); resp.StatusCode != 201 {
			t.Fatalf("submit %s: %d %v", body, resp.StatusCode, r)
		}
		return r["id"].(string)
	}
	send := func(id string) (int, string, privguard.Problem) {
		var p privguard.Problem
		resp := e.do("POST", "/v1/requests/"+id+"/code", "", app, &p)
		return resp.StatusCode, resp.Header.Get("Retry-After"), p
	}
	ids := []string{
		submit(`{"type":"access","subject":"cust-1"}`),
		submit(`{"type":"deletion","subject":"cust-1"}`),
		submit(`{"type":"categories","subject":"cust-1"}`),
	}

	// Per request: a cooldown, then at most dsar.CodeSendsPerRequest.
	if st, _, p := send(ids[0]); st != 202 {
		t.Fatalf("first code: %d %+v", st, p)
	}
	st, after, p := send(ids[0])
	if secs, _ := strconv.Atoi(after); st != 429 || p.Type != privguard.ProblemTypePrefix+adminapi.TypeTooManyCodes || secs < 1 || secs > 60 {
		t.Errorf("a second code at once: %d Retry-After %q %+v; want 429 too-many-codes, Retry-After 1..60", st, after, p)
	}
	for i := 1; i < dsar.CodeSendsPerRequest; i++ {
		clk.Advance(dsar.CodeResendInterval)
		if st, _, p := send(ids[0]); st != 202 {
			t.Fatalf("code %d after the cooldown: %d %+v", i+1, st, p)
		}
	}
	clk.Advance(dsar.CodeResendInterval)
	if st, after, p := send(ids[0]); st != 429 || after != "" || p.Type != privguard.ProblemTypePrefix+adminapi.TypeTooManyCodes {
		t.Errorf("code %d: %d Retry-After %q %+v; want 429 without Retry-After (waiting does not help)", dsar.CodeSendsPerRequest+1, st, after, p)
	}

	// Per subject: the second request takes the subject to its ten a day; the third waits.
	for i := 0; i < adminapi.DefaultCodesPerSubject-dsar.CodeSendsPerRequest; i++ {
		clk.Advance(dsar.CodeResendInterval)
		if st, _, p := send(ids[1]); st != 202 {
			t.Fatalf("second request, code %d: %d %+v", i+1, st, p)
		}
	}
	st, after, p = send(ids[2])
	secs, _ := strconv.Atoi(after)
	if st != 429 || p.Type != privguard.ProblemTypePrefix+adminapi.TypeTooManyCodes || secs < 23*3600 || secs > 24*3600 {
		t.Errorf("eleventh code for the subject: %d Retry-After %q %+v; want 429 with about 24 h", st, after, p)
	}
	var other map[string]any
	e.do("POST", "/v1/requests", `{"type":"access","subject":"cust-2"}`, app, &other)
	if st, _, p := send(other["id"].(string)); st != 202 {
		t.Errorf("another subject is not held up: %d %+v", st, p)
	}
	clk.Advance(adminapi.CodeSubjectWindow)
	if st, _, p := send(ids[2]); st != 202 {
		t.Errorf("a day later: %d %+v; want 202", st, p)
	}

	// Guessing: ten wrong codes per request, however many codes; then even the right one
	// is refused.
	id := ids[2]
	wrong := func() string {
		if sent[id] == "000000" {
			return "111111"
		}
		return "000000"
	}
	statuses := []int{}
	for range 2 {
		for range dsar.CodeAttempts {
			resp := e.do("POST", "/v1/requests/"+id+"/code/verify", `{"code":"`+wrong()+`"}`, app, nil)
			statuses = append(statuses, resp.StatusCode)
		}
		clk.Advance(dsar.CodeResendInterval)
		send(id)
	}
	if n := len(statuses); statuses[0] != 403 || statuses[n-1] != 429 {
		t.Errorf("wrong codes answered %v; want 403s, then 429 at the budget", statuses)
	}
	var q privguard.Problem
	if resp := e.do("POST", "/v1/requests/"+id+"/code/verify", `{"code":"`+sent[id]+`"}`, app, &q); resp.StatusCode != 429 || q.Type != privguard.ProblemTypePrefix+adminapi.TypeTooManyAttempts {
		t.Errorf("the right code after %d wrong ones: %d %+v; want 429 too-many-attempts", dsar.CodeGuessBudget, resp.StatusCode, q)
	}
}

func TestRepeatedParametersAreRefused(t *testing.T) {
	// Like a key twice in a body: a query parameter or header given twice (or status and
	// its synonym state) could be read either way, so it is refused.
	e, _ := newRequestsEnv(t)
	e.registerNotice()
	for _, tc := range []struct {
		name, method, path, body string
		header                   http.Header
		status                   int
		field                    string
	}{
		{"status twice", "GET", "/v1/requests?status=completed&status=verified", "", nil, 400, "status"},
		{"status and state", "GET", "/v1/requests?status=completed&state=verified", "", nil, 400, "state"},
		{"limit twice", "GET", "/v1/requests?limit=1&limit=1000", "", nil, 400, "limit"},
		{"format twice", "GET", "/v1/requests/register?format=json&format=csv", "", nil, 400, "format"},
		{"two idempotency keys", "POST", "/v1/consents", `{"subject":"cust-1","action":"object"}`,
			http.Header{"Idempotency-Key": {"a", "b"}}, 400, "Idempotency-Key"},
		{"two bearer tokens", "GET", "/healthz", "", http.Header{"Authorization": {"Bearer " + token, "Bearer other"}}, 400, "Authorization"},
	} {
		req, _ := http.NewRequest(tc.method, e.srv.URL+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		for k, v := range tc.header {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p privguard.Problem
		json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if resp.StatusCode != tc.status || p.Field != tc.field {
			t.Errorf("%s: %d %+v; want %d field %q", tc.name, resp.StatusCode, p, tc.status, tc.field)
		}
	}
	if n := e.ledger.Stats().Records; n != 0 {
		t.Errorf("%d records written by refused requests", n)
	}
}

func TestRequestInputsSayWhatIsWanted(t *testing.T) {
	e, _ := newRequestsEnv(t, rowsStore{})
	for _, tc := range []struct{ name, method, path, body, field, says string }{
		{"unknown status", "GET", "/v1/requests?status=bogus", "", "status", "want one of received, awaiting_verification"},
		{"correction without patch", "POST", "/v1/requests", `{"type":"correction","subject":"cust-2","identity":{"method":"operator","note":"x"}}`, "patch", "a correction needs the new values"},
		{"patch on a deletion", "POST", "/v1/requests", `{"type":"deletion","subject":"cust-2","patch":{"user.contact.email":"x@example.com"}}`, "patch", "only a correction"},
	} {
		var p privguard.Problem
		resp := e.do(tc.method, tc.path, tc.body, nil, &p)
		if resp.StatusCode/100 != 4 || p.Field != tc.field || !strings.Contains(p.Detail, tc.says) {
			t.Errorf("%s: %d %+v; want a 4xx naming %s and saying %q", tc.name, resp.StatusCode, p, tc.field, tc.says)
		}
	}
}

// A bulk erasure is the operator's word for every subject, stored at once: each request
// verified with the operator named; an app may not; a malformed id is named by its place
// and nothing is stored.
func TestBulkRequests(t *testing.T) {
	e, _ := newRequestsEnv(t)
	dpo := map[string]string{"Authorization": "Bearer dpo-token"}
	var out struct {
		Requests []struct{ ID, State string }
	}
	resp := e.do("POST", "/v1/requests/bulk", `{"type":"deletion","regime":"pipl","subjects":["bulk-1","bulk-2","bulk-3"],"identity":{"method":"operator","note":"signed forms, ticket 42"}}`, dpo, &out)
	if resp.StatusCode != http.StatusCreated || len(out.Requests) != 3 {
		t.Fatalf("bulk = %d %+v; want 201 and 3 requests", resp.StatusCode, out)
	}
	for i, r := range out.Requests {
		var view map[string]any
		e.do("GET", "/v1/requests/"+r.ID, "", nil, &view)
		if r.State != "verified" || view["subject"] != fmt.Sprintf("bulk-%d", i+1) {
			t.Errorf("request %d: %s %v; want verified for bulk-%d", i, r.State, view, i+1)
		}
	}
	before, _ := e.eng.List(context.Background())
	for name, c := range map[string]struct {
		body, auth string
		status     int
		field      string
	}{
		"app":             {`{"type":"deletion","subjects":["bulk-9"],"identity":{"method":"operator"}}`, "Bearer app-token", 403, ""},
		"bad_id":          {`{"type":"deletion","subjects":["bulk-9","bad id"],"identity":{"method":"operator"}}`, "Bearer dpo-token", 422, "subjects[1]"},
		"no_attestation":  {`{"type":"deletion","subjects":["bulk-9"]}`, "Bearer dpo-token", 422, ""},
		"access_not_bulk": {`{"type":"access","subjects":["bulk-9"],"identity":{"method":"operator"}}`, "Bearer dpo-token", 422, ""},
		"empty":           {`{"type":"deletion","subjects":[],"identity":{"method":"operator"}}`, "Bearer dpo-token", 422, ""},
	} {
		var p struct{ Field string }
		resp := e.do("POST", "/v1/requests/bulk", c.body, map[string]string{"Authorization": c.auth}, &p)
		if resp.StatusCode != c.status || (c.field != "" && p.Field != c.field) {
			t.Errorf("%s: %d field %q; want %d %q", name, resp.StatusCode, p.Field, c.status, c.field)
		}
	}
	if after, _ := e.eng.List(context.Background()); len(after) != len(before) {
		t.Errorf("refused bulk requests stored %d requests", len(after)-len(before))
	}
}

func TestExplanationRoutesToAHumanReview(t *testing.T) {
	// proves DSR-14: an explanation with human_review waits in the review queue (GET
	// /v1/requests?status=awaiting_review, and the register) until an operator answers it
	// with POST /v1/requests/{id}/review; an app cannot answer it.
	e, _ := newRequestsEnv(t)
	var req map[string]any
	body := fmt.Sprintf(`{"type":"explanation","subject":"cust-1","identity_token":%q,"human_review":true,"statement":"my income is higher"}`,
		appToken(t, idSecret, "cust-1"))
	if resp := e.do("POST", "/v1/requests", body, map[string]string{"Authorization": "Bearer app-token"}, &req); resp.StatusCode != 201 {
		t.Fatalf("explanation: %d %v", resp.StatusCode, req)
	}
	id := req["id"].(string)
	e.eng.Step(context.Background())
	var page struct{ Requests []map[string]any }
	e.do("GET", "/v1/requests?status=awaiting_review", "", map[string]string{"Authorization": "Bearer operator-token"}, &page)
	if len(page.Requests) != 1 || page.Requests[0]["id"] != id || page.Requests[0]["explanation"] == nil {
		t.Fatalf("review queue: %v; want the explanation with its answer", page.Requests)
	}
	var reg struct{ Requests []dsar.RegisterEntry }
	e.do("GET", "/v1/requests/register", "", nil, &reg)
	if len(reg.Requests) != 1 || reg.Requests[0].HumanReview != "requested" || reg.Requests[0].State != dsar.StateAwaitingReview {
		t.Errorf("register: %+v; want the review requested", reg.Requests)
	}
	for _, tc := range []struct {
		token, body string
		status      int
	}{
		{"app-token", `{"outcome":"upheld","note":"x"}`, 403},
		{"operator-token", `{"outcome":"overturned","note":"x"}`, 422},
		{"operator-token", `{"outcome":"upheld"}`, 422},
		{"operator-token", `{"outcome":"changed","note":"income re-checked; approved"}`, 200},
		{"operator-token", `{"outcome":"upheld","note":"again"}`, 409},
	} {
		var out map[string]any
		if resp := e.do("POST", "/v1/requests/"+id+"/review", tc.body, map[string]string{"Authorization": "Bearer " + tc.token}, &out); resp.StatusCode != tc.status {
			t.Errorf("%s review %s: %d %v; want %d", tc.token, tc.body, resp.StatusCode, out, tc.status)
		}
	}
	var got map[string]any
	e.do("GET", "/v1/requests/"+id, "", nil, &got)
	if rv, _ := got["human_review"].(map[string]any); got["state"] != "completed" || rv["outcome"] != "changed" || rv["by"] != "credit-officer" {
		t.Errorf("after the review: %v", got)
	}
	var p map[string]any
	if resp := e.do("POST", "/v1/requests", `{"type":"access","subject":"cust-2","human_review":true}`, nil, &p); resp.StatusCode != 422 || p["field"] != "human_review" {
		t.Errorf("human_review on access: %d %v; want 422 naming human_review", resp.StatusCode, p)
	}
}

func TestCloseRelativeRequests(t *testing.T) {
	// proves DSR-15: POST /v1/requests takes a close relative of a deceased subject as the
	// requester for access, a copy, correction and deletion only (another type is 422
	// naming PIPL Art. 49); the subject's token or code never verifies it, an operator
	// does; an app sees the proof masked.
	e, _ := newRequestsEnv(t, rowsStore{})
	app := map[string]string{"Authorization": "Bearer app-token"}
	relative := `"requester":{"role":"close_relative","name":"Wang Fang","relation":"spouse","proof":"death certificate 京-2026-0042; marriage certificate"}`
	for _, tc := range []struct {
		body, field, detail string
	}{
		{`{"type":"objection","subject":"cust-9",` + relative + `}`, "type", "PIPL Art. 49"},
		{`{"type":"restriction","subject":"cust-9",` + relative + `}`, "type", "PIPL Art. 49"},
		{`{"type":"access","subject":"cust-9","requester":{"role":"close_relative","name":"W","relation":"cousin","proof":"x"}}`, "requester.relation", ""},
		{`{"type":"access","subject":"cust-9","requester":{"role":"friend","name":"W","relation":"spouse","proof":"x"}}`, "requester.role", ""},
		{`{"type":"access","subject":"cust-9","requester":{"role":"close_relative","name":"W","relation":"spouse"}}`, "requester.proof", ""},
		{fmt.Sprintf(`{"type":"access","subject":"cust-9","identity_token":%q,`+relative+`}`, appToken(t, idSecret, "cust-9")), "requester", "never by the subject's token"},
	} {
		var p map[string]any
		resp := e.do("POST", "/v1/requests", tc.body, app, &p)
		detail, _ := p["detail"].(string)
		if resp.StatusCode != 422 || p["field"] != tc.field || !strings.Contains(detail, tc.detail) {
			t.Errorf("%s: %d %v; want 422 on %s", tc.body, resp.StatusCode, p, tc.field)
		}
	}
	var req map[string]any
	if resp := e.do("POST", "/v1/requests", `{"type":"access","subject":"cust-9",`+relative+`}`, app, &req); resp.StatusCode != 201 || req["state"] != "awaiting_verification" {
		t.Fatalf("a close relative's access: %d %v", resp.StatusCode, req)
	}
	id := req["id"].(string)
	if q, _ := req["requester"].(map[string]any); q["relation"] != "spouse" || strings.Contains(fmt.Sprint(q["proof"]), "京-2026-0042") {
		t.Errorf("as the app sees it: %v; want the relation, the proof masked", q)
	}
	var p map[string]any
	if resp := e.do("POST", "/v1/requests/"+id+"/code", `{}`, app, &p); resp.StatusCode != 409 {
		t.Errorf("a code for a close relative's request: %d %v; want 409", resp.StatusCode, p)
	}
	dpo := map[string]string{"Authorization": "Bearer dpo-token"}
	if resp := e.do("POST", "/v1/requests/"+id+"/verify", `{"method":"operator"}`, dpo, &p); resp.StatusCode != 422 || p["field"] != "note" {
		t.Errorf("verified without a note of the proof: %d %v", resp.StatusCode, p)
	}
	var got map[string]any
	if resp := e.do("POST", "/v1/requests/"+id+"/verify", `{"method":"operator","note":"certificates seen at the branch"}`, dpo, &got); resp.StatusCode != 200 || got["state"] != "verified" {
		t.Errorf("verified by the dpo: %d %v", resp.StatusCode, got)
	}
	if q, _ := got["requester"].(map[string]any); !strings.Contains(fmt.Sprint(q["proof"]), "京-2026-0042") {
		t.Errorf("as the dpo sees it: %v; want the proof in full", q)
	}
}

func TestRequestLanguageAndZone(t *testing.T) {
	// lang and zone choose the answer's language and time zone; an unknown one is a
	// problem naming the field.
	e, _ := newRequestsEnv(t)
	for _, tc := range []struct {
		body, field string
		status      int
	}{
		{`{"type":"access","subject":"cust-1","lang":"fr"}`, "lang", 422},
		{`{"type":"access","subject":"cust-1","zone":"Mars/Olympus"}`, "zone", 422},
		{`{"type":"access","subject":"cust-1","zone":"Local"}`, "zone", 422},
		{`{"type":"access","subject":"cust-1","regime":"gdpr","lang":"zh-CN","zone":"Europe/Berlin"}`, "", 201},
	} {
		var out map[string]any
		resp := e.do("POST", "/v1/requests", tc.body, nil, &out)
		if resp.StatusCode != tc.status || (tc.field != "" && out["field"] != tc.field) {
			t.Errorf("%s: %d %v; want %d on %q", tc.body, resp.StatusCode, out, tc.status, tc.field)
		}
		if tc.status == 201 && (out["lang"] != "zh-CN" || out["zone"] != "Europe/Berlin") {
			t.Errorf("%s: %v; want lang and zone kept", tc.body, out)
		}
	}
}
