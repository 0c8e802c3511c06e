package main

import (
	"context"
	"database/sql"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/connector/mysql"
	"github.com/privguard/privguard/connector/postgres"
	"github.com/privguard/privguard/connector/redis"
	"github.com/privguard/privguard/dsar"
)

// Proxy modes.
const (
	proxyUp   = "up"
	proxyCut  = "cut"  // connections closed, new ones refused: the store went away
	proxyHang = "hang" // connections stay open, nothing comes back: the store stopped answering
)

// outageProxy is a TCP proxy in front of a store that can cut or silence it.
type outageProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	mode   string
	conns  []net.Conn
}

func newOutageProxy(t *testing.T, target string) *outageProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &outageProxy{ln: ln, target: target, mode: proxyUp}
	t.Cleanup(func() { ln.Close(); p.set(proxyCut) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			switch p.mode {
			case proxyCut:
				c.Close()
			case proxyHang:
				p.conns = append(p.conns, c)
				go p.pipe(nil, c) // read and drop
			default:
				s, err := net.Dial("tcp", target)
				if err != nil {
					c.Close()
					break
				}
				p.conns = append(p.conns, c, s)
				go p.pipe(s, c)
				go p.pipe(c, s)
			}
			p.mu.Unlock()
		}
	}()
	return p
}

// pipe copies src to dst while the proxy is up, and drops the bytes while it hangs.
func (p *outageProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		up := p.mode == proxyUp
		p.mu.Unlock()
		if n > 0 && up && dst != nil {
			dst.Write(buf[:n])
		}
		if err != nil {
			if dst != nil {
				dst.Close()
			}
			return
		}
	}
}

