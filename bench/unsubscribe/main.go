// Command unsubscribe measures the one-click unsubscribe under load on the real `privguard
// serve` binary: it grants SMS marketing to -n subjects, mints their links with one POST
// /v1/outreach/check, fires the -n RFC 8058 one-click POSTs (body
// List-Unsubscribe=One-Click, no credentials) all at once, and reports the latency of the
// clicks (p50/p99/max, from each click's start to its answer) and whether every withdrawal
// is in the ledger: each subject's history has a withdrawal, and a second check allows
// none of them.
//
//	go build -o /tmp/privguard ./cmd/privguard && go run ./bench/unsubscribe -bin /tmp/privguard -runs 3
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/privguard/privguard/bench/internal/servebin"
)

func main() {
	bin := flag.String("bin", "", "the privguard binary (go build -o /tmp/privguard ./cmd/privguard)")
	n := flag.Int("n", 1000, "subjects, and so concurrent clicks, per run")
	runs := flag.Int("runs", 3, "runs; medians are reported")
	flag.Parse()
	if *bin == "" {
		log.Fatal("-bin is required")
	}
	fmt.Printf("machine: %d CPUs, %s, %s\n", runtime.NumCPU(), runtime.Version(), servebin.CPUModel())
	var p50, p99, worst, wall []float64
	for i := range *runs {
		r := once(*bin, *n)
		fmt.Printf("run %d: %d clicks: p50 %.1f ms p99 %.1f ms max %.1f ms, all answered in %.1f ms; 200s %d; withdrawals in the ledger %d/%d; allowed after %d\n",
			i+1, *n, r.p50, r.p99, r.max, r.wall, r.ok, r.recorded, *n, r.allowedAfter)
		if r.ok != *n || r.recorded != *n || r.allowedAfter != 0 {
			log.Fatalf("run %d: not every click was recorded", i+1)
		}
		p50, p99, worst, wall = append(p50, r.p50), append(p99, r.p99), append(worst, r.max), append(wall, r.wall)
	}
	fmt.Printf("medians of %d runs: p50 %.1f ms p99 %.1f ms max %.1f ms, %d clicks answered in %.1f ms; all %d withdrawals recorded in every run\n",
		*runs, servebin.Median(p50), servebin.Median(p99), servebin.Median(worst), *n, servebin.Median(wall), *n)
}

type result struct {
	p50, p99, max, wall        float64
	ok, recorded, allowedAfter int
}

