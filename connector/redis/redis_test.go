package redis_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/connector/redis"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/dsar/dsartest"
)

type seeder struct{ r *goredis.Client }

func (s seeder) Seed(ctx context.Context, subject privguard.SubjectID, n int, value string) error {
	if err := s.r.HSet(ctx, "rtest:profile:"+string(subject), "email", value+"@example.com").Err(); err != nil {
		return err
	}
	for i := 1; i < n; i++ {
		if err := s.r.SAdd(ctx, fmt.Sprintf("rtest:segment:%d", i), string(subject)).Err(); err != nil {
			return err
		}
	}
	return s.r.RPush(ctx, "rtest:events:"+string(subject), value+"-viewed").Err()
}

func (s seeder) Remaining(ctx context.Context, subject privguard.SubjectID) (int, error) {
	n, err := s.r.Exists(ctx, "rtest:profile:"+string(subject), "rtest:events:"+string(subject)).Result()
	if err != nil {
		return 0, err
	}
	keys, err := s.r.Keys(ctx, "rtest:segment:*").Result()
	for _, k := range keys {
		if in, _ := s.r.SIsMember(ctx, k, string(subject)).Result(); in {
			n++
		}
	}
	return int(n), err
}

func TestConformance(t *testing.T) {
	addr := os.Getenv("PRIVGUARD_TEST_REDIS_ADDR")
	if addr == "" {
		t.Skip("PRIVGUARD_TEST_REDIS_ADDR is not set (CI sets it; see .ci/run)")
	}
	ctx := context.Background()
	r := goredis.NewClient(&goredis.Options{Addr: addr})
	defer r.Close()
	clean := func() {
		keys, _ := r.Keys(ctx, "rtest:*").Result()
		if len(keys) > 0 {
			r.Del(ctx, keys...)
		}
	}
	clean()
	t.Cleanup(clean)
	c, err := redis.New(redis.Config{Name: "cache", Addr: addr,
		Keys: []string{"rtest:profile:{subject}", "rtest:events:{subject}"}, SetMembers: []string{"rtest:segment:*"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// proves PUR-05 (segments are exported and erased) and SEC-06-adjacent cache erasure.
	dsartest.TestConnector(t, c, seeder{r})
	if _, err := redis.New(redis.Config{Name: "x", Keys: []string{"profile"}}); err == nil {
		t.Error("a key template without {subject} was accepted")
	}
}

// TestFailureHasAKind: a server that is not there is named as such.
func TestFailureHasAKind(t *testing.T) {
	c, err := redis.New(redis.Config{Name: "cache", Addr: "127.0.0.1:1", Keys: []string{"rtest:profile:{subject}"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Erase(context.Background(), "kind-1")
	if k := dsar.KindOf(err); k != dsar.KindConnectionRefused {
		t.Errorf("Erase: %v (kind %q); want connection_refused", err, k)
	}
}

// TestLiteralSetNames: set names without glob characters are used as they are (no SCAN);
// one that is missing or holds another type lists nobody.
func TestLiteralSetNames(t *testing.T) {
	addr := os.Getenv("PRIVGUARD_TEST_REDIS_ADDR")
	if addr == "" {
		t.Skip("PRIVGUARD_TEST_REDIS_ADDR is not set (CI sets it; see .ci/run)")
	}
	ctx := context.Background()
	r := goredis.NewClient(&goredis.Options{Addr: addr})
	defer r.Close()
	keys := []string{"rlit:vip", "rlit:str", "rlit:gone", "rlit:vip2"}
	r.Del(ctx, keys...)
	t.Cleanup(func() { r.Del(context.Background(), keys...) })
	r.SAdd(ctx, "rlit:vip", "lit-1", "lit-2")
	r.SAdd(ctx, "rlit:vip2", "lit-1")
	r.Set(ctx, "rlit:str", "lit-1", 0)
	c, err := redis.New(redis.Config{Name: "cache", Addr: addr, SetMembers: []string{"rlit:vip", "rlit:str", "rlit:gone", "rlit:vip2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if e, err := c.Export(ctx, "lit-1"); err != nil || e.Rows() != 2 {
		t.Errorf("Export = %v, %v; want the two sets", e.Tables, err)
	}
	if n, err := c.Erase(ctx, "lit-1"); err != nil || n.Items != 2 {
		t.Errorf("Erase = %+v, %v; want 2 memberships", n, err)
	}
	if in, _ := r.SIsMember(ctx, "rlit:vip", "lit-2").Result(); !in {
		t.Error("Erase(lit-1) removed lit-2")
	}
	if v, _ := r.Get(ctx, "rlit:str").Result(); v != "lit-1" {
		t.Errorf("a string key named like a set was changed: %q", v)
	}
}
