package mysql_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"testing"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/connector/mysql"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/dsar/dsartest"
)

// seeder fills and inspects a test table directly, comparing ids exactly.
type seeder struct {
	db    *sql.DB
	table string
}

func (s seeder) Seed(ctx context.Context, subject privguard.SubjectID, n int, value string) error {
	for range n {
		if _, err := s.db.ExecContext(ctx, "INSERT INTO "+s.table+" (uid, tag, segment) VALUES (?, ?, ?)", string(subject), value, value+"-seg"); err != nil {
			return err
		}
	}
	return nil
}

func (s seeder) Remaining(ctx context.Context, subject privguard.SubjectID) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM "+s.table+" WHERE CAST(CONVERT(uid USING utf8mb4) AS BINARY) = CAST(? AS BINARY)", string(subject)).Scan(&n)
	return n, err
}

func testDB(t *testing.T) (*sql.DB, string) {
	t.Helper()
	dsn := os.Getenv("PRIVGUARD_TEST_MYSQL_DSN")
	if dsn == "" {
		t.Skip("PRIVGUARD_TEST_MYSQL_DSN is not set (CI sets it; see .ci/run)")
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dsn
}

func exec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestConformance runs the suite on subject columns under utf8mb4_bin (PAD SPACE: 'a ' =
// 'a'), utf8mb4_general_ci (MariaDB's default: case and accents folded) and latin1: each
// folds some of dsartest.Variants into the subject unless the connector compares exactly.
func TestConformance(t *testing.T) {
	db, dsn := testDB(t)
	ctx := context.Background()
	for _, tc := range []struct{ name, charset string }{
		{"bin", "utf8mb4 COLLATE utf8mb4_bin"},
		{"general_ci", "utf8mb4 COLLATE utf8mb4_general_ci"},
		{"latin1", "latin1 COLLATE latin1_swedish_ci"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table := "mytest_user_tags_" + tc.name
			exec(t, db, "DROP TABLE IF EXISTS "+table,
				"CREATE TABLE "+table+" (id INT AUTO_INCREMENT PRIMARY KEY, uid VARCHAR(200) NOT NULL, tag VARCHAR(200), segment VARCHAR(200), KEY (uid)) CHARACTER SET "+tc.charset)
			t.Cleanup(func() { db.Exec("DROP TABLE IF EXISTS " + table) })
			c, err := mysql.New(ctx, mysql.Config{Name: "tags", DSN: dsn, Tables: []mysql.Table{{Table: table, SubjectColumn: "uid",
				Columns: map[string]privguard.DataCategory{"tag": "user.derived.tags", "segment": "user.derived.segments"}, Erase: dsar.EraseDelete}}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.CheckMap(ctx); err != nil {
				t.Fatalf("CheckMap: %v", err)
			}
			// proves PUR-05: tags and segments (derived data) are exported and erased like any data.
			dsartest.TestConnector(t, c, seeder{db, table})
		})
	}
}

// TestNumberSubjectColumn: a number column equals any string that converts to its value
// ("x'--" is 0, "0042" is 42); only the exact id matches.
func TestNumberSubjectColumn(t *testing.T) {
	db, dsn := testDB(t)
	ctx := context.Background()
	exec(t, db, "DROP TABLE IF EXISTS mytest_numeric", "CREATE TABLE mytest_numeric (uid BIGINT NOT NULL, tag VARCHAR(64), KEY (uid))",
		"INSERT INTO mytest_numeric VALUES (0, 'zero'), (42, 'forty-two')")
	t.Cleanup(func() { db.Exec("DROP TABLE IF EXISTS mytest_numeric") })
	c, err := mysql.New(ctx, mysql.Config{Name: "tags", DSN: dsn, Tables: []mysql.Table{{Table: "mytest_numeric", SubjectColumn: "uid",
		Columns: map[string]privguard.DataCategory{"tag": "user.derived.tags"}, Erase: dsar.EraseDelete}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, s := range []privguard.SubjectID{"x'--", "0042", "42.0"} {
		if r, err := c.Erase(ctx, s); err != nil || r.Items != 0 {
			t.Errorf("Erase(%q) = %+v, %v; want nothing erased", s, r, err)
		}
	}
	if r, err := c.EraseBatch(ctx, []privguard.SubjectID{"x'--", "0042", "42.0"}); err != nil || r[0].Items+r[1].Items+r[2].Items != 0 {
		t.Errorf("EraseBatch = %+v, %v; want nothing erased", r, err)
	}
	if e, err := c.Export(ctx, "42"); err != nil || e.Rows() != 1 {
		t.Errorf("Export(42) = %d rows, %v; want 1", e.Rows(), err)
	}
}

// TestCheckMapNamesWhatIsMissing: a table or column of the data map that the database
// does not have is reported by name, with its kind.
func TestCheckMapNamesWhatIsMissing(t *testing.T) {
	db, dsn := testDB(t)
	ctx := context.Background()
	exec(t, db, "DROP TABLE IF EXISTS mytest_map", "CREATE TABLE mytest_map (uid VARCHAR(64), tag VARCHAR(64))")
	t.Cleanup(func() { db.Exec("DROP TABLE IF EXISTS mytest_map") })
	cfg, _ := gomysql.ParseDSN(dsn)
	for _, tc := range []struct {
		name  string
		table mysql.Table
		want  *dsar.MapError
	}{
		{"ok", mysql.Table{Table: "mytest_map", SubjectColumn: "uid", Columns: map[string]privguard.DataCategory{"tag": "user.derived.tags"}, Erase: dsar.EraseDelete}, nil},
		{"qualified", mysql.Table{Table: cfg.DBName + ".mytest_map", SubjectColumn: "uid", Erase: dsar.EraseDelete}, nil},
		{"table_missing", mysql.Table{Table: "mytest_map_gone", SubjectColumn: "uid", Erase: dsar.EraseDelete},
			&dsar.MapError{Store: "tags", Table: "mytest_map_gone", Kind: dsar.KindTableMissing}},
		{"subject_column_missing", mysql.Table{Table: "mytest_map", SubjectColumn: "customer_id", Erase: dsar.EraseDelete},
			&dsar.MapError{Store: "tags", Table: "mytest_map", Column: "customer_id", Kind: dsar.KindColumnMissing}},
		{"column_missing", mysql.Table{Table: "mytest_map", SubjectColumn: "uid", Columns: map[string]privguard.DataCategory{"segment": "user.derived.segments"}, Erase: dsar.EraseDelete},
			&dsar.MapError{Store: "tags", Table: "mytest_map", Column: "segment", Kind: dsar.KindColumnMissing}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := mysql.New(ctx, mysql.Config{Name: "tags", DSN: dsn, Tables: []mysql.Table{tc.table}})
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

// TestFailuresHaveKinds: each way a store fails is named by the server's error number,
// not its text.
func TestFailuresHaveKinds(t *testing.T) {
	db, dsn := testDB(t)
	ctx := context.Background()
	exec(t, db, "DROP TABLE IF EXISTS mytest_kinds", "CREATE TABLE mytest_kinds (uid VARCHAR(64), tag VARCHAR(64) NOT NULL)",
		"INSERT INTO mytest_kinds VALUES ('kind-1', 'k')", "DROP USER IF EXISTS 'mytest_noperm'@'%'", "CREATE USER 'mytest_noperm'@'%'")
	t.Cleanup(func() {
		db.Exec("DROP TABLE IF EXISTS mytest_kinds")
		db.Exec("DROP USER IF EXISTS 'mytest_noperm'@'%'")
	})
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	withUser := func(user, passwd string) string {
		c := cfg.Clone()
		c.User, c.Passwd = user, passwd
		return c.FormatDSN()
	}
	refused := cfg.Clone()
	refused.Addr = "127.0.0.1:1"
	table := func(name, col string, mode dsar.EraseMode) []mysql.Table {
		return []mysql.Table{{Table: name, SubjectColumn: "uid", Columns: map[string]privguard.DataCategory{col: "user.derived.tags"}, Erase: mode}}
	}
	for _, tc := range []struct {
		name   string
		dsn    string
		tables []mysql.Table
		want   dsar.ErrorKind
	}{
		{"connection_refused", refused.FormatDSN(), table("mytest_kinds", "tag", dsar.EraseDelete), dsar.KindConnectionRefused},
		{"auth_failed", withUser("mytest_nobody", "wrong"), table("mytest_kinds", "tag", dsar.EraseDelete), dsar.KindAuthFailed},
		{"permission_denied", withUser("mytest_noperm", ""), table(cfg.DBName+".mytest_kinds", "tag", dsar.EraseDelete), dsar.KindPermissionDenied},
		{"table_missing", dsn, table("mytest_kinds_gone", "tag", dsar.EraseDelete), dsar.KindTableMissing},
		{"column_missing", dsn, table("mytest_kinds", "segment", dsar.EraseMask), dsar.KindColumnMissing},
		{"value_rejected", dsn, table("mytest_kinds", "tag", dsar.EraseNull), dsar.KindValueRejected}, // NULL into NOT NULL
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := mysql.New(ctx, mysql.Config{Name: "tags", DSN: tc.dsn, Tables: tc.tables})
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

// TestEraseBatchMasks: a batch masks or nulls the subjects' rows as Erase does, counting
// only rows not yet erased, each for its own subject, and leaves other ids alone.
func TestEraseBatchMasks(t *testing.T) {
	db, dsn := testDB(t)
	ctx := context.Background()
	t.Cleanup(func() { db.Exec("DROP TABLE IF EXISTS mytest_batchmask") })
	for _, mode := range []dsar.EraseMode{dsar.EraseMask, dsar.EraseNull} {
		t.Run(string(mode), func(t *testing.T) {
			exec(t, db, "DROP TABLE IF EXISTS mytest_batchmask",
				"CREATE TABLE mytest_batchmask (uid VARCHAR(64), tag VARCHAR(64), KEY (uid)) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
				"INSERT INTO mytest_batchmask VALUES ('mask-1', 'a'), ('mask-1', 'b'), ('MASK-1', 'c'), ('mask-1 ', 'd'), ('mask-2', 'e'), ('mask-3', NULL), ('mask-3', '[erased]')")
			c, err := mysql.New(ctx, mysql.Config{Name: "tags", DSN: dsn, Tables: []mysql.Table{{Table: "mytest_batchmask", SubjectColumn: "uid",
				Columns: map[string]privguard.DataCategory{"tag": "user.derived.tags"}, Erase: mode}}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			r, err := c.EraseBatch(ctx, []privguard.SubjectID{"mask-1", "mask-3", "mask-2", "mask-1", "mask-9"})
			if err != nil {
				t.Fatal(err)
			}
			want := "[{2} {1} {1} {0} {0}]" // mask-3: one row not yet erased either way
			if got := fmt.Sprint(r); got != want {
				t.Errorf("EraseBatch = %s; want %s", got, want)
			}
			var left int
			db.QueryRow("SELECT COUNT(*) FROM mytest_batchmask WHERE tag IN ('c', 'd')").Scan(&left)
			if left != 2 {
				t.Errorf("%d of the other ids' rows left; want 2", left)
			}
			r, err = c.EraseBatch(ctx, []privguard.SubjectID{"mask-1", "mask-3", "mask-2"})
			if err != nil || fmt.Sprint(r) != "[{0} {0} {0}]" {
				t.Errorf("second EraseBatch = %v, %v; want nothing changed", r, err)
			}
		})
	}
}
