package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/privguard/privguard"
)

// An entrusted SMS gateway calls through the sidecar with its own credential: it sends
// its purpose's messages but reads no profile (personalize.recommendation); the decision
// log names it, never its credential; `privguard callers terminate` revokes the
// credential (401 from then on) and leaves its deletion confirmation awaited until
// `privguard callers confirm` records it.
func TestSidecarCallerScopeAndTermination(t *testing.T) {
	var upstreamSaw []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamSaw = append(upstreamSaw, r.Header.Clone())
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"cust-42","ok":true}`))
	}))
	defer srv.Close()
	secrets := t.TempDir()
	const credential = "pg_sms_gateway_credential_0123456789"
	if err := os.WriteFile(filepath.Join(secrets, "sms.token"), []byte(credential+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sc := startSidecar(t, srv.URL, `routes:
  - {match: "GET /api/profiles/{id}", purpose: personalize.recommendation, subject: {path: id}}
  - {match: "POST /api/sms/{id}", purpose: marketing.communications.sms, subject: {path: id}}
callers:
  - {name: sms-gateway, token_file: `+filepath.Join(secrets, "sms.token")+`, purposes: [marketing.communications.sms]}
`)
	admin := func(method, path, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, sc.admin+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+sc.token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := admin("POST", "/v1/notices", `{"id":"shop","version":1,"language":"en","text":"We text you offers and recommend products.",
 "purposes":["marketing","personalize"],"controller":{"name":"Example Retail Ltd","contact":"privacy@example.com"},
 "retention":"13 months","rights_channels":["https://example.com/privacy"],"policy_url":"https://example.com/privacy"}`); st != 201 {
		t.Fatalf("notice: %d", st)
	}
	for _, p := range []string{"marketing.communications.sms", "personalize.recommendation"} {
		if st := admin("POST", "/v1/consents", `{"subject":"cust-42","purpose":"`+p+`","action":"grant","regime":"pipl",
 "notice":{"id":"shop","version":1},"channel":"app","method":"explicit"}`); st != 201 {
			t.Fatalf("grant %s: %d", p, st)
		}
	}
	proxy := func(method, path, caller string) (int, privguard.Problem) {
		t.Helper()
		req, _ := http.NewRequest(method, sc.proxy+path, nil)
		if caller != "" {
			req.Header.Set("X-Privguard-Caller", caller)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p privguard.Problem
		b, _ := io.ReadAll(resp.Body)
		json.Unmarshal(b, &p)
		return resp.StatusCode, p
	}
	// proves PUR-08: the processor's credential is scoped to its purpose: it cannot read
	// the subject's profile (personalize.recommendation), which an unscoped call can; and
	// (below) its termination revokes the credential and awaits its deletion confirmation.
	if st, p := proxy("GET", "/api/profiles/cust-42", credential); st != 403 || p.Type != privguard.ProblemTypePrefix+"caller.purpose_not_allowed" {
		t.Errorf("sms gateway reads a profile: %d %s; want 403 caller.purpose_not_allowed", st, p.Type)
	}
	if len(upstreamSaw) != 0 {
		t.Fatal("the refused call reached the upstream")
	}
	if st, _ := proxy("GET", "/api/profiles/cust-42", ""); st != 200 {
		t.Errorf("the app's own profile read: %d; want 200", st)
	}
	if st, _ := proxy("POST", "/api/sms/cust-42", credential); st != 200 {
		t.Fatalf("sms gateway sends: %d; want 200", st)
	}
	for _, h := range upstreamSaw {
		if h.Get("X-Privguard-Caller") != "" {
			t.Error("the caller credential reached the upstream")
		}
	}
	if st, p := proxy("POST", "/api/sms/cust-42", "pg_guessed_credential_000000000"); st != 401 || p.Type != privguard.ProblemTypePrefix+"caller.unknown" {
		t.Errorf("an unknown credential: %d %s; want 401 caller.unknown", st, p.Type)
	}
	// The decision log names the caller, never its credential.
	var logText string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(filepath.Join(sc.dir, decisionLogFile))
		if logText = string(b); strings.Count(logText, `"caller":"sms-gateway"`) >= 2 {
			break
		}
	}
	if strings.Count(logText, `"caller":"sms-gateway"`) < 2 || !strings.Contains(logText, "caller.purpose_not_allowed") {
		t.Errorf("the decision log does not record the caller's decisions:\n%s", logText)
	}
	if strings.Contains(logText, credential) || strings.Contains(sc.logs.String(), credential) {
		t.Error("the credential reached a log")
	}

	// Termination: revoked at once, confirmation awaited until recorded.
	noEnv := func(string) string { return "" }
	cli := func(args ...string) (int, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := run(context.Background(), append(args, "--admin", sc.admin, "--data", sc.dir), noEnv, &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := cli("callers", "terminate", "sms-gateway"); code != 0 || !strings.Contains(out, "sms-gateway\tterminated\tawaiting_confirmation") {
		t.Fatalf("callers terminate: %d %s", code, out)
	}
	if st, p := proxy("POST", "/api/sms/cust-42", credential); st != 401 || p.Type != privguard.ProblemTypePrefix+"caller.unknown" {
		t.Errorf("the terminated processor sends: %d %s; want 401", st, p.Type)
	}
	if code, out := cli("callers", "list"); code != 0 || !strings.Contains(out, "sms-gateway\tterminated\tawaiting_confirmation") {
		t.Errorf("callers list: %d %s; want the confirmation awaited", code, out)
	}
	if code, out := cli("callers", "confirm", "sms-gateway", "--reference", "deletion certificate PRC-2291"); code != 0 || !strings.Contains(out, "confirmed") {
		t.Errorf("callers confirm: %d %s", code, out)
	}
	if code, out := cli("callers", "confirm", "sms-gateway", "--reference", "again"); code != 1 {
		t.Errorf("confirming twice: %d %s; want 1", code, out)
	}
}

// dual_control.export_rows through serve: a list of requests over it waits for another
// dpo's approval, then runs once for the one who asked.
func TestServeDualControl(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	hash := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	sc := startSidecar(t, srv.URL, `admin:
  tokens:
    - {name: dpo-a, sha256: `+hash("pg_dpo_a_0123456789")+`, roles: [dpo]}
    - {name: dpo-b, sha256: `+hash("pg_dpo_b_0123456789")+`, roles: [dpo]}
