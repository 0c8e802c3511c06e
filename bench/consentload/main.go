// Command consentload measures consent writes through the real `privguard serve` binary:
// durable grants per second and their p50/p99 latency with N clients over loopback, the same
// under mixed load (writers plus readers of a subject's consent state plus checks through
// the sidecar), and a bulk import through POST /v1/consents/import.
//
// It builds ./cmd/privguard (or runs -bin), starts it on a fresh data directory with the
// sidecar, its decision log and the metrics on (in front of a small upstream it serves
// itself), registers a notice, seeds 1,000 subjects, and runs each mode for -rounds rounds,
// each on a fresh server, printing every round and the medians.
//
//	go run ./bench/consentload                                 # grants, 64 clients, 3 rounds
//	go run ./bench/consentload -mode mixed                     # 64 writers + 24 readers + 24 checkers
//	go run ./bench/consentload -mode import -items 1000000     # one NDJSON import of 1M grants
//	go run ./bench/consentload -mode grants,mixed,import -bin /tmp/privguard-old
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/privguard/privguard/internal/consentload"
)

func main() {
	var (
		bin         = flag.String("bin", "", "privguard `binary` to measure (default: build ./cmd/privguard)")
		modes       = flag.String("mode", "grants", "comma-separated `modes`: grants, mixed, import")
		clients     = flag.Int("clients", 64, "concurrent grant writers")
		readers     = flag.Int("readers", 24, "mixed mode: clients reading consent state")
		checkers    = flag.Int("checkers", 24, "mixed mode: clients calling a route the sidecar enforces")
		duration    = flag.Duration("duration", 10*time.Second, "measured time per round")
		warmup      = flag.Duration("warmup", 2*time.Second, "unmeasured time before each round")
		rounds      = flag.Int("rounds", 3, "rounds per mode, each on a fresh server")
		items       = flag.Int("items", 1_000_000, "import mode: items in the one import")
		idempotency = flag.Bool("idempotency-key", true, "send an Idempotency-Key with every grant (as the README does)")
		keep        = flag.Bool("keep", false, "keep the data directories (printed) for inspection")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *bin, strings.Split(*modes, ","), *rounds, *items, *keep, consentload.Options{
		Writers: *clients, Readers: *readers, Checkers: *checkers, Duration: *duration, Warmup: *warmup, Idempotency: *idempotency,
	}); err != nil {
		fmt.Fprintln(os.Stderr, "consentload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bin string, modes []string, rounds, items int, keep bool, opts consentload.Options) error {
	work, err := os.MkdirTemp("", "consentload-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Println("data under", work)
	} else {
		defer os.RemoveAll(work)
	}
	if bin == "" {
		bin = filepath.Join(work, "privguard")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/privguard")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/privguard (run from the repository root, or pass -bin): %w", err)
		}
	}
	upstream, err := startUpstream()
	if err != nil {
		return err
	}
	defer upstream.Close()
	fmt.Printf("cpus %d, writers %d, duration %s, idempotency keys %v\n", numCPU(), opts.Writers, opts.Duration, opts.Idempotency)
	for _, mode := range modes {
		var lines []string
		var rates, p50s, p99s []float64
		for r := range rounds {
			dir := filepath.Join(work, fmt.Sprintf("%s-%d", mode, r))
			srv, err := startServe(ctx, bin, dir, "http://"+upstream.Addr().String())
			if err != nil {
				return err
			}
			line, rate, p50, p99, err := measure(ctx, mode, srv.target, opts, items)
			srv.stop()
			if err != nil {
				return fmt.Errorf("%s round %d: %w (serve log: %s)", mode, r+1, err, filepath.Join(dir, "serve.log"))
			}
			fmt.Printf("%s round %d: %s\n", mode, r+1, line)
			lines = append(lines, line)
			rates, p50s, p99s = append(rates, rate), append(p50s, p50), append(p99s, p99)
			if !keep {
				os.RemoveAll(dir)
			}
		}
		fmt.Printf("== %s median of %d: %.0f grants/s, p50 %.2f ms, p99 %.2f ms\n", mode, rounds, median(rates), median(p50s), median(p99s))
	}
	return nil
}

