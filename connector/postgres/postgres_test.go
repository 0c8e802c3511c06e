package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/connector/postgres"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/dsar/dsartest"
)

// seeder fills and inspects the test tables directly, comparing ids exactly.
type seeder struct {
	pool              *pgxpool.Pool
	customers, orders string
}

func (s seeder) Seed(ctx context.Context, subject privguard.SubjectID, n int, value string) error {
	for i := range n {
		if i == 0 {
			if _, err := s.pool.Exec(ctx, `INSERT INTO `+s.customers+` (customer_id, email, phone, city) VALUES ($1, $2, $3, 'Hangzhou')`,
				string(subject), value+"@example.com", value); err != nil {
				return err
			}
			continue
		}
		if _, err := s.pool.Exec(ctx, `INSERT INTO `+s.orders+` (customer_id, address, total) VALUES ($1, $2, $3)`,
			string(subject), fmt.Sprintf("%s street %d", value, i), i*100); err != nil {
			return err
		}
	}
	return nil
}

func (s seeder) Remaining(ctx context.Context, subject privguard.SubjectID) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM `+s.customers+` WHERE customer_id::text COLLATE "C" = $1) +
		(SELECT count(*) FROM `+s.orders+` WHERE customer_id::text COLLATE "C" = $1 AND address IS DISTINCT FROM $2)`,
		string(subject), dsar.MaskValue).Scan(&n)
	return n, err
}

func testDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("PRIVGUARD_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("PRIVGUARD_TEST_POSTGRES_DSN is not set (CI sets it; see .ci/run)")
	}
	return dsn
}

func exec(t *testing.T, pool *pgxpool.Pool, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := pool.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestConformance runs the suite on subject columns of type text, citext and text under a
// nondeterministic (case- and accent-insensitive) ICU collation: the last two fold
// "DSARTEST-CASE-1" and "dsartest-cäse-1" into "dsartest-case-1" unless the connector
// compares exactly.
func TestConformance(t *testing.T) {
	dsn := testDSN(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	exec(t, pool, `CREATE EXTENSION IF NOT EXISTS citext`,
		`CREATE COLLATION IF NOT EXISTS pgtest_nocase (provider = icu, locale = 'und-u-ks-level1', deterministic = false)`)
	for _, tc := range []struct{ name, idType string }{
		{"text", "text"},
		{"citext", "citext"},
		{"nondeterministic_collation", "text COLLATE pgtest_nocase"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			customers, orders := "pgtest_customers_"+tc.name, "pgtest_orders_"+tc.name
			exec(t, pool, `DROP TABLE IF EXISTS `+customers+`, `+orders,
				`CREATE TABLE `+customers+` (customer_id `+tc.idType+` NOT NULL, email text, phone text, city text)`,
				`CREATE INDEX ON `+customers+` (customer_id)`,
				`CREATE TABLE `+orders+` (id serial PRIMARY KEY, customer_id `+tc.idType+` NOT NULL, address text, total int)`)
			t.Cleanup(func() { pool.Exec(context.Background(), `DROP TABLE IF EXISTS `+customers+`, `+orders) })
			c, err := postgres.New(ctx, postgres.Config{Name: "crm", DSN: dsn, Tables: []postgres.Table{
				{Table: customers, SubjectColumn: "customer_id", Erase: dsar.EraseDelete,
					Columns: map[string]privguard.DataCategory{"email": "user.contact.email", "phone": "user.contact.phone_number", "city": "user.location.imprecise"}},
				{Table: orders, SubjectColumn: "customer_id", Erase: dsar.EraseMask,
					Columns: map[string]privguard.DataCategory{"address": "user.contact.address"}},
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.CheckMap(ctx); err != nil {
				t.Fatalf("CheckMap: %v", err)
			}
			// proves DSR-06 (the rows), DSR-08 (correction), DSR-09 (erasure) for PostgreSQL.
			dsartest.TestConnector(t, c, seeder{pool, customers, orders})
		})
	}
}

func TestDataMapIsChecked(t *testing.T) {
	for _, tb := range []postgres.Table{
		{Table: "customers; DROP TABLE x", SubjectColumn: "id", Erase: dsar.EraseDelete},
		{Table: "customers", SubjectColumn: "id\"", Erase: dsar.EraseDelete},
		{Table: "customers", SubjectColumn: "id", Columns: map[string]privguard.DataCategory{"a b": "user.x"}, Erase: dsar.EraseDelete},
		{Table: "customers", SubjectColumn: "id", Erase: "truncate"},
	} {
		if _, err := postgres.New(context.Background(), postgres.Config{Name: "x", DSN: "postgres://invalid", Tables: []postgres.Table{tb}}); err == nil {
			t.Errorf("New accepted table %+v", tb)
		}
	}
}

// TestCheckMapNamesWhatIsMissing: a table or column of the data map that the database
// does not have is reported by name, with its kind.
func TestCheckMapNamesWhatIsMissing(t *testing.T) {
	dsn := testDSN(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	exec(t, pool, `DROP TABLE IF EXISTS pgtest_map`, `CREATE TABLE pgtest_map (uid text, email text)`)
	t.Cleanup(func() { pool.Exec(context.Background(), `DROP TABLE IF EXISTS pgtest_map`) })
	for _, tc := range []struct {
		name  string
		table postgres.Table
		want  *dsar.MapError
	}{
		{"ok", postgres.Table{Table: "pgtest_map", SubjectColumn: "uid", Columns: map[string]privguard.DataCategory{"email": "user.contact.email"}, Erase: dsar.EraseDelete}, nil},
		{"schema_qualified", postgres.Table{Table: "public.pgtest_map", SubjectColumn: "uid", Erase: dsar.EraseDelete}, nil},
		{"table_missing", postgres.Table{Table: "pgtest_map_gone", SubjectColumn: "uid", Erase: dsar.EraseDelete},
			&dsar.MapError{Store: "crm", Table: "pgtest_map_gone", Kind: dsar.KindTableMissing}},
		{"schema_missing", postgres.Table{Table: "nowhere.pgtest_map", SubjectColumn: "uid", Erase: dsar.EraseDelete},
			&dsar.MapError{Store: "crm", Table: "nowhere.pgtest_map", Kind: dsar.KindTableMissing}},
		{"subject_column_missing", postgres.Table{Table: "pgtest_map", SubjectColumn: "customer_id", Erase: dsar.EraseDelete},
			&dsar.MapError{Store: "crm", Table: "pgtest_map", Column: "customer_id", Kind: dsar.KindColumnMissing}},
		{"column_missing", postgres.Table{Table: "pgtest_map", SubjectColumn: "uid", Columns: map[string]privguard.DataCategory{"phone": "user.contact.phone_number"}, Erase: dsar.EraseDelete},
			&dsar.MapError{Store: "crm", Table: "pgtest_map", Column: "phone", Kind: dsar.KindColumnMissing}},
		{"column_case_differs", postgres.Table{Table: "pgtest_map", SubjectColumn: "uid", Columns: map[string]privguard.DataCategory{"Email": "user.contact.email"}, Erase: dsar.EraseDelete},
			&dsar.MapError{Store: "crm", Table: "pgtest_map", Column: "Email", Kind: dsar.KindColumnMissing}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := postgres.New(ctx, postgres.Config{Name: "crm", DSN: dsn, Tables: []postgres.Table{tc.table}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.CheckMap(ctx)
			var got *dsar.MapError
			errors.As(err, &got)
			switch {
			case tc.want == nil && err != nil:
				t.Errorf("CheckMap = %v; want nil", err)
			case tc.want != nil && (got == nil || *got != *tc.want):
				t.Errorf("CheckMap = %v; want %v", err, tc.want)
			}
		})
	}
}

// TestFailuresHaveKinds: each way a store fails is named by its SQLSTATE, not its text.
func TestFailuresHaveKinds(t *testing.T) {
	dsn := testDSN(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	exec(t, pool, `DROP TABLE IF EXISTS pgtest_kinds`, `CREATE TABLE pgtest_kinds (uid text, email text NOT NULL)`,
		`INSERT INTO pgtest_kinds VALUES ('kind-1', 'k@example.com')`,
		`DROP ROLE IF EXISTS pgtest_noperm`, `CREATE ROLE pgtest_noperm LOGIN`)
	t.Cleanup(func() {
		pool.Exec(context.Background(), `DROP TABLE IF EXISTS pgtest_kinds`)
		pool.Exec(context.Background(), `DROP ROLE IF EXISTS pgtest_noperm`)
	})
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	withUser := func(user string) string {
		return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable&connect_timeout=5", user, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	}
	table := func(name, col string, mode dsar.EraseMode) []postgres.Table {
		return []postgres.Table{{Table: name, SubjectColumn: "uid", Columns: map[string]privguard.DataCategory{col: "user.contact.email"}, Erase: mode}}
	}
	for _, tc := range []struct {
		name   string
		dsn    string
		tables []postgres.Table
		want   dsar.ErrorKind
	}{
		{"connection_refused", "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=5", table("pgtest_kinds", "email", dsar.EraseDelete), dsar.KindConnectionRefused},
		{"auth_failed", withUser("pgtest_nobody"), table("pgtest_kinds", "email", dsar.EraseDelete), dsar.KindAuthFailed},
		{"permission_denied", withUser("pgtest_noperm"), table("pgtest_kinds", "email", dsar.EraseDelete), dsar.KindPermissionDenied},
		{"table_missing", dsn, table("pgtest_kinds_gone", "email", dsar.EraseDelete), dsar.KindTableMissing},
		{"column_missing", dsn, table("pgtest_kinds", "phone", dsar.EraseMask), dsar.KindColumnMissing},
		{"value_rejected", dsn, table("pgtest_kinds", "email", dsar.EraseNull), dsar.KindValueRejected}, // NULL into NOT NULL
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := postgres.New(ctx, postgres.Config{Name: "crm", DSN: tc.dsn, Tables: tc.tables})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.Erase(ctx, "kind-1")
			var ce *dsar.ConnectorError
			if !errors.As(err, &ce) || ce.Kind != tc.want || dsar.KindOf(err) != tc.want {
				t.Errorf("Erase: %v (kind %q); want kind %s", err, dsar.KindOf(err), tc.want)
			}
			_, err = c.EraseBatch(ctx, []privguard.SubjectID{"kind-1", "kind-2"})
			if !errors.As(err, &ce) || ce.Kind != tc.want || dsar.KindOf(err) != tc.want {
				t.Errorf("EraseBatch: %v (kind %q); want kind %s", err, dsar.KindOf(err), tc.want)
			}
		})
	}
}
