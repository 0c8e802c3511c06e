// Command auditpack measures the DPO's audit pack of a year on the path users run: it
// builds a data directory holding -consents consent records, -requests data-subject
// requests (closed) and a decision log of -lines decisions (bench/decisionlog writes it),
// starts the real `privguard serve` on it, and runs `privguard audit pack` for 2026
// -rounds times, sampling serve's resident anonymous memory (and, apart, the mapped pages
// of its data file) while each pack is made; then
// `privguard verify` on the pack. It prints every run and the medians.
//
//	go run ./bench/auditpack                                   # 1M consents, 100k requests, 10M lines
//	go run ./bench/auditpack -consents 100000 -requests 10000 -lines 1000000
//	go run ./bench/auditpack -data /var/tmp/ap -keep           # keep the data for another run
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/dsar"
)

func main() {
	var (
		consents = flag.Int("consents", 1_000_000, "consent records")
		requests = flag.Int("requests", 100_000, "data-subject requests")
		lines    = flag.Int("lines", 10_000_000, "decision-log lines")
		rounds   = flag.Int("rounds", 3, "packs to make")
		data     = flag.String("data", "", "data `directory` (default: a new temporary one); what is there already is used")
		keep     = flag.Bool("keep", false, "keep the data directory")
	)
	flag.Parse()
	if err := run(*consents, *requests, *lines, *rounds, *data, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "auditpack:", err)
		os.Exit(1)
	}
}

func run(consents, requests, lines, rounds int, data string, keep bool) error {
	if data == "" {
		d, err := os.MkdirTemp("", "auditpack-")
		if err != nil {
			return err
		}
		data = d
	}
	if !keep {
		defer os.RemoveAll(data)
	}
	bin := filepath.Join(data, "privguard-bench")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/privguard").CombinedOutput(); err != nil {
		return fmt.Errorf("build: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(data, "decisions.log")); err != nil {
		start := time.Now()
		cmd := exec.Command("go", "run", "./bench/decisionlog", "-lines", strconv.Itoa(lines), "-rounds", "0", "-data", data, "-keep")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("decision log: %v\n%s", err, out)
		}
		fmt.Printf("wrote %d decisions in %v\n", lines, time.Since(start).Round(time.Second))
	}
	if _, err := os.Stat(filepath.Join(data, "fixture.done")); err != nil {
		if err := fixture(data, consents, requests); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(data, "fixture.done"), nil, 0o600); err != nil {
			return err
		}
	}

	if _, err := os.Stat(filepath.Join(data, "master.keyset.json")); err != nil {
		if out, err := exec.Command(bin, "keys", "init", "--data", data).CombinedOutput(); err != nil {
			return fmt.Errorf("keys init: %v\n%s", err, out)
		}
	}
	cfgPath := filepath.Join(data, "privguard.yaml")
	if err := os.WriteFile(cfgPath, []byte("data_dir: "+data+"\nadmin_listen: 127.0.0.1:0\nregime: pipl\n"), 0o600); err != nil {
		return err
	}
	serve := exec.Command(bin, "serve", "--config", cfgPath, "--log-level", "warn")
	stdout, err := serve.StdoutPipe()
	if err != nil {
		return err
	}
	serve.Stderr = os.Stderr
	started := time.Now()
	if err := serve.Start(); err != nil {
		return err
	}
	defer func() { serve.Process.Signal(os.Interrupt); serve.Wait() }()
	admin := ""
	sc := bufio.NewScanner(stdout)
	for admin == "" && sc.Scan() {
		if i := strings.Index(sc.Text(), "http://"); i >= 0 {
			admin = strings.Fields(sc.Text()[i:])[0]
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if admin == "" {
		return fmt.Errorf("serve printed no admin address")
	}
	fmt.Printf("serve ready in %v at %s, anonymous RSS %.1f MB\n", time.Since(started).Round(time.Millisecond), admin, float64(rssKB(serve.Process.Pid))/1024)

	var walls []time.Duration
	var peaks, deltas []int64
	var size int64
	for r := range rounds {
		out := filepath.Join(data, fmt.Sprintf("pack-%d.zip", r))
		base := rssKB(serve.Process.Pid)
		var peak, peakFile atomic.Int64
		peak.Store(base)
		peakFile.Store(fileKB(serve.Process.Pid))
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
					if v := rssKB(serve.Process.Pid); v > peak.Load() {
						peak.Store(v)
					}
					if v := fileKB(serve.Process.Pid); v > peakFile.Load() {
						peakFile.Store(v)
					}
				}
			}
		})
		start := time.Now()
		cmd := exec.Command(bin, "audit", "pack", "--admin", admin, "--data", data, "--from", "2026-01-01", "--to", "2027-01-01", "--out", out)
		msg, err := cmd.CombinedOutput()
		wall := time.Since(start)
		close(stop)
		wg.Wait()
		if err != nil {
			return fmt.Errorf("audit pack: %v\n%s", err, msg)
		}
		fi, _ := os.Stat(out)
		size = fi.Size()
		walls, peaks, deltas = append(walls, wall), append(peaks, peak.Load()), append(deltas, peak.Load()-base)
		fmt.Printf("round %d  audit pack %6.2f s  serve anonymous RSS %.1f MB before, %.1f MB peak (+%.1f MB); mapped file pages peak %.1f MB  %.1f MB pack\n",
			r+1, wall.Seconds(), float64(base)/1024, float64(peak.Load())/1024, float64(peak.Load()-base)/1024, float64(peakFile.Load())/1024, float64(size)/1e6)
		if r == 0 {
			fmt.Printf("  %s", msg)
		}
	}
	start := time.Now()
	msg, err := exec.Command(bin, "verify", filepath.Join(data, "pack-0.zip")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("verify: %v\n%s", err, msg)
	}
	fmt.Printf("verify %.2f s: %s", time.Since(start).Seconds(), firstLine(string(msg)))
	slices.Sort(walls)
	slices.Sort(peaks)
	slices.Sort(deltas)
	fmt.Printf("median  audit pack %.2f s, serve peak anonymous RSS %.1f MB (+%.1f MB over its RSS before), pack %.1f MB\n",
		walls[len(walls)/2].Seconds(), float64(peaks[len(peaks)/2])/1024, float64(deltas[len(deltas)/2])/1024, float64(size)/1e6)
	return nil
}

