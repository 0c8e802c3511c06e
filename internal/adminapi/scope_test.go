package adminapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/internal/adminapi"
)

const scopeNoticeJSON = `{"id":"shop","version":1,"language":"en","text":"We text you offers and recommend products.",
 "purposes":["marketing","personalize"],"controller":{"name":"Example Retail Ltd","contact":"privacy@example.com"},
 "retention":"13 months","rights_channels":["https://example.com/privacy"],"policy_url":"https://example.com/privacy"}`

func scopedGrant(subject, purpose string) string {
	return `{"subject":"` + subject + `","purpose":"` + purpose + `","action":"grant","regime":"pipl",
 "notice":{"id":"shop","version":1},"channel":"app","method":"explicit"}`
}

// An entrusted processor's token (an SMS gateway scoped to marketing.communications.sms)
// records and reads consent for its purpose only: another purpose, or a subject-level
// action, is refused with token.purpose_not_allowed, the subject's state and history come
// back filtered to its purpose, another purpose's receipt is refused, and with
// subjects_requests: false it cannot see the requests.
func TestScopedTokenServesItsPurposesOnly(t *testing.T) {
	e, _ := newRequestsEnv(t, rowsStore{})
	as := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	if resp := e.do("POST", "/v1/notices", scopeNoticeJSON, nil, nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("notice: %d", resp.StatusCode)
	}
	var sms, rec recordJSON
	if resp := e.do("POST", "/v1/consents", scopedGrant("cust-42", "marketing.communications.sms"), as("app-token"), &sms); resp.StatusCode != 201 {
		t.Fatalf("app grant sms: %d", resp.StatusCode)
	}
	if resp := e.do("POST", "/v1/consents", scopedGrant("cust-42", "personalize.recommendation"), as("app-token"), &rec); resp.StatusCode != 201 {
		t.Fatalf("app grant recommendation: %d", resp.StatusCode)
	}
	refused := func(what string, resp *http.Response, out map[string]any, slug string) {
		t.Helper()
		if resp.StatusCode != http.StatusForbidden || out["type"] != privguard.ProblemTypePrefix+slug {
			t.Errorf("%s: %d %v; want 403 %s", what, resp.StatusCode, out, slug)
		}
	}
	// proves PUR-08: the processor's credential is scoped to its purpose; it can neither
	// record nor read consent for personalize.recommendation.
	var out map[string]any
	refused("sms token grants recommendation", e.do("POST", "/v1/consents", scopedGrant("cust-42", "personalize.recommendation"), as("sms-token"), &out), out, "token.purpose_not_allowed")
	out = nil
	refused("sms token records an objection (every purpose)", e.do("POST", "/v1/consents", `{"subject":"cust-42","action":"object"}`, as("sms-token"), &out), out, "token.purpose_not_allowed")
	out = nil
	refused("sms token asks for recommendation", e.do("GET", "/v1/subjects/cust-42/consents?purpose=personalize.recommendation", "", as("sms-token"), &out), out, "token.purpose_not_allowed")
	out = nil
	refused("sms token reads the recommendation receipt", e.do("GET", "/v1/consents/"+rec.ID+"/receipt", "", as("sms-token"), &out), out, "token.purpose_not_allowed")
	out = nil
	refused("sms token reads a request", e.do("GET", "/v1/requests/whatever", "", as("sms-token"), &out), out, "token.requests_not_allowed")
	out = nil
	refused("sms token submits a request", e.do("POST", "/v1/requests", `{"type":"access","subject":"cust-42"}`, as("sms-token"), &out), out, "token.requests_not_allowed")

	var state struct {
		Purposes []struct {
			Purpose string `json:"purpose"`
		} `json:"purposes"`
	}
	if resp := e.do("GET", "/v1/subjects/cust-42/consents", "", as("sms-token"), &state); resp.StatusCode != 200 ||
		len(state.Purposes) != 1 || state.Purposes[0].Purpose != "marketing.communications.sms" {
		t.Errorf("sms token's view of the subject: %d %+v; want marketing.communications.sms alone", resp.StatusCode, state)
	}
	var hist struct {
		Records []struct {
			Purpose string `json:"purpose"`
		} `json:"records"`
	}
	if resp := e.do("GET", "/v1/subjects/cust-42/consents/history", "", as("sms-token"), &hist); resp.StatusCode != 200 || len(hist.Records) != 1 ||
		hist.Records[0].Purpose != "marketing.communications.sms" {
		t.Errorf("sms token's history: %d %+v; want the sms grant alone", resp.StatusCode, hist)
	}
	// What it serves it still does: read its receipt, record the subject's withdrawal.
	if resp := e.do("GET", "/v1/consents/"+sms.ID+"/receipt", "", as("sms-token"), nil); resp.StatusCode != 200 {
		t.Errorf("sms token reads its own purpose's receipt: %d; want 200", resp.StatusCode)
	}
	withdraw := `{"subject":"cust-42","purpose":"marketing.communications.sms","action":"withdraw","channel":"sms"}`
	if resp := e.do("POST", "/v1/consents", withdraw, as("sms-token"), nil); resp.StatusCode != 201 {
		t.Errorf("sms token records the subject's STOP: %d; want 201", resp.StatusCode)
	}
	// An unscoped principal sees every purpose; ?purpose= narrows it.
	state.Purposes = nil
	if e.do("GET", "/v1/subjects/cust-42/consents", "", as("app-token"), &state); len(state.Purposes) != 2 {
		t.Errorf("app token's view: %+v; want both purposes", state)
	}
	state.Purposes = nil
	if e.do("GET", "/v1/subjects/cust-42/consents?purpose=personalize", "", as("app-token"), &state); len(state.Purposes) != 1 || !strings.HasPrefix(state.Purposes[0].Purpose, "personalize.") {
		t.Errorf("app token's view of personalize: %+v; want the recommendation alone", state)
	}
	for _, q := range []string{"?purpose=Bad..Purpose", "?purpos=marketing", "?purpose=a&purpose=b"} {
		out = nil
		if resp := e.do("GET", "/v1/subjects/cust-42/consents"+q, "", as("app-token"), &out); resp.StatusCode != 400 {
			t.Errorf("GET consents%s: %d %v; want 400", q, resp.StatusCode, out)
		}
	}
}

// A scoped token cannot use the vault: its sealed fields are bound to no purpose.
func TestScopedTokenHasNoVault(t *testing.T) {
	tokens := adminapi.Tokens{}
	tokens.Add("pg_sms", adminapi.Principal{Name: "sms-gateway", Purposes: []privguard.Purpose{"marketing.communications.sms"}})
	tokens.Add("pg_app", adminapi.Principal{Name: "crm"})
	_, srv := newFullAPI(t, tokens)
	for _, path := range []string{"/v1/vault/seal", "/v1/vault/open", "/v1/vault/blind-index"} {
		for tok, want := range map[string]int{"pg_sms": 403, "pg_app": 422} { // the app's empty body is invalid
			req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(`{}`))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var p privguard.Problem
			jsonDecode(resp, &p)
			resp.Body.Close()
			if (resp.StatusCode == 403) != (want == 403) || (want == 403 && p.Type != privguard.ProblemTypePrefix+adminapi.TypePurposeNotAllowed) {
				t.Errorf("%s %s: %d %s; want %d", tok, path, resp.StatusCode, p.Type, want)
			}
		}
	}
}
