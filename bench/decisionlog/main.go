// Command decisionlog measures `privguard decisions stats` on a large decision log against
// the same counts computed by jq, in one run: it writes -lines decisions through the real
// writer (package audit: keyed pseudonyms, the hash chain, 256 MiB segments checkpointed in
// a bbolt data file), then runs each tool -rounds times under /usr/bin/time -v, checks that
// both counted the same, and prints every run's wall time and peak RSS and the medians.
//
//	go run ./bench/decisionlog                          # 10M lines, 3 rounds each
//	go run ./bench/decisionlog -lines 1000000 -rounds 5
//	go run ./bench/decisionlog -data /var/tmp/dl -keep  # keep the log for another run
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/audit"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/middleware"
)

// jqStats is the jq program that counts what `decisions stats --format json` does. setpath
// rather than `.a[$k] += 1`: jq 1.6 spends 1.6x less CPU on it (the same counts).
const jqStats = `reduce inputs as $l ({lines: 0, by_decision: {}, by_purpose: {}, by_reason: {}, by_route: {}, by_day: {}};
  setpath(["lines"]; .lines + 1)
  | setpath(["by_decision", $l.effect]; .by_decision[$l.effect] + 1)
  | setpath(["by_purpose", $l.purpose]; .by_purpose[$l.purpose] + 1)
  | setpath(["by_route", $l.route]; .by_route[$l.route] + 1)
  | ($l.time[0:10]) as $d | setpath(["by_day", $d]; .by_day[$d] + 1)
  | reduce ($l.reasons // [])[] as $r (.; setpath(["by_reason", $r]; .by_reason[$r] + 1)))`

func main() {
	var (
		lines  = flag.Int("lines", 10_000_000, "decisions to write")
		rounds = flag.Int("rounds", 3, "runs of each tool (0: only write the log)")
		data   = flag.String("data", "", "data `directory` (default: a new temporary one); an existing log there is used as it is")
		keep   = flag.Bool("keep", false, "keep the data directory")
		bin    = flag.String("bin", "", "privguard `binary` (default: build ./cmd/privguard)")
	)
	flag.Parse()
	if err := runBench(*lines, *rounds, *data, *keep, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "decisionlog:", err)
		os.Exit(1)
	}
}

func runBench(lines, rounds int, data string, keep bool, bin string) error {
	if data == "" {
		d, err := os.MkdirTemp("", "decisionlog-")
		if err != nil {
			return err
		}
		data = d
	}
	if !keep {
		defer os.RemoveAll(data)
	}
	if bin == "" {
		bin = filepath.Join(data, "privguard-bench")
		if out, err := exec.Command("go", "build", "-o", bin, "./cmd/privguard").CombinedOutput(); err != nil {
			return fmt.Errorf("build: %v\n%s", err, out)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "decisions.log")); err != nil {
		start := time.Now()
		if err := generate(data, lines); err != nil {
			return err
		}
		fmt.Printf("wrote %d decisions in %v\n", lines, time.Since(start).Round(time.Millisecond))
	}
	files, _ := filepath.Glob(filepath.Join(data, "decisions-*.log"))
	slices.Sort(files)
	files = append(files, filepath.Join(data, "decisions.log"))
	var size int64
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			size += fi.Size()
		}
	}
	fmt.Printf("log: %d files, %.2f GB\n", len(files), float64(size)/1e9)
	if rounds == 0 { // only the log, for another benchmark (bench/auditpack)
		return nil
	}

	tools := []struct {
		name string
		args []string
	}{
		{"privguard decisions stats", []string{bin, "decisions", "stats", "--data", data, "--format", "json"}},
		{"jq", append([]string{"jq", "-n", "-c", jqStats}, files...)},
	}
	results := make([][]measure, len(tools))
	var counts []map[string]any
	for round := range rounds {
		for i, tool := range tools {
			m, out, err := timed(tool.args)
			if err != nil {
				return fmt.Errorf("%s: %w", tool.name, err)
			}
			results[i] = append(results[i], m)
			fmt.Printf("round %d  %-26s %8.2f s  %7.1f MB peak RSS\n", round+1, tool.name, m.wall.Seconds(), float64(m.rssKB)/1024)
			if round == 0 {
				var c map[string]any
				if err := json.Unmarshal(out, &c); err != nil {
					return fmt.Errorf("%s: output: %v", tool.name, err)
				}
				delete(c, "scanned")
				delete(c, "deny_reasons") // jq's program does not count them apart
				counts = append(counts, c)
			}
		}
	}
	a, _ := json.Marshal(counts[0])
	b, _ := json.Marshal(counts[1])
	if !bytes.Equal(a, b) {
		return fmt.Errorf("the counts differ:\nprivguard %s\njq        %s", a, b)
	}
	fmt.Printf("counts agree: %s\n", a[:min(len(a), 300)])
	med := func(ms []measure) (time.Duration, int64) {
		w := make([]time.Duration, len(ms))
		r := make([]int64, len(ms))
		for i, m := range ms {
			w[i], r[i] = m.wall, m.rssKB
		}
		slices.Sort(w)
		slices.Sort(r)
		return w[len(w)/2], r[len(r)/2]
	}
	pw, pr := med(results[0])
	jw, jr := med(results[1])
	fmt.Printf("median  privguard %.2f s %.1f MB (%.2f M lines/s)  jq %.2f s %.1f MB  jq/privguard time %.1fx, RSS %.1fx\n",
		pw.Seconds(), float64(pr)/1024, float64(lines)/pw.Seconds()/1e6, jw.Seconds(), float64(jr)/1024, jw.Seconds()/pw.Seconds(), float64(jr)/float64(pr))
	return nil
}

