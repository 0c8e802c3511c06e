// Command replicas measures privguard's serve running as several replicas on one
// PostgreSQL store, on the real binary, side by side in one run:
//
//   - propagation: three replicas; subjects are granted SMS marketing, then each is
//     withdrawn through replica A (rotating among the three) while replica B (the next one)
//     is polled in a tight loop until it answers "withdrawn"; the time is taken from just
//     before the withdrawal is sent (and, separately, from A's 201) to B's first
//     "withdrawn" answer: p50, p99 and max;
//   - grants: durable grants per second with 64 closed-loop writers per replica (each
//     posting grants to new subjects on its own kept-alive connection), for three
//     replicas on one PostgreSQL store, one replica on the embedded bbolt store, and one
//     replica on PostgreSQL, with the CPU each part used and, on PostgreSQL, the records
//     per commit;
//   - join: a ledger of -records grants is imported through one replica while a second
//     follows (its RSS before and after), the importer is stopped gracefully (it writes the
//     snapshot), and new replicas are started on it, timed from the process start to the
//     first /readyz 200: with the snapshot, then with the snapshot row deleted (every
//     record replayed).
//
// Usage, from the repository root (PostgreSQL on 127.0.0.1:5432; /work/shared/services.sh
// starts it):
//
//	go run ./bench/replicas                                  # everything, 3 runs each
//	go run ./bench/replicas -only grants -runs 5 -duration 10s
//	go run ./bench/replicas -only join -records 1000000
//	go run ./bench/replicas -tags pprof -pprof-dir /tmp/prof  # CPU profiles of the replicas
//
// Every run uses a schema of its own (bench_replicas_*), dropped at the end, and data
// directories under a temporary directory, removed at the end; the replicas are killed on
// an error or Ctrl-C, and die with the bench if it is killed (their schemas then stay:
// drop bench_replicas_* by hand). Subjects are generated (load-*, prop-*, join-*); the
// bench logs none of them.
//
// The load generator is a minimal HTTP/1.1 client that allocates nothing per request: on
// a machine of few cores it shares the CPUs with the replicas and PostgreSQL, and its CPU
// use is reported beside theirs.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	var (
		bin       = flag.String("bin", "", "privguard `binary` to measure (default: build ./cmd/privguard)")
		tags      = flag.String("tags", "", "build `tags` when building the binary (pprof: serve net/http/pprof, see -pprof-dir)")
		dsn       = flag.String("dsn", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL `DSN` for the shared store")
		runs      = flag.Int("runs", 3, "runs of each measurement (medians are reported)")
		only      = flag.String("only", "propagation,grants,join", "comma-separated `measurements`: propagation, grants, join")
		records   = flag.Int("records", 1_000_000, "join: records in the ledger the new replica joins")
		subjects  = flag.Int("subjects", 1000, "propagation: subjects withdrawn per run")
		writers   = flag.Int("writers", 64, "grants: concurrent writers per replica")
		duration  = flag.Duration("duration", 10*time.Second, "grants: measured time per run")
		warmup    = flag.Duration("warmup", 2*time.Second, "grants: unmeasured time before each run")
		idem      = flag.Bool("idempotency-key", true, "grants: send an Idempotency-Key with every grant (as the README does)")
		setupList = flag.String("setups", "pg×3,bolt×1,pg×1", "grants: `setups` to run, in each round's order")
		pprofDir  = flag.String("pprof-dir", "", "write CPU profiles of the replicas to `dir` (needs a binary built with -tags pprof)")
		pprofSecs = flag.Int("pprof-seconds", 8, "length of each CPU profile")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, config{bin: *bin, tags: *tags, dsn: *dsn, runs: *runs, only: strings.Split(*only, ","), records: *records,
		subjects: *subjects, setups: strings.Split(*setupList, ","), pprofDir: *pprofDir,
		load: loadOptions{writers: *writers, duration: *duration, warmup: *warmup, idempotency: *idem, pprofSecs: *pprofSecs}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "replicas:", err)
		os.Exit(1)
	}
}

type config struct {
	bin, tags, dsn, pprofDir string
	runs, records, subjects  int
	only, setups             []string
	load                     loadOptions
}

func run(ctx context.Context, cfg config) error {
	work, err := os.MkdirTemp("", "bench-replicas-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if cfg.bin == "" {
		cfg.bin = filepath.Join(work, "privguard")
		args := []string{"build", "-o", cfg.bin}
		if cfg.tags != "" {
			args = append(args, "-tags", cfg.tags)
		}
		build := exec.CommandContext(ctx, "go", append(args, "./cmd/privguard")...)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/privguard (run from the repository root, or pass -bin): %w", err)
		}
	}
	if cfg.pprofDir != "" {
		if err := os.MkdirAll(cfg.pprofDir, 0o755); err != nil {
			return err
		}
	}
	e, err := newEnv(ctx, cfg.bin, cfg.dsn, work)
	if err != nil {
		return err
	}
	e.pprofDir = cfg.pprofDir
	defer e.cleanup()
	fmt.Println(machine())
	for _, m := range cfg.only {
		var err error
		switch m {
		case "propagation":
			err = runPropagation(ctx, e, cfg)
		case "grants":
			err = runGrants(ctx, e, cfg)
		case "join":
			err = runJoin(ctx, e, cfg)
		default:
			err = fmt.Errorf("unknown measurement %q (propagation, grants, join)", m)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
	}
	return nil
}