func once(bin string, n int) result {
	dir, err := os.MkdirTemp("", "unsubscribe-bench-")
	check(err)
	defer os.RemoveAll(dir)
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstream: http://127.0.0.1:9
data_dir: %s
regime: pipl
controller: {name: Bench Retail Ltd, contact: privacy@bench.example, dpo: {name: DPO, contact: dpo@bench.example}}
outreach: {public_url: "https://privacy.bench.example"}
`, servebin.DataDir(dir))
	srv, err := servebin.Start(bin, dir, cfg)
	check(err)
	defer srv.Stop()
	srv.Client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: 0}, Timeout: time.Minute}
	admin := srv.Admin
	api := func(method, path, body string) (int, []byte) {
		s, b, err := srv.API(method, path, body)
		check(err)
		return s, b
	}
	if s, b := api("POST", "/v1/notices", `{"id":"marketing","version":1,"language":"zh-CN","text":"我们将向您发送促销短信。","purposes":["marketing"],
		"controller":{"name":"Bench Retail Ltd","contact":"privacy@bench.example","dpo":"dpo@bench.example"},"retention":"13 months","rights_channels":["https://bench.example/privacy"]}`); s != 201 && s != 200 {
		log.Fatalf("notice: %d %s", s, b)
	}
	subjects := make([]string, n)
	for i := range subjects {
		subjects[i] = fmt.Sprintf("cust-%05d", i)
	}
	parallel(n, 16, func(i int) {
		if s, b := api("POST", "/v1/consents", `{"subject":"`+subjects[i]+`","purpose":"marketing.communications.sms","action":"grant","legal_basis":"consent","regime":"pipl",
			"notice":{"id":"marketing","version":1,"language":"zh-CN"},"channel":"app","method":"explicit"}`); s != 201 {
			log.Fatalf("grant: %d %s", s, b)
		}
	})
	list, _ := json.Marshal(subjects)
	checkBody := `{"channel":"sms","template":{"kind":"marketing","sender":"示例商城","text":"【示例商城】新品上市 {{unsubscribe_url}} 回T退订","id":"bench-1"},"recipients":` + string(list) + `}`
	var ans struct {
		Allowed []struct {
			Subject     string `json:"subject"`
			Unsubscribe struct {
				URL                 string `json:"url"`
				ListUnsubscribe     string `json:"list_unsubscribe"`
				ListUnsubscribePost string `json:"list_unsubscribe_post"`
			} `json:"unsubscribe"`
		} `json:"allowed"`
		Denied []json.RawMessage `json:"denied"`
	}
	s, b := api("POST", "/v1/outreach/check", checkBody)
	check(json.Unmarshal(b, &ans))
	if s != 200 || len(ans.Allowed) != n {
		log.Fatalf("check: %d, %d allowed of %d", s, len(ans.Allowed), n)
	}
	paths := make([]string, n)
	for i, a := range ans.Allowed {
		p, ok := strings.CutPrefix(a.Unsubscribe.URL, "https://privacy.bench.example")
		if !ok || a.Unsubscribe.ListUnsubscribe != "<"+a.Unsubscribe.URL+">" || a.Unsubscribe.ListUnsubscribePost != "List-Unsubscribe=One-Click" {
			log.Fatalf("link %+v", a.Unsubscribe)
		}
		paths[i] = p
	}
	// Every click dials its own connection (as 1,000 mailbox providers' or phones' would)
	// and waits at the gate until all are ready.
	clicks := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Minute}
	lat := make([]float64, n)
	var ok atomic.Int64
	var ready, done sync.WaitGroup
	gate := make(chan struct{})
	ready.Add(n)
	for i := range n {
		done.Go(func() {
			req, _ := http.NewRequest("POST", admin+paths[i], strings.NewReader("List-Unsubscribe=One-Click"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			ready.Done()
			<-gate
			start := time.Now()
			resp, err := clicks.Do(req)
			if err != nil {
				log.Printf("click %d: %v", i, err)
				lat[i] = servebin.Ms(time.Since(start))
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			lat[i] = servebin.Ms(time.Since(start))
			if resp.StatusCode == http.StatusOK {
				ok.Add(1)
			} else {
				log.Printf("click %d: %d", i, resp.StatusCode)
			}
		})
	}
	ready.Wait()
	start := time.Now()
	close(gate)
	done.Wait()
	r := result{wall: servebin.Ms(time.Since(start)), ok: int(ok.Load())}
	slices.Sort(lat)
	r.p50, r.p99, r.max = lat[n/2], lat[min(n-1, n*99/100)], lat[n-1]

	// In the ledger: a withdrawal in every subject's history, and the gate allows nobody.
	var recorded atomic.Int64
	parallel(n, 16, func(i int) {
		s, b := api("GET", "/v1/subjects/"+subjects[i]+"/consents/history", "")
		if s == 200 && bytes.Contains(b, []byte(`"action":"withdraw"`)) {
			recorded.Add(1)
		}
	})
	r.recorded = int(recorded.Load())
	s, b = api("POST", "/v1/outreach/check", checkBody)
	ans.Allowed = nil
	check(json.Unmarshal(b, &ans))
	if s != 200 {
		log.Fatalf("second check: %d %s", s, b)
	}
	r.allowedAfter = len(ans.Allowed)
	return r
}

// parallel calls fn(0..n-1) from workers goroutines.
func parallel(n, workers int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(i)
			}
		})
	}
	wg.Wait()
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