dual_control: {export_rows: 1}
`)
	call := func(tok, method, path, body, approvalID string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, sc.admin+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		if approvalID != "" {
			req.Header.Set("X-Privguard-Approval", approvalID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	for _, s := range []string{"cust-1", "cust-2"} {
		if st, out := call("pg_dpo_a_0123456789", "POST", "/v1/requests", `{"type":"access","subject":"`+s+`"}`, ""); st != 201 {
			t.Fatalf("submit: %d %v", st, out)
		}
	}
	st, out := call("pg_dpo_a_0123456789", "GET", "/v1/requests", "", "")
	id := strings.TrimPrefix(fmt.Sprint(out["instance"]), "/v1/approvals/")
	if st != 403 || out["type"] != privguard.ProblemTypePrefix+"approval.required" || !strings.HasPrefix(id, "ap_") {
		t.Fatalf("list over export_rows: %d %v; want 403 approval.required", st, out)
	}
	if st, _ := call("pg_dpo_b_0123456789", "POST", "/v1/approvals/"+id+"/approve", "", ""); st != 200 {
		t.Fatalf("approve: %d", st)
	}
	if st, out := call("pg_dpo_a_0123456789", "GET", "/v1/requests", "", id); st != 200 || len(out["requests"].([]any)) != 2 {
		t.Errorf("approved list: %d %v; want 200 with 2", st, out)
	}
	// The same through `privguard dsar list`: refused naming the approval, then run with it.
	env := func(tok string) func(string) string {
		return func(k string) string {
			if k == "PRIVGUARD_ADMIN_TOKEN" {
				return tok
			}
			return ""
		}
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"dsar", "list", "--admin", sc.admin}, env("pg_dpo_a_0123456789"), &stdout, &stderr)
	cliID := regexp.MustCompile(`ap_[0-9a-f]{24}`).FindString(stderr.String())
	if code != 1 || cliID == "" {
		t.Fatalf("dsar list over export_rows: %d %q; want 1 naming the approval", code, stderr.String())
	}
	if st, _ := call("pg_dpo_b_0123456789", "POST", "/v1/approvals/"+cliID+"/approve", "", ""); st != 200 {
		t.Fatalf("approve %s: %d", cliID, st)
	}
	stdout.Reset()
	if code := run(context.Background(), []string{"dsar", "list", "--admin", sc.admin, "--approval", cliID}, env("pg_dpo_a_0123456789"), &stdout, &stderr); code != 0 ||
		strings.Count(stdout.String(), "access") != 2 {
		t.Errorf("dsar list --approval: %d %q; want the 2 requests", code, stdout.String())
	}
}

// dual_control.export_rows through serve, for the consent evidence export: an export by
// purpose holding more records than the bound waits for another dpo's approval, bound to
// its scope, then runs once for the one who asked; an export of one subject needs none.
//
// proves SEC-07 (dual control for bulk export): export > N rows without a second approver → 403.
func TestServeDualControlConsentExport(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	hash := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	sc := startSidecar(t, srv.URL, `admin:
  tokens:
    - {name: crm, sha256: `+hash("pg_app_crm_0123456789")+`}
    - {name: dpo-a, sha256: `+hash("pg_dpo_a_0123456789")+`, roles: [dpo]}
    - {name: dpo-b, sha256: `+hash("pg_dpo_b_0123456789")+`, roles: [dpo]}
