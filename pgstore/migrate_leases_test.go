package pgstore_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/pgstore"
	"github.com/privguard/privguard/vault"
)

// migrateTo brings a fresh schema to version, with the migrations on disk.
func migrateTo(t *testing.T, schema string, version int64) {
	t.Helper()
	cfg, err := pgx.ParseConfig(testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = schema
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS("migrations"),
		goose.WithTableName(schema+".goose_db_version"), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, version); err != nil {
		t.Fatal(err)
	}
}

type storedRow struct {
	subject string
	version int64
	due     pgtype.Timestamptz
	holder  pgtype.Text
}

func readRows(t *testing.T, conn *pgx.Conn, schema string) map[string]storedRow {
	t.Helper()
	rows, err := conn.Query(ctx, "SELECT id, subject, version, due, lease_holder FROM "+schema+".dsar_requests")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]storedRow{}
	var id string
	var r storedRow
	if _, err := pgx.ForEachRow(rows, []any{&id, &r.subject, &r.version, &r.due, &r.holder}, func() error {
		out[id] = r
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// A schema at version 1 holding requests (a deployment that ran 00001) is migrated to the
// leased shape with its requests: their subjects and versions from their bodies, every one
// that may have work left due (no request with work left is never due), and a leasing
// engine then finishes the open ones and writes each one's exact due time.
func TestMigrationKeepsRequests(t *testing.T) {
	t.Parallel()
	dsn, schema := testDSN(t), newSchema(t)
	migrateTo(t, schema, 1)

	// Requests as an engine alone wrote them (the same encoding as on 00001).
	dir := t.TempDir()
	bdb, err := boltstore.Open(filepath.Join(dir, "p.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	kekPath := filepath.Join(dir, "kek.json")
	if err := vault.InitLocalKEK(kekPath); err != nil {
		t.Fatal(err)
	}
	kek, err := vault.LoadLocalKEK(kekPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	newVault := func(s vault.Store) *vault.Vault {
		v, err := vault.New(vault.Config{Store: s, KEK: kek, TombstoneKey: []byte("0123456789abcdef0123456789abcdef")})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	crm := &rows{data: map[privguard.SubjectID]int{"cust-1": 3, "cust-2": 2, "cust-3": 1}}
	alone, err := dsar.New(dsar.Config{Store: bdb.DSAR(), Connectors: []dsar.Connector{crm}, Now: clock, Sealer: newVault(bdb.Vault())})
	if err != nil {
		t.Fatal(err)
	}
	op := &dsar.Identity{Method: "operator", Operator: "dpo"}
	var ids []string
	for _, r := range []dsar.Request{
		{Type: dsar.TypeDeletion, Subject: "cust-1", Identity: op}, // completed by the Step below
		{Type: dsar.TypeAccess, Subject: "cust-2", Identity: op},   // completed, its package not downloaded
	} {
		got, err := alone.Submit(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, got.ID)
	}
	if _, err := alone.Step(ctx); err != nil {
		t.Fatal(err)
	}
	open, err := alone.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "cust-3", Identity: op})
	if err != nil {
		t.Fatal(err)
	}
	unverified, err := alone.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "cust-4"})
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, open.ID, unverified.ID)
	bodies := map[string][]byte{}
	if err := bdb.DSAR().EachRequest(ctx, func(b []byte) error {
		w, err := dsar.WriteOf(b)
		bodies[w.ID] = b
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(bodies) != 4 {
		t.Fatalf("%d requests written alone; want 4", len(bodies))
	}

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for id, b := range bodies {
		if _, err := conn.Exec(ctx, "INSERT INTO "+schema+".dsar_requests (id, body) VALUES ($1, $2)", []byte(id), b); err != nil {
			t.Fatal(err)
		}
	}

	db := openSchema(t, schema) // migrates from 00001 to the newest
	if v, err := pgstore.SchemaVersion(ctx, dsn, pgstore.Options{Schema: schema}); err != nil || v != pgstore.KnownVersion() || v < 2 {
		t.Fatalf("SchemaVersion after Open = %d, %v (known %d); want the newest", v, err, pgstore.KnownVersion())
	}
	migrated := readRows(t, conn, schema)
	for id, b := range bodies {
		w, _ := dsar.WriteOf(b)
		r, ok := migrated[id]
		switch {
		case !ok:
			t.Errorf("request %s lost in the migration", id)
			continue
		case r.subject != string(w.Subject) || r.version != int64(w.Version):
			t.Errorf("request %s migrated with subject %q, version %d; want %q, %d (its body's)", id, r.subject, r.version, w.Subject, w.Version)
		case !w.Due.IsZero() && !r.due.Valid:
			t.Errorf("request %s (due %v by the engine's rule) migrated never due", id, w.Due)
		case r.holder.Valid:
			t.Errorf("request %s migrated leased by %q", id, r.holder.String)
		}
		if got, err := db.DSAR().Request(ctx, id); err != nil || string(got) != string(b) {
			t.Errorf("Request(%s) after the migration = %q, %v; want its body, byte for byte", id, got, err)
		}
	}
	if !migrated[open.ID].due.Valid || !migrated[unverified.ID].due.Valid {
		t.Errorf("open requests migrated never due: %+v, %+v", migrated[open.ID], migrated[unverified.ID])
	}

	// A leasing engine takes them over.
	now = now.Add(time.Hour)
	shared, err := dsar.New(dsar.Config{Store: db.DSAR(), Replica: "r1", Connectors: []dsar.Connector{crm}, Now: clock, Sealer: newVault(db.Vault())})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := shared.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := shared.Get(ctx, open.ID); err != nil || r.State != dsar.StateCompleted || crm.data["cust-3"] != 0 {
		t.Errorf("the open deletion after a leasing Step: %s, %v; want completed", r.State, err)
	}
	if r, err := shared.Get(ctx, unverified.ID); err != nil || r.State != dsar.StateAwaitingVerify {
		t.Errorf("the unverified request after a leasing Step: %s, %v; want still awaiting verification", r.State, err)
	}
	for id, r := range readRows(t, conn, schema) {
		b, err := db.DSAR().Request(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := dsar.WriteOf(b)
		if r.due.Valid == w.Due.IsZero() || r.holder.Valid {
			t.Errorf("request %s after a leasing Step: due %v, held by %v; want due as the engine's rule has it (%v), free", id, r.due, r.holder, w.Due)
		}
	}
}

// A stored body that is not a versioned request stops the migration (rolled back: the
// schema stays at 1) rather than being given a version it never had.
func TestMigrationRefusesUnversionedRequests(t *testing.T) {
	t.Parallel()
	dsn, schema := testDSN(t), newSchema(t)
	migrateTo(t, schema, 1)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "INSERT INTO "+schema+`.dsar_requests (id, body) VALUES ('r-1', '{"id":"r-1","subject":"s"}')`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := pgstore.Migrate(ctx, dsn, pgstore.Options{Schema: schema}); err == nil || !strings.Contains(err.Error(), "1 stored requests have no subject or no version") {
		t.Errorf("Migrate over an unversioned request = %v; want the migration refused, saying why", err)
	}
	if v, err := pgstore.SchemaVersion(ctx, dsn, pgstore.Options{Schema: schema}); err != nil || v != 1 {
		t.Errorf("SchemaVersion after the refused migration = %d, %v; want 1", v, err)
	}
}
