package adminapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/internal/adminapi"
)

const token = "pg_test-token-0123456789abcdef"

type env struct {
	t      *testing.T
	srv    *httptest.Server
	ledger *consent.Ledger
	logs   *bytes.Buffer
	eng    *dsar.Engine // with newRequestsEnv
}

func newEnv(t *testing.T) *env {
	t.Helper()
	l := consenttest.Open(t, "", consent.Config{})
	logs := &bytes.Buffer{}
	tokens := adminapi.Tokens{}
	tokens.Add(token, adminapi.Principal{Name: "crm", Roles: []string{"admin"}})
	api, err := adminapi.New(adminapi.Config{Ledger: l, Tokens: tokens,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, ledger: l, logs: logs}
}

// do sends a request and decodes a JSON answer into out (if not nil).
func (e *env) do(method, path, body string, header map[string]string, out any) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	return resp
}

const noticeJSON = `{"id":"marketing","version":1,"language":"zh-CN","text":"我们将使用您的手机号码向您发送促销短信。",
 "purposes":["marketing","third_party.sharing"],"controller":{"name":"Example Retail Ltd","contact":"privacy@example.com"},
 "retention":"13 months after the last purchase","rights_channels":["https://example.com/privacy"],
 "categories":["user.contact.phone_number"],"policy_url":"https://example.com/privacy"}`

const grantJSON = `{"subject":"cust-42","purpose":"marketing.communications.sms","action":"grant","regime":"pipl",
 "notice":{"id":"marketing","version":1},"channel":"app","method":"explicit",
 "evidence":{"user_agent":"ExampleApp/7.2","ip":"203.0.113.77"}}`

func (e *env) registerNotice() {
	e.t.Helper()
	if resp := e.do("POST", "/v1/notices", noticeJSON, nil, nil); resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("POST /v1/notices = %d; want 201", resp.StatusCode)
	}
}

type recordJSON struct {
	ID       string `json:"id"`
	Seq      uint64 `json:"seq"`
	Hash     string `json:"hash"`
	PrevHash string `json:"prev_hash"`
	State    string `json:"state"`
	Evidence struct {
		IPPrefix string `json:"ip_prefix"`
		IPHash   string `json:"ip_hash"`
	} `json:"evidence"`
	Notice struct {
		SHA256 string `json:"sha256"`
	} `json:"notice"`
}