dual_control: {export_rows: 2}
`)
	call := func(tok, method, path, body, approvalID string) (int, map[string]any, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, sc.admin+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		if approvalID != "" {
			req.Header.Set("X-Privguard-Approval", approvalID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out map[string]any
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/zip") {
			json.Unmarshal(b, &out)
		}
		return resp.StatusCode, out, b
	}
	const app, dpoA, dpoB = "pg_app_crm_0123456789", "pg_dpo_a_0123456789", "pg_dpo_b_0123456789"
	if st, out, _ := call(dpoA, "POST", "/v1/notices", `{"id":"n","version":1,"language":"en","text":"t","purposes":["marketing"],
		"controller":{"name":"E","contact":"p@example.com"},"retention":"1y","rights_channels":["x"]}`, ""); st != 201 {
		t.Fatalf("notice: %d %v", st, out)
	}
	for _, s := range []string{"s-a", "s-b", "s-c"} {
		if st, out, _ := call(app, "POST", "/v1/consents", `{"subject":"`+s+`","purpose":"marketing.profiling","action":"grant",
			"regime":"pipl","notice":{"id":"n","version":1},"channel":"web","method":"explicit"}`, ""); st != 201 {
			t.Fatalf("grant: %d %v", st, out)
		}
	}
	today := time.Now().UTC().Format(time.DateOnly)
	tomorrow := time.Now().UTC().Add(24 * time.Hour).Format(time.DateOnly)
	byPurpose := "/v1/consents/export?purpose=marketing&from=" + today + "&to=" + tomorrow
	isZip := func(b []byte) bool { return bytes.HasPrefix(b, []byte("PK\x03\x04")) }

	// One subject's export is the subject's own: no approval, whatever the bound.
	if st, out, b := call(dpoA, "GET", "/v1/consents/export?subject=s-a", "", ""); st != 200 || !isZip(b) {
		t.Errorf("export of one subject: %d %v; want 200 and a zip", st, out)
	}
	// A narrower period holding no more than the bound runs as well.
	if st, out, b := call(dpoA, "GET", "/v1/consents/export?purpose=analytics.reporting&from="+today+"&to="+tomorrow, "", ""); st != 200 || !isZip(b) {
		t.Errorf("export of 0 records: %d %v; want 200", st, out)
	}
	// 3 records > 2: refused, naming the approval, and no zip.
	st, out, b := call(dpoA, "GET", byPurpose, "", "")
	id := strings.TrimPrefix(fmt.Sprint(out["instance"]), "/v1/approvals/")
	if st != 403 || out["type"] != privguard.ProblemTypePrefix+"approval.required" || !strings.HasPrefix(id, "ap_") || isZip(b) {
		t.Fatalf("export over export_rows: %d %v; want 403 approval.required", st, out)
	}
	if st, out, _ := call(dpoA, "POST", "/v1/approvals/"+id+"/approve", "", ""); st != 403 || out["type"] != privguard.ProblemTypePrefix+"approval.same_principal" {
		t.Errorf("the asker approves: %d %v; want 403 approval.same_principal", st, out)
	}
	if st, out, _ := call(dpoA, "GET", byPurpose, "", id); st != 403 || out["type"] != privguard.ProblemTypePrefix+"approval.required" {
		t.Errorf("export with a pending approval: %d %v; want 403", st, out)
	}
	if st, _, _ := call(dpoB, "POST", "/v1/approvals/"+id+"/approve", "", ""); st != 200 {
		t.Fatalf("approve: %d", st)
	}
	// Bound to the scope: another period (also over the bound) or another principal is refused.
	if st, out, _ := call(dpoA, "GET", "/v1/consents/export?purpose=marketing&from="+today+"&to="+time.Now().UTC().Add(48*time.Hour).Format(time.DateOnly), "", id); st != 403 ||
		out["type"] != privguard.ProblemTypePrefix+"approval.required" {
		t.Errorf("the approval for another period: %d %v; want 403", st, out)
	}
	if st, out, _ := call(dpoB, "GET", byPurpose, "", id); st != 403 || out["type"] != privguard.ProblemTypePrefix+"approval.required" {
		t.Errorf("another principal spends the approval: %d %v; want 403", st, out)
	}
	// The same scope written another way (an RFC 3339 time for the date) is the same export.
	if st, out, b := call(dpoA, "GET", "/v1/consents/export?purpose=marketing&from="+today+"T00:00:00Z&to="+tomorrow, "", id); st != 200 || !isZip(b) {
		t.Errorf("approved export: %d %v; want 200 and a zip", st, out)
	}
	if st, out, _ := call(dpoA, "GET", byPurpose, "", id); st != 403 || out["type"] != privguard.ProblemTypePrefix+"approval.required" {
		t.Errorf("spending the approval twice: %d %v; want 403", st, out)
	}
	// The register holds the spent approval: the export's route, its 3 records, who asked
	// and who approved (no subject, no scope in clear: the digest is keyed).
	st, out, b = call(dpoB, "GET", "/v1/approvals?state=used", "", "")
	list, _ := out["approvals"].([]any)
	if st != 200 || len(list) != 1 {
		t.Fatalf("GET /v1/approvals?state=used: %d %v; want the one spent", st, out)
	}
	a := list[0].(map[string]any)
	if a["act"] != "GET /v1/consents/export" || a["rows"] != 3.0 || a["requested_by"] != "dpo-a" || a["approved_by"] != "dpo-b" {
		t.Errorf("the spent approval: %v", a)
	}
	if bytes.Contains(b, []byte("s-a")) || bytes.Contains(b, []byte("marketing")) {
		t.Errorf("the approval register names a subject or the scope: %s", b)
	}
}
