package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"
)

// TestDeletionEndToEnd submits a deletion through the API and checks every store directly
// (proves SEC-06 end to end):
// PostgreSQL rows, Redis keys and segment membership, the vault key, the consent ledger.
func TestDeletionEndToEnd(t *testing.T) {
	// proves SEC-06: every store erased, the vault key shredded, the ledger records it.
	env := needServices(t, "POSTGRES_DSN", "REDIS_ADDR")
	pgDSN, redisAddr := env[0], env[1]
	ctx := context.Background()
	pg, err := pgx.Connect(ctx, pgDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(ctx)
	for _, q := range []string{`DROP TABLE IF EXISTS e2e_customers`,
		`CREATE TABLE e2e_customers (customer_id text, email text, phone text)`,
		`INSERT INTO e2e_customers VALUES ('e2e-1','li.lei@example.com','13812345678'), ('e2e-2','han@example.com','13900000000')`} {
		if _, err := pg.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	defer pg.Exec(context.Background(), `DROP TABLE IF EXISTS e2e_customers`)
	rd := goredis.NewClient(&goredis.Options{Addr: redisAddr})
	defer rd.Close()
	rd.HSet(ctx, "e2e:profile:e2e-1", "email", "li.lei@example.com")
	rd.SAdd(ctx, "e2e:segment:vip", "e2e-1", "e2e-2")
	defer rd.Del(context.Background(), "e2e:profile:e2e-1", "e2e:segment:vip")

	dir := t.TempDir()
	cfg := filepath.Join(dir, "privguard.yaml")
	os.WriteFile(cfg, []byte(`admin_listen: 127.0.0.1:0
data: `+dir+`
dsar:
  stores:
    - name: crm
      type: postgres
      dsn: `+pgDSN+`
      tables: [{table: e2e_customers, subject_column: customer_id, columns: {email: user.contact.email, phone: user.contact.phone_number}, erase: delete}]
    - name: cache
      type: redis
      addr: `+redisAddr+`
      keys: ["e2e:profile:{subject}"]
      set_members: ["e2e:segment:*"]
`), 0o600)
	url, tok, stop, _ := startServe(t, dir, "--config", cfg)
	defer stop()
	call := func(method, path, body string) map[string]any {
		_, m := callJSON(t, url, tok, method, path, body)
		return m
	}
	sealed := call("POST", "/v1/vault/seal", `{"subject":"e2e-1","plaintext":"eA=="}`)["ciphertext"].(string)
	r := call("POST", "/v1/requests", `{"type":"deletion","subject":"e2e-1","regime":"gdpr","identity":{"method":"operator","note":"verified in store"}}`)
	id, _ := r["id"].(string)
	if id == "" || r["state"] != "verified" {
		t.Fatalf("submit = %v", r)
	}
	r = awaitCompleted(t, url, tok, id)
	var n int
	pg.QueryRow(ctx, `SELECT count(*) FROM e2e_customers WHERE customer_id = 'e2e-1'`).Scan(&n)
	if n != 0 {
		t.Errorf("%d PostgreSQL rows of the subject remain", n)
	}
	pg.QueryRow(ctx, `SELECT count(*) FROM e2e_customers WHERE customer_id = 'e2e-2'`).Scan(&n)
	if n != 1 {
		t.Errorf("another subject's row was erased")
	}
	if k, _ := rd.Exists(ctx, "e2e:profile:e2e-1").Result(); k != 0 {
		t.Error("the Redis profile remains")
	}
	if in, _ := rd.SIsMember(ctx, "e2e:segment:vip", "e2e-1").Result(); in {
		t.Error("the subject is still in a segment")
	}
	if in, _ := rd.SIsMember(ctx, "e2e:segment:vip", "e2e-2").Result(); !in {
		t.Error("another subject was removed from the segment")
	}
	if o := call("POST", "/v1/vault/open", `{"subject":"e2e-1","ciphertext":"`+sealed+`"}`); o["status"] != float64(410) {
		t.Errorf("vault open after erasure = %v; want 410 shredded", o)
	}
	h := call("GET", "/v1/subjects/e2e-1/consents/history", "")
	if recs, _ := h["records"].([]any); len(recs) == 0 || !strings.Contains(func() string { b, _ := json.Marshal(recs); return string(b) }(), `"action":"erase"`) {
		t.Errorf("the ledger has no erase record: %v", h)
	}
}

// TestCodeVerificationThroughOutbox runs serve on the embedded store and verifies a request
// with the one-time code the outbox received (proves DSR-02 end to end).
func TestCodeVerificationThroughOutbox(t *testing.T) {
	// proves DSR-02: the subject proves identity with a code sent to them.
	dir := t.TempDir()
	url, tok, stop, _ := startServe(t, dir)
	defer stop()
	call := func(method, path, body string) (int, map[string]any) {
		return callJSON(t, url, tok, method, path, body)
	}
	_, r := call("POST", "/v1/requests", `{"type":"access","subject":"cust-9","regime":"pipl"}`)
	id, _ := r["id"].(string)
	// Nothing verified is linked to the subject: no code can be sent, and none is spent.
	if st, p := call("POST", "/v1/requests/"+id+"/code", ""); st != 409 || !strings.HasSuffix(p["type"].(string), "no-address") ||
		!strings.Contains(p["detail"].(string), "no verified phone or email is linked to the subject") {
		t.Fatalf("send code without an address: %d %v; want 409 no-address", st, p)
	}
	outbox := func() []map[string]any {
		b, _ := os.ReadFile(filepath.Join(dir, "outbox.jsonl"))
		var out []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil {
				out = append(out, m)
			}
		}
		return out
	}
	// The app links the subject's phone; a code verifies it.
	st, link := call("POST", "/v1/subjects/cust-9/identifiers", `{"type":"phone","value":"138 0013 8000"}`)
	hash, _ := link["hash"].(string)
	if st != 201 || link["verified"] != false || link["masked"] != "+86 138****8000" || hash == "" {
		t.Fatalf("link a phone: %d %v", st, link)
	}
	if st, out := call("POST", "/v1/subjects/cust-9/identifiers/"+hash+"/code", ""); st != 202 {
		t.Fatalf("send the identifier a code: %d %v", st, out)
	}
	msgs := outbox()
	if len(msgs) != 1 || msgs[0]["channel"] != "sms" || msgs[0]["to"] != "+8613800138000" || msgs[0]["kind"] != "code" {
		t.Fatalf("outbox %v; want one code by sms to +8613800138000", msgs)
	}
	if st, out := call("POST", "/v1/subjects/cust-9/identifiers/"+hash+"/verify", `{"code":"`+msgs[0]["code"].(string)+`"}`); st != 200 || out["verified"] != true || out["evidence"] != "code" {
		t.Fatalf("verify the identifier: %d %v", st, out)
	}
	// The request's code goes to the verified phone, as its own field.
	if st, out := call("POST", "/v1/requests/"+id+"/code", ""); st != 202 {
		t.Fatalf("send code: %d %v", st, out)
	}
	msgs = outbox()
	msg := msgs[len(msgs)-1]
	code, _ := msg["code"].(string)
	if len(msgs) != 2 || msg["channel"] != "sms" || msg["to"] != "+8613800138000" || msg["request"] != id || len(code) != 6 ||
		!strings.Contains(msg["text"].(string), code) {
		t.Fatalf("outbox message %v; want the request's code by sms to the verified phone", msg)
	}
	if st, out := call("POST", "/v1/requests/"+id+"/code/verify", `{"code":"`+code+`"}`); st != 200 || out["state"] != "verified" {
		t.Fatalf("verify code: %d %v", st, out)
	}
	// No identity token secret configured: tokens are refused with a clear answer.
	if st, out := call("POST", "/v1/requests", `{"type":"access","subject":"cust-8","regime":"pipl","identity_token":"x.y.z"}`); st != 422 {
		t.Errorf("token without a configured secret: %d %v", st, out)
	}
}

// TestDSARCommand drives a running serve with 'privguard dsar submit|list|status'.
func TestDSARCommand(t *testing.T) {
	dir := t.TempDir()
	url, _, stop, _ := startServe(t, dir)
	defer stop()
	ctx := context.Background()
	noenv := func(string) string { return "" }
	cli := func(args ...string) (int, string, string) {
		var out, errb strings.Builder
		code := run(ctx, append([]string{"dsar"}, append(args, "--admin", url, "--data", dir)...), noenv, &out, &errb)
		return code, out.String(), errb.String()
	}
	ids := filepath.Join(dir, "ids.txt")
	os.WriteFile(ids, []byte("cust-1\ncust-2\n\n# a comment\ncust-3\nbad subject\x00\n"), 0o600)
	code, out, errOut := cli("submit", "--type", "objection", "--regime", "gdpr", "--subjects-file", ids)
	if code != 1 || strings.Count(out, "\n") != 3 || !strings.Contains(errOut, "line 6:") || !strings.Contains(errOut, "1 of 4 submissions failed") {
		t.Fatalf("bulk submit: %d\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(errOut, "bad subject") {
		t.Errorf("a subject id reached stderr: %s", errOut)
	}
	// With the operator's word, a subjects file goes in bulk (POST /v1/requests/bulk); a
	// malformed line still fails alone.
	bulk := filepath.Join(dir, "erase.txt")
	os.WriteFile(bulk, []byte("bulk-1\nbulk-2\nbad subject\x00\nbulk-3\n"), 0o600)
	code, out, errOut = cli("submit", "--type", "deletion", "--regime", "pipl", "--operator-note", "signed forms", "--subjects-file", bulk)
	if code != 1 || strings.Count(out, "\tverified\n") != 3 || !strings.Contains(errOut, "line 3:") || !strings.Contains(errOut, "1 of 4 submissions failed") ||
		!strings.Contains(errOut, "submitted 3/3") { // the valid ones, in one call
		t.Fatalf("bulk erasure submit: %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = cli("submit", "--type", "access", "--subject", "cust-9", "--regime", "pipl", "--operator-note", "checked ID card")
	if code != 0 || !strings.HasSuffix(strings.TrimSpace(out), "verified") {
		t.Fatalf("submit: %d %s", code, out)
	}
	id := strings.Fields(out)[0]
	if code, out, _ = cli("status", id); code != 0 || !strings.Contains(out, `"subject": "cust-9"`) {
		t.Errorf("status: %d %s", code, out)
	}
	if code, out, _ = cli("list", "--state", "verified"); code != 0 || !strings.Contains(out, id) || strings.Count(out, "verified") != strings.Count(out, "\n")-1 {
		t.Errorf("list --state verified: %d\n%s", code, out)
	}
	if code, out, _ = cli("list", "--overdue"); code != 0 || strings.Count(out, "\n") != 1 {
		t.Errorf("list --overdue (none are): %d\n%s", code, out)
	}
	// The engine loop (every 2 s) may have completed the request meanwhile: then 409.
	if code, out, errOut = cli("retry", id); !(code == 0 && strings.Contains(out, "retry requested")) && !(code == 1 && strings.Contains(errOut, "409")) {
		t.Errorf("retry: %d %s %s", code, out, errOut)
	}
	if code, _, errOut = cli("status", "no-such-id"); code != 1 || !strings.Contains(errOut, "404") {
		t.Errorf("status of an unknown id: %d %s", code, errOut)
	}
	if code, _, _ = cli("submit", "--type", "access"); code != 2 {
		t.Errorf("submit without a subject: %d; want 2", code)
	}
	// The operator downloads the finished package to hand it over; it exists once.
	zipPath := filepath.Join(dir, "cust-9.zip")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if code, out, _ = cli("status", id); strings.Contains(out, `"state": "completed"`) {
			break
		}
	}
	if code, out, errOut = cli("result", id, "--out", zipPath); code != 0 || !strings.Contains(out, "sha-256=:") {
		t.Fatalf("result: %d %s %s", code, out, errOut)
	}
	if fi, err := os.Stat(zipPath); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
		t.Errorf("package file: %v %v", fi, err)
	}
	if code, _, errOut = cli("result", id, "--out", filepath.Join(dir, "again.zip")); code != 1 || !strings.Contains(errOut, "410") {
		t.Errorf("second result: %d %s; want 410 Gone", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "again.zip")); err == nil {
		t.Error("a failed download left a file behind")
	}
	// proves DSR-09: the controller's own erasure triggers create deletion jobs without a requester.
	for _, trig := range []string{"purpose_achieved", "service_ended", "retention_expired", "consent_withdrawn", "unlawful_processing"} {
		if code, out, errOut = cli("submit", "--type", "deletion", "--subject", "cust-t-"+trig, "--trigger", trig); code != 0 || !strings.Contains(out, "verified") {
			t.Errorf("trigger %s: %d %s %s", trig, code, out, errOut)
		}
	}
	if code, _, errOut = cli("submit", "--type", "access", "--subject", "cust-x", "--trigger", "retention_expired"); code != 1 || !strings.Contains(errOut, "422") {
		t.Errorf("a trigger on an access request: %d %s", code, errOut)
	}
	if code, _, errOut = cli("submit", "--type", "correction", "--subject", "cust-1", "--patch", "user.contact.email=a@b.c"); code != 1 || !strings.Contains(errOut, "no store holds it") {
		t.Errorf("correction nobody can apply: %d %s", code, errOut)
	}
	if code, _, errOut = cli("approve", id, "--note", "x"); code != 1 || !strings.Contains(errOut, "409") {
		t.Errorf("approve a non-correction: %d %s", code, errOut)
	}
	reg := filepath.Join(dir, "register.csv")
	if code, out, errOut = cli("register", "--out", reg); code != 0 {
		t.Errorf("register: %d %s %s", code, out, errOut)
	}
	if b, _ := os.ReadFile(reg); !strings.HasPrefix(string(b), "id,type,regime,") || !strings.Contains(string(b), id) || strings.Contains(string(b), "cust-9") {
		t.Errorf("register.csv:\n%s", b)
	}
}
