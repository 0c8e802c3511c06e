package incident_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/privguard/privguard/incident"
)

// BenchmarkRegister measures the register on the bbolt store holding n incidents of 4
// events each: List reads the whole register (every change replays the log too), Apply
// is one change (a replay, its check and a fsynced append).
func BenchmarkRegister(b *testing.B) {
	for _, n := range []int{100, 1000} {
		ctx := context.Background()
		c := &clock{now: t0.Add(time.Hour)}
		store := openBolt(b)
		r := openRegister(b, store, c, nil)
		var last string
		for range n {
			v, err := r.Record(ctx, "dpo", complete())
			if err != nil {
				b.Fatal(err)
			}
			for _, ch := range []incident.Change{{Kind: "assess", Severity: "general", Risk: "none"}, {Kind: "update", Facts: "more"},
				{Kind: "update", Actions: "rotated"}} {
				if _, err := r.Apply(ctx, v.ID, "dpo", ch); err != nil {
					b.Fatal(err)
				}
			}
			last = v.ID
		}
		b.Run(fmt.Sprintf("list/incidents=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				k := 0
				if err := r.List(ctx, incident.Filter{}, func(incident.View) error { k++; return nil }); err != nil || k != n {
					b.Fatal(k, err)
				}
			}
		})
		b.Run(fmt.Sprintf("apply/incidents=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Apply(ctx, last, "dpo", incident.Change{Kind: "update", Facts: "x"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
