package postgres_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/connector/postgres"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/dsar/dsartest"
)

// seeder fills and inspects the test tables directly.
type seeder struct{ pool *pgxpool.Pool }

func (s seeder) Seed(ctx context.Context, subject privguard.SubjectID, n int, value string) error {
	for i := range n {
		if i == 0 {
			if _, err := s.pool.Exec(ctx, `INSERT INTO pgtest_customers (customer_id, email, phone, city) VALUES ($1, $2, $3, 'Hangzhou')`,
				string(subject), value+"@example.com", value); err != nil {
				return err
			}
			continue
		}
		if _, err := s.pool.Exec(ctx, `INSERT INTO pgtest_orders (customer_id, address, total) VALUES ($1, $2, $3)`,
			string(subject), fmt.Sprintf("%s street %d", value, i), i*100); err != nil {
			return err
		}
	}
	return nil
}

func (s seeder) Remaining(ctx context.Context, subject privguard.SubjectID) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM pgtest_customers WHERE customer_id = $1) +
		(SELECT count(*) FROM pgtest_orders WHERE customer_id = $1 AND address IS DISTINCT FROM $2)`,
		string(subject), dsar.MaskValue).Scan(&n)
	return n, err
}

func TestConformance(t *testing.T) {
	dsn := os.Getenv("PRIVGUARD_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("PRIVGUARD_TEST_POSTGRES_DSN is not set (CI sets it; see .ci/run)")
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for _, q := range []string{
		`DROP TABLE IF EXISTS pgtest_customers, pgtest_orders`,
		`CREATE TABLE pgtest_customers (customer_id text NOT NULL, email text, phone text, city text)`,
		`CREATE TABLE pgtest_orders (id serial PRIMARY KEY, customer_id text NOT NULL, address text, total int)`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { pool.Exec(context.Background(), `DROP TABLE IF EXISTS pgtest_customers, pgtest_orders`) })
	c, err := postgres.New(ctx, postgres.Config{Name: "crm", DSN: dsn, Tables: []postgres.Table{
		{Table: "pgtest_customers", SubjectColumn: "customer_id", Erase: dsar.EraseDelete,
			Columns: map[string]privguard.DataCategory{"email": "user.contact.email", "phone": "user.contact.phone_number", "city": "user.location.imprecise"}},
		{Table: "pgtest_orders", SubjectColumn: "customer_id", Erase: dsar.EraseMask,
			Columns: map[string]privguard.DataCategory{"address": "user.contact.address"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// proves DSR-06 (the rows), DSR-08 (correction), DSR-09 (erasure) for PostgreSQL.
	dsartest.TestConnector(t, c, seeder{pool})
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