func TestConsentAPIFlow(t *testing.T) {
	e := newEnv(t)
	e.registerNotice()
	if resp := e.do("POST", "/v1/notices", noticeJSON, nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("re-registering the same notice = %d; want 200", resp.StatusCode)
	}

	var rec recordJSON
	resp := e.do("POST", "/v1/consents", grantJSON, map[string]string{"Idempotency-Key": "grant-42"}, &rec)
	if resp.StatusCode != http.StatusCreated || rec.ID == "" || len(rec.Hash) != 64 || rec.State != "dpv:ConsentGiven" {
		t.Fatalf("grant = %d %+v; want 201 with id, hash, dpv:ConsentGiven", resp.StatusCode, rec)
	}
	if rec.Evidence.IPPrefix != "203.0.113.0/24" || rec.Evidence.IPHash == "" || len(rec.Notice.SHA256) != 64 {
		t.Errorf("evidence = %+v notice hash %q; want a /24 prefix, a keyed hash and the notice text hash", rec.Evidence, rec.Notice.SHA256)
	}
	var again recordJSON
	resp = e.do("POST", "/v1/consents", grantJSON, map[string]string{"Idempotency-Key": "grant-42"}, &again)
	if resp.StatusCode != http.StatusOK || again.ID != rec.ID || resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry = %d id %s; want 200 with the same record %s", resp.StatusCode, again.ID, rec.ID)
	}
	var prob privguard.Problem
	other := strings.Replace(grantJSON, "sms", "email", 1)
	if resp := e.do("POST", "/v1/consents", other, map[string]string{"Idempotency-Key": "grant-42"}, &prob); resp.StatusCode != http.StatusConflict {
		t.Errorf("key reused for another request = %d %+v; want 409", resp.StatusCode, prob)
	}

	var view consent.SubjectView
	e.do("GET", "/v1/subjects/cust-42/consents", "", nil, &view)
	if len(view.Purposes) != 1 || !view.Purposes[0].Allowed || view.Purposes[0].RecordID != rec.ID {
		t.Fatalf("subject view = %+v; want sms allowed by %s", view, rec.ID)
	}

	// proves CON-07 and DSR-02: withdrawal with only the subject identifier and purpose.
	var w recordJSON
	resp = e.do("POST", "/v1/consents", `{"subject":"cust-42","purpose":"marketing.communications.sms","action":"withdraw"}`, nil, &w)
	if resp.StatusCode != http.StatusCreated || w.PrevHash != rec.Hash {
		t.Fatalf("withdraw = %d prev %s; want 201 chained to %s", resp.StatusCode, w.PrevHash, rec.Hash)
	}
	e.do("GET", "/v1/subjects/cust-42/consents", "", nil, &view)
	if view.Purposes[0].Allowed || view.Purposes[0].State != consent.StateWithdrawn {
		t.Errorf("after withdrawal: %+v; want withdrawn", view.Purposes[0])
	}
	var hist struct {
		Records []recordJSON `json:"records"`
	}
	e.do("GET", "/v1/subjects/cust-42/consents/history", "", nil, &hist)
	if len(hist.Records) != 2 || hist.Records[0].ID != rec.ID || hist.Records[1].ID != w.ID {
		t.Errorf("history = %+v; want the grant then the withdrawal", hist.Records)
	}
	// proves DSR-13 (recorded side): objection with the identifier only.
	if resp := e.do("POST", "/v1/consents", `{"subject":"cust-42","action":"object"}`, nil, nil); resp.StatusCode != http.StatusCreated {
		t.Errorf("objection = %d; want 201", resp.StatusCode)
	}
}

func TestReceiptIsSignedAndComplete(t *testing.T) {
	// proves CON-14: a signed, machine-readable receipt verifiable with the published key,
	// and CON-04: it carries the ISO/IEC TS 27560 mandatory fields.
	e := newEnv(t)
	e.registerNotice()
	var rec recordJSON
	e.do("POST", "/v1/consents", grantJSON, nil, &rec)
	var signed consent.SignedReceipt
	if resp := e.do("GET", "/v1/consents/"+rec.ID+"/receipt", "", nil, &signed); resp.StatusCode != http.StatusOK {
		t.Fatalf("receipt = %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/receipts/keys", nil) // public: no token
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var jwks jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&jwks); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("keys = %d, %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	jws, err := jose.ParseSigned(signed.JWS, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatalf("ParseSigned: %v", err)
	}
	keys := jwks.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in the published key set", jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("receipt signature does not verify: %v", err)
	}
	var rc map[string]any
	if err := json.Unmarshal(payload, &rc); err != nil {
		t.Fatal(err)
	}
	// Kantara v1.1 mandatory fields.
	for _, k := range []string{"version", "jurisdiction", "consentTimestamp", "collectionMethod", "consentReceiptID",
		"language", "piiPrincipalId", "piiControllers", "policyUrl", "services", "sensitive", "spiCat"} {
		if _, ok := rc[k]; !ok {
			t.Errorf("receipt lacks Kantara field %s", k)
		}
	}
	// ISO/IEC TS 27560 fields Kantara lacks.
	ext, _ := rc["iso27560"].(map[string]any)
	for _, k := range []string{"notice_sha256", "retention", "withdrawal_method", "valid_until", "state", "legal_basis",
		"regime", "record_hash", "prev_hash", "actor"} {
		if v, ok := ext[k]; !ok || v == "" {
			t.Errorf("receipt lacks 27560 field %s", k)
		}
	}
	if rc["consentReceiptID"] != rec.ID || ext["record_hash"] != rec.Hash {
		t.Errorf("receipt names %v / %v; want %s / %s", rc["consentReceiptID"], ext["record_hash"], rec.ID, rec.Hash)
	}
	if resp := e.do("GET", "/v1/consents/no-such-id/receipt", "", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown receipt = %d; want 404", resp.StatusCode)
	}
}

