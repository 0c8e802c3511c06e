package middleware_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loadTest sends GET profile requests to url from 16 concurrent clients over loopback and
// reports requests/s and p50/p99 latency.
func loadTest(b *testing.B, base string) {
	b.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
	var mu sync.Mutex
	var lat []time.Duration
	var n atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			i := n.Add(1)
			start := time.Now()
			resp, err := client.Get(fmt.Sprintf("%s/api/profiles/c-%d", base, i%1000))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
			local = append(local, time.Since(start))
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "req/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
}

// BenchmarkLoopback compares, over loopback HTTP under load, the bare handler with the
// wrapped one (warm decisions), and a bare httputil.ReverseProxy hop with the sidecar
// (the middleware around the same proxy).
func BenchmarkLoopback(b *testing.B) {
	_, wrap := benchEnv(b, 1000)
	bare := http.HandlerFunc(profileHandler)
	upstream := httptest.NewServer(bare)
	defer upstream.Close()
	u, _ := url.Parse(upstream.URL)
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(u); r.SetXForwarded() },
		Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for _, c := range []struct {
		name string
		h    http.Handler
	}{
		{"handler=bare", bare},
		{"handler=wrapped", wrap(bare)},
		{"proxy=bare", proxy},
		{"proxy=sidecar", wrap(proxy)},
	} {
		b.Run(c.name, func(b *testing.B) {
			srv := httptest.NewServer(c.h)
			defer srv.Close()
			loadTest(b, srv.URL)
		})
	}
}
