package redislimit_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/middleware"
	"github.com/privguard/privguard/redislimit"
)

var ctx = context.Background()

// redisAddr returns the test server's address, or skips.
func redisAddr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("PRIVGUARD_TEST_REDIS_ADDR")
	if addr == "" {
		t.Skip("PRIVGUARD_TEST_REDIS_ADDR is not set (e.g. 127.0.0.1:6379; /work/shared/services.sh starts one): the Redis counter is not tested")
	}
	return addr
}

// prefix returns a key prefix of the test's own, whose keys are deleted at the end.
func prefix(t testing.TB, addr string) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	p := "pgtest:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		rdb := goredis.NewClient(&goredis.Options{Addr: addr})
		defer rdb.Close()
		for _, k := range keys(t, rdb, p) {
			rdb.Del(context.Background(), k)
		}
	})
	return p
}

func keys(t testing.TB, rdb *goredis.Client, prefix string) []string {
	t.Helper()
	var out []string
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		out = append(out, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var testKey = []byte("0123456789abcdef0123456789abcdef")

// counter returns a counter with its own Redis client (as a replica has).
func counter(t testing.TB, cfg redislimit.Config) *redislimit.Counter {
	t.Helper()
	if cfg.Key == nil {
		cfg.Key = testKey
	}
	c, err := redislimit.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestLimitHoldsAcrossReplicas(t *testing.T) {
	addr := redisAddr(t)
	p := prefix(t, addr)
	windows := map[string]time.Duration{"sms": time.Hour}
	var replicas [3]*redislimit.Counter
	for i := range replicas {
		replicas[i] = counter(t, redislimit.Config{Addr: addr, KeyPrefix: p, Windows: windows})
	}
	const sends, limit = 200, 2
	var granted, refused atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, sends)
	for i := range sends {
		wg.Go(func() {
			<-start
			ok, n, err := replicas[i%3].Reserve(ctx, "cust-1", "sms", limit)
			switch {
			case err != nil:
				errs <- err
			case ok && n >= limit:
				errs <- fmt.Errorf("granted at count %d", n)
			case ok:
				granted.Add(1)
			case n < limit:
				errs <- fmt.Errorf("refused at count %d, below the limit", n)
			default:
				refused.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if g, r := granted.Load(), refused.Load(); g != limit || r != sends-limit {
		t.Errorf("%d of %d concurrent reservations over 3 replicas granted, %d refused; want exactly %d granted", g, sends, r, limit)
	}
}

func TestWindowSlides(t *testing.T) {
	addr := redisAddr(t)
	c := counter(t, redislimit.Config{Addr: addr, KeyPrefix: prefix(t, addr), Windows: map[string]time.Duration{"sms": 400 * time.Millisecond}})
	reserve := func(want bool, wantCount int) {
		t.Helper()
		ok, n, err := c.Reserve(ctx, "cust-1", "sms", 2)
		if err != nil || ok != want || n != wantCount {
			t.Fatalf("Reserve = %v, %d, %v; want %v, %d", ok, n, err, want, wantCount)
		}
	}
	reserve(true, 0)
	time.Sleep(200 * time.Millisecond)
	reserve(true, 1)
	reserve(false, 2)
	time.Sleep(250 * time.Millisecond) // the first contact is out of the window, the second not
	reserve(true, 1)
	reserve(false, 2)
	if n := c.Contacts("cust-1", "sms"); n != 2 {
		t.Errorf("Contacts = %d; want 2", n)
	}
	time.Sleep(450 * time.Millisecond)
	if n := c.Contacts("cust-1", "sms"); n != 0 {
		t.Errorf("Contacts after the window = %d; want 0", n)
	}
}

func TestKeyExpiresWithTheWindow(t *testing.T) {
	addr := redisAddr(t)
	p := prefix(t, addr)
	c := counter(t, redislimit.Config{Addr: addr, KeyPrefix: p, Windows: map[string]time.Duration{"sms": time.Hour}})
	if _, _, err := c.Reserve(ctx, "cust-1", "sms", 2); err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	ks := keys(t, rdb, p+"sms:")
	if len(ks) != 1 {
		t.Fatalf("keys = %v; want one", ks)
	}
	if ttl := rdb.PTTL(ctx, ks[0]).Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("TTL = %s; want the window (1h)", ttl)
	}
}

func TestReserveBatch(t *testing.T) {
	addr := redisAddr(t)
	c := counter(t, redislimit.Config{Addr: addr, KeyPrefix: prefix(t, addr), Windows: map[string]time.Duration{"sms": time.Hour}})
	batch := func() []middleware.Reservation {
		rs := make([]middleware.Reservation, 100)
		for i := range rs {
			rs[i] = middleware.Reservation{Subject: privguard.SubjectID(fmt.Sprintf("b-%d", i)), Limit: 1}
		}
		rs[99].Limit = -1 // no limit: counted only
		return rs
	}
	for round, want := range []bool{true, false} {
		rs := batch()
		if err := c.ReserveBatch(ctx, "sms", rs); err != nil {
			t.Fatal(err)
		}
		for i, r := range rs[:99] {
			if r.Granted != want || r.Count != round {
				t.Errorf("round %d: rs[%d] = %+v; want granted %v at count %d", round, i, r, want, round)
			}
		}
		if r := rs[99]; !r.Granted || r.Count != round {
			t.Errorf("round %d: unlimited entry = %+v; want granted at count %d", round, r, round)
		}
	}
	// The script cache flushed (a Redis restart): the batch loads it again.
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	rs := []middleware.Reservation{{Subject: "new-1", Limit: 1}, {Subject: "b-1", Limit: 1}}
	if err := c.ReserveBatch(ctx, "sms", rs); err != nil || !rs[0].Granted || rs[1].Granted {
		t.Errorf("after SCRIPT FLUSH: %+v, %v; want new-1 granted, b-1 refused", rs, err)
	}
	// A channel without a window is not counted.
	rs = []middleware.Reservation{{Subject: "b-1", Limit: 0}}
	if err := c.ReserveBatch(ctx, "fax", rs); err != nil || !rs[0].Granted {
		t.Errorf("uncounted channel: %+v, %v; want granted", rs, err)
	}
}

func TestKeysHoldNoSubjectID(t *testing.T) {
	addr := redisAddr(t)
	p := prefix(t, addr)
	c := counter(t, redislimit.Config{Addr: addr, KeyPrefix: p, Windows: map[string]time.Duration{"sms": time.Hour, "email": time.Hour}})
	subjects := []privguard.SubjectID{"cust-4711", "li.lei@example.com", "13812345678"}
	for _, s := range subjects {
		if _, _, err := c.Reserve(ctx, s, "sms", 5); err != nil {
			t.Fatal(err)
		}
	}
	rs := []middleware.Reservation{{Subject: subjects[0], Limit: 5}}
	if err := c.ReserveBatch(ctx, "email", rs); err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	ks := keys(t, rdb, p)
	if len(ks) != 4 {
		t.Fatalf("keys = %v; want 4", ks)
	}
	for _, k := range ks {
		for _, s := range subjects {
			if strings.Contains(k, string(s)) || strings.Contains(k, "4711") {
				t.Errorf("key %q holds the subject id %q", k, s)
			}
			for _, m := range rdb.ZRange(ctx, k, 0, -1).Val() {
				if strings.Contains(m, string(s)) {
					t.Errorf("member %q of %q holds the subject id", m, k)
				}
			}
		}
		rest, ok := strings.CutPrefix(k, p)
		ch, hash, _ := strings.Cut(rest, ":")
		if _, err := hex.DecodeString(hash); !ok || (ch != "sms" && ch != "email") || len(hash) != 32 || err != nil {
			t.Errorf("key %q; want prefix, channel, then 32 hex digits of a keyed hash", k)
		}
	}
	// Another HMAC key names other keys for the same subject.
	other := counter(t, redislimit.Config{Addr: addr, KeyPrefix: p, Windows: map[string]time.Duration{"sms": time.Hour}, Key: []byte(strings.Repeat("k", 32))})
	if _, n, err := other.Reserve(ctx, subjects[0], "sms", 5); err != nil || n != 0 {
		t.Errorf("under another key: count %d, %v; want 0 (a different key name)", n, err)
	}
}

func TestCheckKey(t *testing.T) {
	addr := redisAddr(t)
	p := prefix(t, addr)
	a := counter(t, redislimit.Config{Addr: addr, KeyPrefix: p})
	b := counter(t, redislimit.Config{Addr: addr, KeyPrefix: p})
	for _, c := range []*redislimit.Counter{a, b} {
		if err := c.CheckKey(ctx); err != nil {
			t.Errorf("CheckKey (same key) = %v", err)
		}
	}
	other := counter(t, redislimit.Config{Addr: addr, KeyPrefix: p, Key: []byte(strings.Repeat("k", 32))})
	if err := other.CheckKey(ctx); !errors.Is(err, redislimit.ErrKeyMismatch) {
		t.Errorf("CheckKey (another key) = %v; want ErrKeyMismatch", err)
	}
}

// closedAddr returns an address nothing listens on.
func closedAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// silentAddr returns an address that accepts connections and never answers (a Redis that
// hangs).
func silentAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func TestUnreachableFailsWithinTheTimeout(t *testing.T) {
	const timeout = 150 * time.Millisecond
	for _, tc := range []struct{ name, addr string }{
		{"closed_port", closedAddr(t)},
		{"server_that_never_answers", silentAddr(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := counter(t, redislimit.Config{Addr: tc.addr, Windows: map[string]time.Duration{"sms": time.Hour}, Timeout: timeout})
			start := time.Now()
			_, _, err := c.Reserve(ctx, "cust-1", "sms", 2)
			if !errors.Is(err, privguard.ErrUnavailable) {
				t.Errorf("Reserve = %v; want ErrUnavailable", err)
			}
			err = c.ReserveBatch(ctx, "sms", []middleware.Reservation{{Subject: "a", Limit: 1}, {Subject: "b", Limit: 1}})
			if !errors.Is(err, privguard.ErrUnavailable) {
				t.Errorf("ReserveBatch = %v; want ErrUnavailable", err)
			}
			if n := c.Contacts("cust-1", "sms"); n < 1000 {
				t.Errorf("Contacts = %d; want a count past every limit (fail closed)", n)
			}
			if d := time.Since(start); d > 6*timeout {
				t.Errorf("three calls took %s; want each within the timeout (%s) or so", d, timeout)
			}
			if err := c.CheckKey(ctx); !errors.Is(err, privguard.ErrUnavailable) {
				t.Errorf("CheckKey = %v; want ErrUnavailable", err)
			}
		})
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  redislimit.Config
		want string
	}{
		{"no_addr", redislimit.Config{Key: testKey}, "Addr"},
		{"short_key", redislimit.Config{Addr: "x:1", Key: []byte("short")}, "Key"},
		{"negative_timeout", redislimit.Config{Addr: "x:1", Key: testKey, Timeout: -1}, "Timeout"},
		{"zero_window", redislimit.Config{Addr: "x:1", Key: testKey, Windows: map[string]time.Duration{"sms": 0}}, "Windows[sms]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := redislimit.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v; want an error naming %s", err, tc.want)
			}
		})
	}
}