func TestBadInputGetsProblems(t *testing.T) {
	e := newEnv(t)
	e.registerNotice()
	big := `{"subject":"cust-1","action":"withdraw","purpose":"` + strings.Repeat("a", adminapi.MaxConsentBody) + `"}`
	cases := []struct {
		name         string
		method, path string
		body         string
		header       map[string]string
		status       int
		typ, field   string
	}{
		{"no_token", "GET", "/v1/subjects/cust-1/consents", "", map[string]string{"Authorization": ""}, 401, adminapi.TypeUnauthenticated, ""},
		{"wrong_token", "GET", "/v1/subjects/cust-1/consents", "", map[string]string{"Authorization": "Bearer nope"}, 401, adminapi.TypeUnauthenticated, ""},
		{"basic_auth", "GET", "/readyz", "", map[string]string{"Authorization": "Basic YTpi"}, 401, adminapi.TypeUnauthenticated, ""},
		{"wrong_content_type", "POST", "/v1/consents", grantJSON, map[string]string{"Content-Type": "text/plain"}, 415, adminapi.TypeUnsupportedMediaType, ""},
		{"no_content_type", "POST", "/v1/consents", grantJSON, map[string]string{"Content-Type": ""}, 415, adminapi.TypeUnsupportedMediaType, ""},
		{"too_large", "POST", "/v1/consents", big, nil, 413, adminapi.TypeBodyTooLarge, ""},
		{"malformed_json", "POST", "/v1/consents", `{"subject":`, nil, 400, adminapi.TypeMalformedJSON, ""},
		{"not_an_object", "POST", "/v1/consents", `[1,2]`, nil, 400, adminapi.TypeMalformedJSON, ""},
		{"two_values", "POST", "/v1/consents", `{"subject":"a","action":"object"} {}`, nil, 400, adminapi.TypeMalformedJSON, ""},
		{"wrong_type", "POST", "/v1/consents", `{"subject":42,"action":"object"}`, nil, 400, adminapi.TypeMalformedJSON, "subject"},
		{"unknown_field", "POST", "/v1/consents", `{"subject":"a","action":"object","colour":"red"}`, nil, 400, adminapi.TypeMalformedJSON, "colour"},
		{"missing_subject", "POST", "/v1/consents", `{"action":"object"}`, nil, 422, adminapi.TypeValidation, "subject"},
		{"unknown_action", "POST", "/v1/consents", `{"subject":"a","action":"delete"}`, nil, 422, adminapi.TypeValidation, "action"},
		{"malformed_subject", "POST", "/v1/consents", `{"subject":"a/b","action":"object"}`, nil, 422, adminapi.TypeValidation, "subject"},
		{"unknown_purpose", "POST", "/v1/consents", strings.Replace(grantJSON, "communications.sms", "pigeon", 1), nil, 422, adminapi.TypeValidation, "purpose"},
		{"unknown_notice_version", "POST", "/v1/consents", strings.Replace(grantJSON, `"version":1`, `"version":7`, 1), nil, 422, adminapi.TypeValidation, "notice.version"},
		{"negative_version", "POST", "/v1/consents", strings.Replace(grantJSON, `"version":1`, `"version":-1`, 1), nil, 400, adminapi.TypeMalformedJSON, "notice.version"},
		{"bad_ip", "POST", "/v1/consents", strings.Replace(grantJSON, "203.0.113.77", "999.1.1.1", 1), nil, 422, adminapi.TypeValidation, "evidence.ip"},
		{"pipl_legitimate_interest", "POST", "/v1/consents", `{"subject":"a","action":"object","regime":"pipl","legal_basis":"legitimate_interest"}`, nil, 422, adminapi.TypeValidation, "legal_basis"},
		{"bad_idempotency_key", "POST", "/v1/consents", grantJSON, map[string]string{"Idempotency-Key": strings.Repeat("k", 300)}, 400, adminapi.TypeValidation, "Idempotency-Key"},
		{"notice_without_retention", "POST", "/v1/notices", strings.Replace(strings.Replace(noticeJSON, `"retention":"13 months after the last purchase",`, "", 1), `"version":1`, `"version":3`, 1), nil, 422, adminapi.TypeValidation, "retention"},
		{"notice_bad_language", "POST", "/v1/notices", strings.Replace(noticeJSON, "zh-CN", "not a tag!", 1), nil, 422, adminapi.TypeValidation, "language"},
		{"notice_text_changed", "POST", "/v1/notices", strings.Replace(noticeJSON, "促销短信", "广告", 1), nil, 409, adminapi.TypeConflict, "text"},
		{"bad_subject_in_path", "GET", "/v1/subjects/a%20b/consents", "", nil, 400, adminapi.TypeInvalidSubject, "subject"},
		{"long_subject_in_path", "GET", "/v1/subjects/" + strings.Repeat("a", 200) + "/consents", "", nil, 400, adminapi.TypeInvalidSubject, "subject"},
		{"unknown_notice", "GET", "/v1/notices/nope", "", nil, 404, adminapi.TypeNotFound, ""},
		{"unknown_route", "GET", "/v2/everything", "", nil, 404, adminapi.TypeNotFound, ""},
		{"wrong_method", "DELETE", "/v1/consents", "", nil, 405, adminapi.TypeMethodNotAllowed, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.ledger.Stats().Records
			var p privguard.Problem
			resp := e.do(tc.method, tc.path, tc.body, tc.header, &p)
			if resp.StatusCode != tc.status || p.Type != privguard.ProblemTypePrefix+tc.typ || p.Field != tc.field {
				t.Errorf("= %d %s field %q; want %d %s field %q (%+v)", resp.StatusCode, p.Type, p.Field, tc.status, tc.typ, tc.field, p)
			}
			if ct := resp.Header.Get("Content-Type"); ct != privguard.ProblemContentType {
				t.Errorf("Content-Type = %q; want %s", ct, privguard.ProblemContentType)
			}
			if p.Status != tc.status {
				t.Errorf("problem status = %d; want %d", p.Status, tc.status)
			}
			if after := e.ledger.Stats().Records; after != before {
				t.Errorf("a rejected request wrote %d records", after-before)
			}
		})
	}
}

