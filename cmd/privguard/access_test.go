package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	goredis "github.com/redis/go-redis/v9"

	"github.com/privguard/privguard/dsar"
)

// TestAccessEndToEnd runs an access request across PostgreSQL, MariaDB and Redis through
// serve, takes the download token from the outbox and checks the package: the rows of
// each store, tags and segments, the consent history, the recipients, once only.
func TestAccessEndToEnd(t *testing.T) {
	// proves DSR-06: data copy plus purposes, categories, recipients, retention, source,
	// consent history, rights and complaint route. proves PUR-05: tags and segments are exported.
	env := needServices(t, "POSTGRES_DSN", "MYSQL_DSN", "REDIS_ADDR")
	pgDSN, myDSN, redisAddr := env[0], env[1], env[2]
	ctx := context.Background()
	pgTable(t, pgDSN, "acc_customers", `CREATE TABLE acc_customers (customer_id text, email text, city text)`,
		`INSERT INTO acc_customers VALUES ('acc-1','li.lei@example.com','上海'), ('acc-2','han@example.com','广州')`)
	myTable(t, myDSN, "acc_tags", `CREATE TABLE acc_tags (uid VARCHAR(64), tag VARCHAR(64)) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
		`INSERT INTO acc_tags VALUES ('acc-1','高价值'), ('acc-1','churn-risk'), ('acc-2','new')`)
	rd := goredis.NewClient(&goredis.Options{Addr: redisAddr})
	defer rd.Close()
	rd.SAdd(ctx, "acc:segment:vip", "acc-1", "acc-2")
	rd.SAdd(ctx, "acc:segment:lapsed", "acc-2")
	defer rd.Del(context.Background(), "acc:segment:vip", "acc:segment:lapsed")

	dir := t.TempDir()
	cfg := filepath.Join(dir, "privguard.yaml")
	os.WriteFile(cfg, []byte(`admin_listen: 127.0.0.1:0
data: `+dir+`
dsar:
  disclosure:
    controller: {name: Example Retail Ltd, contact: privacy@example.com}
    retention: until the account is closed, then 3 years for tax records
    sources: [collected from you at sign-up, purchase history]
    automated_decisions: segments are computed from purchases; no decision with legal effect
    rights: write to privacy@example.com or use the app's privacy centre
  recipients:
    - {name: sms-vendor, country: CN, purposes: [marketing.communications.sms], categories: [user.contact.phone_number]}
  stores:
    - name: crm
      type: postgres
      dsn: `+pgDSN+`
      tables: [{table: acc_customers, subject_column: customer_id, columns: {email: user.contact.email, city: user.location.imprecise}, erase: delete}]
    - name: tags
      type: mysql
      dsn: `+myDSN+`
      tables: [{table: acc_tags, subject_column: uid, columns: {tag: user.derived.tags}, erase: delete}]
    - name: cache
      type: redis
      addr: `+redisAddr+`
      set_members: ["acc:segment:*"]
`), 0o600)
	url, tok, stop, logs := startServe(t, dir, "--config", cfg)
	defer stop()
	call := func(method, path, body string) (int, map[string]any) {
		return callJSON(t, url, tok, method, path, body)
	}
	call("POST", "/v1/notices", `{"id":"mkt","version":1,"language":"zh-CN","text":"短信优惠","purposes":["marketing"],
		"controller":{"name":"Example","contact":"privacy@example.com"},"retention":"13 months","rights_channels":["app"]}`)
	if st, out := call("POST", "/v1/consents", `{"subject":"acc-1","purpose":"marketing.communications.sms","action":"grant","regime":"pipl",
		"notice":{"id":"mkt","version":1},"channel":"app","method":"explicit"}`); st != 201 {
		t.Fatalf("grant: %d %v", st, out)
	}
	// The link goes to the subject's verified email (the app attests it verified it).
	if st, out := call("POST", "/v1/subjects/acc-1/identifiers", `{"type":"email","value":"Acc-1@Example.com","verified":true}`); st != 201 {
		t.Fatalf("link an email: %d %v", st, out)
	}
	st, r := call("POST", "/v1/requests", `{"type":"access","subject":"acc-1","regime":"pipl","identity":{"method":"operator","note":"ID checked at the counter"}}`)
	id, _ := r["id"].(string)
	if st != 201 || id == "" {
		t.Fatalf("submit: %d %v", st, r)
	}
	r = awaitCompleted(t, url, tok, id)
	// The download token goes to the outbox (just after the request is stored completed).
	var token string
	var b []byte
	for deadline := time.Now().Add(5 * time.Second); token == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, _ = os.ReadFile(filepath.Join(dir, "outbox.jsonl"))
		for line := range strings.Lines(string(b)) {
			var m map[string]string
			json.Unmarshal([]byte(line), &m)
			if m["kind"] == "download" && m["request"] == id {
				token = m["token"]
				if m["channel"] != "email" || m["to"] != "acc-1@example.com" {
					t.Errorf("download link sent to %s %s; want email acc-1@example.com", m["channel"], m["to"])
				}
			}
		}
	}
	if token == "" {
		t.Fatalf("no download link in the outbox:\n%s", b)
	}
	download := func() (*http.Response, error) {
		req, _ := http.NewRequest("GET", url+"/v1/requests/"+id+"/result", nil)
		req.Header.Set("X-Privguard-Download-Token", token)
		return http.DefaultClient.Do(req)
	}
	resp, err := download()
	if err != nil {
		t.Fatal(err)
	}
	zb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("download: %d %s", resp.StatusCode, zb)
	}
	zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, f := range zr.File {
		rc, _ := f.Open()
		x, _ := io.ReadAll(rc)
		rc.Close()
		files[f.Name] = string(x)
	}
	for path, want := range map[string][]string{
		"data/crm.json":              {"li.lei@example.com", "上海"},
		"data/crm/acc_customers.csv": {"li.lei@example.com"},
		"data/tags.json":             {"高价值", "churn-risk"},
		"data/tags/acc_tags.csv":     {"高价值"},
		"data/cache.json":            {"acc:segment:vip"},
		"disclosure.json":            {`"user.derived.tags"`, `"user.derived.segments"`, `"sms-vendor"`, `"grant"`, "Example Retail Ltd", "3 years", "purchase history", `"consent": "given"`},
		"README.txt":                 {"【中文】", "[English]", "sms-vendor [CN]"},
	} {
		for _, w := range want {
			if !strings.Contains(files[path], w) {
				t.Errorf("%s lacks %q", path, w)
			}
		}
	}
	if strings.Contains(files["disclosure.json"], "sensitive.processing") || strings.Contains(files["disclosure.json"], "cross_border.transfer") {
		t.Error("the answer lists consent-only purposes the subject never consented to")
	}
	for path, body := range files {
		for _, other := range []string{"han@example.com", "广州", `"new"`, "lapsed"} {
			if strings.Contains(body, other) {
				t.Errorf("%s holds another subject's data (%s)", path, other)
			}
		}
	}
	var doc dsar.PackageDoc
	if err := json.Unmarshal([]byte(files["disclosure.json"]), &doc); err != nil || len(doc.Disclosure.ConsentHistory) != 1 {
		t.Errorf("consent history: %v, %+v", err, doc.Disclosure.ConsentHistory)
	}
	resp, err = download()
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone {
		t.Errorf("second download: %d; want 410", resp.StatusCode)
	}
	if strings.Contains(logs.String(), token) || strings.Contains(logs.String(), "li.lei") {
		t.Error("the token or personal data reached the log")
	}
}
