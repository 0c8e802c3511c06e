package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/privguard/privguard/outreach"
)

// TestOutreachOneClickThroughServe: serve's send gate gives a consented recipient a link;
// the mailbox provider's one-click POST on it (no token) withdraws SMS marketing, and the
// sidecar then refuses the text and the gate leaves the recipient out.
//
// proves MKT-04
func TestOutreachOneClickThroughServe(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"sent":true}`)) }))
	t.Cleanup(upstream.Close)
	sc := startSidecar(t, upstream.URL, `regime: pipl
routes:
  - match: "POST /api/sms/{id}"
    purpose: marketing.communications.sms
    subject: {path: id}
outreach:
  public_url: https://privacy.example.com
`)
	if c := post(t, sc.admin, sc.token, "/v1/notices", `{"id":"n","version":1,"language":"zh-CN","text":"t","purposes":["marketing"],
		"controller":{"name":"E","contact":"p@example.com"},"retention":"1y","rights_channels":["x"]}`); c != http.StatusCreated {
		t.Fatalf("notice: %d", c)
	}
	if c := post(t, sc.admin, sc.token, "/v1/consents", `{"subject":"cust-1","purpose":"marketing.communications.sms","action":"grant","regime":"pipl",
		"notice":{"id":"n","version":1},"channel":"app","method":"explicit"}`); c != http.StatusCreated {
		t.Fatalf("grant: %d", c)
	}
	send := func() int {
		resp, err := http.Post(sc.proxy+"/api/sms/cust-1", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := send(); c != http.StatusOK {
		t.Fatalf("text before the click = %d; want 200", c)
	}
	check := `{"channel":"sms","template":{"kind":"marketing","sender":"示例商城","text":"【示例商城】新品上市 {{unsubscribe_url}} 回T退订","id":"s1"},"recipients":["cust-1","cust-2"]}`
	code, out := callJSON(t, sc.admin, sc.token, "POST", "/v1/outreach/check", check)
	b, _ := json.Marshal(out)
	allowed, _ := out["allowed"].([]any)
	if code != http.StatusOK || len(allowed) != 1 {
		t.Fatalf("check = %d %s", code, b)
	}
	link := allowed[0].(map[string]any)["unsubscribe"].(map[string]any)["url"].(string)
	path, ok := strings.CutPrefix(link, "https://privacy.example.com")
	if !ok {
		t.Fatalf("link %s", link)
	}
	resp, err := http.Post(sc.admin+path, "application/x-www-form-urlencoded", strings.NewReader(url.Values{"List-Unsubscribe": {"One-Click"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("one-click POST = %d", resp.StatusCode)
	}
	if c := send(); c != http.StatusForbidden {
		t.Fatalf("text after the click = %d; want 403", c)
	}
	code, out = callJSON(t, sc.admin, sc.token, "POST", "/v1/outreach/check", check)
	if allowed, _ := out["allowed"].([]any); code != http.StatusOK || len(allowed) != 0 {
		t.Fatalf("check after the click = %d %v", code, out)
	}
}

// TestWithUnsubscribe: the privacy centre's listener serves the unsubscribe route (a bad
// token gets the gate's "invalid link") and passes everything else to the centre.
func TestWithUnsubscribe(t *testing.T) {
	centre := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := withUnsubscribe(centre, &outreach.Gate{Key: make([]byte, 32)}, nil)
	for path, want := range map[string]int{"/v1/outreach/unsubscribe/bogus": http.StatusBadRequest, "/choices": http.StatusTeapot} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", path, strings.NewReader("List-Unsubscribe=One-Click")))
		if w.Code != want {
			t.Errorf("POST %s = %d; want %d", path, w.Code, want)
		}
	}
}