func TestNoPersonalDataInLogs(t *testing.T) {
	// proves SEC-08 (for the consent API): canary subject ids, emails, user agents and IP
	// addresses sent to every endpoint, valid or not, never appear in the logs.
	e := newEnv(t)
	e.registerNotice()
	const subject, email, ua, ip = "canary-subject-qzxw9", "canary.qzxw9@example.com", "CanaryAgent/qzxw9", "198.51.100.213"
	grant := strings.NewReplacer("cust-42", subject, "ExampleApp/7.2", ua, "203.0.113.77", ip).Replace(grantJSON)
	var rec recordJSON
	e.do("POST", "/v1/consents", grant, nil, &rec)
	e.do("POST", "/v1/consents", strings.Replace(grant, subject, email, 1), nil, nil)
	e.do("POST", "/v1/consents", strings.Replace(grant, `"grant"`, `"grantt"`, 1), nil, nil)
	e.do("POST", "/v1/consents", `{"subject":"`+email+`","action":"object","colour":"`+email+`"}`, nil, nil)
	e.do("POST", "/v1/consents", `{"subject":"`+email+` x","action":"object"}`, nil, nil)
	e.do("POST", "/v1/consents", `{"subject":"`+email+`",`, nil, nil)
	e.do("GET", "/v1/subjects/"+subject+"/consents", "", nil, nil)
	e.do("GET", "/v1/subjects/"+email+"/consents/history", "", nil, nil)
	e.do("GET", "/v1/subjects/"+subject+"%20x/consents", "", nil, nil)
	e.do("GET", "/v1/consents/"+rec.ID+"/receipt", "", nil, nil)
	e.do("DELETE", "/v1/subjects/"+subject+"/consents", "", nil, nil)
	e.do("GET", "/v1/subjects/"+subject, "", map[string]string{"Authorization": "Bearer " + email}, nil)
	logs := e.logs.String()
	if !strings.Contains(logs, `"route"`) {
		t.Fatalf("nothing was logged at debug level; the test would prove nothing:\n%s", logs)
	}
	for _, canary := range []string{"qzxw9", ip, "198.51.100"} {
		if strings.Contains(logs, canary) {
			t.Errorf("logs contain %q:\n%s", canary, logs)
		}
	}
}

