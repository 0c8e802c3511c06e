package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/privguard/privguard"
)

type sink struct{ n int }

func (s *sink) Record(string, *privguard.Input, *privguard.Decision) { s.n++ }

func TestRecorderCountsAndForwards(t *testing.T) {
	reg := prometheus.NewRegistry()
	next := &sink{}
	r, err := NewRecorder(reg, next)
	if err != nil {
		t.Fatal(err)
	}
	in := &privguard.Input{}
	r.Record("GET /a", in, &privguard.Decision{Effect: privguard.Deny, Reasons: []privguard.Reason{"consent.missing"}})
	r.Record("GET /a", in, &privguard.Decision{Effect: privguard.Deny, Reasons: []privguard.Reason{"consent.missing"}})
	r.Record("GET /a", in, &privguard.Decision{Effect: privguard.Allow, Reasons: []privguard.Reason{"allow"}})
	if got := testutil.ToFloat64(r.decisions.WithLabelValues("GET /a", "deny", "consent.missing")); got != 2 {
		t.Errorf("deny count = %v; want 2", got)
	}
	if next.n != 3 {
		t.Errorf("forwarded %d; want 3", next.n)
	}
	if _, err := NewRecorder(reg, nil); err == nil {
		t.Error("registering twice on one registry did not fail")
	}
}
