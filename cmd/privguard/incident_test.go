package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func incidentYAML(t *testing.T, dir string) string {
	t.Helper()
	hash := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	text := `admin:
  tokens:
    - {name: ops, sha256: ` + hash("pg_admin-token-for-the-test") + `, roles: [admin]}
    - {name: li.dpo, sha256: ` + hash("pg_dpo-token-for-the-test") + `, roles: [dpo]}
    - {name: audit-firm, sha256: ` + hash("pg_auditor-token-for-the-test") + `, roles: [auditor]}
controller:
  name: Example Retail Ltd
  dpo: {name: Li Wei, contact: dpo@example.com}
incidents:
  regimes: [pipl, gdpr]
  cii_operator: true
`
	path := filepath.Join(dir, "privguard.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "admin.token"), []byte("pg_admin-token-for-the-test\n"), 0o600) // read by startServe
	return path
}

func metric(t *testing.T, url, token, name string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// Through serve: an incident recorded by the DPO runs the CII operator's 1-hour CAC clock
// from aware_at, shows overdue in the register, the metrics and a warning; the subjects'
// notice goes to the outbox, one message per subject, with the DPO's contact from the
// configuration.
func TestIncidentsThroughServe(t *testing.T) {
	dir := t.TempDir()
	cfg := incidentYAML(t, dir)
	url, admin, stopServe, logs := startServe(t, dir, "--config", cfg)
	stop := sync.OnceValue(stopServe)
	defer stop()
	dpo := "pg_dpo-token-for-the-test"
	aware := time.Now().UTC().Add(-90 * time.Minute).Format(time.RFC3339)
	body := `{"title":"CRM export left public","facts":"a CSV was readable by URL","aware_at":"` + aware + `",
		"cause":"a bucket policy changed","categories":["user.contact.phone_number"],"subject_count":2,"subjects":["cust-7001","cust-7002"],
		"effects":"fraud calls","actions":"bucket closed","advice":"ignore calls asking for codes","severity":"较大","risk":"high"}`
	// Notices go to the subjects' verified addresses: an email first, else a phone.
	for subject, ident := range map[string]string{"cust-7001": `{"type":"email","value":"a7001@example.com","verified":true}`,
		"cust-7002": `{"type":"phone","value":"13800137002","verified":true}`} {
		if st, out := callJSON(t, url, admin, "POST", "/v1/subjects/"+subject+"/identifiers", ident); st != http.StatusCreated {
			t.Fatalf("link %s: %d %v", subject, st, out)
		}
	}
	st, v := callJSON(t, url, dpo, "POST", "/v1/incidents", body)
	if st != http.StatusCreated {
		t.Fatalf("POST /v1/incidents = %d %v", st, v)
	}
	id := v["id"].(string)
	clocks := map[string]string{}
	for _, c := range v["clocks"].([]any) {
		c := c.(map[string]any)
		clocks[c["name"].(string)] = c["state"].(string)
	}
	if clocks["pipl.authority"] != "overdue" || clocks["gdpr.authority"] != "alert" && clocks["gdpr.authority"] != "running" {
		t.Errorf("clocks %v; want the CII CAC clock overdue at 90 minutes", clocks)
	}
	deadline := time.Now().Add(10 * time.Second)
	for metric(t, url, admin, "privguard_incident_clocks_overdue") != "1" {
		if time.Now().After(deadline) {
			t.Fatalf("privguard_incident_clocks_overdue = %q; want 1", metric(t, url, admin, "privguard_incident_clocks_overdue"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v := metric(t, url, admin, "privguard_incident_deadline_seconds"); !strings.HasPrefix(v, "-") {
		t.Errorf("privguard_incident_deadline_seconds = %q; want negative (past)", v)
	}
	if st, out := callJSON(t, url, dpo, "POST", "/v1/incidents/"+id+"/events", `{"kind":"notify-subjects"}`); st != 200 {
		t.Fatalf("notify-subjects = %d %v", st, out)
	}
	outbox := filepath.Join(dir, "outbox.jsonl")
	for {
		b, _ := os.ReadFile(outbox)
		if strings.Count(string(b), `"kind":"incident"`) == 2 {
			if !strings.Contains(string(b), "dpo@example.com") || !strings.Contains(string(b), `"channel":"email","to":"a7001@example.com"`) ||
				!strings.Contains(string(b), `"channel":"sms","to":"+8613800137002"`) || strings.Contains(string(b), "cust-700") {
				t.Errorf("outbox %s; want each subject's notice naming the DPO's contact, at its verified address (not its id)", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox holds %s; want 2 incident notices", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st, reg := callJSON(t, url, "pg_auditor-token-for-the-test", "GET", "/v1/incidents?overdue=true", ""); st != 200 || len(reg["entries"].([]any)) != 1 {
		t.Errorf("auditor GET /v1/incidents?overdue=true = %d %v", st, reg)
	}
	// The commands: record and event through the API (the admin's token in the data
	// directory), list and show from the data file once serve has stopped.
	adminArgs := []string{"--admin", url, "--data", dir}
	rep := filepath.Join(dir, "report.json")
	os.WriteFile(rep, []byte(`{"title":"Lost laptop","facts":"a laptop with an encrypted disk was stolen","aware_at":"`+aware+`"}`), 0o600)
	var out, errb bytes.Buffer
	if code := run(context.Background(), append([]string{"incident", "record"}, append(adminArgs, rep)...), os.Getenv, &out, &errb); code != 0 {
		t.Fatalf("incident record = %d %s", code, errb.String())
	}
	var rec struct{ ID string }
	json.Unmarshal(out.Bytes(), &rec)
	ev := filepath.Join(dir, "assess.json")
	os.WriteFile(ev, []byte(`{"kind":"assess","severity":"一般","risk":"none"}`), 0o600)
	out.Reset()
	if code := run(context.Background(), append([]string{"incident", "event"}, append(adminArgs, rec.ID, ev)...), os.Getenv, &out, &errb); code != 0 {
		t.Fatalf("incident event = %d %s", code, errb.String())
	}
	os.WriteFile(ev, []byte(`{"kind":"close"}`), 0o600)
	if code := run(context.Background(), append([]string{"incident", "event"}, append(adminArgs, rec.ID, ev)...), os.Getenv, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "effects, actions") {
		t.Errorf("incident event close with gaps = %d %s; want 1 naming the gaps", code, errb.String())
	}
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	out.Reset()
	if code := run(context.Background(), []string{"incident", "list", "--data", dir, "--config", cfg}, os.Getenv, &out, &errb); code != 0 {
		t.Fatalf("incident list = %d %s", code, errb.String())
	}
	if !strings.Contains(out.String(), id) || !strings.Contains(out.String(), rec.ID) || !strings.Contains(out.String(), "pipl.authority=overdue") ||
		!strings.Contains(out.String(), "pipl.authority=not_required") || !strings.Contains(out.String(), "2 incidents") {
		t.Errorf("incident list:\n%s", out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"incident", "show", "--data", dir, "--config", cfg, rec.ID}, os.Getenv, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), `"severity": "general"`) {
		t.Errorf("incident show = %d %s %s", code, out.String(), errb.String())
	}
	if code := run(context.Background(), []string{"incident", "show", "--data", dir, "inc_nope"}, os.Getenv, &out, &errb); code != 2 {
		t.Errorf("incident show of an unknown id = %d; want 2", code)
	}
	l := logs.String()
	if !strings.Contains(l, "incident notice deadline") || !strings.Contains(l, id) {
		t.Errorf("no deadline warning for %s in the logs:\n%s", id, l)
	}
	if strings.Contains(l, "cust-700") {
		t.Errorf("a log line names a subject:\n%s", l)
	}
}