func runPropagation(ctx context.Context, e *env, cfg config) error {
	fmt.Printf("== propagation: 3 replicas, %d subjects granted, each withdrawn through A, B polled until withdrawn\n", cfg.subjects)
	var p50s, p99s, maxs, ap50s, ap99s []time.Duration
	for r := range cfg.runs {
		res, err := e.propagation(ctx, cfg.subjects, cfg.load.pprofSecs)
		if err != nil {
			return err
		}
		fmt.Printf("run %d: %s\n", r+1, res)
		p50s, p99s, maxs = append(p50s, percentile(res.fromSend, .5)), append(p99s, percentile(res.fromSend, .99)), append(maxs, res.fromSend[len(res.fromSend)-1])
		ap50s, ap99s = append(ap50s, percentile(res.fromAck, .5)), append(ap99s, percentile(res.fromAck, .99))
	}
	fmt.Printf("== propagation, median of %d runs: from send p50 %s, p99 %s, max %s (goal p99 <= 25 ms: %s); from A's 201 p50 %s, p99 %s\n",
		cfg.runs, ms(medianDur(p50s)), ms(medianDur(p99s)), ms(medianDur(maxs)), met(medianDur(p99s) <= 25*time.Millisecond),
		ms(medianDur(ap50s)), ms(medianDur(ap99s)))
	return nil
}

func runGrants(ctx context.Context, e *env, cfg config) error {
	var chosen []setup
	for _, name := range cfg.setups {
		i := slices.IndexFunc(setups, func(s setup) bool { return s.name == name || strings.ReplaceAll(s.name, "×", "x") == name })
		if i < 0 {
			return fmt.Errorf("unknown setup %q (pg×3 or pgx3, bolt×1, pg×1)", name)
		}
		chosen = append(chosen, setups[i])
	}
	fmt.Printf("== grants: %d writers per replica, %s warm-up, %s measured, idempotency keys %v; setups alternate within each round\n",
		cfg.load.writers, cfg.load.warmup, cfg.load.duration, cfg.load.idempotency)
	rates := map[string][]float64{}
	p99s := map[string][]time.Duration{}
	for r := range cfg.runs {
		for _, s := range chosen {
			res, err := e.throughput(ctx, s, cfg.load)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			fmt.Printf("run %d %-7s %s\n", r+1, s.name, res)
			if res.failed > 0 {
				return fmt.Errorf("%s: %d grants failed: %s", s.name, res.failed, res.firstErr)
			}
			rates[s.name] = append(rates[s.name], res.rate)
			p99s[s.name] = append(p99s[s.name], res.p99)
		}
	}
	fmt.Printf("== grants, median of %d runs:", cfg.runs)
	for _, s := range chosen {
		fmt.Printf(" %s %.0f/s (p99 %s);", s.name, median(rates[s.name]), ms(medianDur(p99s[s.name])))
	}
	fmt.Println()
	if base := median(rates["bolt×1"]); base > 0 {
		for _, s := range chosen {
			if s.name != "bolt×1" {
				fmt.Printf("   %s / bolt×1 = %.2fx\n", s.name, median(rates[s.name])/base)
			}
		}
	}
	if one := median(rates["pg×1"]); one > 0 && len(rates["pg×3"]) > 0 {
		fmt.Printf("   pg×3 / pg×1 = %.2fx\n", median(rates["pg×3"])/one)
	}
	if v, ok := rates["pg×3"]; ok {
		fmt.Printf("   goal pg×3 >= 20,000/s: %s\n", met(median(v) >= 20000))
	}
	return nil
}

func runJoin(ctx context.Context, e *env, cfg config) error {
	fmt.Printf("== join: a ledger of %d records; new replicas timed from process start to /readyz 200\n", cfg.records)
	f, err := e.fill(ctx, cfg.records)
	if err != nil {
		return err
	}
	fmt.Println("fill:", f)
	var with, without []time.Duration
	for r := range cfg.runs {
		res, err := e.join(ctx, f, r, true, cfg.load.pprofSecs)
		if err != nil {
			return fmt.Errorf("with the snapshot: %w", err)
		}
		fmt.Printf("run %d with the snapshot:    %s\n", r+1, res)
		with = append(with, res.ready)
	}
	for r := range cfg.runs {
		res, err := e.join(ctx, f, cfg.runs+r, false, cfg.load.pprofSecs)
		if err != nil {
			return fmt.Errorf("without the snapshot: %w", err)
		}
		fmt.Printf("run %d without the snapshot: %s\n", r+1, res)
		without = append(without, res.ready)
	}
	fmt.Printf("== join, median of %d runs: with the snapshot %s, full replay of %d records %s (goal <= 3 s: %s, %s)\n",
		cfg.runs, medianDur(with).Round(time.Millisecond), cfg.records, medianDur(without).Round(time.Millisecond),
		met(medianDur(with) <= 3*time.Second), met(medianDur(without) <= 3*time.Second))
	return e.dropSchema(f.schema)
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// machine describes the host: CPUs, model, memory, Go, load.
func machine() string {
	model, mem := "?", "?"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		mem = strings.Join(strings.Fields(line)[1:], " ")
	}
	load, _ := os.ReadFile("/proc/loadavg")
	return fmt.Sprintf("machine: %d CPUs (%s), MemTotal %s, %s, load %s", runtime.NumCPU(), model, mem, runtime.Version(), strings.TrimSpace(string(load)))
}
