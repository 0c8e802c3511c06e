// Package metrics exposes privguard's Prometheus metrics: decisions by effect and reason
// (counted as they are recorded for the decision log), decision-log drops, policy reload
// failures and the consent ledger's size. Metrics are registered on an injected
// prometheus.Registerer; nothing is global.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/middleware"
)

// Recorder counts decisions and passes them on to the next recorder (the decision log).
type Recorder struct {
	next      middleware.Recorder
	decisions *prometheus.CounterVec
}

var _ middleware.BatchRecorder = (*Recorder)(nil)

// NewRecorder registers privguard_decisions_total on reg and returns a Recorder that counts
// into it before calling next (which may be nil).
func NewRecorder(reg prometheus.Registerer, next middleware.Recorder) (*Recorder, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "privguard_decisions_total",
		Help: "Enforcement decisions by route, effect and first reason code.",
	}, []string{"route", "effect", "reason"})
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	return &Recorder{next: next, decisions: c}, nil
}

// Record implements middleware.Recorder.
func (r *Recorder) Record(route string, in *privguard.Input, d *privguard.Decision) {
	reason := ""
	if len(d.Reasons) > 0 {
		reason = string(d.Reasons[0])
	}
	r.decisions.WithLabelValues(route, string(d.Effect), reason).Inc()
	if r.next != nil {
		r.next.Record(route, in, d)
	}
}

// RecordBatch implements middleware.BatchRecorder: one counter update per distinct decision.
func (r *Recorder) RecordBatch(route string, in *privguard.Input, entries []middleware.BatchEntry) {
	var n int
	var last *privguard.Decision
	add := func() {
		if n > 0 {
			reason := ""
			if len(last.Reasons) > 0 {
				reason = string(last.Reasons[0])
			}
			r.decisions.WithLabelValues(route, string(last.Effect), reason).Add(float64(n))
		}
	}
	for _, e := range entries { // entries of one decision share its pointer, mostly in runs
		if e.Decision != last {
			add()
			last, n = e.Decision, 0
		}
		n++
	}
	add()
	if r.next != nil {
		middleware.RecordBatch(r.next, route, in, entries)
	}
}

// Gauge registers a gauge read from f at scrape time.
func Gauge(reg prometheus.Registerer, name, help string, f func() float64) error {
	return reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

// Counter registers a counter read from f at scrape time (f must never decrease).
func Counter(reg prometheus.Registerer, name, help string, f func() float64) error {
	return reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
}