func FuzzConsentBody(f *testing.F) {
	for _, seed := range []string{grantJSON, `{"subject":"a","action":"object"}`, `{"subject":"a","action":"withdraw"}`,
		`{"subject":"a","purpose":"third_party.sharing","action":"grant","separate":true,"recipient":{"name":"x"}}`,
		`{"subject":"a","action":"declare_age","age_band":"13"}`, `{}`, `[`, `{"notice":{"version":1e99}}`} {
		f.Add(seed)
	}
	l := consenttest.Open(f, "", consent.Config{})
	tokens := adminapi.Tokens{}
	tokens.Add(token, adminapi.Principal{Name: "fuzz"})
	api, err := adminapi.New(adminapi.Config{Ledger: l, Tokens: tokens})
	if err != nil {
		f.Fatal(err)
	}
	if _, _, err := l.RegisterNotice(context.Background(), consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", "/v1/consents", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		api.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		if w.Code >= 400 && w.Header().Get("Content-Type") != privguard.ProblemContentType {
			t.Fatalf("status %d without a problem body for %q", w.Code, body)
		}
	})
}

func TestNoticeIDs(t *testing.T) {
	// A notice id is the controller's name for a document: hyphens, capitals and dots are
	// fine; what cannot sit unescaped in a path segment or a log line is not.
	e := newEnv(t)
	for _, tc := range []struct {
		id     string
		status int
	}{
		{"privacy-policy", 201},
		{"Privacy_Policy.v2", 201},
		{"2026-03-terms", 201},
		{"-leading-hyphen", 422},
		{".hidden", 422},
		{"a b", 422},
		{"a/b", 422},
		{"a%2Fb", 422},
		{"é-notice", 422},
		{strings.Repeat("n", 65), 422},
	} {
		body := strings.Replace(noticeJSON, `"id":"marketing"`, `"id":"`+tc.id+`"`, 1)
		var p map[string]any
		if resp := e.do("POST", "/v1/notices", body, nil, &p); resp.StatusCode != tc.status || (tc.status == 422 && p["field"] != "id") {
			t.Errorf("notice id %q: %d %v; want %d", tc.id, resp.StatusCode, p, tc.status)
		}
	}
	var got struct {
		Versions []struct{ ID string }
	}
	if resp := e.do("GET", "/v1/notices/privacy-policy", "", nil, &got); resp.StatusCode != 200 || len(got.Versions) != 1 || got.Versions[0].ID != "privacy-policy" {
		t.Errorf("GET /v1/notices/privacy-policy = %d %+v", resp.StatusCode, got)
	}
	grant := strings.Replace(grantJSON, `"id":"marketing"`, `"id":"privacy-policy"`, 1)
	if resp := e.do("POST", "/v1/consents", grant, nil, nil); resp.StatusCode != 201 {
		t.Errorf("a grant citing privacy-policy = %d; want 201", resp.StatusCode)
	}
}

