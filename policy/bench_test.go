package policy_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/privguard/privguard"
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
	// A use the impact-assessment gate decides: inferred health data for an ad, covered by a
	// current assessment (the gate's rules evaluated in full).
	b.Run("cold_gated", func(b *testing.B) {
		a := policy.Assessment{ID: "pia-ads", Purposes: []privguard.Purpose{"marketing.advertising"}, Conclusion: "approved",
			Categories: []privguard.DataCategory{"user.behavior", "user.derived"},
			Date:       time.Now().AddDate(-1, 0, 0), Review: time.Now().AddDate(1, 0, 0)}
		e := newEngine(b, policy.Config{CacheSize: -1, Assessments: []policy.Assessment{a}})
		in := sms()
		in.Purpose, in.Channel, in.Consent.Sensitive = "marketing.advertising.first_party", "", true
		in.Categories = []privguard.DataCategory{"user.behavior.page_views", "user.derived.inferred_health"}
		if d, err := e.Decide(ctx, in); err != nil || !d.Allowed() || d.Assessment != a.ID {
			b.Fatalf("Decide = %+v, %v; want allowed on %s", d, err, a.ID)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.Decide(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
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
	// Every input distinct (the memo on, always missing): the cost of a cold decision
	// including the memo's bookkeeping.
	b.Run("cold_distinct_inputs", func(b *testing.B) {
		e := newEngine(b, policy.Config{})
		in := sms()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			in.Role = "role-" + strconv.Itoa(i)
			i++
			if _, err := e.Decide(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDecideWorkingSet cycles through more distinct inputs than the memo's first
// size (2 x 16,384): the memo grows to hold them instead of thrashing. Each is warmed up
// with two passes over the working set first; hits/op is the share answered from the memo.
func BenchmarkDecideWorkingSet(b *testing.B) {
	for _, n := range []int{24_000, 40_000} {
		b.Run(strconv.Itoa(n/1000)+"k", func(b *testing.B) {
			e := newEngine(b, policy.Config{})
			roles := make([]string, n)
			for i := range roles {
				roles[i] = "role-" + strconv.Itoa(i)
			}
			in := sms()
			for range 2 {
				for _, r := range roles {
					in.Role = r
					if _, err := e.Decide(ctx, in); err != nil {
						b.Fatal(err)
					}
				}
			}
			before := e.Stats()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				in.Role = roles[i%n]
				i++
				if _, err := e.Decide(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
			after := e.Stats()
			b.ReportMetric(float64(after.MemoHits-before.MemoHits)/float64(i), "hits/op")
		})
	}
}
