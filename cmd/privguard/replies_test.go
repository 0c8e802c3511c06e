package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/privguard/privguard/connector/webhook"
)

// TestSMSReplyWithdrawsThroughServe: through serve, a signed "退订" from a gateway
// withdraws SMS marketing for the subject linked to the number, and the sidecar refuses
// the next SMS campaign send to that subject at once, while another subject's sends go on;
// a reply for the other subject with a forged signature changes nothing.
//
// proves MKT-04: an unsubscribe by SMS reply takes effect immediately for the channel
// (the next send through the sidecar is refused).
func TestSMSReplyWithdrawsThroughServe(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"sent":true}`))
	}))
	defer upstream.Close()
	secretFile := filepath.Join(t.TempDir(), "sms-cn.secret")
	secret := []byte("a-gateway-secret-of-at-least-32-bytes")
	os.WriteFile(secretFile, append(secret, '\n'), 0o600)
	sc := startSidecar(t, upstream.URL, `regime: pipl
routes:
  - {match: "POST /api/campaigns/{id}/send", purpose: marketing.communications.sms, channel: sms, subject: {path: id}}
outreach:
  stop_words: [取消订阅]
  gateways:
    - {name: sms-cn, secret_file: `+secretFile+`}
`)
	defer sc.stop()
	call := func(method, path, body string) (int, map[string]any) {
		return callJSON(t, sc.admin, sc.token, method, path, body)
	}
	if st, out := call("POST", "/v1/notices", `{"id":"mkt","version":1,"language":"zh-CN","text":"短信优惠","purposes":["marketing"],
		"controller":{"name":"Example","contact":"privacy@example.com"},"retention":"13 months","rights_channels":["app"]}`); st != 201 {
		t.Fatalf("notice: %d %v", st, out)
	}
	for _, s := range []struct{ subject, phone string }{{"sms-1", "13800138000"}, {"sms-2", "13900139000"}} {
		if st, out := call("POST", "/v1/consents", `{"subject":"`+s.subject+`","purpose":"marketing.communications.sms","action":"grant","regime":"pipl",
			"notice":{"id":"mkt","version":1},"channel":"app","method":"explicit"}`); st != 201 {
			t.Fatalf("grant %s: %d %v", s.subject, st, out)
		}
		if st, out := call("POST", "/v1/subjects/"+s.subject+"/identifiers", `{"type":"phone","value":"`+s.phone+`","verified":true}`); st != 201 {
			t.Fatalf("link %s: %d %v", s.subject, st, out)
		}
	}
	send := func(subject string) int {
		t.Helper()
		resp, err := http.Post(sc.proxy+"/api/campaigns/"+subject+"/send", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := send("sms-1"); st != http.StatusOK {
		t.Fatalf("send to sms-1 before the reply: %d; want 200", st)
	}
	reply := func(key []byte, phone, text string) (int, map[string]any) {
		t.Helper()
		body := `{"from":"` + phone + `","text":"` + text + `","received_at":"` + time.Now().UTC().Format(time.RFC3339) + `"}`
		req, _ := http.NewRequest("POST", sc.admin+"/v1/outreach/replies/sms-cn", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Privguard-Signature", webhook.Sign(key, []byte(body), time.Now()))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	// A forged reply for sms-2 (signed with another key) is refused and changes nothing.
	if st, out := reply(bytes.Repeat([]byte("f"), 40), "+86 139 0013 9000", "TD"); st != http.StatusUnauthorized {
		t.Errorf("forged reply: %d %v; want 401", st, out)
	}
	if st, out := reply(secret, "+8613800138000", "不要再发了 退订"); st != 200 || out["result"] != "withdrawn" {
		t.Fatalf("sms-1's reply: %d %v; want 200 withdrawn", st, out)
	}
	if st := send("sms-1"); st != http.StatusForbidden {
		t.Errorf("send to sms-1 after its 退订: %d; want 403", st)
	}
	if st := send("sms-2"); st != http.StatusOK {
		t.Errorf("send to sms-2 (a forged reply only): %d; want 200", st)
	}
	_, view := call("GET", "/v1/subjects/sms-1/consents?purpose=marketing.communications.sms", "")
	ps, _ := view["purposes"].([]any)
	if len(ps) != 1 || ps[0].(map[string]any)["state"] != "withdrawn" || ps[0].(map[string]any)["allowed"] != false {
		t.Errorf("sms-1's SMS consent after the reply: %v; want withdrawn", view)
	}
	// A configured stop word works too, and a number nobody has is answered without a retry.
	if st, out := reply(secret, "13700137000", "取消订阅"); st != 200 || out["result"] != "unknown_number" {
		t.Errorf("unknown number: %d %v; want 200 unknown_number", st, out)
	}
	if logs := sc.logs.String(); strings.Contains(logs, "13800138000") || strings.Contains(logs, "退订") {
		t.Errorf("the logs hold the number or the text:\n%s", logs)
	}
}
