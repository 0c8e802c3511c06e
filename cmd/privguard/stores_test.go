package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/privguard/privguard/connector/webhook"
)

// pgTable connects to PostgreSQL, drops and recreates table with the statements given
// (create first, then the rows) and drops it again when the test ends.
func pgTable(t *testing.T, dsn, table string, stmts ...string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	pg, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pg.Exec(context.Background(), `DROP TABLE IF EXISTS `+table)
		pg.Close(context.Background())
	})
	for _, q := range append([]string{`DROP TABLE IF EXISTS ` + table}, stmts...) {
		if _, err := pg.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	return pg
}

// myTable does the same on MariaDB.
func myTable(t *testing.T, dsn, table string, stmts ...string) *sql.DB {
	t.Helper()
	my, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		my.Exec(`DROP TABLE IF EXISTS ` + table)
		my.Close()
	})
	for _, q := range append([]string{`DROP TABLE IF EXISTS ` + table}, stmts...) {
		if _, err := my.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return my
}

// awaitCompleted polls request id on a running serve until it is completed (the engine
// steps every 2 s) and returns it; the test fails after 20 s.
func awaitCompleted(t *testing.T, url, tok, id string) map[string]any {
	t.Helper()
	var r map[string]any
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if _, r = callJSON(t, url, tok, "GET", "/v1/requests/"+id, ""); r["state"] == "completed" {
			return r
		}
	}
	t.Fatalf("request did not complete: %v", r)
	return nil
}

// signedVendor is a SaaS tool's privacy endpoint: it refuses calls not signed with secret,
// keeps the calls it accepted, and answers each with status and body.
func signedVendor(t *testing.T, secret []byte, status int, body string) (url string, calls func() []webhook.Call) {
	t.Helper()
	var mu sync.Mutex
	var got []webhook.Call
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), b, time.Now()) != nil {
			http.Error(w, "unsigned", http.StatusUnauthorized)
			return
		}
		var c webhook.Call
		json.Unmarshal(b, &c)
		mu.Lock()
		got = append(got, c)
		mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []webhook.Call {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// needServices returns the values of the PRIVGUARD_TEST_* variables named (POSTGRES_DSN,
// MYSQL_DSN, REDIS_ADDR), and skips the test when one is unset (.ci/run sets them all).
func needServices(tb testing.TB, names ...string) []string {
	tb.Helper()
	out := make([]string, len(names))
	for i, n := range names {
		if out[i] = os.Getenv("PRIVGUARD_TEST_" + n); out[i] == "" {
			tb.Skipf("PRIVGUARD_TEST_%s is not set (CI sets it; see .ci/run)", n)
		}
	}
	return out
}
