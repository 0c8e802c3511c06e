package incident_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/incident"
	"github.com/privguard/privguard/journal"
	"github.com/privguard/privguard/pgstore"
)

// Two processes on one PostgreSQL store record and change incidents at once: every change
// is appended once, on the head it was checked against, and each register reads them all.
func TestRegisterOnPostgres(t *testing.T) {
	dsn := os.Getenv("PRIVGUARD_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("PRIVGUARD_TEST_POSTGRES_DSN is not set: this test needs PostgreSQL (CI sets it in .ci/run)")
	}
	ctx := context.Background()
	var b [6]byte
	rand.Read(b[:])
	schema := "pgtest_incident_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		if c, err := pgx.Connect(context.Background(), dsn); err == nil {
			c.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			c.Close(context.Background())
		}
	})
	c := &clock{now: t0.Add(time.Hour)}
	var regs []*incident.Register
	var store journal.Store
	for range 2 {
		db, err := pgstore.Open(ctx, dsn, pgstore.Options{Schema: schema, Migrate: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		store = db.Journal()
		regs = append(regs, openRegister(t, db.Journal(), c, nil))
	}
	var wg sync.WaitGroup
	ids := make([]string, 10)
	for i := range ids {
		wg.Go(func() {
			rep := complete()
			rep.Subjects = []privguard.SubjectID{privguard.SubjectID(fmt.Sprintf("cust-%d", i))}
			v, err := regs[i%2].Record(ctx, "dpo", rep)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = v.ID
			if _, err := regs[(i+1)%2].Apply(ctx, v.ID, "dpo", incident.Change{Kind: "assess", Severity: "major", Risk: "high"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, r := range regs {
		n := 0
		err := r.List(ctx, incident.Filter{}, func(v incident.View) error {
			n++
			if v.Events != 2 || v.Severity != incident.Major || len(v.Subjects) != 1 {
				t.Errorf("incident %s: %d events, severity %q, %d subjects; want 2, major, 1", v.ID, v.Events, v.Severity, len(v.Subjects))
			}
			return nil
		})
		if err != nil || n != 10 {
			t.Errorf("List = %d incidents, %v; want 10", n, err)
		}
	}
	if n, err := journal.Verify(ctx, store, incident.Log); err != nil || n != 20 {
		t.Errorf("Verify = %d, %v; want 20 entries", n, err)
	}
	if n, err := journal.Verify(ctx, store, incident.TaskLog); err != nil || n != 10 {
		t.Errorf("Verify tasks = %d, %v; want 10", n, err)
	}
}