// fixture writes the consent records and the requests into data's file.
func fixture(data string, consents, requests int) error {
	ctx := context.Background()
	db, err := boltstore.Open(filepath.Join(data, "privguard.db"), boltstore.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	start := time.Now()
	l, err := consent.Open(ctx, consent.Config{Store: db.Consent()})
	if err != nil {
		return err
	}
	notice := consent.Notice{ID: "marketing", Version: 1, Language: "zh-CN", Text: "我们会通过短信和邮件向您发送优惠信息。", Purposes: []privguard.Purpose{"marketing"},
		Controller: consent.Controller{Name: "Example Retail Ltd", Contact: "privacy@example.cn"}, Retention: "until withdrawn", RightsChannels: []string{"app"}}
	if _, _, err := l.RegisterNotice(ctx, notice); err != nil {
		l.Close()
		return err
	}
	const writers = 256
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for k := w; k < consents; k += writers {
				s := privguard.SubjectID("cust-" + strconv.Itoa(k))
				req := consent.Request{Subject: s, Purpose: "marketing.communications.sms", Action: consent.ActionGrant, Regime: privguard.RegimePIPL,
					Notice: &consent.NoticeRef{ID: "marketing", Version: 1, Language: "zh-CN"}, Channel: consent.ChannelApp, Method: consent.MethodExplicit,
					Evidence: consent.Evidence{UserAgent: "Mozilla/5.0"}, IP: "198.51.100.7"}
				switch k % 4 {
				case 2:
					req.Purpose = "marketing.communications.email"
				case 3:
					req = consent.Request{Subject: s, Purpose: "marketing.communications.sms", Action: consent.ActionWithdraw, Channel: consent.ChannelWeb}
				}
				if _, _, err := l.Append(ctx, req); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		l.Close()
		return err
	}
	if err := l.Close(); err != nil {
		return err
	}
	fmt.Printf("wrote %d consent records in %v\n", consents, time.Since(start).Round(time.Second))

	start = time.Now()
	e, err := dsar.New(dsar.Config{Store: db.DSAR()})
	if err != nil {
		return err
	}
	const batch = 5000
	for i := 0; i < requests; i += batch {
		rs := make([]dsar.Request, 0, batch)
		for k := i; k < min(i+batch, requests); k++ {
			rs = append(rs, dsar.Request{Type: dsar.TypeDeletion, Subject: privguard.SubjectID("cust-" + strconv.Itoa(k*7)), Regime: privguard.RegimePIPL,
				Identity: &dsar.Identity{Method: "operator", Note: "checked against the account"}})
		}
		if _, err := e.SubmitAll(ctx, rs); err != nil {
			return err
		}
	}
	for {
		ran, err := e.Step(ctx)
		if err != nil {
			return err
		}
		if ran == 0 {
			break
		}
	}
	fmt.Printf("wrote and closed %d requests in %v\n", requests, time.Since(start).Round(time.Second))
	return nil
}

// rssKB is the process's resident anonymous memory (its heap and stacks, RssAnon): the
// pages of the data file bbolt maps are resident too (RssFile) but are the page cache's,
// shared and reclaimable, not the pack's.
func rssKB(pid int) int64 { return status(pid, "RssAnon:") }

// fileKB is the process's resident file-backed memory (RssFile: the mapped data file).
func fileKB(pid int) int64 { return status(pid, "RssFile:") }

func status(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i+1]
	}
	return s + "\n"
}
