// Command retention measures a retention sweep on the SQL connectors (issue 13): for
// PostgreSQL and for MariaDB it fills a table bench_page_views with -rows rows, 1% of them
// older than the cut-off, and deletes those with the connector's dsar.Sweeper the way the
// engine does (batches of -batch rows, -pause between batches), while one client runs an
// application query on the same table in a loop. Each run measures the client's latency
// first without the sweep, then with it, for the same duration (the previous run's sweep
// time; for the first, an estimate), and checks afterwards that exactly the expired rows
// are gone. It prints every run and a JSON summary with the medians.
//
//	go run ./bench/retention                         # 10M rows, 3 runs, both stores
//	go run ./bench/retention -rows 1000000 -only postgres
//	go run ./bench/retention -reuse                  # keep a table seeded by an earlier run
//
// DSNs: PRIVGUARD_TEST_POSTGRES_DSN and PRIVGUARD_TEST_MYSQL_DSN (a store whose variable
// is unset is skipped).
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/connector/mysql"
	"github.com/privguard/privguard/connector/postgres"
	"github.com/privguard/privguard/dsar"
)

// The engine's batch and pause between batches: what serve sweeps with by default.
const (
	defaultBatch = dsar.DefaultSweepBatch
	defaultPause = dsar.DefaultSweepPause
)

const (
	table     = "bench_page_views"
	customers = 100_000 // distinct customer ids; the application query reads one
	seedChunk = 1_000_000
)

// store is one database under test: the connector's Sweeper and the statements the
// benchmark itself runs.
type store interface {
	name() string
	sweeper() dsar.Sweeper
	// seeded reports how many rows the table holds, -1 if it does not exist.
	seeded(ctx context.Context) (int64, error)
	create(ctx context.Context) error
	// fill inserts rows [from, to) dated within the last 30 days.
	fill(ctx context.Context, from, to int64) error
	index(ctx context.Context) error
	// expire inserts n rows dated a day or so before cutoff.
	expire(ctx context.Context, n int64, cutoff time.Time) error
	// tidy runs between runs (PostgreSQL: VACUUM, so runs start alike).
	tidy(ctx context.Context) error
	count(ctx context.Context, cutoff time.Time) (total, expired int64, err error)
	// query is the application's query: one customer's page views.
	query(ctx context.Context, customer string) error
	drop(ctx context.Context) error
	close()
}

type runResult struct {
	Expired      int64   `json:"expired"`
	SweepSeconds float64 `json:"sweep_s"`
	Calls        int     `json:"sweep_calls"`
	RowsPerSec   float64 `json:"rows_per_s"`
	StmtsPerSec  float64 `json:"statements_per_s"`
	WindowSecs   float64 `json:"window_s"` // duration of each latency window
	Without      latency `json:"without_sweep"`
	With         latency `json:"with_sweep"`
	Verified     bool    `json:"verified"`
}

type latency struct {
	Queries int     `json:"queries"`
	P50ms   float64 `json:"p50_ms"`
	P99ms   float64 `json:"p99_ms"`
}

type summary struct {
	Store       string      `json:"store"`
	Rows        int64       `json:"rows"`
	Expired     int64       `json:"expired"`
	Batch       int         `json:"batch"`
	PauseMs     float64     `json:"pause_ms"`
	SeedSeconds float64     `json:"seed_s,omitempty"`
	Runs        []runResult `json:"runs"`
	Median      struct {
		SweepSeconds float64 `json:"sweep_s"`
		RowsPerSec   float64 `json:"rows_per_s"`
		StmtsPerSec  float64 `json:"statements_per_s"`
		WithoutP50   float64 `json:"without_p50_ms"`
		WithoutP99   float64 `json:"without_p99_ms"`
		WithP50      float64 `json:"with_p50_ms"`
		WithP99      float64 `json:"with_p99_ms"`
		RatioP50     float64 `json:"ratio_p50"`
		RatioP99     float64 `json:"ratio_p99"`
	} `json:"median"`
	Verified bool `json:"verified"`
}

