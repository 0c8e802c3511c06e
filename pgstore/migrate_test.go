package pgstore_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/privguard/privguard/pgstore"
)

// Two processes starting together on a fresh schema both open it, and it is migrated once.
func TestRacingOpensMigrateOnce(t *testing.T) {
	t.Parallel()
	dsn, schema := testDSN(t), newSchema(t)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() {
			db, err := pgstore.Open(ctx, dsn, pgstore.Options{Schema: schema, Migrate: true})
			if err == nil {
				db.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		}
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for v := int64(1); v <= pgstore.KnownVersion(); v++ {
		var applied int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+schema+".goose_db_version WHERE version_id = $1", v).Scan(&applied); err != nil {
			t.Fatal(err)
		}
		if applied != 1 {
			t.Errorf("migration %d recorded %d times; want once", v, applied)
		}
	}
	if v, err := pgstore.SchemaVersion(ctx, dsn, pgstore.Options{Schema: schema}); err != nil || v != pgstore.KnownVersion() {
		t.Errorf("SchemaVersion = %d, %v; want %d", v, err, pgstore.KnownVersion())
	}
	if from, to, err := pgstore.Migrate(ctx, dsn, pgstore.Options{Schema: schema}); err != nil || from != to || to != pgstore.KnownVersion() {
		t.Errorf("Migrate on a current schema = %d, %d, %v; want no change", from, to, err)
	}
}

func TestMigrateReportsVersions(t *testing.T) {
	t.Parallel()
	dsn, schema := testDSN(t), newSchema(t)
	if v, err := pgstore.SchemaVersion(ctx, dsn, pgstore.Options{Schema: schema}); err != nil || v != 0 {
		t.Errorf("SchemaVersion of no schema = %d, %v; want 0", v, err)
	}
	_, err := pgstore.Open(ctx, dsn, pgstore.Options{Schema: schema})
	if !errors.Is(err, pgstore.ErrSchemaTooOld) || !strings.Contains(err.Error(), "privguard migrate") {
		t.Errorf("Open without Migrate on an empty schema = %v; want ErrSchemaTooOld naming `privguard migrate`", err)
	}
	from, to, err := pgstore.Migrate(ctx, dsn, pgstore.Options{Schema: schema})
	if err != nil || from != 0 || to != pgstore.KnownVersion() {
		t.Fatalf("Migrate = %d, %d, %v; want 0, %d", from, to, err, pgstore.KnownVersion())
	}
	db, err := pgstore.Open(ctx, dsn, pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatalf("Open without Migrate after Migrate: %v", err)
	}
	db.Close()
}

// A schema migrated by a newer binary is refused, with both versions named.
func TestNewerSchemaIsRefused(t *testing.T) {
	t.Parallel()
	dsn, schema := testDSN(t), newSchema(t)
	openSchema(t, schema)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "INSERT INTO "+schema+".goose_db_version (version_id, is_applied) VALUES (99, true)"); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("the database schema is version 99; this binary knows up to %d: upgrade privguard", pgstore.KnownVersion())
	for _, migrate := range []bool{true, false} {
		_, err := pgstore.Open(ctx, dsn, pgstore.Options{Schema: schema, Migrate: migrate})
		if !errors.Is(err, pgstore.ErrSchemaTooNew) || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(Migrate: %v) = %v; want ErrSchemaTooNew saying %q", migrate, err, want)
		}
	}
	if _, _, err := pgstore.Migrate(ctx, dsn, pgstore.Options{Schema: schema}); !errors.Is(err, pgstore.ErrSchemaTooNew) {
		t.Errorf("Migrate = %v; want ErrSchemaTooNew", err)
	}
}

func TestBadSchemaNameIsRefused(t *testing.T) {
	for _, name := range []string{"public", "information_schema", "pg_toast", "pg_temp_1", "Privguard", "a-b", "x; DROP TABLE y", strings.Repeat("a", 64)} {
		if _, err := pgstore.Open(ctx, "postgres://127.0.0.1:1/none", pgstore.Options{Schema: name}); err == nil || !strings.Contains(err.Error(), "schema") {
			t.Errorf("Open(schema %q) = %v; want a refusal naming the schema", name, err)
		}
	}
}