func TestAmbiguousKeysAreRefused(t *testing.T) {
	// encoding/json takes "Subject" (or "ſubject") for subject and keeps the last of two
	// equal keys; a service reading the same body another way would see another subject.
	// Such a body is refused, naming the field, and nothing is written.
	e, _ := newRequestsEnv(t, rowsStore{})
	e.registerNotice()
	for _, tc := range []struct {
		name, path, body, field string
	}{
		{"case_variant", "/v1/consents", `{"Subject":"cust-1","action":"object"}`, "subject"},
		{"unicode_fold_variant", "/v1/consents", `{"subject":"cust-1","\u017fubject":"cust-2","action":"object"}`, "\u017fubject"},
		{"fold_variant_alone", "/v1/consents", `{"\u017fubject":"cust-2","action":"object"}`, "subject"},
		{"duplicate", "/v1/consents", `{"subject":"cust-1","action":"object","subject":"cust-2"}`, "subject"},
		{"duplicate_other_case", "/v1/consents", `{"subject":"cust-1","action":"object","SUBJECT":"cust-2"}`, "SUBJECT"},
		{"nested_variant", "/v1/consents", strings.Replace(grantJSON, `"notice":{"id"`, `"notice":{"ID"`, 1), "notice.id"},
		{"nested_duplicate", "/v1/consents", strings.Replace(grantJSON, `"version":1}`, `"version":1,"version":2}`, 1), "notice.version"},
		{"request_type_variant", "/v1/requests", `{"Type":"access","subject":"cust-1"}`, "type"},
		{"request_identity_variant", "/v1/requests", `{"type":"access","subject":"cust-1","identity":{"Method":"operator","note":"x"}}`, "identity.method"},
		{"patch_duplicate", "/v1/requests", `{"type":"correction","subject":"cust-1","patch":{"user.contact.email":"a@example.com","user.contact.email":"b@example.com"}}`, "patch.user.contact.email"},
		{"notice_variant", "/v1/notices", strings.Replace(noticeJSON, `"retention"`, `"Retention"`, 1), "retention"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.ledger.Stats().Records
			all, _ := e.eng.List(context.Background())
			var p privguard.Problem
			resp := e.do("POST", tc.path, tc.body, nil, &p)
			if resp.StatusCode != 400 || p.Type != privguard.ProblemTypePrefix+adminapi.TypeAmbiguous || p.Field != tc.field {
				t.Errorf("= %d %s field %q; want 400 %s field %q (%+v)", resp.StatusCode, p.Type, p.Field, adminapi.TypeAmbiguous, tc.field, p)
			}
			after, _ := e.eng.List(context.Background())
			if e.ledger.Stats().Records != before || len(after) != len(all) {
				t.Error("a refused body was written")
			}
		})
	}
	// The exact spelling passes, map keys (a patch's categories) are not field names.
	if resp := e.do("POST", "/v1/consents", `{"subject":"cust-1","action":"object"}`, nil, nil); resp.StatusCode != 201 {
		t.Errorf("exact keys: %d; want 201", resp.StatusCode)
	}
	if resp := e.do("POST", "/v1/requests", `{"type":"correction","subject":"cust-1","patch":{"user.contact.email":"a@example.com"}}`, nil, nil); resp.StatusCode != 201 {
		t.Errorf("a patch: %d; want 201", resp.StatusCode)
	}
}

