package adminapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/connector/webhook"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/identity"
	"github.com/privguard/privguard/identity/identitytest"
	"github.com/privguard/privguard/internal/adminapi"
	"github.com/privguard/privguard/outreach"
)

var gatewaySecret = bytes.Repeat([]byte("g"), 32)

type replyEnv struct {
	t      *testing.T
	api    http.Handler
	url    string
	ledger *consent.Ledger
	logs   *bytes.Buffer
}

// replyAPI is an API with identity links and one SMS gateway, "sms-cn"; cust-1 has
// granted SMS marketing and its phone 13800138000 is linked (verified), cust-2's
// 13900139000 too (not verified), and cust-3 has granted SMS marketing with no phone.
func replyAPI(t *testing.T) *replyEnv {
	t.Helper()
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "p.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	vlt := identitytest.NewVault(t, db.Vault())
	ids, err := identity.New(identity.Config{Store: db.Identity(), Vault: vlt})
	if err != nil {
		t.Fatal(err)
	}
	ledger := consenttest.Open(t, "", consent.Config{})
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	inbox, err := outreach.NewInbox(outreach.InboxConfig{Ledger: ledger, Identities: ids, Logger: log,
		Gateways: map[string][]byte{"sms-cn": gatewaySecret}})
	if err != nil {
		t.Fatal(err)
	}
	tokens := adminapi.Tokens{}
	tokens.Add("pg_app", adminapi.Principal{Name: "crm"})
	tokens.Add("pg_dpo", adminapi.Principal{Name: "dpo", Roles: []string{"dpo"}})
	api, err := adminapi.New(adminapi.Config{Ledger: ledger, Tokens: tokens, Vault: vlt, Identities: ids, Replies: inbox, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	if st, out := call(t, srv.URL, "pg_dpo", "POST", "/v1/notices", noticeJSON); st != 201 {
		t.Fatalf("notice: %d %v", st, out)
	}
	for _, s := range []string{"cust-1", "cust-2", "cust-3"} {
		if st, out := call(t, srv.URL, "pg_app", "POST", "/v1/consents", strings.Replace(grantJSON, "cust-42", s, 1)); st != 201 {
			t.Fatalf("grant %s: %d %v", s, st, out)
		}
	}
	for path, body := range map[string]string{
		"/v1/subjects/cust-1/identifiers": `{"type":"phone","value":"+86 138 0013 8000","verified":true}`,
		"/v1/subjects/cust-2/identifiers": `{"type":"phone","value":"13900139000"}`,
	} {
		if st, out := call(t, srv.URL, "pg_app", "POST", path, body); st != 201 {
			t.Fatalf("link %s: %d %v", path, st, out)
		}
	}
	return &replyEnv{t: t, api: api, url: srv.URL, ledger: ledger, logs: logs}
}

// post sends a reply to gateway, signed with secret at time at (no signature if secret is
// nil), and returns the status and the answer.
func (e *replyEnv) post(gateway string, secret []byte, at time.Time, body string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.url+"/v1/outreach/replies/"+gateway, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if secret != nil {
		req.Header.Set("Privguard-Signature", webhook.Sign(secret, []byte(body), at))
	}
	return e.send(req)
}

func (e *replyEnv) send(req *http.Request) (int, map[string]any) {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (e *replyEnv) smsAllowed(subject string) bool {
	e.t.Helper()
	st, err := e.ledger.Check(context.Background(), privguard.SubjectID(subject), outreach.SMSPurpose)
	if err != nil {
		e.t.Fatal(err)
	}
	return st.Allowed
}

func reply(from, text string) string {
	return `{"from":"` + from + `","text":"` + text + `","received_at":"` + time.Now().UTC().Format(time.RFC3339) + `"}`
}

func TestSMSReplies(t *testing.T) {
	e := replyAPI(t)
	now := time.Now()
	problem := func(st int, out map[string]any, want int, typ string) {
		t.Helper()
		if st != want || out["type"] != privguard.ProblemTypePrefix+typ {
			t.Errorf("= %d %v; want %d %s", st, out, want, typ)
		}
	}
	// Refused before anything is read or changed.
	st, out := e.post("nope", gatewaySecret, now, reply("13800138000", "TD"))
	problem(st, out, 404, adminapi.TypeNotFound)
	st, out = e.post("sms-cn", nil, now, reply("13800138000", "TD"))
	problem(st, out, 401, adminapi.TypeUnauthenticated)
	st, out = e.post("sms-cn", bytes.Repeat([]byte("x"), 32), now, reply("13800138000", "TD"))
	problem(st, out, 401, adminapi.TypeUnauthenticated)
	st, out = e.post("sms-cn", gatewaySecret, now.Add(-10*time.Minute), reply("13800138000", "TD"))
	problem(st, out, 401, adminapi.TypeUnauthenticated)
	// A signature over another body (the number changed in flight).
	req, _ := http.NewRequest("POST", e.url+"/v1/outreach/replies/sms-cn", strings.NewReader(reply("13800138000", "TD")))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Privguard-Signature", webhook.Sign(gatewaySecret, []byte(reply("13900139000", "TD")), now))
	st, out = e.send(req)
	problem(st, out, 401, adminapi.TypeUnauthenticated)
	if !e.smsAllowed("cust-1") || !e.smsAllowed("cust-2") {
		t.Fatal("a refused reply changed consent")
	}
	// Bad bodies, signed.
	for _, tc := range []struct {
		name, body string
		status     int
		typ        string
	}{
		{"not_json", `{"from":`, 400, adminapi.TypeMalformedJSON},
		{"unknown_field", `{"from":"13800138000","text":"TD","received_at":"2026-01-02T03:04:05Z","x":1}`, 400, adminapi.TypeMalformedJSON},
		{"no_from", `{"text":"TD","received_at":"2026-01-02T03:04:05Z"}`, 422, adminapi.TypeValidation},
		{"no_received_at", `{"from":"13800138000","text":"TD"}`, 422, adminapi.TypeValidation},
		{"bad_received_at", `{"from":"13800138000","text":"TD","received_at":"yesterday"}`, 400, adminapi.TypeMalformedJSON},
		{"not_a_phone", `{"from":"hello","text":"TD","received_at":"2026-01-02T03:04:05Z"}`, 422, adminapi.TypeValidation},
		{"future", `{"from":"13800138000","text":"TD","received_at":"` + now.Add(time.Hour).UTC().Format(time.RFC3339) + `"}`, 422, adminapi.TypeValidation},
	} {
		st, out := e.post("sms-cn", gatewaySecret, now, tc.body)
		if st != tc.status || out["type"] != privguard.ProblemTypePrefix+tc.typ {
			t.Errorf("%s: %d %v; want %d %s", tc.name, st, out, tc.status, tc.typ)
		}
	}
	if !e.smsAllowed("cust-1") {
		t.Fatal("a bad body changed consent")
	}
	for _, tc := range []struct{ name, body, result string }{
		{"unknown_number", reply("13700137000", "TD"), "unknown_number"},
		{"other", reply("13800138000", "优惠券怎么用？"), "ignored"},
		{"ambiguous", reply("+8613800138000", "TD please call me first"), "ambiguous"},
	} {
		if st, out := e.post("sms-cn", gatewaySecret, now, tc.body); st != 200 || out["result"] != tc.result {
			t.Errorf("%s: %d %v; want 200 %s", tc.name, st, out, tc.result)
		}
	}
	if !e.smsAllowed("cust-1") || !e.smsAllowed("cust-2") || !e.smsAllowed("cust-3") {
		t.Fatal("an unknown number, an ignored or an ambiguous reply changed consent")
	}
	// The ambiguous reply is logged without the number or the text, by the link's hash.
	logs := e.logs.String()
	if !strings.Contains(logs, "SMS reply ambiguous") || !strings.Contains(logs, `"phone":"phone:`) {
		t.Errorf("the ambiguous reply is not logged: %s", logs)
	}
	for _, secret := range []string{"13800138000", "138 0013", "call me", "13700137000"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs hold %q:\n%s", secret, logs)
		}
	}

	// A stop reply withdraws SMS marketing for the number's subject, and only that.
	stop := reply("13800138000", "退订")
	if st, out := e.post("sms-cn", gatewaySecret, now, stop); st != 200 || out["result"] != "withdrawn" {
		t.Fatalf("stop: %d %v; want 200 withdrawn", st, out)
	}
	if e.smsAllowed("cust-1") || !e.smsAllowed("cust-2") || !e.smsAllowed("cust-3") {
		t.Fatalf("after cust-1's stop: cust-1 %v, cust-2 %v, cust-3 %v; want only cust-1 withdrawn",
			e.smsAllowed("cust-1"), e.smsAllowed("cust-2"), e.smsAllowed("cust-3"))
	}
	// The same signed delivery again is a replay; signed anew, it is recorded once.
	sig := webhook.Sign(gatewaySecret, []byte(stop), now.Add(time.Second))
	for i, want := range []int{200, 409} {
		req, _ := http.NewRequest("POST", e.url+"/v1/outreach/replies/sms-cn", strings.NewReader(stop))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Privguard-Signature", sig)
		if st, out := e.send(req); st != want {
			t.Errorf("delivery %d of one signature: %d %v; want %d", i+1, st, out, want)
		}
	}
	var withdrawals []consent.Record
	e.ledger.Walk(context.Background(), func(r *consent.Record, _ []byte) error {
		if r.Action == consent.ActionWithdraw {
			withdrawals = append(withdrawals, *r)
		}
		return nil
	})
	if len(withdrawals) != 1 {
		t.Fatalf("withdrawals = %d; want 1 for one reply delivered three times", len(withdrawals))
	}
	w := withdrawals[0]
	if w.Subject != "cust-1" || w.Purpose != outreach.SMSPurpose || w.Channel != consent.ChannelSMS || w.Method != consent.MethodExplicit ||
		w.ActorType != consent.ActorSubject || !strings.HasPrefix(w.Evidence.ProofRef, "sms-reply:sms-cn:") ||
		!strings.HasPrefix(w.Evidence.Identifier, "phone:") || len(w.Evidence.Identifier) != len("phone:")+32 {
		t.Errorf("withdrawal = %+v; want cust-1's SMS marketing, by the subject, over sms, with the gateway's reply as evidence", w)
	}
	// An unverified link counts: the reply comes from the number the texts go to.
	if st, out := e.post("sms-cn", gatewaySecret, now, reply("+86 139 0013 9000", "ＴＤ")); st != 200 || out["result"] != "withdrawn" {
		t.Fatalf("cust-2's stop: %d %v; want 200 withdrawn", st, out)
	}
	if e.smsAllowed("cust-2") || !e.smsAllowed("cust-3") {
		t.Error("cust-2's stop did not withdraw cust-2's SMS marketing alone")
	}
}

// FuzzReplyBody: whatever a gateway signs, the route answers 200 or a 4xx problem, never a
// 500 or a panic.
func FuzzReplyBody(f *testing.F) {
	for _, b := range []string{reply("13800138000", "TD"), reply("13900139000", "不要退订"), `{"from":1}`, `[]`, `{"from":"+86","text":"\u0000","received_at":"2026-01-02T03:04:05Z"}`} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body string) {
		e := replyAPI(t)
		req := httptest.NewRequest("POST", "/v1/outreach/replies/sms-cn", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Privguard-Signature", webhook.Sign(gatewaySecret, []byte(body), time.Now()))
		rec := httptest.NewRecorder()
		e.api.ServeHTTP(rec, req)
		if rec.Code != 200 && (rec.Code < 400 || rec.Code >= 500) {
			t.Errorf("POST %q = %d %s; want 200 or a 4xx", body, rec.Code, rec.Body)
		}
	})
}
