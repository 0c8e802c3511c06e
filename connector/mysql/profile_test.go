package mysql_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/connector/mysql"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/dsar/dsartest"
)

// tagSeeder seeds one row per tag into a table of (uid, name, tag), comparing exactly.
type tagSeeder struct {
	db    *sql.DB
	table string
}

func (s tagSeeder) SeedDerived(ctx context.Context, subject privguard.SubjectID, value string) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO "+s.table+" (uid, name, tag) VALUES (?, 'Li Lei', ?)", string(subject), value)
	return err
}

func (s tagSeeder) HoldsDerived(ctx context.Context, subject privguard.SubjectID, value string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM "+s.table+" WHERE CAST(CONVERT(uid USING utf8mb4) AS BINARY) = CAST(? AS BINARY)"+
		" AND CAST(CONVERT(tag USING utf8mb4) AS BINARY) = CAST(? AS BINARY)", string(subject), value).Scan(&n)
	return n > 0, err
}

func (s tagSeeder) ItemValue(v string) string { return v }

// TestProfiler runs the profile suite on a tag column under each erase mode, with
// collations that fold case and trailing spaces: only the exact value of the one subject
// is erased, and in null and mask tables the rows (and their other columns) stay.
func TestProfiler(t *testing.T) {
	db, dsn := testDB(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		mode    dsar.EraseMode
		charset string
	}{
		{"delete_general_ci", dsar.EraseDelete, "utf8mb4 COLLATE utf8mb4_general_ci"},
		{"null_bin", dsar.EraseNull, "utf8mb4 COLLATE utf8mb4_bin"},
		{"mask_general_ci", dsar.EraseMask, "utf8mb4 COLLATE utf8mb4_general_ci"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table := "mytest_profile_" + tc.name
			exec(t, db, "DROP TABLE IF EXISTS "+table,
				"CREATE TABLE "+table+" (id INT AUTO_INCREMENT PRIMARY KEY, uid VARCHAR(200) NOT NULL, name VARCHAR(200), tag VARCHAR(200), KEY (uid)) CHARACTER SET "+tc.charset)
			t.Cleanup(func() { db.Exec("DROP TABLE IF EXISTS " + table) })
			c, err := mysql.New(ctx, mysql.Config{Name: "tags", DSN: dsn, Tables: []mysql.Table{{Table: table, SubjectColumn: "uid",
				Columns: map[string]privguard.DataCategory{"tag": "user.derived.tags", "name": "user.name"}, Erase: tc.mode}}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			dsartest.TestProfiler(t, c, tagSeeder{db, table})
			var rows, named int
			if err := db.QueryRow("SELECT count(*), count(name) FROM "+table+" WHERE uid = 'dsartest-profile-a'").Scan(&rows, &named); err != nil {
				t.Fatal(err)
			}
			want := 3 // seeded 6 rows: "vip" (twice) and the hostile value deleted
			if tc.mode != dsar.EraseDelete {
				want = 6
			}
			if rows != want || named != want {
				t.Errorf("subject a has %d rows, %d with a name; want %d and %d", rows, named, want, want)
			}
			if items, err := c.Derived(ctx, "dsartest-profile-a"); err == nil {
				for _, it := range items {
					if it.Where != table+".tag" {
						t.Errorf("Derived lists %q (%s); want only the tag column", it.Where, it.Category)
					}
				}
			}
		})
	}
}
