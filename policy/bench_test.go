package policy_test

import (
	"strconv"
	"testing"

	"github.com/privguard/privguard/policy"
)

// BenchmarkDecide compares a warm (memoised) decision with a cold one (the prepared OPA
// query evaluated every time), side by side.
func BenchmarkDecide(b *testing.B) {
	b.Run("warm_memo", func(b *testing.B) {
		e := newEngine(b, policy.Config{})
		in := sms()
		if _, err := e.Decide(ctx, in); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.Decide(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cold_prepared_eval", func(b *testing.B) {
		e := newEngine(b, policy.Config{CacheSize: -1})
		in := sms()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.Decide(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("warm_parallel", func(b *testing.B) {
		e := newEngine(b, policy.Config{})
		in := sms()
		e.Decide(ctx, in)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := e.Decide(ctx, in); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	// Many distinct inputs (roles): a memo larger than the working set still hits.
	b.Run("warm_1000_inputs", func(b *testing.B) {
		e := newEngine(b, policy.Config{})
		ins := make([]string, 1000)
		for i := range ins {
			ins[i] = "role-" + strconv.Itoa(i)
		}
		in := sms()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			in.Role = ins[i%len(ins)]
			i++
			if _, err := e.Decide(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	})
}
