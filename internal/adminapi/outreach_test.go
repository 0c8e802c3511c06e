package adminapi_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/internal/adminapi"
	"github.com/privguard/privguard/outreach"
)

// newOutreachEnv is newEnv with the send gate configured.
func newOutreachEnv(t *testing.T) *env {
	t.Helper()
	l := consenttest.Open(t, "", consent.Config{})
	tokens := adminapi.Tokens{}
	tokens.Add(token, adminapi.Principal{Name: "campaigns", Roles: []string{"admin"}})
	logs := &bytes.Buffer{}
	api, err := adminapi.New(adminapi.Config{Ledger: l, Tokens: tokens, Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		Outreach: &outreach.Gate{Ledger: l, PublicURL: "https://privacy.example.com", Key: bytes.Repeat([]byte{9}, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, ledger: l, logs: logs}
}

type checkAnswer struct {
	Allowed []struct {
		Subject     string `json:"subject"`
		Unsubscribe struct {
			URL                 string `json:"url"`
			ListUnsubscribe     string `json:"list_unsubscribe"`
			ListUnsubscribePost string `json:"list_unsubscribe_post"`
		} `json:"unsubscribe"`
	} `json:"allowed"`
	Denied []struct {
		Subject string   `json:"subject"`
		Reasons []string `json:"reasons"`
	} `json:"denied"`
}

func TestOutreachCheckRoute(t *testing.T) {
	e := newOutreachEnv(t)
	e.registerNotice()
	if resp := e.do("POST", "/v1/consents", grantJSON, nil, nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("grant = %d", resp.StatusCode)
	}
	body := `{"channel":"sms","template":{"kind":"marketing","sender":"示例商城","text":"【示例商城】会员日全场8折。回T退订","id":"spring"},"recipients":["cust-42","cust-43"]}`
	var ans checkAnswer
	if resp := e.do("POST", "/v1/outreach/check", body, nil, &ans); resp.StatusCode != http.StatusOK {
		t.Fatalf("check = %d", resp.StatusCode)
	}
	if len(ans.Allowed) != 1 || ans.Allowed[0].Subject != "cust-42" || len(ans.Denied) != 1 || ans.Denied[0].Subject != "cust-43" ||
		ans.Denied[0].Reasons[0] != "consent.missing" {
		t.Fatalf("answer %+v", ans)
	}
	u := ans.Allowed[0].Unsubscribe
	if !strings.HasPrefix(u.URL, "https://privacy.example.com/v1/outreach/unsubscribe/") || u.ListUnsubscribe != "<"+u.URL+">" ||
		u.ListUnsubscribePost != "List-Unsubscribe=One-Click" {
		t.Fatalf("unsubscribe %+v", u)
	}

	// A template failing its checks is a 422 naming the rule.
	var prob privguard.Problem
	bad := strings.Replace(body, "。回T退订", "", 1)
	if resp := e.do("POST", "/v1/outreach/check", bad, nil, &prob); resp.StatusCode != http.StatusUnprocessableEntity ||
		!strings.HasSuffix(prob.Type, "template-rule") || len(prob.Errors) != 1 || prob.Errors[0].Rule != "refusal_missing" {
		t.Fatalf("failing template = %d %+v", resp.StatusCode, prob)
	}
	// Soft opt-in is for marketing email only: an SMS asking for it is a 422 naming the field.
	soft := strings.Replace(body, `"recipients"`, `"soft_opt_in":true,"recipients"`, 1)
	if resp := e.do("POST", "/v1/outreach/check", soft, nil, &prob); resp.StatusCode != http.StatusUnprocessableEntity ||
		prob.Field != "soft_opt_in" || len(prob.Errors) != 1 || prob.Errors[0].Rule != outreach.RuleSoftOptInChannel {
		t.Fatalf("soft opt-in SMS = %d %+v", resp.StatusCode, prob)
	}
	if resp := e.do("POST", "/v1/outreach/check", `{"channel":"fax","template":{"kind":"marketing","text":"x"},"recipients":["a"]}`, nil, nil); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("unknown channel = %d", resp.StatusCode)
	}

	// The link works on the same listener without a bearer token.
	path := strings.TrimPrefix(u.URL, "https://privacy.example.com")
	resp, err := http.Post(e.srv.URL+path, "application/x-www-form-urlencoded", strings.NewReader(url.Values{"List-Unsubscribe": {"One-Click"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("one-click = %d", resp.StatusCode)
	}
	if st, _ := e.ledger.Check(t.Context(), "cust-42", "marketing.communications.sms"); st.Allowed {
		t.Fatal("the one-click POST did not withdraw")
	}
	if strings.Contains(e.logs.String(), "cust-42") {
		t.Fatal("a subject reached the log")
	}
}
