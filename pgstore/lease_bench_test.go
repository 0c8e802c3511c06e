package pgstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/pgstore"
)

// orders is a BatchEraser over a real table of the benchmark's schema (a CRM's orders,
// one row per subject), on a pool of its own, as a connector has its own connections.
type orders struct {
	pool   *pgxpool.Pool
	table  string
	erased atomic.Int64 // subjects erased, each counted once per EraseBatch naming it
}

var (
	_ dsar.Connector   = (*orders)(nil)
	_ dsar.BatchEraser = (*orders)(nil)
)

func (o *orders) Name() string { return "crm" }

func (o *orders) Export(context.Context, privguard.SubjectID) (dsar.Export, error) {
	return dsar.Export{Store: "crm"}, nil
}

func (o *orders) Erase(ctx context.Context, s privguard.SubjectID) (dsar.Erased, error) {
	out, err := o.EraseBatch(ctx, []privguard.SubjectID{s})
	if err != nil {
		return dsar.Erased{}, err
	}
	return out[0], nil
}

func (o *orders) EraseBatch(ctx context.Context, subjects []privguard.SubjectID) ([]dsar.Erased, error) {
	keys := make([]string, len(subjects))
	for i, s := range subjects {
		keys[i] = string(s)
	}
	rows, err := o.pool.Query(ctx, "DELETE FROM "+o.table+" WHERE subject = ANY($1) RETURNING subject", keys)
	if err != nil {
		return nil, err
	}
	n := map[string]int{}
	var s string
	if _, err := pgx.ForEachRow(rows, []any{&s}, func() error { n[s]++; return nil }); err != nil {
		return nil, err
	}
	out := make([]dsar.Erased, len(subjects))
	for i, k := range keys {
		out[i].Items = n[k]
	}
	o.erased.Add(int64(len(subjects)))
	return out, nil
}

// BenchmarkBulkErasure: 10,000 deletions submitted at once (SubmitAll), worked by one
// engine and by three engines on one schema (three pools: three replicas), erasing into a
// real table through a BatchEraser. Timed: from the submission (one engine's SubmitAll,
// submit-s/op) to every request done; requests/s is the rate.
func BenchmarkBulkErasure(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("engines=%d", n), func(b *testing.B) { benchBulkErasure(b, n) })
	}
}

func benchBulkErasure(b *testing.B, engines int) {
	const total = 10_000
	dsn := testDSN(b)
	b.ReportAllocs()
	var erased int64
	var submit time.Duration
	for b.Loop() {
		b.StopTimer()
		schema := newSchema(b)
		var es []*dsar.Engine
		pool, err := pgxpool.New(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		table := pgx.Identifier{schema, "crm_orders"}.Sanitize()
		var stores []*pgstore.DB
		for range engines {
			stores = append(stores, openSchema(b, schema))
		}
		if _, err := pool.Exec(ctx, "CREATE TABLE "+table+" (subject text NOT NULL, item int NOT NULL); "+
			"INSERT INTO "+table+" SELECT 'bulk-' || lpad(i::text, 5, '0'), i FROM generate_series(0, "+fmt.Sprint(total-1)+") i; "+
			"CREATE INDEX ON "+table+" (subject)"); err != nil {
			b.Fatal(err)
		}
		crm := &orders{pool: pool, table: table}
		for i, s := range stores {
			e, err := dsar.New(dsar.Config{Store: s.DSAR(), Replica: fmt.Sprintf("replica-%d", i), Connectors: []dsar.Connector{crm}})
			if err != nil {
				b.Fatal(err)
			}
			es = append(es, e)
		}
		reqs := make([]dsar.Request, total)
		for i := range reqs {
			reqs[i] = dsar.Request{Type: dsar.TypeDeletion, Subject: privguard.SubjectID(fmt.Sprintf("bulk-%05d", i)),
				Identity: &dsar.Identity{Method: "operator", Operator: "dpo"}}
		}
		b.StartTimer()

		start := time.Now()
		if _, err := es[0].SubmitAll(ctx, reqs); err != nil {
			b.Fatal(err)
		}
		submit += time.Since(start)
		wctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for _, e := range es {
			wg.Go(func() {
				for wctx.Err() == nil {
					if ran, err := e.Step(wctx); err != nil && wctx.Err() == nil {
						b.Error(err)
						return
					} else if ran == 0 {
						time.Sleep(5 * time.Millisecond)
					}
				}
			})
		}
		left := -1
		for left != 0 {
			time.Sleep(10 * time.Millisecond)
			if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, "dsar_requests"}.Sanitize()+
				" WHERE due IS NOT NULL AND due <= $1", time.Now()).Scan(&left); err != nil {
				b.Fatal(err)
			}
		}
		cancel()
		wg.Wait()

		b.StopTimer()
		var remaining, open int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&remaining); err != nil {
			b.Fatal(err)
		}
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, "dsar_requests"}.Sanitize()+
			" WHERE convert_from(body, 'UTF8')::json ->> 'state' <> 'completed'").Scan(&open); err != nil {
			b.Fatal(err)
		}
		if remaining != 0 || open != 0 || crm.erased.Load() != total {
			b.Fatalf("after the bulk erasure: %d rows left, %d requests not completed, %d subjects erased; want 0, 0, %d (each once)",
				remaining, open, crm.erased.Load(), total)
		}
		erased += total
		pool.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(erased)/b.Elapsed().Seconds(), "requests/s")
	b.ReportMetric(submit.Seconds()/float64(b.N), "submit-s/op")
}
