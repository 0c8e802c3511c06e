// Command hop is the baseline the sidecar benchmark (bench/sidecar.sh) measures privguard
// against: a bare httputil.ReverseProxy hop, or, with -opa, the same hop asking an OPA
// server (`opa run --server`) for a decision on every request before proxying it — the
// setup many teams run instead of an in-process policy.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/privguard/privguard"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18080", "address to serve on")
	upstreamURL := flag.String("upstream", "http://127.0.0.1:19000", "the upstream to proxy to")
	opa := flag.String("opa", "", "an OPA server's decision URL, e.g. http://127.0.0.1:8181/v1/data/privguard/decision; empty: no decision")
	flag.Parse()
	upstream, err := url.Parse(*upstreamURL)
	if err != nil {
		log.Fatal(err)
	}
	// The transport privguard's sidecar uses by default (config.Transport), so that the
	// comparison is of the hop's work, not of connection reuse.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns, transport.MaxIdleConnsPerHost = 0, 256
	proxy := &httputil.ReverseProxy{Transport: transport, Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(upstream)
		r.SetXForwarded()
	}}
	var h http.Handler = proxy
	if *opa != "" {
		h = askOPA(*opa, transport, proxy)
	}
	h = withMallocs(h)
	srv := &http.Server{Addr: *listen, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintln(os.Stderr, "hop listening on", ln.Addr())
	log.Fatal(srv.Serve(ln))
}

// withMallocs answers GET /__hop/mallocs with the process's heap allocations so far, so that
// a harness can compare allocations per request with privguard's (go_memstats_mallocs_total).
func withMallocs(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/__hop/mallocs" {
			next.ServeHTTP(w, r)
			return
		}
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		fmt.Fprintln(w, m.Mallocs)
	})
}

// askOPA asks the OPA server for the decision privguard's default policy makes for a
// profile read (the subject from the last path segment, consent given), then proxies the
// request if allowed.
func askOPA(decisionURL string, transport http.RoundTripper, next http.Handler) http.Handler {
	client := &http.Client{Transport: transport, Timeout: 5 * time.Second}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in := privguard.Input{
			Subject: privguard.SubjectID(r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]),
			Purpose: "personalize.recommendation", Regime: privguard.RegimePIPL,
			Categories: []privguard.DataCategory{"user.contact.email", "user.contact.phone_number", "user.behavior.browsing_history"},
			Consent:    privguard.ConsentFacts{State: "given", Allowed: true, Reason: privguard.ReasonConsentGiven},
			Facts:      privguard.SubjectFacts{AgeBand: "18+"},
		}
		body, _ := json.Marshal(map[string]any{"input": in})
		resp, err := client.Post(decisionURL, "application/json", bytes.NewReader(body))
		if err != nil {
			http.Error(w, "policy unavailable", http.StatusServiceUnavailable)
			return
		}
		var out struct {
			Result struct {
				Allow bool `json:"allow"`
			} `json:"result"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || !out.Result.Allow {
			http.Error(w, "denied", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}
