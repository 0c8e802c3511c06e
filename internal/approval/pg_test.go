package approval_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/privguard/privguard/internal/approval"
	"github.com/privguard/privguard/pgstore"
)

// Two replicas (two pgstore handles on one schema) approving one ask, then using it, at
// once: one approval and one use succeed (the head check in PostgreSQL).
func TestOneApprovalAcrossReplicas(t *testing.T) {
	dsn := os.Getenv("PRIVGUARD_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("PRIVGUARD_TEST_POSTGRES_DSN is not set: this test needs PostgreSQL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "approvaltest_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Logf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(context.Background())
		conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
	})
	var regs []*approval.Register
	for range 2 {
		db, err := pgstore.Open(ctx, dsn, pgstore.Options{Schema: schema, Migrate: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		regs = append(regs, open(t, db.Journal(), nil))
	}
	a, _, err := regs[0].Ask(ctx, "GET /v1/requests", "d", 5000, "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	race := func(f func(i int) error) int {
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if f(i) == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return ok
	}
	if n := race(func(i int) error { _, err := regs[i%2].Approve(ctx, a.ID, fmt.Sprint("dpo-", i), nil); return err }); n != 1 {
		t.Errorf("%d approvals succeeded; want 1", n)
	}
	if n := race(func(i int) error { _, err := regs[i%2].Use(ctx, a.ID, "GET /v1/requests", "d", "alice"); return err }); n != 1 {
		t.Errorf("%d uses succeeded; want 1", n)
	}
}
