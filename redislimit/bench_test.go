package redislimit_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/middleware"
	"github.com/privguard/privguard/redislimit"
)

func benchCounter(b *testing.B) *redislimit.Counter {
	addr := redisAddr(b)
	return counter(b, redislimit.Config{Addr: addr, KeyPrefix: prefix(b, addr), Windows: map[string]time.Duration{"sms": time.Minute}})
}

func subjects(n int) []privguard.SubjectID {
	ids := make([]privguard.SubjectID, n)
	for i := range ids {
		ids[i] = privguard.SubjectID(fmt.Sprintf("c-%d", i))
	}
	return ids
}

// BenchmarkReserve: one reservation, one round trip (sequential: the latency).
func BenchmarkReserve(b *testing.B) {
	c := benchCounter(b)
	ids := subjects(1000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, _, err := c.Reserve(ctx, ids[i%len(ids)], "sms", 1<<20); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkReserveParallel: reservations from many goroutines (the throughput of one
// replica's pool).
func BenchmarkReserveParallel(b *testing.B) {
	c := benchCounter(b)
	ids := subjects(1000)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, _, err := c.Reserve(ctx, ids[i%len(ids)], "sms", 1<<20); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkReserveBatch1000: a campaign of 1,000 recipients in one pipeline.
func BenchmarkReserveBatch1000(b *testing.B) {
	c := benchCounter(b)
	ids := subjects(1000)
	rs := make([]middleware.Reservation, len(ids))
	b.ReportAllocs()
	for b.Loop() {
		for i, s := range ids {
			rs[i] = middleware.Reservation{Subject: s, Limit: 1 << 20}
		}
		if err := c.ReserveBatch(ctx, "sms", rs); err != nil {
			b.Fatal(err)
		}
	}
}
