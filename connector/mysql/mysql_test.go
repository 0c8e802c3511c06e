package mysql_test

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/connector/mysql"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/dsar/dsartest"
)

type seeder struct{ db *sql.DB }

func (s seeder) Seed(ctx context.Context, subject privguard.SubjectID, n int, value string) error {
	for range n {
		if _, err := s.db.ExecContext(ctx, "INSERT INTO mytest_user_tags (uid, tag, segment) VALUES (?, ?, ?)", string(subject), value, value+"-seg"); err != nil {
			return err
		}
	}
	return nil
}

func (s seeder) Remaining(ctx context.Context, subject privguard.SubjectID) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM mytest_user_tags WHERE uid = ?", string(subject)).Scan(&n)
	return n, err
}

func TestConformance(t *testing.T) {
	dsn := os.Getenv("PRIVGUARD_TEST_MYSQL_DSN")
	if dsn == "" {
		t.Skip("PRIVGUARD_TEST_MYSQL_DSN is not set (CI sets it; see .ci/run)")
	}
	ctx := context.Background()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{"DROP TABLE IF EXISTS mytest_user_tags",
		"CREATE TABLE mytest_user_tags (id INT AUTO_INCREMENT PRIMARY KEY, uid VARCHAR(200) NOT NULL, tag VARCHAR(200), segment VARCHAR(200)) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { db.Exec("DROP TABLE IF EXISTS mytest_user_tags") })
	c, err := mysql.New(ctx, mysql.Config{Name: "tags", DSN: dsn, Tables: []mysql.Table{{Table: "mytest_user_tags", SubjectColumn: "uid",
		Columns: map[string]privguard.DataCategory{"tag": "user.derived.tags", "segment": "user.derived.segments"}, Erase: dsar.EraseDelete}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// proves PUR-05: tags and segments (derived data) are exported and erased like any data.
	dsartest.TestConnector(t, c, seeder{db})
}

func TestCheckCollation(t *testing.T) {
	dsn := os.Getenv("PRIVGUARD_TEST_MYSQL_DSN")
	if dsn == "" {
		t.Skip("PRIVGUARD_TEST_MYSQL_DSN is not set (CI sets it; see .ci/run)")
	}
	ctx := context.Background()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{"DROP TABLE IF EXISTS mytest_coll_bin, mytest_coll_ci",
		"CREATE TABLE mytest_coll_bin (uid VARCHAR(64)) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
		"CREATE TABLE mytest_coll_ci (uid VARCHAR(64)) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { db.Exec("DROP TABLE IF EXISTS mytest_coll_bin, mytest_coll_ci") })
	c, err := mysql.New(ctx, mysql.Config{Name: "tags", DSN: dsn, Tables: []mysql.Table{
		{Table: "mytest_coll_bin", SubjectColumn: "uid", Erase: dsar.EraseDelete},
		{Table: "mytest_coll_ci", SubjectColumn: "uid", Erase: dsar.EraseDelete},
		{Table: "mytest_coll_missing", SubjectColumn: "uid", Erase: dsar.EraseDelete}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.CheckCollation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !strings.Contains(got[0], "mytest_coll_ci.uid has collation utf8mb4_general_ci") || !strings.Contains(got[1], "mytest_coll_missing.uid does not exist") {
		t.Errorf("warnings: %q", got)
	}
}
