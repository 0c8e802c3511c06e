package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/connector/postgres"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/dsar/dsartest"
)

// tagSeeder seeds one row per tag into a table of (customer_id, name, tag), comparing
// exactly.
type tagSeeder struct {
	pool  *pgxpool.Pool
	table string
}

func (s tagSeeder) SeedDerived(ctx context.Context, subject privguard.SubjectID, value string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO `+s.table+` (customer_id, name, tag) VALUES ($1, 'Li Lei', $2)`, string(subject), value)
	return err
}

func (s tagSeeder) HoldsDerived(ctx context.Context, subject privguard.SubjectID, value string) (bool, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM `+s.table+` WHERE customer_id::text COLLATE "C" = $1 AND tag::text COLLATE "C" = $2`,
		string(subject), value).Scan(&n)
	return n > 0, err
}

func (s tagSeeder) ItemValue(v string) string { return v }

// TestProfiler runs the profile suite on a tag column under each erase mode, the tags
// under a nondeterministic (case-insensitive) collation and citext: only the exact value
// of the one subject is erased, and in null and mask tables the rows stay.
func TestProfiler(t *testing.T) {
	dsn := testDSN(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	exec(t, pool, `CREATE EXTENSION IF NOT EXISTS citext`,
		`CREATE COLLATION IF NOT EXISTS pgtest_nocase (provider = icu, locale = 'und-u-ks-level1', deterministic = false)`)
	for _, tc := range []struct {
		name    string
		mode    dsar.EraseMode
		tagType string
	}{
		{"delete_nocase", dsar.EraseDelete, "text COLLATE pgtest_nocase"},
		{"null_citext", dsar.EraseNull, "citext"},
		{"mask_text", dsar.EraseMask, "text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table := "pgtest_profile_" + tc.name
			exec(t, pool, `DROP TABLE IF EXISTS `+table,
				`CREATE TABLE `+table+` (id serial PRIMARY KEY, customer_id text NOT NULL, name text, tag `+tc.tagType+`)`)
			t.Cleanup(func() { pool.Exec(context.Background(), `DROP TABLE IF EXISTS `+table) })
			c, err := postgres.New(ctx, postgres.Config{Name: "crm", DSN: dsn, Tables: []postgres.Table{{Table: table, SubjectColumn: "customer_id",
				Columns: map[string]privguard.DataCategory{"tag": "user.derived.tags", "name": "user.name"}, Erase: tc.mode}}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			dsartest.TestProfiler(t, c, tagSeeder{pool, table})
			var rows, named int
			if err := pool.QueryRow(ctx, `SELECT count(*), count(name) FROM `+table+` WHERE customer_id = 'dsartest-profile-a'`).Scan(&rows, &named); err != nil {
				t.Fatal(err)
			}
			want := 3 // seeded 6 rows: "vip" (twice) and the hostile value deleted
			if tc.mode != dsar.EraseDelete {
				want = 6
			}
			if rows != want || named != want {
				t.Errorf("subject a has %d rows, %d with a name; want %d and %d", rows, named, want, want)
			}
		})
	}
}