func TestOnlyTheControllerWritesItsFacts(t *testing.T) {
	// An app relays the subjects' choices; erase, expire and lift_restriction are the
	// controller's own facts (the request engine's, an operator's). An app cannot write
	// them, and nobody chooses the actor_type a record carries: it is derived.
	e, _ := newRequestsEnv(t)
	e.registerNotice()
	app := map[string]string{"Authorization": "Bearer app-token"}
	dpo := map[string]string{"Authorization": "Bearer dpo-token"}
	restricted := func() bool {
		var v consent.SubjectView
		e.do("GET", "/v1/subjects/cust-1/consents", "", nil, &v)
		return v.Facts.Restricted
	}
	var rec map[string]any
	if resp := e.do("POST", "/v1/consents", strings.Replace(grantJSON, "cust-42", "cust-1", 1), app, &rec); resp.StatusCode != 201 || rec["actor_type"] != "subject" || rec["actor"] != "token:crm-backend" {
		t.Fatalf("app grant: %d %v; want 201 by the subject through token:crm-backend", resp.StatusCode, rec)
	}
	if resp := e.do("POST", "/v1/consents", `{"subject":"cust-1","action":"restrict"}`, app, nil); resp.StatusCode != 201 || !restricted() {
		t.Fatalf("app restrict: %d; want 201 and the subject restricted", resp.StatusCode)
	}
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"app lifts a restriction", `{"subject":"cust-1","action":"lift_restriction"}`, 403},
		{"app records an erasure", `{"subject":"cust-1","action":"erase"}`, 403},
		{"app records an expiry", `{"subject":"cust-1","purpose":"marketing.communications.sms","action":"expire"}`, 403},
		{"app forges a system erasure", `{"subject":"cust-1","action":"erase","actor_type":"system"}`, 422},
		{"app claims an operator grant", strings.Replace(strings.Replace(grantJSON, "cust-42", "cust-1", 1), `"channel"`, `"actor_type":"operator","channel"`, 1), 422},
		{"app says the subject objected", `{"subject":"cust-1","action":"object","actor_type":"subject"}`, 422},
	} {
		before := e.ledger.Stats().Records
		var p privguard.Problem
		resp := e.do("POST", "/v1/consents", tc.body, app, &p)
		if resp.StatusCode != tc.status || (tc.status == 422 && p.Field != "actor_type") {
			t.Errorf("%s: %d %+v; want %d", tc.name, resp.StatusCode, p, tc.status)
		}
		if tc.status == 403 && !strings.Contains(p.Detail, "dpo") {
			t.Errorf("%s: the 403 does not say who may: %q", tc.name, p.Detail)
		}
		if e.ledger.Stats().Records != before {
			t.Errorf("%s: a refused record was written", tc.name)
		}
	}
	if !restricted() {
		t.Fatal("an app lifted the restriction")
	}
	// A dpo may, and the record says an operator did it, through the dpo's token.
	if resp := e.do("POST", "/v1/consents", `{"subject":"cust-1","action":"lift_restriction"}`, dpo, &rec); resp.StatusCode != 201 ||
		rec["actor_type"] != "operator" || rec["actor"] != "token:dpo-office" || restricted() {
		t.Errorf("dpo lift_restriction: %d %v; want 201 by an operator through token:dpo-office", resp.StatusCode, rec)
	}
	// A dpo does not record the subjects' choices.
	var p privguard.Problem
	if resp := e.do("POST", "/v1/consents", `{"subject":"cust-1","action":"object"}`, dpo, &p); resp.StatusCode != 403 || !strings.Contains(p.Detail, "app") {
		t.Errorf("dpo records an objection: %d %+v; want 403 naming app", resp.StatusCode, p)
	}
	var hist struct {
		Records []map[string]any `json:"records"`
	}
	e.do("GET", "/v1/subjects/cust-1/consents/history", "", nil, &hist)
	var got []string
	for _, r := range hist.Records {
		got = append(got, r["action"].(string)+"/"+r["actor_type"].(string))
	}
	if want := []string{"grant/subject", "restrict/subject", "lift_restriction/operator"}; !slices.Equal(got, want) {
		t.Errorf("history = %v; want %v", got, want)
	}
}

// A body that is JSON but not an object is told so in words, not with an empty field name;
// a compressed one is refused before it is read.
func TestBodyThatIsNotAnObject(t *testing.T) {
	e := newEnv(t)
	for _, body := range []string{`[1]`, `"x"`, `5`} {
		var p struct{ Detail, Field string }
		resp := e.do("POST", "/v1/consents", body, nil, &p)
		if resp.StatusCode != http.StatusBadRequest || p.Detail != "the body must be a JSON object" || p.Field != "" {
			t.Errorf("%s: %d %+v; want 400 \"the body must be a JSON object\"", body, resp.StatusCode, p)
		}
	}
	if resp := e.do("POST", "/v1/consents", `{}`, map[string]string{"Content-Encoding": "gzip"}, nil); resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("gzip body: %d; want 415", resp.StatusCode)
	}
}