func measure(ctx context.Context, mode string, t consentload.Target, opts consentload.Options, items int) (string, float64, float64, float64, error) {
	opts.Prefix = fmt.Sprintf("%s-%d-", mode, time.Now().UnixNano())
	switch mode {
	case "grants":
		opts.Readers, opts.Checkers = 0, 0
		res, err := consentload.Run(ctx, t, opts)
		if err != nil {
			return "", 0, 0, 0, err
		}
		if res.Grants.Failed > 0 {
			return "", 0, 0, 0, fmt.Errorf("grants failed: %s", res.Grants)
		}
		return "grants " + res.Grants.String(), res.Grants.Rate, msf(res.Grants.P50), msf(res.Grants.P99), nil
	case "mixed":
		res, err := consentload.Run(ctx, t, opts)
		if err != nil {
			return "", 0, 0, 0, err
		}
		if res.Grants.Failed+res.Reads.Failed+res.Checks.Failed > 0 {
			return "", 0, 0, 0, fmt.Errorf("requests failed: grants %s; reads %s; checks %s", res.Grants, res.Reads, res.Checks)
		}
		return fmt.Sprintf("grants %s; reads %s; checks %s", res.Grants, res.Reads, res.Checks),
			res.Grants.Rate, msf(res.Grants.P50), msf(res.Grants.P99), nil
	case "import":
		res, err := consentload.Import(ctx, t, items, opts.Prefix)
		if err != nil {
			return "", 0, 0, 0, err
		}
		if res.Failed > 0 || res.Created != items {
			return "", 0, 0, 0, fmt.Errorf("import incomplete: %s", res)
		}
		return "import " + res.String(), res.Rate(), 0, 0, nil
	}
	return "", 0, 0, 0, fmt.Errorf("unknown mode %q (grants, mixed, import)", mode)
}

func msf(d time.Duration) float64 { return float64(d) / 1e6 }

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func numCPU() int {
	n := 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n = strings.Count(string(b), "\nprocessor") + strings.Count(string(b[:min(len(b), 10)]), "processor")
	}
	return n
}

// startUpstream serves the profile the sidecar's route protects.
func startUpstream() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/profiles/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"id": r.PathValue("id"), "email": "li.lei@example.com",
			"phone": "13812345678", "history": []string{"sku-1", "sku-7"}, "recommendations": []string{"sku-9"}})
	})
	go http.Serve(ln, mux)
	return ln, nil
}

type server struct {
	target consentload.Target
	stop   func()
}

// startServe starts `bin serve` on a fresh data directory: admin API and sidecar on free
// loopback ports, the decision log and metrics on.
func startServe(ctx context.Context, bin, dir, upstream string) (*server, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	config := consentload.Config(upstream, filepath.Join(dir, "data"))
	if err := os.WriteFile(filepath.Join(dir, "privguard.yaml"), []byte(config), 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--config", filepath.Join(dir, "privguard.yaml"), "--log-level", "warn")
	cmd.Stderr = logFile
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{stop: func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logFile.Close()
	}}
	lines := bufio.NewScanner(out)
	for s.target.Admin == "" || s.target.Sidecar == "" {
		if !lines.Scan() {
			s.stop()
			return nil, errors.New("serve exited before printing its addresses; see " + logFile.Name())
		}
		l := lines.Text()
		if _, rest, ok := strings.Cut(l, "sidecar on "); ok {
			s.target.Sidecar, _, _ = strings.Cut(rest, " ")
		}
		if _, rest, ok := strings.Cut(l, "admin API on "); ok {
			s.target.Admin = strings.TrimSpace(rest)
		}
	}
	go func() {
		for lines.Scan() {
		}
	}()
	tok, err := os.ReadFile(filepath.Join(dir, "data", "admin.token"))
	if err != nil {
		s.stop()
		return nil, err
	}
	s.target.Token = strings.TrimSpace(string(tok))
	if err := consentload.Setup(ctx, s.target); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}
