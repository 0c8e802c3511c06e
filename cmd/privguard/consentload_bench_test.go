package main

// The consent write load of bench/consentload, against serve running in this process, so
// that it can be profiled:
//
//	go test -run '^$' -bench 'ServeConsent' -benchtime 1x -cpuprofile cpu.out ./cmd/privguard/
//	go tool pprof -top -nodecount 60 cpu.out
//
// The load generator runs in the same process (its frames are internal/consentload and
// net/http's client); the figures to quote come from go run ./bench/consentload, against
// the binary.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/internal/consentload"
)

// startServeInProcess runs runServer with the sidecar in front of a small upstream and
// returns its addresses and admin token.
func startServeInProcess(tb testing.TB) consentload.Target {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/profiles/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"id": r.PathValue("id"), "email": "li.lei@example.com",
			"phone": "13812345678", "history": []string{"sku-1"}, "recommendations": []string{"sku-9"}})
	})
	up := &http.Server{Handler: mux}
	go up.Serve(ln)
	tb.Cleanup(func() { up.Close() })

	dir := tb.TempDir()
	path := filepath.Join(dir, "privguard.yaml")
	os.WriteFile(path, []byte(consentload.Config(ln.Addr().String(), filepath.Join(dir, "data"))), 0o600)
	cfg, err := config.Load(path)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runServer(ctx, cfg, slog.New(slog.DiscardHandler), pw)
		pw.Close()
	}()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Error(err)
		}
	})
	var t consentload.Target
	buf := make([]byte, 4096)
	var out strings.Builder
	for t.Admin == "" || t.Sidecar == "" {
		n, err := pr.Read(buf)
		if err != nil {
			tb.Fatalf("serve stopped: %v", err)
		}
		out.Write(buf[:n])
		for _, l := range strings.Split(out.String(), "\n") {
			if _, rest, ok := strings.Cut(l, "sidecar on "); ok {
				t.Sidecar, _, _ = strings.Cut(rest, " ")
			}
			if _, rest, ok := strings.Cut(l, "admin API on "); ok {
				t.Admin = strings.TrimSpace(rest)
			}
		}
	}
	go io.Copy(io.Discard, pr)
	tok, err := os.ReadFile(filepath.Join(dir, "data", adminTokenFile))
	if err != nil {
		tb.Fatal(err)
	}
	t.Token = strings.TrimSpace(string(tok))
	if err := consentload.Setup(context.Background(), t); err != nil {
		tb.Fatal(err)
	}
	return t
}

func BenchmarkServeConsent(b *testing.B) {
	for _, mode := range []string{"grants", "mixed"} {
		b.Run(mode, func(b *testing.B) {
			t := startServeInProcess(b)
			opts := consentload.Options{Writers: 64, Duration: 5 * time.Second, Warmup: time.Second, Idempotency: true, Prefix: "b-"}
			if mode == "mixed" {
				opts.Readers, opts.Checkers = 24, 24
			}
			b.ResetTimer()
			for range b.N {
				res, err := consentload.Run(context.Background(), t, opts)
				if err != nil {
					b.Fatal(err)
				}
				if res.Grants.Failed+res.Reads.Failed+res.Checks.Failed > 0 {
					b.Fatalf("failures: %s; %s; %s", res.Grants, res.Reads, res.Checks)
				}
				b.ReportMetric(res.Grants.Rate, "grants/s")
				b.ReportMetric(float64(res.Grants.P99)/1e6, "grant-p99-ms")
				if mode == "mixed" {
					b.ReportMetric(res.Reads.Rate, "reads/s")
					b.ReportMetric(res.Checks.Rate, "checks/s")
				}
			}
		})
	}
}

func BenchmarkServeImport(b *testing.B) {
	t := startServeInProcess(b)
	b.ResetTimer()
	for i := range b.N {
		res, err := consentload.Import(context.Background(), t, 200_000, fmt.Sprintf("imp%d-", i))
		if err != nil {
			b.Fatal(err)
		}
		if res.Failed > 0 {
			b.Fatal(res)
		}
		b.ReportMetric(res.Rate(), "grants/s")
	}
}