func (p *outageProxy) set(mode string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Going silent keeps the connections (requests vanish); anything else drops them (a
	// silenced connection is out of step with its protocol once it comes back).
	if mode != proxyHang {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
	p.mode = mode
}

// outageStores are one subject's data in PostgreSQL, MariaDB and Redis, one of them
// behind an outage proxy.
type outageStores struct {
	pg    *pgx.Conn
	my    *sql.DB
	rd    *goredis.Client
	conns []dsar.Connector
	proxy *outageProxy
}

func newOutageStores(t *testing.T, behind string) *outageStores {
	t.Helper()
	env := needServices(t, "POSTGRES_DSN", "MYSQL_DSN", "REDIS_ADDR")
	pgDSN, myDSN, rdAddr := env[0], env[1], env[2]
	ctx := context.Background()
	s := &outageStores{}
	var err error
	if s.pg, err = pgx.Connect(ctx, pgDSN); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.pg.Close(context.Background()) })
	for _, q := range []string{`DROP TABLE IF EXISTS outage_customers`, `CREATE TABLE outage_customers (customer_id text, email text)`,
		`INSERT INTO outage_customers VALUES ('out-1','a@example.com'), ('out-1','b@example.com'), ('out-2','c@example.com')`} {
		if _, err := s.pg.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { s.pg.Exec(context.Background(), `DROP TABLE IF EXISTS outage_customers`) })
	if s.my, err = sql.Open("mysql", myDSN); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.my.Exec(`DROP TABLE IF EXISTS outage_tags`); s.my.Close() })
	for _, q := range []string{`DROP TABLE IF EXISTS outage_tags`, `CREATE TABLE outage_tags (uid VARCHAR(64), tag VARCHAR(64)) COLLATE utf8mb4_bin`,
		`INSERT INTO outage_tags VALUES ('out-1','vip'), ('out-2','new')`} {
		if _, err := s.my.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	s.rd = goredis.NewClient(&goredis.Options{Addr: rdAddr})
	t.Cleanup(func() { s.rd.Del(context.Background(), "outage:profile:out-1", "outage:profile:out-2"); s.rd.Close() })
	s.rd.HSet(ctx, "outage:profile:out-1", "city", "Shanghai")
	s.rd.HSet(ctx, "outage:profile:out-2", "city", "Beijing")

	via := func(addr string) string {
		if s.proxy != nil {
			t.Fatal("one store behind the proxy")
		}
		s.proxy = newOutageProxy(t, addr)
		return s.proxy.ln.Addr().String()
	}
	if behind == "postgres" {
		u, _ := url.Parse(pgDSN)
		u.Host = via(u.Host)
		q := u.Query()
		q.Set("connect_timeout", "2")
		u.RawQuery = q.Encode()
		pgDSN = u.String()
	}
	if behind == "mysql" {
		cfg, err := gomysql.ParseDSN(myDSN)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Addr, cfg.Timeout = via(cfg.Addr), 2*time.Second
		myDSN = cfg.FormatDSN()
	}
	if behind == "redis" {
		rdAddr = via(rdAddr)
	}
	crm, err := postgres.New(ctx, postgres.Config{Name: "crm", DSN: pgDSN, Tables: []postgres.Table{
		{Table: "outage_customers", SubjectColumn: "customer_id", Columns: map[string]privguard.DataCategory{"email": "user.contact.email"}, Erase: dsar.EraseDelete}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(crm.Close)
	tags, err := mysql.New(ctx, mysql.Config{Name: "tags", DSN: myDSN, Tables: []mysql.Table{
		{Table: "outage_tags", SubjectColumn: "uid", Columns: map[string]privguard.DataCategory{"tag": "user.derived.tags"}, Erase: dsar.EraseDelete}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tags.Close() })
	cache, err := redis.New(redis.Config{Name: "cache", Addr: rdAddr, Keys: []string{"outage:profile:{subject}"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	s.conns = []dsar.Connector{crm, tags, cache}
	// Warm the pools through the proxy, so that a cut or a hang meets live connections.
	for _, c := range s.conns {
		if _, err := c.Export(ctx, "out-2"); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// remaining counts the subject's data in each store, asked directly (not through privguard).
func (s *outageStores) remaining(t *testing.T, subject string) map[string]int {
	t.Helper()
	ctx := context.Background()
	out := map[string]int{}
	var n int
	if err := s.pg.QueryRow(ctx, `SELECT count(*) FROM outage_customers WHERE customer_id = $1`, subject).Scan(&n); err != nil {
		t.Fatal(err)
	}
	out["crm"] = n
	if err := s.my.QueryRow(`SELECT count(*) FROM outage_tags WHERE uid = ?`, subject).Scan(&n); err != nil {
		t.Fatal(err)
	}
	out["tags"] = n
	k, err := s.rd.Exists(ctx, "outage:profile:"+subject).Result()
	if err != nil {
		t.Fatal(err)
	}
	out["cache"] = int(k)
	return out
}

// TestStoreOutageMidRequest takes each store away while a deletion runs, in both ways a
// store fails (connections cut; connections open but silent): the request shows
// partially_failed naming the store, is never completed while its data remains (checked
// in the stores directly), and completes once the store is back.
func TestStoreOutageMidRequest(t *testing.T) {
	// Completed only when every store confirmed; a failing store is retried.
	for _, store := range []string{"postgres", "mysql", "redis"} {
		for _, mode := range []string{proxyCut, proxyHang} {
			t.Run(store+"/"+mode, func(t *testing.T) { outageCase(t, store, mode) })
		}
	}
}

func outageCase(t *testing.T, store, mode string) {
	name := map[string]string{"postgres": "crm", "mysql": "tags", "redis": "cache"}[store]
	s := newOutageStores(t, store)
	ctx := context.Background()
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "p.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	e, err := dsar.New(dsar.Config{Store: db.DSAR(), Connectors: s.conns, Now: func() time.Time { return now },
		BaseBackoff: time.Minute, MaxBackoff: time.Hour, TaskTimeout: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.proxy.set(mode)
	r, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "out-1", Regime: privguard.RegimeGDPR,
		Identity: &dsar.Identity{Method: "operator"}})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		start := time.Now()
		e.Step(ctx)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("a step took %v with the store %s: the task deadline did not hold", d, mode)
		}
		now = now.Add(2 * time.Hour)
		if r, _ = e.Get(ctx, r.ID); r.State == dsar.StateCompleted {
			t.Fatalf("completed while %s was away", store)
		}
	}
	if r.State != dsar.StatePartiallyFailed {
		t.Fatalf("state %s; want partially_failed", r.State)
	}
	for _, tk := range r.Tasks {
		switch {
		case tk.Store == name && (tk.State != dsar.TaskFailed || tk.Attempts < 2 || !strings.Contains(tk.LastError, name)):
			t.Errorf("%s task %+v; want failed, retried, naming the store", name, tk)
		case tk.Store != name && tk.State != dsar.TaskDone:
			t.Errorf("%s task %+v; want done (it was up)", tk.Store, tk)
		case strings.Contains(tk.LastError, "out-1"):
			t.Errorf("the error names the subject: %q", tk.LastError)
		}
		// The kind says how it failed: silence runs into the task deadline; a cut
		// connection is lost (or, once the pool redials, refused).
		if tk.Store == name && ((mode == proxyHang && tk.ErrorKind != dsar.KindTimeout) ||
			(mode == proxyCut && tk.ErrorKind != dsar.KindConnectionLost && tk.ErrorKind != dsar.KindConnectionRefused)) {
			t.Errorf("%s task kind %q after the store was %s", name, tk.ErrorKind, mode)
		}
	}
	if left := s.remaining(t, "out-1"); left[name] == 0 {
		t.Fatalf("%s's data is gone while it was away: %v", name, left)
	}

	s.proxy.set(proxyUp)
	if _, err := e.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if r, _ = e.Get(ctx, r.ID); r.State != dsar.StateCompleted {
		t.Fatalf("after the store came back: %s %+v", r.State, r.Tasks)
	}
	for st, n := range s.remaining(t, "out-1") {
		if n != 0 {
			t.Errorf("completed with %d items of out-1 left in %s", n, st)
		}
	}
	for st, n := range s.remaining(t, "out-2") {
		if n == 0 {
			t.Errorf("another subject's data was erased in %s", st)
		}
	}
}