func main() {
	var (
		rows  = flag.Int64("rows", 10_000_000, "rows in the table, 1% of them expired")
		runs  = flag.Int("runs", 3, "runs per store (the summary gives medians)")
		batch = flag.Int("batch", defaultBatch, "rows per Sweep call")
		pause = flag.Duration("pause", defaultPause, "pause between Sweep calls")
		only  = flag.String("only", "", "postgres or mysql: one store only")
		reuse = flag.Bool("reuse", false, "keep a table of the right size left by an earlier run (-keep)")
		keep  = flag.Bool("keep", false, "keep the table afterwards")
	)
	flag.Parse()
	if *rows < 100 || *runs < 1 || *batch < 1 {
		fmt.Fprintln(os.Stderr, "retention: want -rows >= 100, -runs >= 1, -batch >= 1")
		os.Exit(2)
	}
	ctx := context.Background()
	var out []summary
	for _, s := range []struct{ name, env string }{{"postgres", "PRIVGUARD_TEST_POSTGRES_DSN"}, {"mysql", "PRIVGUARD_TEST_MYSQL_DSN"}} {
		if *only != "" && *only != s.name {
			continue
		}
		dsn := os.Getenv(s.env)
		if dsn == "" {
			fmt.Fprintf(os.Stderr, "retention: %s unset, %s skipped\n", s.env, s.name)
			continue
		}
		st, err := open(ctx, s.name, dsn)
		if err != nil {
			fmt.Fprintln(os.Stderr, "retention:", err)
			os.Exit(1)
		}
		sum, err := bench(ctx, st, *rows, *runs, *batch, *pause, *reuse, *keep)
		st.close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "retention: %s: %v\n", s.name, err)
			os.Exit(1)
		}
		out = append(out, sum)
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Println(string(b))
	for _, s := range out {
		if !s.Verified {
			os.Exit(1)
		}
	}
}

func tableMap() dsar.TableMap {
	return dsar.TableMap{Table: table, SubjectColumn: "customer_id",
		Columns: map[string]privguard.DataCategory{"url": "browsing"}, Erase: dsar.EraseDelete, DatedBy: "viewed_at"}
}

func open(ctx context.Context, name, dsn string) (store, error) {
	switch name {
	case "postgres":
		c, err := postgres.New(ctx, postgres.Config{Name: "bench", DSN: dsn, Tables: []dsar.TableMap{tableMap()}})
		if err != nil {
			return nil, err
		}
		pool, err := pgxpool.New(ctx, dsn)
		if err != nil {
			return nil, err
		}
		return &pgStore{c: c, pool: pool}, nil
	default:
		c, err := mysql.New(ctx, mysql.Config{Name: "bench", DSN: dsn, Tables: []dsar.TableMap{tableMap()}})
		if err != nil {
			return nil, err
		}
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			return nil, err
		}
		return &myStore{c: c, db: db}, nil
	}
}

