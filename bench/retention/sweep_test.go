package main

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/connector/postgres"
	"github.com/privguard/privguard/dsar"
)

// BenchmarkSweepBatchPostgres is one Sweep call (delete, a batch of defaultBatch expired
// rows) on a table of 100,000 current rows, through the PostgreSQL connector:
//
//	PRIVGUARD_TEST_POSTGRES_DSN=... go test ./bench/retention -run XXX -bench SweepBatch -benchmem
func BenchmarkSweepBatchPostgres(b *testing.B) {
	dsn := os.Getenv("PRIVGUARD_TEST_POSTGRES_DSN")
	if dsn == "" {
		b.Skip("PRIVGUARD_TEST_POSTGRES_DSN unset: no PostgreSQL to sweep")
	}
	ctx := context.Background()
	name := fmt.Sprintf("bench_sweep_batch_%d", os.Getpid())
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	exec := func(q string, args ...any) {
		b.Helper()
		if _, err := pool.Exec(ctx, q, args...); err != nil {
			b.Fatal(err)
		}
	}
	exec(`DROP TABLE IF EXISTS ` + name)
	exec(`CREATE TABLE ` + name + ` (id bigserial PRIMARY KEY, customer_id varchar(64), url text, viewed_at timestamp)`)
	defer pool.Exec(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS `+name)
	exec(`CREATE INDEX ON ` + name + ` (viewed_at)`)
	exec(`CREATE INDEX ON ` + name + ` (customer_id)`)
	exec(`INSERT INTO `+name+` (customer_id, url, viewed_at) SELECT 'cust-' || (g % 10000), 'https://example.com/p/' || g,
		localtimestamp - (g % 86400) * interval '1 second' FROM generate_series(1, $1::bigint) g`, 100_000)
	cutoff := time.Now().UTC().Add(-365 * 24 * time.Hour).Truncate(time.Second)
	refill := func() {
		b.Helper()
		exec(`INSERT INTO `+name+` (customer_id, url, viewed_at) SELECT 'cust-' || (g % 10000), 'https://example.com/old/' || g,
			$2::timestamp - interval '1 second' - (g % 86400) * interval '1 second' FROM generate_series(1, $1::bigint) g`, 50*defaultBatch, cutoff)
		exec(`VACUUM ANALYZE ` + name)
	}
	c, err := postgres.New(ctx, postgres.Config{Name: "bench", DSN: dsn, Tables: []dsar.TableMap{{Table: name, SubjectColumn: "customer_id",
		Columns: map[string]privguard.DataCategory{"url": "browsing"}, Erase: dsar.EraseDelete, DatedBy: "viewed_at"}}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	a := dsar.SweepAction{Rule: "page_views", Table: name, Mode: dsar.SweepDelete, Before: cutoff}
	left := 0
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if left < defaultBatch {
			b.StopTimer()
			refill()
			left += 50 * defaultBatch
			b.StartTimer()
		}
		n, _, err := c.Sweep(ctx, a, defaultBatch)
		if err != nil {
			b.Fatal(err)
		}
		if n != defaultBatch {
			b.Fatalf("swept %d rows, want %d", n, defaultBatch)
		}
		left -= n
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*defaultBatch)/b.Elapsed().Seconds(), "rows/s")
}
