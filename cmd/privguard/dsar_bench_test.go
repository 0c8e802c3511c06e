package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/connector/mysql"
	"github.com/privguard/privguard/connector/postgres"
	"github.com/privguard/privguard/connector/redis"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/identity"
	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/vault"
)

// benchStores is PostgreSQL + MariaDB + Redis with a marketing data map: customers and
// orders (PG), tags (MariaDB), a profile hash and a segment set (Redis).
type benchStores struct {
	pg    *pgx.Conn
	my    *sql.DB
	rd    *goredis.Client
	conns []dsar.Connector
}

func openBenchStores(b *testing.B) *benchStores {
	b.Helper()
	env := needServices(b, "POSTGRES_DSN", "MYSQL_DSN", "REDIS_ADDR")
	pgDSN, myDSN, rdAddr := env[0], env[1], env[2]
	ctx := context.Background()
	s := &benchStores{}
	var err error
	if s.pg, err = pgx.Connect(ctx, pgDSN); err != nil {
		b.Fatal(err)
	}
	if s.my, err = sql.Open("mysql", myDSN); err != nil {
		b.Fatal(err)
	}
	s.rd = goredis.NewClient(&goredis.Options{Addr: rdAddr})
	for _, q := range []string{`DROP TABLE IF EXISTS bench_customers, bench_orders`,
		`CREATE TABLE bench_customers (customer_id text, email text, phone text)`,
		`CREATE INDEX ON bench_customers (customer_id)`,
		`CREATE TABLE bench_orders (customer_id text, address text)`,
		`CREATE INDEX ON bench_orders (customer_id)`} {
		if _, err := s.pg.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	for _, q := range []string{`DROP TABLE IF EXISTS bench_tags`,
		`CREATE TABLE bench_tags (uid varchar(64), tag varchar(64), INDEX (uid))`} {
		if _, err := s.my.ExecContext(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	s.rd.Del(ctx, "bench:segment:vip")
	crm, err := postgres.New(ctx, postgres.Config{Name: "crm", DSN: pgDSN, Tables: []postgres.Table{
		{Table: "bench_customers", SubjectColumn: "customer_id", Columns: map[string]privguard.DataCategory{"email": "user.contact.email", "phone": "user.contact.phone_number"}, Erase: dsar.EraseDelete},
		{Table: "bench_orders", SubjectColumn: "customer_id", Columns: map[string]privguard.DataCategory{"address": "user.contact.address"}, Erase: dsar.EraseMask}}})
	if err != nil {
		b.Fatal(err)
	}
	tags, err := mysql.New(ctx, mysql.Config{Name: "tags", DSN: myDSN, Tables: []mysql.Table{
		{Table: "bench_tags", SubjectColumn: "uid", Columns: map[string]privguard.DataCategory{"tag": "user.derived.tags"}, Erase: dsar.EraseDelete}}})
	if err != nil {
		b.Fatal(err)
	}
	cache, err := redis.New(redis.Config{Name: "cache", Addr: rdAddr, Keys: []string{"bench:profile:{subject}"}, SetMembers: []string{"bench:segment:*"}})
	if err != nil {
		b.Fatal(err)
	}
	s.conns = []dsar.Connector{crm, tags, cache}
	b.Cleanup(func() {
		crm.Close()
		tags.Close()
		cache.Close()
		ctx := context.Background()
		s.pg.Exec(ctx, `DROP TABLE IF EXISTS bench_customers, bench_orders`)
		s.my.ExecContext(ctx, `DROP TABLE IF EXISTS bench_tags`)
		s.rd.Del(ctx, "bench:segment:vip")
		s.pg.Close(ctx)
		s.my.Close()
		s.rd.Close()
	})
	return s
}

// seed gives each subject a customer row, two orders, three tags, a profile and segment
// membership.
func (s *benchStores) seed(b *testing.B, subjects []string) {
	b.Helper()
	ctx := context.Background()
	var cust, ord [][]any
	for _, id := range subjects {
		cust = append(cust, []any{id, id + "@example.com", "13800000000"})
		ord = append(ord, []any{id, "1 Nanjing Road"}, []any{id, "2 Huaihai Road"})
	}
	if _, err := s.pg.CopyFrom(ctx, pgx.Identifier{"bench_customers"}, []string{"customer_id", "email", "phone"}, pgx.CopyFromRows(cust)); err != nil {
		b.Fatal(err)
	}
	if _, err := s.pg.CopyFrom(ctx, pgx.Identifier{"bench_orders"}, []string{"customer_id", "address"}, pgx.CopyFromRows(ord)); err != nil {
		b.Fatal(err)
	}
	for chunk := range slices.Chunk(subjects, 1000) {
		var q strings.Builder
		var args []any
		q.WriteString("INSERT INTO bench_tags (uid, tag) VALUES ")
		for i, id := range chunk {
			if i > 0 {
				q.WriteString(",")
			}
			q.WriteString("(?,'vip'),(?,'new'),(?,'wechat')")
			args = append(args, id, id, id)
		}
		if _, err := s.my.ExecContext(ctx, q.String(), args...); err != nil {
			b.Fatal(err)
		}
		p := s.rd.Pipeline()
		for _, id := range chunk {
			p.HSet(ctx, "bench:profile:"+id, "city", "Shanghai", "last_seen", "2026-11-01")
			p.SAdd(ctx, "bench:segment:vip", id)
		}
		if _, err := p.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// remaining counts what is left of subject id in the three stores.
func (s *benchStores) remaining(b *testing.B, id string) int {
	ctx := context.Background()
	var n, m int
	s.pg.QueryRow(ctx, `SELECT count(*) FROM bench_customers WHERE customer_id = $1`, id).Scan(&n)
	s.my.QueryRowContext(ctx, `SELECT count(*) FROM bench_tags WHERE uid = ?`, id).Scan(&m)
	k, _ := s.rd.Exists(ctx, "bench:profile:"+id).Result()
	in, _ := s.rd.SIsMember(ctx, "bench:segment:vip", id).Result()
	if in {
		k++
	}
	return n + m + int(k)
}

// benchEngine is the request engine as serve builds it (newDSAR): an erasure also shreds the
// subject's vault keys and records the erasure in the consent ledger.
func benchEngine(b *testing.B, conns []dsar.Connector) *dsar.Engine {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	db, err := boltstore.Open(filepath.Join(dir, "privguard.db"), boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	log := slog.New(slog.DiscardHandler)
	ledger, err := consent.Open(ctx, consent.Config{Store: db.Consent(), Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ledger.Close() })
	vlt, err := openVault(ctx, dir, db, true, log)
	if err != nil {
		b.Fatal(err)
	}
	cfg := &config.File{Data: dir}
	tax, err := cfg.Taxonomy()
	if err != nil {
		b.Fatal(err)
	}
	ids, err := identity.New(identity.Config{Store: db.Identity(), Vault: vlt, Sender: &identity.Outbox{Path: filepath.Join(dir, "outbox.jsonl")}})
	if err != nil {
		b.Fatal(err)
	}
	e, err := newDSAR(cfg, db.DSAR(), conns, ledger, vlt, tax, identity.Notifier{Registry: ids}, ids, nil, nil, log)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

var operator = &dsar.Identity{Method: "operator", Operator: "bench", Note: "benchmark"}

// BenchmarkErasureOneSubject is one deletion request end to end (submit, verified by an
// operator, every store erased and confirmed, the request stored as completed), with 10,000
// other subjects in the stores. It reports the median and p99.
func BenchmarkErasureOneSubject(b *testing.B) {
	s := openBenchStores(b)
	others := make([]string, 10_000)
	for i := range others {
		others[i] = "other-" + strconv.Itoa(i)
	}
	s.seed(b, others)
	e := benchEngine(b, s.conns)
	ctx := context.Background()
	var took []time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		id := fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i)
		s.seed(b, []string{id})
		b.StartTimer()
		start := time.Now()
		r, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: privguard.SubjectID(id), Regime: privguard.RegimePIPL, Identity: operator})
		if err != nil {
			b.Fatal(err)
		}
		for r.State != dsar.StateCompleted {
			if _, err := e.Step(ctx); err != nil {
				b.Fatal(err)
			}
			if r, err = e.Get(ctx, r.ID); err != nil {
				b.Fatal(err)
			}
			if r.State == dsar.StatePartiallyFailed {
				b.Fatalf("erasure failed: %+v", r.Tasks)
			}
		}
		took = append(took, time.Since(start))
		b.StopTimer()
		if left := s.remaining(b, id); left != 0 {
			b.Fatalf("%d items of %s left after completion", left, id)
		}
		b.StartTimer()
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkBulkErasure submits PRIVGUARD_BENCH_BULK (default 10,000) deletion requests at
// once and runs the engine until every one is completed; it reports subjects per second,
// and how long submitting and running (Step) took. The requests are submitted one at a
// time (one fsynced write each), as the API receives them; with PRIVGUARD_BENCH_SUBMIT=all,
// with Engine.SubmitAll in calls of 10,000.
func BenchmarkBulkErasure(b *testing.B) {
	n := 10_000
	if v, err := strconv.Atoi(os.Getenv("PRIVGUARD_BENCH_BULK")); err == nil && v > 0 {
		n = v
	}
	all := os.Getenv("PRIVGUARD_BENCH_SUBMIT") == "all"
	s := openBenchStores(b)
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		ids := make([]string, n)
		for j := range ids {
			ids[j] = fmt.Sprintf("bulk-%d-%d", i, j)
		}
		s.seed(b, ids)
		e := benchEngine(b, s.conns)
		b.StartTimer()
		start := time.Now()
		reqs := make([]string, n)
		if all {
			for from := 0; from < n; from += 10_000 {
				var batch []dsar.Request
				for _, id := range ids[from:min(from+10_000, n)] {
					batch = append(batch, dsar.Request{Type: dsar.TypeDeletion, Subject: privguard.SubjectID(id), Regime: privguard.RegimeGDPR, Identity: operator})
				}
				rs, err := e.SubmitAll(ctx, batch)
				if err != nil {
					b.Fatal(err)
				}
				for j, r := range rs {
					reqs[from+j] = r.ID
				}
			}
		} else {
			for j, id := range ids {
				r, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: privguard.SubjectID(id), Regime: privguard.RegimeGDPR, Identity: operator})
				if err != nil {
					b.Fatal(err)
				}
				reqs[j] = r.ID
			}
		}
		submitted := time.Since(start)
		for {
			ran, err := e.Step(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if ran == 0 {
				break
			}
		}
		elapsed := time.Since(start)
		b.StopTimer()
		for j, id := range reqs {
			if r, _ := e.Get(ctx, id); r.State != dsar.StateCompleted {
				b.Fatalf("request %d: %s", j, r.State)
			}
		}
		for _, j := range []int{0, n / 2, n - 1} {
			if left := s.remaining(b, ids[j]); left != 0 {
				b.Fatalf("%d items of %s left", left, ids[j])
			}
		}
		b.ReportMetric(float64(n)/elapsed.Seconds(), "subjects/s")
		b.ReportMetric(submitted.Seconds()*1000, "submit-ms")
		b.ReportMetric((elapsed-submitted).Seconds()*1000, "step-ms")
		b.StartTimer()
	}
}

// BenchmarkExport10kRows exports one subject who has 10,000 order rows in PostgreSQL and
// 10,000 tag rows in MariaDB.
func BenchmarkExport10kRows(b *testing.B) {
	s := openBenchStores(b)
	ctx := context.Background()
	var ord [][]any
	tags := make([]string, 0, 10_000)
	for i := range 10_000 {
		ord = append(ord, []any{"heavy-1", fmt.Sprintf("%d Nanjing Road", i)})
		tags = append(tags, "heavy-1")
	}
	if _, err := s.pg.CopyFrom(ctx, pgx.Identifier{"bench_orders"}, []string{"customer_id", "address"}, pgx.CopyFromRows(ord)); err != nil {
		b.Fatal(err)
	}
	for chunk := range slices.Chunk(tags, 1000) {
		q := "INSERT INTO bench_tags (uid, tag) VALUES " + strings.TrimSuffix(strings.Repeat("(?,'vip'),", len(chunk)), ",")
		args := make([]any, len(chunk))
		for i, t := range chunk {
			args[i] = t
		}
		if _, err := s.my.ExecContext(ctx, q, args...); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range s.conns[:2] {
		b.Run(c.Name(), func(b *testing.B) {
			for b.Loop() {
				x, err := c.Export(ctx, "heavy-1")
				if err != nil {
					b.Fatal(err)
				}
				if x.Rows() != 10_000 {
					b.Fatalf("%d rows; want 10000", x.Rows())
				}
			}
		})
	}
	// The whole access request on the same data: both exports, sealing the parts, the
	// package (JSON, CSV, manifest, zip), sealing it, and the one download.
	b.Run("access-request", func(b *testing.B) {
		dir := b.TempDir()
		db, err := boltstore.Open(filepath.Join(dir, "p.db"), boltstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		if err := vault.InitLocalKEK(filepath.Join(dir, "kek.json")); err != nil {
			b.Fatal(err)
		}
		kek, err := vault.LoadLocalKEK(filepath.Join(dir, "kek.json"), nil)
		if err != nil {
			b.Fatal(err)
		}
		vlt, err := vault.New(vault.Config{Store: db.Vault(), KEK: kek, TombstoneKey: make([]byte, 32)})
		if err != nil {
			b.Fatal(err)
		}
		e, err := dsar.New(dsar.Config{Store: db.DSAR(), Connectors: s.conns, Sealer: vlt})
		if err != nil {
			b.Fatal(err)
		}
		var size int
		for b.Loop() {
			r, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "heavy-1", Regime: privguard.RegimeGDPR, Identity: &dsar.Identity{Method: "operator"}})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := e.Step(ctx); err != nil {
				b.Fatal(err)
			}
			tok, _, err := e.IssueLink(ctx, r.ID)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := e.Download(ctx, r.ID, tok, func(zip []byte, _ dsar.Result) error { size = len(zip); return nil }); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(size), "zip-bytes")
	})
}
