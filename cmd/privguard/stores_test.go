package main

import (
	"context"
	"database/sql"
	"testing"

	"github.com/jackc/pgx/v5"
)

// pgTable connects to PostgreSQL, drops and recreates table with the statements given
// (create first, then the rows) and drops it again when the test ends.
func pgTable(t *testing.T, dsn, table string, stmts ...string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	pg, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pg.Exec(context.Background(), `DROP TABLE IF EXISTS `+table)
		pg.Close(context.Background())
	})
	for _, q := range append([]string{`DROP TABLE IF EXISTS ` + table}, stmts...) {
		if _, err := pg.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	return pg
}

// myTable does the same on MariaDB.
func myTable(t *testing.T, dsn, table string, stmts ...string) *sql.DB {
	t.Helper()
	my, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		my.Exec(`DROP TABLE IF EXISTS ` + table)
		my.Close()
	})
	for _, q := range append([]string{`DROP TABLE IF EXISTS ` + table}, stmts...) {
		if _, err := my.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return my
}
