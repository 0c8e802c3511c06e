package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// setup is one configuration of the durable-grants measurement.
type setup struct {
	name     string
	replicas int
	postgres bool
}

var setups = []setup{
	{name: "pg×3", replicas: 3, postgres: true},
	{name: "bolt×1", replicas: 1, postgres: false},
	{name: "pg×1", replicas: 1, postgres: true},
}

// loadOptions are the durable-grants parameters.
type loadOptions struct {
	writers          int // per replica
	warmup, duration time.Duration
	idempotency      bool
	pprofSecs        int
}

// throughputResult is one run of one setup.
type throughputResult struct {
	ok, failed int
	firstErr   string
	rate       float64
	p50, p99   time.Duration
	cpu        cpuUse
	// On PostgreSQL: records and transactions (distinct xmin) that committed in the
	// measured window; and the scans and updates of consent_head, from the schema's table
	// statistics, which backends report up to a second late (so over a slightly wider
	// window): every commit attempt scans it to lock it, a successful one scans it again
	// to update it, so attempts are scans-updates and conflicts attempts-updates.
	records, commits, scans, updates int64
}

func (r throughputResult) String() string {
	s := fmt.Sprintf("%.0f grants/s, p50 %s p99 %s (%d ok", r.rate, ms(r.p50), ms(r.p99), r.ok)
	if r.failed > 0 {
		s += fmt.Sprintf(", %d FAILED: %s", r.failed, r.firstErr)
	}
	s += "); " + r.cpu.String()
	if r.commits > 0 {
		s += fmt.Sprintf("; %d commits, %.1f records/commit", r.commits, float64(r.records)/float64(r.commits))
		if attempts := r.scans - r.updates; attempts > 0 {
			s += fmt.Sprintf(", %.0f%% of %d commit attempts found the head moved", 100*float64(attempts-r.updates)/float64(attempts), attempts)
		}
	}
	return s
}

// throughput runs one setup: its replicas on a fresh store, opts.writers closed-loop
// writers per replica, each posting grants to new subjects on its own kept-alive
// connection; grants answered 201 in the measured window count.
func (e *env) throughput(ctx context.Context, s setup, opts loadOptions) (throughputResult, error) {
	schema := ""
	if s.postgres {
		schema = e.newSchema("load")
		defer e.dropSchema(schema)
	}
	var specs []replicaSpec
	for i := range s.replicas {
		specs = append(specs, replicaSpec{name: fmt.Sprintf("r%d", i), schema: schema, pprofPort: e.pprofPort()})
	}
	rs, err := e.startReady(ctx, specs...)
	if err != nil {
		return throughputResult{}, err
	}
	defer stopAll(rs)
	if err := e.registerNotice(rs[0]); err != nil {
		return throughputResult{}, err
	}
	if s.postgres {
		// The notice must have reached every replica, or their first grants are refused.
		time.Sleep(500 * time.Millisecond)
	}
	var pg *pgx.Conn
	if s.postgres {
		if pg, err = pgx.Connect(ctx, e.dsn); err != nil {
			return throughputResult{}, err
		}
		defer pg.Close(context.Background())
	}

	type worker struct {
		lat        []time.Duration
		ok, failed int
		firstErr   string
	}
	var (
		measuring, stop atomic.Bool
		wg              sync.WaitGroup
		workers         = make([]*worker, s.replicas*opts.writers)
		prefix          = "load-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	)
	for wi := range workers {
		w := &worker{lat: make([]time.Duration, 0, 1<<14)}
		workers[wi] = w
		r := rs[wi%len(rs)]
		wg.Go(func() {
			c := newConn(r.url)
			defer c.close()
			var subject, key, body, req []byte
			for k := 0; !stop.Load(); k++ {
				subject = append(append(append(subject[:0], prefix...), 'w'), strconv.Itoa(wi)...)
				subject = strconv.AppendInt(append(subject, '-'), int64(k), 10)
				body = appendGrant(body[:0], subject, wi<<12+k)
				key = key[:0]
				if opts.idempotency {
					key = append(append(key, "k-"...), subject...)
				}
				req = postRequest(req[:0], "/v1/consents", e.token, key, body)
				m := measuring.Load()
				start := time.Now()
				status, answer, err := c.do(req)
				if !m || stop.Load() {
					continue
				}
				if err == nil && status == 201 {
					w.ok++
					w.lat = append(w.lat, time.Since(start))
					continue
				}
				w.failed++
				if w.firstErr == "" {
					w.firstErr = fmt.Sprintf("%d %.200s %v", status, answer, err)
				}
			}
		})
	}
	select {
	case <-time.After(opts.warmup):
	case <-ctx.Done():
	}
	var res throughputResult
	var seq0, att0, upd0 int64
	if pg != nil {
		seq0, att0, upd0 = pgCounters(ctx, pg, schema)
	}
	stopProf := e.profile(rs, "grants-"+s.name, opts.pprofSecs)
	cpu0 := sampleCPU(rs)
	measuring.Store(true)
	start := time.Now()
	select {
	case <-time.After(opts.duration):
	case <-ctx.Done():
	}
	stop.Store(true)
	elapsed := time.Since(start)
	res.cpu = cpu0.to(sampleCPU(rs))
	var seq1 int64
	if pg != nil {
		seq1, _, _ = pgCounters(ctx, pg, schema)
	}
	wg.Wait()
	stopProf()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	var all []time.Duration
	for _, w := range workers {
		res.ok += w.ok
		res.failed += w.failed
		if res.firstErr == "" {
			res.firstErr = w.firstErr
		}
		all = append(all, w.lat...)
	}
	slices.Sort(all)
	res.p50, res.p99 = percentile(all, .5), percentile(all, .99)
	res.rate = float64(res.ok) / elapsed.Seconds()
	if pg != nil {
		res.records = seq1 - seq0
		q := fmt.Sprintf(`SELECT count(DISTINCT xmin::text) FROM %s.consent_records WHERE seq > $1 AND seq <= $2`, pgx.Identifier{schema}.Sanitize())
		if err := pg.QueryRow(ctx, q, seq0, seq1).Scan(&res.commits); err != nil {
			return res, fmt.Errorf("count commits: %w", err)
		}
		time.Sleep(1100 * time.Millisecond) // the statistics' delay
		_, att1, upd1 := pgCounters(ctx, pg, schema)
		res.scans, res.updates = att1-att0, upd1-upd0
	}
	return res, nil
}

// pgCounters reads the ledger head's seq in schema, and the scans and updates of its
// consent_head table so far.
func pgCounters(ctx context.Context, pg *pgx.Conn, schema string) (seq, scans, updates int64) {
	pg.QueryRow(ctx, fmt.Sprintf(`SELECT seq FROM %s.consent_head`, pgx.Identifier{schema}.Sanitize())).Scan(&seq)
	pg.QueryRow(ctx, `SELECT seq_scan + coalesce(idx_scan, 0), n_tup_upd FROM pg_stat_user_tables
		WHERE schemaname = $1 AND relname = 'consent_head'`, schema).Scan(&scans, &updates)
	return seq, scans, updates
}
