package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/privguard/privguard/internal/auditpack"
)

// Through the real serve: the DPO's audit pack of this year holds the disclosure made
// through the sidecar and the request submitted, is written by 'privguard audit pack' and
// verifies offline with the controller's published key, and not with another; an app
// cannot have it; a bad period is a problem.
func TestAuditPackThroughServe(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) }))
	defer upstream.Close()
	hash := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	const appToken, auditorToken, dpoToken = "pg_app-token-for-the-pack-test", "pg_auditor-token-for-the-pack-test", "pg_dpo-token-for-the-pack-test"
	sc := startSidecar(t, upstream.URL, `regime: pipl
controller: {name: Example Retail Ltd, contact: privacy@example.cn, dpo: {name: Li Wei, contact: dpo@example.cn}}
routes:
  - {match: "POST /share/{id}", purpose: third_party.sharing, recipient: sg-crm, subject: {path: id}}
dsar:
  recipients:
    - name: sg-crm
      country: SG
      role: handler
      contact: dpo@crm.example.sg
      transfer: {mechanism: standard_contract, ref: SC-2026-17, date: 2026-01-01}
assessments:
  - id: pia-2026-share
    purposes: [third_party.sharing]
    recipients: [sg-crm]
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
    - {name: dpo, sha256: `+hash(dpoToken)+`, roles: [dpo]}
`)
	defer sc.stop()
	if st, out := callJSON(t, sc.admin, dpoToken, "POST", "/v1/notices", `{"id":"n","version":1,"language":"en","text":"t","purposes":["third_party"],
		"controller":{"name":"E","contact":"p@example.com"},"retention":"1y","rights_channels":["x"]}`); st != 201 {
		t.Fatalf("notice: %d %v", st, out)
	}
	if st, out := callJSON(t, sc.admin, appToken, "POST", "/v1/consents", `{"subject":"cust-7781","purpose":"third_party.sharing","action":"grant",
		"separate":true,"recipient":{"name":"sg-crm","contact":"dpo@example.com","purpose":"ads","method":"api","categories":["user.contact.email"]},"regime":"pipl","notice":{"id":"n","version":1},"channel":"app","method":"explicit"}`); st != 201 {
		t.Fatalf("grant: %d %v", st, out)
	}
	resp, err := http.Post(sc.proxy+"/share/cust-7781", "application/json", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("provision: %v %v", resp, err)
	}
	resp.Body.Close()
	if st, out := callJSON(t, sc.admin, appToken, "POST", "/v1/requests", `{"type":"deletion","subject":"cust-7781","regime":"pipl"}`); st != 201 && st != 202 {
		t.Fatalf("request: %d %v", st, out)
	}

	year := time.Now().UTC().Year()
	from, to := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.DateOnly), time.Date(year+1, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
	dir := t.TempDir()
	out := filepath.Join(dir, "audit.zip")
	env := func(k string) string {
		if k == "PRIVGUARD_ADMIN_TOKEN" {
			return auditorToken
		}
		return ""
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"audit", "pack", "--admin", sc.admin, "--from", from, "--to", to, "--out", out}, env, &stdout, &stderr); code != 0 {
		t.Fatalf("audit pack = %d: %s %s", code, stdout.String(), stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var s auditpack.Summary
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := zr.Open(auditpack.SummaryName)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(rc).Decode(&s)
	rc.Close()
	if s.Requests == nil || s.Requests.Total != 1 || s.Disclosures == nil || s.Disclosures.Entries != 1 || len(s.CrossBorder) != 1 ||
		s.CrossBorder[0].People != 1 || s.Assessments == nil || s.Assessments.Total != 1 || s.Controller != "Example Retail Ltd" || s.Incidents == nil || s.Decisions == nil || s.Consent == nil || s.Consent.Grants != 1 {
		t.Errorf("summary: %+v", s)
	}
	if bytes.Contains(b, []byte("cust-7781")) {
		t.Error("the pack names the subject")
	}

	// Offline, with the controller's published key; not with another key.
	keyResp, err := http.Get(sc.admin + "/v1/receipts/keys")
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := io.ReadAll(keyResp.Body)
	keyResp.Body.Close()
	keyFile := filepath.Join(dir, "keys.json")
	os.WriteFile(keyFile, keys, 0o600)
	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), []string{"verify", "--key", keyFile, out}, env, &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "OK: audit pack") {
		t.Fatalf("verify = %d: %s %s", code, stdout.String(), stderr.String())
	}
	other := filepath.Join(dir, "other.json")
	os.WriteFile(other, []byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"other"}]}`), 0o600)
	stdout.Reset()
	if code := run(context.Background(), []string{"verify", "--key", other, out}, env, &stdout, io.Discard); code != 1 || !strings.Contains(stdout.String(), "not by the key given") {
		t.Errorf("verify with another key = %d: %s", code, stdout.String())
	}
	// A changed byte in a member: exit 1 naming it.
	bad := filepath.Join(dir, "bad.zip")
	os.WriteFile(bad, bytes.Replace(b, []byte("PK\x03\x04"), []byte("PK\x03\x05"), 1), 0o600)
	if code := run(context.Background(), []string{"verify", bad}, env, io.Discard, io.Discard); code != 1 {
		t.Errorf("verify of a damaged pack = %d; want 1", code)
	}

	// An app has no pack; periods that are not one are problems; the pack is trailed.
	if st, _ := callJSON(t, sc.admin, appToken, "GET", "/v1/audit/pack?from="+from+"&to="+to, ""); st != 403 {
		t.Errorf("app: %d; want 403", st)
	}
	for _, q := range []string{"", "?from=" + from, "?from=" + to + "&to=" + from, "?from=yesterday&to=" + to, "?from=" + from + "&to=" + to + "&lang=fr",
		"?from=2000-01-01&to=2030-01-01", "?from=" + from + "&from=" + from + "&to=" + to} {
		if st, out := callJSON(t, sc.admin, auditorToken, "GET", "/v1/audit/pack"+q, ""); st != 400 || out["type"] == nil {
			t.Errorf("GET /v1/audit/pack%s: %d %v; want a 400 problem", q, st, out)
		}
	}
	st, tr := callJSON(t, sc.admin, auditorToken, "GET", "/v1/trail?format=json", "")
	if st != 200 || !strings.Contains(mustJSON(tr), `"act":"GET /v1/audit/pack"`) {
		t.Errorf("the trail does not show the pack's download: %d %v", st, tr)
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }
