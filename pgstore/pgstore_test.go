package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/journal"
	"github.com/privguard/privguard/journal/journaltest"
	"github.com/privguard/privguard/pgstore"
)

var ctx = context.Background()

// testDSN returns the test database's DSN or skips the test.
func testDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("PRIVGUARD_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("PRIVGUARD_TEST_POSTGRES_DSN is not set: the PostgreSQL store tests need a database " +
			"(e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable; CI sets it in .ci/run)")
	}
	return dsn
}

// newSchema returns a fresh schema name, dropped with everything in it when the test ends.
func newSchema(t testing.TB) string {
	t.Helper()
	dsn := testDSN(t)
	var b [6]byte
	rand.Read(b[:])
	schema := "pgtest_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Logf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// openSchema opens (and migrates) the schema, closed when the test ends.
func openSchema(t testing.TB, schema string) *pgstore.DB {
	t.Helper()
	db, err := pgstore.Open(ctx, testDSN(t), pgstore.Options{Schema: schema, Migrate: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openDB opens a store on a fresh schema.
func openDB(t testing.TB) *pgstore.DB { return openSchema(t, newSchema(t)) }

// openBolt opens an embedded store, which pgstore's conformance tests compare it with.
func openBolt(t testing.TB) *boltstore.DB {
	t.Helper()
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "p.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConsentStoreConformance(t *testing.T) {
	testDSN(t)
	t.Parallel()
	consenttest.TestStore(t, func(t *testing.T) consent.Store { return openDB(t).Consent() })
}

// A DSN may ask for the simple protocol (text results, no prepared statements).
func TestConsentStoreOnTheSimpleProtocol(t *testing.T) {
	dsn := testDSN(t)
	t.Parallel()
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	dsn += sep + "default_query_exec_mode=simple_protocol"
	consenttest.TestStore(t, func(t *testing.T) consent.Store {
		db, err := pgstore.Open(ctx, dsn, pgstore.Options{Schema: newSchema(t), Migrate: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db.Consent()
	})
}

func TestJournalStoreConformance(t *testing.T) {
	testDSN(t)
	journaltest.TestStore(t, func(t *testing.T) journaltest.Stores { return openDB(t).Journal() })
}

// Two processes (two pools on one schema) append to one log at once: one chain.
func TestJournalAcrossProcesses(t *testing.T) {
	schema := newSchema(t)
	a, b := openSchema(t, schema).Journal(), openSchema(t, schema).Journal()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, s := range []*pgstore.JournalStore{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j, _ := journal.Open(s, "trail", nil)
			for i := range 40 {
				if _, err := j.Append(ctx, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n, err := journal.Verify(ctx, a, "trail"); err != nil || n != 80 {
		t.Fatalf("Verify = %d, %v; want 80", n, err)
	}
	// An entry altered in the table is found.
	conn, err := pgx.Connect(ctx, testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE `+schema+`.journal_entries SET body = convert_to('99', 'UTF8') WHERE log = 'trail' AND seq = 7`); err != nil {
		t.Fatal(err)
	}
	_, err = journal.Verify(ctx, b, "trail")
	var br *journal.BreakError
	if !errors.As(err, &br) || br.Seq != 7 {
		t.Fatalf("Verify after an altered body = %v; want a break at entry 7", err)
	}
}
