package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/privguard/privguard/connector/webhook"
)

// TestCorrectionEndToEnd: a correction waits for approval, then reaches PostgreSQL and
// MariaDB and is told to the recipient's webhook; hostile patches are refused or stored
// as plain data.
func TestCorrectionEndToEnd(t *testing.T) {
	// proves DSR-08: after approval every store holds the new value, the recipient gets the
	// notice, the audit trail names the approver. proves DSR-11: the recipient is notified.
	env := needServices(t, "POSTGRES_DSN", "MYSQL_DSN")
	pgDSN, myDSN := env[0], env[1]
	ctx := context.Background()
	pg := pgTable(t, pgDSN, "cor_customers", `CREATE TABLE cor_customers (customer_id text, email text, city text)`,
		`INSERT INTO cor_customers VALUES ('cor-1','old@example.com','上海'), ('cor-2','other@example.com','北京')`)
	my := myTable(t, myDSN, "cor_contacts", `CREATE TABLE cor_contacts (uid VARCHAR(64), mail VARCHAR(255)) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
		`INSERT INTO cor_contacts VALUES ('cor-1','old@example.com'), ('cor-2','other@example.com')`)

	// The recipient: an ad platform that was sent the email, behind a signed webhook.
	secret := []byte("ad-platform-shared-secret-0123456789abcdef")
	vendorURL, notices := signedVendor(t, secret, http.StatusOK, `{"status":"done","items":1}`)

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ad.secret"), secret, 0o600)
	cfg := filepath.Join(dir, "privguard.yaml")
	os.WriteFile(cfg, []byte(`admin_listen: 127.0.0.1:0
data: `+dir+`
dsar:
  recipients:
    - name: ad-platform
      country: SG
      purposes: [marketing.advertising]
      categories: [user.contact.email]
      webhook: {url: `+vendorURL+`, secret_file: `+filepath.Join(dir, "ad.secret")+`}
  stores:
    - name: crm
      type: postgres
      dsn: `+pgDSN+`
      tables: [{table: cor_customers, subject_column: customer_id, columns: {email: user.contact.email, city: user.location.imprecise}, erase: delete}]
    - name: contacts
      type: mysql
      dsn: `+myDSN+`
      tables: [{table: cor_contacts, subject_column: uid, columns: {mail: user.contact.email}, erase: delete}]
`), 0o600)
	url, tok, stop, _ := startServe(t, dir, "--config", cfg)
	defer stop()
	call := func(method, path, body string) (int, map[string]any) {
		return callJSON(t, url, tok, method, path, body)
	}

	// Hostile patches are refused before anything is recorded.
	for name, body := range map[string]string{
		"unknown category":   `{"type":"correction","subject":"cor-1","regime":"gdpr","patch":{"user.nonexistent":"x"}}`,
		"malformed category": `{"type":"correction","subject":"cor-1","regime":"gdpr","patch":{"email; DROP TABLE cor_customers":"x"}}`,
		"huge value":         `{"type":"correction","subject":"cor-1","regime":"gdpr","patch":{"user.contact.email":"` + strings.Repeat("x", 5000) + `"}}`,
		"unknown field":      `{"type":"correction","subject":"cor-1","regime":"gdpr","patch":{"user.contact.email":"a@b.c"},"sql":"1"}`,
		"empty patch":        `{"type":"correction","subject":"cor-1","regime":"gdpr","patch":{}}`,
		"patch not strings":  `{"type":"correction","subject":"cor-1","regime":"gdpr","patch":{"user.contact.email":{"$ne":1}}}`,
	} {
		if st, out := call("POST", "/v1/requests", body); st < 400 || st >= 500 || out["type"] == nil {
			t.Errorf("%s: %d %v; want a 4xx problem", name, st, out)
		}
	}

	const newEmail = `new'); DELETE FROM cor_customers; --@example.com`
	patch, _ := json.Marshal(map[string]any{"type": "correction", "subject": "cor-1", "regime": "gdpr",
		"identity": map[string]string{"method": "operator", "note": "logged-in session"},
		"patch":    map[string]string{"user.contact.email": newEmail}})
	st, r := call("POST", "/v1/requests", string(patch))
	id, _ := r["id"].(string)
	if st != 201 || r["state"] != "awaiting_approval" {
		t.Fatalf("submit correction: %d %v; want awaiting_approval", st, r)
	}
	time.Sleep(2500 * time.Millisecond) // a step of the engine passes: nothing changes before approval
	var email string
	pg.QueryRow(ctx, `SELECT email FROM cor_customers WHERE customer_id = 'cor-1'`).Scan(&email)
	if email != "old@example.com" {
		t.Fatalf("the patch was applied before approval: %q", email)
	}
	if st, out := call("POST", "/v1/requests/"+id+"/approve", `{}`); st != 422 {
		t.Errorf("approve without a note: %d %v", st, out)
	}
	if st, out := call("POST", "/v1/requests/"+id+"/approve", `{"note":"matches the address on the order confirmation"}`); st != 200 || out["state"] != "verified" {
		t.Fatalf("approve: %d %v", st, out)
	}
	if st, _ := call("POST", "/v1/requests/"+id+"/approve", `{"note":"again"}`); st != 409 {
		t.Errorf("second approval: %d; want 409", st)
	}
	r = awaitCompleted(t, url, tok, id)
	var mail string
	pg.QueryRow(ctx, `SELECT email FROM cor_customers WHERE customer_id = 'cor-1'`).Scan(&email)
	my.QueryRow(`SELECT mail FROM cor_contacts WHERE uid = 'cor-1'`).Scan(&mail)
	if email != newEmail || mail != newEmail {
		t.Errorf("after the correction: crm %q, contacts %q; want the new value (as data) in both", email, mail)
	}
	var others int
	pg.QueryRow(ctx, `SELECT count(*) FROM cor_customers WHERE customer_id = 'cor-2' AND email = 'other@example.com'`).Scan(&others)
	if others != 1 {
		t.Error("another subject's row changed")
	}
	if got := notices(); len(got) != 1 || got[0].Op != webhook.OpNotify || got[0].Notice.Event != "rectification" ||
		got[0].Notice.Patch["user.contact.email"] != newEmail || got[0].Request != id {
		t.Errorf("recipient notices: %+v", got)
	}
	b, _ := json.Marshal(r)
	for _, want := range []string{`"by":"admin"`, `matches the address`, `"store":"recipient:ad-platform"`, `"approved"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("request lacks %s: %s", want, b)
		}
	}
}