func bench(ctx context.Context, st store, rows int64, runs, batch int, pause time.Duration, reuse, keep bool) (summary, error) {
	sum := summary{Store: st.name(), Rows: rows, Expired: rows / 100, Batch: batch, PauseMs: float64(pause) / 1e6}
	fresh := rows - sum.Expired
	// The cut-off is fixed once, as a run's is when it is planned.
	cutoff := time.Now().UTC().Add(-365 * 24 * time.Hour).Truncate(time.Second)
	have, err := st.seeded(ctx)
	if err != nil {
		return sum, err
	}
	if !reuse || have != fresh {
		start := time.Now()
		if err := st.create(ctx); err != nil {
			return sum, err
		}
		for from := int64(0); from < fresh; from += seedChunk {
			if err := st.fill(ctx, from, min(from+seedChunk, fresh)); err != nil {
				return sum, err
			}
			fmt.Fprintf(os.Stderr, "%s: %d/%d rows in %v\n", st.name(), min(from+seedChunk, fresh), fresh, time.Since(start).Round(time.Second))
		}
		if err := st.index(ctx); err != nil {
			return sum, err
		}
		sum.SeedSeconds = time.Since(start).Seconds()
		fmt.Fprintf(os.Stderr, "%s: seeded %d rows and indexed in %.1f s\n", st.name(), fresh, sum.SeedSeconds)
	} else {
		fmt.Fprintf(os.Stderr, "%s: reusing the table of %d rows\n", st.name(), have)
	}
	if !keep {
		defer st.drop(context.WithoutCancel(ctx))
	}
	action := dsar.SweepAction{Rule: "page_views", Table: table, Mode: dsar.SweepDelete, Before: cutoff}
	// The first window is an estimate: a statement of a few ms per batch plus the pause.
	window := time.Duration(sum.Expired/int64(batch)+1) * (pause + 5*time.Millisecond)
	sum.Verified = true
	for i := range runs {
		if err := st.tidy(ctx); err != nil {
			return sum, err
		}
		if err := st.expire(ctx, sum.Expired, cutoff); err != nil {
			return sum, err
		}
		total, expired, err := st.count(ctx, cutoff)
		if err != nil {
			return sum, err
		}
		if total != rows || expired != sum.Expired {
			return sum, fmt.Errorf("before run %d: %d rows, %d expired; want %d, %d", i+1, total, expired, rows, sum.Expired)
		}
		if n, err := st.sweeper().CountSweep(ctx, action); err != nil || int64(n) != sum.Expired {
			return sum, fmt.Errorf("dry run: %d rows, %v; want %d", n, err, sum.Expired)
		}
		var r runResult
		r.WindowSecs = window.Seconds()
		// Without the sweep, for the window.
		wctx, cancel := context.WithTimeout(ctx, window)
		r.Without, err = client(wctx, st)
		cancel()
		if err != nil {
			return sum, err
		}
		// With it, for the same window (the client keeps going if the sweep is done first,
		// and stops with it if it takes longer).
		cctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		var with latency
		var cerr error
		go func() {
			defer close(done)
			with, cerr = client(cctx, st)
		}()
		start := time.Now()
		swept, calls, serr := sweep(ctx, st.sweeper(), action, batch, pause)
		took := time.Since(start)
		if rest := window - took; rest > 0 {
			time.Sleep(rest)
		}
		stop()
		<-done
		if serr != nil {
			return sum, serr
		}
		if cerr != nil {
			return sum, cerr
		}
		r.With = with
		r.Expired, r.Calls, r.SweepSeconds = swept, calls, took.Seconds()
		r.RowsPerSec = float64(swept) / took.Seconds()
		r.StmtsPerSec = float64(calls) / took.Seconds()
		total, expired, err = st.count(ctx, cutoff)
		if err != nil {
			return sum, err
		}
		r.Verified = swept == sum.Expired && expired == 0 && total == rows-sum.Expired
		if !r.Verified {
			fmt.Fprintf(os.Stderr, "%s run %d: swept %d, left %d expired of %d rows; want %d, 0, %d\n",
				st.name(), i+1, swept, expired, total, sum.Expired, rows-sum.Expired)
		}
		sum.Verified = sum.Verified && r.Verified
		fmt.Fprintf(os.Stderr, "%s run %d: swept %d rows in %.2f s (%d calls, %.0f rows/s); client p50/p99 %.2f/%.2f ms without, %.2f/%.2f ms with (window %.2f s)\n",
			st.name(), i+1, swept, took.Seconds(), calls, r.RowsPerSec, r.Without.P50ms, r.Without.P99ms, r.With.P50ms, r.With.P99ms, window.Seconds())
		sum.Runs = append(sum.Runs, r)
		window = took
	}
	m := &sum.Median
	pick := func(f func(runResult) float64) float64 {
		v := make([]float64, len(sum.Runs))
		for i, r := range sum.Runs {
			v[i] = f(r)
		}
		return median(v)
	}
	m.SweepSeconds = pick(func(r runResult) float64 { return r.SweepSeconds })
	m.RowsPerSec = pick(func(r runResult) float64 { return r.RowsPerSec })
	m.StmtsPerSec = pick(func(r runResult) float64 { return r.StmtsPerSec })
	m.WithoutP50 = pick(func(r runResult) float64 { return r.Without.P50ms })
	m.WithoutP99 = pick(func(r runResult) float64 { return r.Without.P99ms })
	m.WithP50 = pick(func(r runResult) float64 { return r.With.P50ms })
	m.WithP99 = pick(func(r runResult) float64 { return r.With.P99ms })
	m.RatioP50 = pick(func(r runResult) float64 { return r.With.P50ms / r.Without.P50ms })
	m.RatioP99 = pick(func(r runResult) float64 { return r.With.P99ms / r.Without.P99ms })
	return sum, nil
}

// sweep carries out a as the engine does: a batch at a time, pausing between batches,
// until the connector says nothing more remains. It returns the rows changed and the calls.
func sweep(ctx context.Context, s dsar.Sweeper, a dsar.SweepAction, batch int, pause time.Duration) (int64, int, error) {
	var total int64
	calls := 0
	for {
		n, more, err := s.Sweep(ctx, a, batch)
		calls++
		total += int64(n)
		if err != nil {
			return total, calls, err
		}
		if !more {
			return total, calls, nil
		}
		time.Sleep(pause)
	}
}

// client runs the application query in a loop until ctx ends and returns its latency.
func client(ctx context.Context, st store) (latency, error) {
	var d []time.Duration
	for ctx.Err() == nil {
		id := fmt.Sprintf("cust-%d", rand.IntN(customers))
		start := time.Now()
		err := st.query(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return latency{}, err
		}
		d = append(d, time.Since(start))
	}
	if len(d) == 0 {
		return latency{}, errors.New("the client ran no query")
	}
	slices.Sort(d)
	q := func(p float64) float64 { return float64(d[int(p*float64(len(d)-1))]) / 1e6 }
	return latency{Queries: len(d), P50ms: q(0.50), P99ms: q(0.99)}, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
