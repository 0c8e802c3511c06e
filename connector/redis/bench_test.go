package redis_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/privguard/privguard/connector/redis"
)

// BenchmarkEraseWith200Segments erases one subject who is in 200 segment sets (a real
// marketing stack has hundreds), the sets found by pattern among 10,000 other keys.
func BenchmarkEraseWith200Segments(b *testing.B) {
	addr := os.Getenv("PRIVGUARD_TEST_REDIS_ADDR")
	if addr == "" {
		b.Skip("PRIVGUARD_TEST_REDIS_ADDR is not set (see .ci/run)")
	}
	ctx := context.Background()
	rd := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rd.Close()
	var keys []string
	pipe := rd.Pipeline()
	for i := range 10_000 {
		keys = append(keys, fmt.Sprintf("bench200:other:%d", i))
		pipe.Set(ctx, keys[len(keys)-1], "x", 0)
	}
	for i := range 200 {
		keys = append(keys, fmt.Sprintf("bench200:seg:%d", i))
		pipe.SAdd(ctx, keys[len(keys)-1], "someone-else")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() {
		p := rd.Pipeline()
		for _, k := range keys {
			p.Del(context.Background(), k)
		}
		p.Exec(context.Background())
	}()
	c, err := redis.New(redis.Config{Name: "cache", Addr: addr, SetMembers: []string{"bench200:seg:*"}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		p := rd.Pipeline()
		for i := range 200 {
			p.SAdd(ctx, fmt.Sprintf("bench200:seg:%d", i), "cust-1")
		}
		p.Exec(ctx)
		b.StartTimer()
		n, err := c.Erase(ctx, "cust-1")
		if err != nil || n.Items != 200 {
			b.Fatalf("erase: %+v %v", n, err)
		}
	}
}
