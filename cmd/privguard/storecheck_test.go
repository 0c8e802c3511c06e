package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeChecksTheDataMap: serve refuses to start when a SQL store lacks a table or
// column of its data map, naming the store, the table and the column.
func TestServeChecksTheDataMap(t *testing.T) {
	env := needServices(t, "POSTGRES_DSN", "MYSQL_DSN")
	pgDSN, myDSN := env[0], env[1]
	pgTable(t, pgDSN, "hscheck_customers", `CREATE TABLE hscheck_customers (customer_id text, email text)`)
	myTable(t, myDSN, "hscheck_tags", `CREATE TABLE hscheck_tags (uid VARCHAR(64), tag VARCHAR(64))`)
	for _, tc := range []struct{ name, store, want string }{
		{"postgres_table", `{name: crm, type: postgres, dsn: "` + pgDSN + `", tables: [{table: hscheck_clients, subject_column: customer_id, columns: {email: user.contact.email}, erase: delete}]}`,
			"dsar store crm: table hscheck_clients does not exist"},
		{"postgres_column", `{name: crm, type: postgres, dsn: "` + pgDSN + `", tables: [{table: hscheck_customers, subject_column: customer_id, columns: {phone: user.contact.phone_number}, erase: delete}]}`,
			"dsar store crm: table hscheck_customers has no column phone"},
		{"mysql_subject_column", `{name: tags, type: mysql, dsn: "` + myDSN + `", tables: [{table: hscheck_tags, subject_column: customer_id, columns: {tag: user.derived.tags}, erase: delete}]}`,
			"dsar store tags: table hscheck_tags has no column customer_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "privguard.yaml")
			os.WriteFile(cfg, []byte("admin_listen: 127.0.0.1:0\ndsar:\n  stores:\n    - "+tc.store+"\n"), 0o600)
			var out, errb bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code := run(ctx, []string{"serve", "--config", cfg, "--data", dir}, func(string) string { return "" }, &out, &errb)
			if code == 0 || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("serve = %d %q; want a failure naming %q", code, errb.String(), tc.want)
			}
		})
	}
}

// TestStoreFailureKindInRequestAndLog: a store that cannot be reached does not stop serve
// (its tasks retry), and the failure's kind shows in the request's task and in the log,
// without the subject.
func TestStoreFailureKindInRequestAndLog(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "privguard.yaml")
	os.WriteFile(cfg, []byte(`admin_listen: 127.0.0.1:0
dsar:
  stores:
    - {name: crm, type: postgres, dsn: "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2", tables: [{table: customers, subject_column: customer_id, columns: {email: user.contact.email}, erase: delete}]}
`), 0o600)
	url, tok, stop, logs := startServe(t, dir, "--config", cfg)
	defer stop()
	if !strings.Contains(logs.String(), `"store":"crm","kind":"connection_refused"`) {
		t.Errorf("no start-up warning with the kind:\n%s", logs.String())
	}
	st, r := callJSON(t, url, tok, "POST", "/v1/requests", `{"type":"deletion","subject":"kind-subject-1","regime":"pipl","identity":{"method":"operator","note":"desk"}}`)
	id, _ := r["id"].(string)
	if st != 201 {
		t.Fatalf("submit: %d %v", st, r)
	}
	var task map[string]any
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && task["error_kind"] == nil; time.Sleep(200 * time.Millisecond) {
		_, r = callJSON(t, url, tok, "GET", "/v1/requests/"+id, "")
		if tasks, _ := r["tasks"].([]any); len(tasks) == 1 {
			task, _ = tasks[0].(map[string]any)
		}
	}
	if task["error_kind"] != "connection_refused" || task["last_error"] != "crm: erase failed: connection_refused" {
		t.Errorf("task %v; want error_kind connection_refused in the request", task)
	}
	if !strings.Contains(logs.String(), `"msg":"dsar task failed"`) || !strings.Contains(logs.String(), `"store":"crm","op":"erase","kind":"connection_refused"`) {
		t.Errorf("no log line with the kind:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "kind-subject-1") {
		t.Error("the log names the subject")
	}
}
