package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/privguard/privguard/internal/consentload"
)

// filled is a schema holding a ledger of many records, and what filling it showed.
type filled struct {
	schema  string
	records int
	// The import through one replica, and how long after its end the follower (a second
	// replica running throughout) had applied every record.
	importTime, followLag time.Duration
	// The follower's resident set and Go heap in use before and after applying them.
	rssBefore, rssAfter, heapBefore, heapAfter int64
	// How long the importing replica took to stop on SIGTERM (it writes the snapshot), and
	// the snapshot's size in the store.
	stopTime     time.Duration
	snapshotSize int64
}

// fill imports records grants through one replica while another follows, then stops both
// gracefully (the importer last, so that its snapshot is the one stored).
func (e *env) fill(ctx context.Context, records int) (*filled, error) {
	f := &filled{schema: e.newSchema("join"), records: records}
	rs, err := e.startReady(ctx, replicaSpec{name: "importer", schema: f.schema}, replicaSpec{name: "follower", schema: f.schema})
	if err != nil {
		return nil, err
	}
	imp, fol := rs[0], rs[1]
	defer imp.kill()
	defer fol.kill()
	if err := e.registerNotice(imp); err != nil {
		return nil, err
	}
	time.Sleep(300 * time.Millisecond) // the follower reads the notice
	heap := func(r *replica) int64 { v, _ := e.metric(r, "go_memstats_heap_inuse_bytes"); return int64(v) }
	f.rssBefore, _ = rssBytes(fol.cmd.Process.Pid)
	f.heapBefore = heap(fol)

	prefix := "join-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	res, err := consentload.Import(ctx, consentload.Target{Admin: imp.url, Token: e.token}, records, prefix)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if res.Failed > 0 || res.Created != records {
		return nil, fmt.Errorf("import incomplete: %s", res)
	}
	f.importTime = res.Elapsed
	ended := time.Now()
	for {
		d, err := e.readyz(ctx, fol)
		if err == nil && d.Records >= uint64(records) {
			break
		}
		if time.Since(ended) > 5*time.Minute {
			return nil, fmt.Errorf("the follower has %d of %d records 5 minutes after the import (%v)", d.Records, records, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.followLag = time.Since(ended)
	time.Sleep(time.Second) // let the follower's heap settle (the scavenger) a moment
	f.rssAfter, _ = rssBytes(fol.cmd.Process.Pid)
	f.heapAfter = heap(fol)

	if err := fol.stop(); err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := imp.stop(); err != nil {
		return nil, err
	}
	f.stopTime = time.Since(t0)
	pg, err := pgx.Connect(ctx, e.dsn)
	if err != nil {
		return nil, err
	}
	defer pg.Close(context.Background())
	q := fmt.Sprintf(`SELECT coalesce(sum(length(body)), 0) FROM %s.consent_snapshot`, pgx.Identifier{f.schema}.Sanitize())
	if err := pg.QueryRow(ctx, q).Scan(&f.snapshotSize); err != nil {
		return nil, fmt.Errorf("snapshot size: %w", err)
	}
	if f.snapshotSize == 0 {
		return nil, fmt.Errorf("the importer stopped but no snapshot is stored in %s", f.schema)
	}
	return f, nil
}

func (f *filled) String() string {
	return fmt.Sprintf("%d records imported through one replica in %s (%.0f/s); the follower had them all %s after the import ended; follower RSS %s -> %s (Go heap in use %s -> %s); importer stopped (snapshot written) in %s, snapshot %s",
		f.records, f.importTime.Round(time.Millisecond), float64(f.records)/f.importTime.Seconds(), f.followLag.Round(time.Millisecond),
		mib(f.rssBefore), mib(f.rssAfter), mib(f.heapBefore), mib(f.heapAfter), f.stopTime.Round(time.Millisecond), mib(f.snapshotSize))
}

func mib(b int64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MiB" }

// joinResult is one start of a new replica on the filled schema.
type joinResult struct {
	ready   time.Duration // process start to /readyz 200
	records uint64        // the ledger's records then
	rss     int64         // its resident set then
}

func (j joinResult) String() string {
	return fmt.Sprintf("ready in %s (%d records, RSS %s)", j.ready.Round(time.Millisecond), j.records, mib(j.rss))
}

// join starts a new replica on f's schema, measures from the process start to its first
// /readyz 200, and stops it: gracefully with the snapshot (it has nothing new to write),
// with SIGKILL without it, so that it writes no snapshot of its own. Without the snapshot,
// the snapshot row is deleted first.
func (e *env) join(ctx context.Context, f *filled, n int, withSnapshot bool, pprofSecs int) (joinResult, error) {
	if !withSnapshot {
		pg, err := pgx.Connect(ctx, e.dsn)
		if err != nil {
			return joinResult{}, err
		}
		_, err = pg.Exec(ctx, fmt.Sprintf(`DELETE FROM %s.consent_snapshot`, pgx.Identifier{f.schema}.Sanitize()))
		pg.Close(context.Background())
		if err != nil {
			return joinResult{}, fmt.Errorf("delete the snapshot: %w", err)
		}
	}
	r, err := e.start(replicaSpec{name: fmt.Sprintf("joiner%d", n), schema: f.schema, pprofPort: e.pprofPort()})
	if err != nil {
		return joinResult{}, err
	}
	what := "join-replay"
	if withSnapshot {
		what = "join-snapshot"
	}
	// A profile from the process start, covering the start-up; taken before the replica stops.
	profiled := e.profile([]*replica{r}, what, pprofSecs)
	res, err := e.joined(ctx, f, r)
	profiled()
	if err != nil || !withSnapshot {
		r.kill()
		return res, err
	}
	return res, r.stop()
}

// joined waits for the new replica r and reads what it holds.
func (e *env) joined(ctx context.Context, f *filled, r *replica) (joinResult, error) {
	var res joinResult
	var err error
	res.ready, err = e.ready(ctx, r, 5*time.Minute)
	if err != nil {
		return res, err
	}
	res.rss, _ = rssBytes(r.cmd.Process.Pid)
	d, err := e.readyz(ctx, r)
	if err != nil {
		return res, err
	}
	res.records = d.Records
	if res.records < uint64(f.records) {
		return res, fmt.Errorf("the new replica was ready with %d of %d records", res.records, f.records)
	}
	return res, nil
}
