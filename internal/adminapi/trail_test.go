package adminapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/internal/adminapi"
	"github.com/privguard/privguard/internal/trail"
	"github.com/privguard/privguard/journal"
	"github.com/privguard/privguard/journal/journaltest"
)

// Every privileged call is in the trail with its principal and role, an app's routine
// calls are not (unless refused), subjects are named by their keyed hash, and an altered
// trail says where it breaks.
func TestAdminTrail(t *testing.T) {
	store := &journaltest.Mem{}
	tr, err := trail.Open(store, bytes.Repeat([]byte{1}, 32), "r1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	l := consenttest.Open(t, "", consent.Config{})
	tokens := adminapi.Tokens{}
	tokens.Add("pg_app", adminapi.Principal{Name: "crm"})
	tokens.Add("pg_dpo", adminapi.Principal{Name: "li.dpo", Roles: []string{"dpo"}})
	tokens.Add("pg_audit", adminapi.Principal{Name: "audit-firm", Roles: []string{"auditor"}})
	api, err := adminapi.New(adminapi.Config{Ledger: l, Tokens: tokens, Trail: tr})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	call := func(tok, method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out map[string]any
		json.Unmarshal(b, &out)
		return resp.StatusCode, out
	}
	if st, _ := call("pg_dpo", "POST", "/v1/notices", noticeJSON); st != 201 {
		t.Fatalf("notice: %d", st)
	}
	if st, _ := call("pg_app", "POST", "/v1/consents", grantJSON); st != 201 {
		t.Fatalf("grant: %d", st)
	}
	call("pg_app", "GET", "/healthz", "")
	call("pg_app", "POST", "/v1/notices", noticeJSON) // refused: an app may not register notices
	call("pg_audit", "GET", "/v1/subjects/cust-42/consents", "")
	call("pg_dpo", "POST", "/v1/consents", `{"subject":"cust-42","action":"erase"}`)

	st, out := call("pg_audit", "GET", "/v1/trail", "")
	if st != 200 {
		t.Fatalf("trail: %d %v", st, out)
	}
	var acts []string
	raw, _ := json.Marshal(out)
	for _, e := range out["entries"].([]any) {
		e := e.(map[string]any)
		acts = append(acts, e["principal"].(string)+" "+e["act"].(string)+" "+e["outcome"].(string))
	}
	want := []string{
		"li.dpo POST /v1/notices ok",
		"crm POST /v1/notices refused",
		"audit-firm GET /v1/subjects/{subject}/consents ok",
		"li.dpo POST /v1/consents ok",
	}
	if strings.Join(acts, "\n") != strings.Join(want, "\n") {
		t.Fatalf("trail:\n%s\nwant:\n%s", strings.Join(acts, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(string(raw), "cust-42") || !strings.Contains(string(raw), tr.Subject("cust-42")) {
		t.Errorf("the trail names the subject, or not by its hash: %s", raw)
	}
	// The auditor's reading of the trail is itself in it.
	if st, out := call("pg_audit", "GET", "/v1/trail?act=GET+/v1/trail", ""); st != 200 || len(out["entries"].([]any)) != 1 {
		t.Errorf("the trail's reading: %d %v", st, out)
	}
	if st, _ := call("pg_app", "GET", "/v1/trail", ""); st != 403 {
		t.Errorf("an app read the trail: %d", st)
	}
	tr.Close()

	// Altered in the store: the trail says where.
	store.Tamper(trail.Log, func(es []journal.Entry) []journal.Entry {
		es[1].Body = []byte(strings.Replace(string(es[1].Body), "refused", "ok", 1))
		return es
	})
	tr2, _ := trail.Open(store, bytes.Repeat([]byte{1}, 32), "r1", nil)
	defer tr2.Close()
	api2, _ := adminapi.New(adminapi.Config{Ledger: l, Tokens: tokens, Trail: tr2})
	srv2 := httptest.NewServer(api2)
	defer srv2.Close()
	req, _ := http.NewRequest("GET", srv2.URL+"/v1/trail", nil)
	req.Header.Set("Authorization", "Bearer pg_audit")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || !strings.Contains(string(b), "chain-broken") || !strings.Contains(string(b), "entry 2") {
		t.Fatalf("an altered trail: %d %s", resp.StatusCode, b)
	}
	if _, err := journal.Verify(context.Background(), store, trail.Log); err == nil {
		t.Fatal("Verify passed an altered trail")
	}
}