type measure struct {
	wall  time.Duration
	rssKB int64
}

var (
	maxRSS  = regexp.MustCompile(`Maximum resident set size \(kbytes\): (\d+)`)
	elapsed = regexp.MustCompile(`Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)`)
)

// timed runs args under /usr/bin/time -v and returns its wall time and peak RSS.
func timed(args []string) (measure, []byte, error) {
	cmd := exec.Command("/usr/bin/time", append([]string{"-v"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return measure{}, nil, fmt.Errorf("%v\n%s", err, lastLines(errb.String(), 30))
	}
	var m measure
	if r := maxRSS.FindStringSubmatch(errb.String()); r != nil {
		m.rssKB, _ = strconv.ParseInt(r[1], 10, 64)
	}
	e := elapsed.FindStringSubmatch(errb.String())
	if e == nil {
		return m, nil, fmt.Errorf("no elapsed time in /usr/bin/time's output")
	}
	h, _ := strconv.Atoi(e[1])
	mi, _ := strconv.Atoi(e[2])
	s, _ := strconv.ParseFloat(e[3], 64)
	m.wall = time.Duration((float64(h*3600+mi*60) + s) * float64(time.Second))
	return m, out.Bytes(), nil
}

func lastLines(s string, n int) string {
	ls := strings.Split(s, "\n")
	return strings.Join(ls[max(0, len(ls)-n):], "\n")
}

// generate writes n decisions into data as serve would: 8 purposes, 12 routes, a tenth
// denied with one of 4 reasons, 1M subjects, over 200 days, in batches of 100 (a
// campaign's send: one route, purpose and time each).
func generate(data string, n int) error {
	db, err := boltstore.Open(filepath.Join(data, "privguard.db"), boltstore.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	key, err := db.Consent().Secret(context.Background(), "audit.subject-hmac", func() ([]byte, error) { return bytes.Repeat([]byte{9}, 32), nil })
	if err != nil {
		return err
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	step := 200 * 24 * time.Hour / time.Duration(n)
	var now atomic.Int64 // the writer reads the clock too (checkpoints)
	now.Store(start.UnixNano())
	l, err := audit.Open(audit.Config{Path: filepath.Join(data, "decisions.log"), Key: key, Checkpoints: db.Journal(), Replica: "bench-1",
		Now: func() time.Time { return time.Unix(0, now.Load()).UTC() }})
	if err != nil {
		return err
	}
	purposes := []privguard.Purpose{"marketing.communications.sms", "marketing.communications.email", "marketing.communications.push",
		"marketing.profiling", "personalize.recommendation", "analytics.ab_testing", "analytics.reporting", "marketing.advertising.first_party"}
	decisions := []*privguard.Decision{
		{ID: "d-allow", Revision: "r-2026-01", Effect: privguard.Allow, Reasons: []privguard.Reason{"allow"}, Obligations: []privguard.Obligation{{Kind: privguard.ObligeContactBudget}}},
		{ID: "d-missing", Revision: "r-2026-01", Effect: privguard.Deny, Reasons: []privguard.Reason{"consent.missing"}},
		{ID: "d-withdrawn", Revision: "r-2026-01", Effect: privguard.Deny, Reasons: []privguard.Reason{"consent.withdrawn"}},
		{ID: "d-gpc", Revision: "r-2026-01", Effect: privguard.Deny, Reasons: []privguard.Reason{"gpc.opt_out", "consent.missing"}},
		{ID: "d-freq", Revision: "r-2026-01", Effect: privguard.Deny, Reasons: []privguard.Reason{"frequency.exceeded"}},
	}
	const batch = 100
	var queued uint64
	for i := 0; i < n; i += batch {
		k := i / batch
		in := privguard.Input{Purpose: purposes[k%len(purposes)], Regime: privguard.RegimePIPL,
			Categories: []privguard.DataCategory{"user.contact.phone_number"}}
		m := min(batch, n-i)
		entries := make([]middleware.BatchEntry, m) // the writer reads it after RecordBatch returns
		for j := range m {
			d := decisions[0]
			if (i+j)%10 == 0 {
				d = decisions[1+(i+j)/10%4]
			}
			entries[j] = middleware.BatchEntry{Subject: privguard.SubjectID("cust-" + strconv.Itoa((i+j)*7919%1_000_000)), Consent: "given", Decision: d}
		}
		now.Store(start.Add(time.Duration(i) * step).UnixNano())
		l.RecordBatch(fmt.Sprintf("POST /api/campaigns/%d/send", k%12), &in, entries)
		queued += uint64(m)
		for queued-l.Written()-l.Dropped() > 200_000 {
			time.Sleep(time.Millisecond)
		}
	}
	if err := l.Close(); err != nil {
		return err
	}
	if l.Dropped() != 0 {
		return fmt.Errorf("%d decisions dropped", l.Dropped())
	}
	return nil
}
