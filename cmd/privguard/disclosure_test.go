package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/disclosure"
	"github.com/privguard/privguard/journal"
)

// Through the real serve: a provision to a recipient abroad with a standard contract goes
// ahead and is in the disclosure log, counted; one to a recipient abroad with no
// mechanism never reaches the upstream, nor does one for a subject without separate
// consent; the DPO reads both registers, an app neither.
// proves XB-01
func TestSidecarDisclosures(t *testing.T) {
	var upstreamCalls atomic.Int32
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamCalls.Add(1)
		w.Write([]byte(`{}`))
	}))
	defer upstream.Close()
	hash := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	const appToken, auditorToken = "pg_app-token-for-the-disclosure-test", "pg_auditor-token-for-the-disclosure-test"
	sc := startSidecar(t, upstream.URL, `regime: pipl
routes:
  - {match: "POST /share/{id}", purpose: third_party.sharing, recipient: sg-crm, subject: {path: id}}
  - {match: "POST /share-us/{id}", purpose: third_party.sharing, recipient: us-ads, subject: {path: id}}
dsar:
  recipients:
    - name: sg-crm
      country: SG
      role: handler
      contact: dpo@crm.example.sg
      transfer: {mechanism: standard_contract, ref: SC-2026-17, date: 2026-01-01}
    - {name: us-ads, country: US, role: handler}
assessments:
  - id: pia-2026-share
    purposes: [third_party.sharing]
    recipients: [sg-crm, us-ads]
    date: 2026-01-01
    review: 2099-01-01
    conclusion: approved_with_measures
    legitimacy: Partners run the loyalty offers the customers joined.
    impact: Contact data leaves the PRC; risk of misuse by the partner.
    measures: Standard contract, encryption in transit, deletion on termination.
admin:
  tokens:
    - {name: crm, sha256: `+hash(appToken)+`}
    - {name: audit-firm, sha256: `+hash(auditorToken)+`, roles: [auditor]}
    - {name: ops, sha256: `+hash("pg_admin-token-for-the-disclosure-test")+`, roles: [admin]}
`)
	defer sc.stop()
	const admin = "pg_admin-token-for-the-disclosure-test"
	if l := sc.logs.String(); !strings.Contains(l, "us-ads") || !strings.Contains(l, "transfer.no_mechanism") {
		t.Errorf("serve did not warn of the recipient abroad with no mechanism:\n%s", l)
	}
	if st, out := callJSON(t, sc.admin, admin, "POST", "/v1/notices", `{"id":"n","version":1,"language":"en","text":"t","purposes":["third_party"],
		"controller":{"name":"E","contact":"p@example.com"},"retention":"1y","rights_channels":["x"]}`); st != 201 {
		t.Fatalf("notice: %d %v", st, out)
	}
	for _, rc := range []string{"sg-crm", "us-ads"} {
		if st, out := callJSON(t, sc.admin, appToken, "POST", "/v1/consents", `{"subject":"cust-7781","purpose":"third_party.sharing","action":"grant",
			"separate":true,"recipient":{"name":"`+rc+`","contact":"dpo@example.com","purpose":"ads","method":"api","categories":["user.contact.email"]},"regime":"pipl","notice":{"id":"n","version":1},"channel":"app","method":"explicit"}`); st != 201 {
			t.Fatalf("grant for %s: %d %v", rc, st, out)
		}
	}
	post := func(path string) (int, string) {
		resp, err := http.Post(sc.proxy+path, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("/share/cust-7781"); code != 200 || upstreamCalls.Load() != 1 {
		t.Fatalf("provision under a standard contract: %d %s", code, body)
	}
	if code, body := post("/share/cust-7782"); code != 403 || !strings.Contains(body, "separate_consent.required") || upstreamCalls.Load() != 1 {
		t.Fatalf("provision without the subject's separate consent: %d %s", code, body)
	}
	if code, body := post("/share-us/cust-7781"); code != 403 || !strings.Contains(body, "transfer.no_mechanism") || upstreamCalls.Load() != 1 {
		t.Fatalf("provision abroad with no mechanism: %d %s (upstream called %d times)", code, body, upstreamCalls.Load())
	}

	st, out := callJSON(t, sc.admin, auditorToken, "GET", "/v1/disclosures", "")
	entries, _ := out["entries"].([]any)
	if st != 200 || len(entries) != 1 {
		t.Fatalf("disclosures: %d %v", st, out)
	}
	e := entries[0].(map[string]any)
	if e["recipient"] != "sg-crm" || e["country"] != "SG" || e["people"] != float64(1) || e["abroad"] != true ||
		e["transfer"].(map[string]any)["ref"] != "SC-2026-17" || e["purpose"] != "third_party.sharing" {
		t.Errorf("entry %v", e)
	}
	st, out = callJSON(t, sc.admin, auditorToken, "GET", "/v1/transfers", "")
	if st != 200 || out["people"] != float64(1) {
		t.Fatalf("transfers: %d %v", st, out)
	}
	refused := map[string]any{}
	for _, r := range out["recipients"].([]any) {
		r := r.(map[string]any)
		refused[r["name"].(string)] = r["refused"]
	}
	if refused["us-ads"] != "transfer.no_mechanism" || refused["sg-crm"] != nil {
		t.Errorf("recipients %v", out["recipients"])
	}
	// An app reads neither register.
	for _, path := range []string{"/v1/disclosures", "/v1/transfers"} {
		if st, _ := callJSON(t, sc.admin, appToken, "GET", path, ""); st != 403 {
			t.Errorf("app GET %s: %d; want 403", path, st)
		}
	}
	// Hostile filters are problems, not guesses.
	for _, q := range []string{"?from=yesterday", "?recipeint=sg-crm", "?limit=0", "?after=-1", "?from=2026-02-01&to=2026-01-01",
		"?recipient=a&recipient=b", "?format=xlsx"} {
		if st, out := callJSON(t, sc.admin, auditorToken, "GET", "/v1/disclosures"+q, ""); st != 400 || out["type"] == nil {
			t.Errorf("GET /v1/disclosures%s: %d %v; want a 400 problem", q, st, out)
		}
	}
	req, _ := http.NewRequest("GET", sc.admin+"/v1/disclosures?format=csv", nil)
	req.Header.Set("Authorization", "Bearer "+auditorToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	csv, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if lines := strings.Split(strings.TrimSpace(string(csv)), "\n"); !strings.HasPrefix(string(csv), "\uFEFF序号 / Seq") || len(lines) != 2 ||
		!strings.Contains(lines[1], "SC-2026-17") || strings.Contains(string(csv), "cust-7781") {
		t.Errorf("CSV register:\n%s", csv)
	}
	if c := sc.stop(); c != 0 {
		t.Fatalf("serve exited %d", c)
	}
	db, err := boltstore.Open(filepath.Join(sc.dir, "privguard.db"), boltstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n, err := journal.Verify(context.Background(), db.Journal(), disclosure.Log); err != nil || n != 1 {
		t.Errorf("disclosure log: %d entries, %v", n, err)
	}
}
