// Command portal measures the privacy centre on the path subjects use: the real `privguard
// serve` binary (decision log and metrics on, as by default) with its sidecar in front of a
// stub upstream and the portal on its own listener. It reports, per page, the weight
// transferred on a first visit (the page, its style sheet and its script), the time to load
// each page (p50/p99 over -n loads, beside the admin API's JSON of the same subject's
// consents as the baseline, in the same run), and the time from a withdrawal clicked in the
// page to the sidecar denying the next SMS send, with how many sends got through after the
// page had answered (must be 0).
//
//	go build -o /tmp/privguard ./cmd/privguard && go run ./bench/portal -bin /tmp/privguard -runs 3
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/privguard/privguard/bench/internal/servebin"
)

func main() {
	bin := flag.String("bin", "", "the privguard binary (go build -o /tmp/privguard ./cmd/privguard)")
	n := flag.Int("n", 500, "loads of each page per run")
	toggles := flag.Int("toggles", 200, "withdrawals (and grants back) per run")
	runs := flag.Int("runs", 3, "runs; medians are reported")
	flag.Parse()
	if *bin == "" {
		log.Fatal("-bin is required")
	}
	fmt.Printf("machine: %d CPUs, %s, %s\n", runtime.NumCPU(), runtime.Version(), servebin.CPUModel())
	var all []result
	for i := range *runs {
		r := once(*bin, *n, *toggles)
		fmt.Printf("run %d: %s\n", i+1, r)
		all = append(all, r)
	}
	fmt.Println("medians:")
	for _, page := range []string{"signin", "choices", "profile", "requests"} {
		var p50, p99 []float64
		for _, r := range all {
			p50 = append(p50, r.pages[page].p50)
			p99 = append(p99, r.pages[page].p99)
		}
		fmt.Printf("  %-9s weight %6d B   p50 %.2f ms   p99 %.2f ms\n", page, all[0].weight[page], servebin.Median(p50), servebin.Median(p99))
	}
	var b50, b99, c50, c99, ratio []float64
	late := 0
	for _, r := range all {
		b50, b99 = append(b50, r.baseline.p50), append(b99, r.baseline.p99)
		c50, c99 = append(c50, r.choice.p50), append(c99, r.choice.p99)
		ratio = append(ratio, r.pages["choices"].p99/r.baseline.p99)
		late += r.late
	}
	fmt.Printf("  baseline (GET /v1/subjects/{id}/consents, admin API): p50 %.2f ms p99 %.2f ms; My choices p99 / baseline p99 = %.2fx\n", servebin.Median(b50), servebin.Median(b99), servebin.Median(ratio))
	fmt.Printf("  withdrawal in the page -> sidecar denies: p50 %.2f ms p99 %.2f ms; sends allowed after the page answered: %d\n", servebin.Median(c50), servebin.Median(c99), late)
}

type stats struct{ p50, p99 float64 }

type result struct {
	weight   map[string]int
	pages    map[string]stats
	baseline stats
	choice   stats
	late     int
}

func (r result) String() string {
	return fmt.Sprintf("choices p99 %.2f ms, baseline p99 %.2f ms, withdrawal->deny p99 %.2f ms, late %d",
		r.pages["choices"].p99, r.baseline.p99, r.choice.p99, r.late)
}

func once(bin string, n, toggles int) result {
	dir, err := os.MkdirTemp("", "portal-bench-")
	check(err)
	defer os.RemoveAll(dir)
	upstream := stubUpstream()
	secret := []byte("bench identity token secret of 32+ bytes!")
	check(os.WriteFile(filepath.Join(dir, "id.secret"), secret, 0o600))
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstream: %s
data_dir: %s
regime: pipl
controller: {name: Bench Retail Ltd, contact: privacy@bench.example, dpo: {name: DPO, contact: dpo@bench.example}}
dsar: {identity_token_secret_file: %s}
portal: {listen: 127.0.0.1:0, notice: marketing}
policy: {frequency: {sms: {max: 10000, window: 1h}}}  # the bench sends far more than a subject would get
routes:
  - match: "POST /sms/send"
    purpose: marketing.communications.sms
    subject: {json: subject}
`, upstream, servebin.DataDir(dir), filepath.Join(dir, "id.secret"))
	srv, err := servebin.Start(bin, dir, cfg)
	check(err)
	defer srv.Stop()
	sidecar, centre := srv.Sidecar, srv.Portal
	if centre == "" || sidecar == "" {
		log.Fatalf("serve did not print the portal's or the sidecar's address")
	}
	api := func(method, path, body string) (int, []byte) {
		s, b, err := srv.API(method, path, body)
		check(err)
		return s, b
	}
	if s, b := api("POST", "/v1/notices", `{"id":"marketing","version":1,"language":"zh-CN","text":"我们将向您发送促销短信。","purposes":["marketing"],
		"controller":{"name":"Bench Retail Ltd","contact":"privacy@bench.example","dpo":"dpo@bench.example"},"retention":"13 months","rights_channels":["https://bench.example/privacy"]}`); s != 201 && s != 200 {
		log.Fatalf("notice: %d %s", s, b)
	}
	const subject = "cust-bench"
	if s, b := api("POST", "/v1/consents", `{"subject":"`+subject+`","purpose":"marketing.communications.sms","action":"grant","legal_basis":"consent","regime":"pipl",
		"notice":{"id":"marketing","version":1,"language":"zh-CN"},"channel":"app","method":"explicit"}`); s != 201 {
		log.Fatalf("grant: %d %s", s, b)
	}

	log.Printf("serve up: admin %s portal %s sidecar %s", srv.Admin, centre, sidecar)
	r := result{weight: map[string]int{}, pages: map[string]stats{}}
	// The sign-in page as a first visitor loads it: the page, its style sheet and script.
	r.weight["signin"] = firstVisit(centre+"/signin", nil)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	resp, err := client.Get(centre + "/signin/token?token=" + url.QueryEscape(identityToken(secret, subject)))
	check(err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if !strings.HasSuffix(resp.Request.URL.Path, "/choices") {
		log.Fatalf("token sign-in landed on %s (%d)", resp.Request.URL, resp.StatusCode)
	}
	for _, page := range []string{"choices", "profile", "requests"} {
		if get(client, centre+"/"+page) == http.StatusNotFound {
			log.Printf("no %s page in this configuration", page)
			continue
		}
		r.weight[page] = firstVisit(centre+"/"+page, client)
		r.pages[page] = timeLoads(n, func() int { return get(client, centre+"/"+page) })
	}
	r.pages["signin"] = timeLoads(n, func() int { return get(http.DefaultClient, centre+"/signin") })
	r.baseline = timeLoads(n, func() int {
		s, _ := api("GET", "/v1/subjects/"+subject+"/consents", "")
		return s
	})

	// Withdrawal in the page -> the sidecar's next send is denied.
	send := func() int {
		resp, err := http.Post(sidecar+"/sms/send", "application/json", strings.NewReader(`{"subject":"`+subject+`","text":"hi"}`))
		check(err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	page := body(client, centre+"/choices")
	var lat []float64
	for range toggles {
		csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)[1]
		if send() != 200 {
			log.Fatal("the send before the withdrawal was not allowed")
		}
		start := time.Now()
		page = postForm(client, centre+"/choices", url.Values{"csrf": {csrf}, "purpose": {"marketing.communications.sms"}, "to": {"off"}})
		if s := send(); s != http.StatusForbidden {
			r.late++
			for send() != http.StatusForbidden {
			}
		}
		lat = append(lat, servebin.Ms(time.Since(start)))
		csrf = regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)[1]
		page = postForm(client, centre+"/choices", url.Values{"csrf": {csrf}, "purpose": {"marketing.communications.sms"}, "to": {"on"}})
	}
	r.choice = summarise(lat)
	return r
}

// firstVisit is the bytes a browser with an empty cache transfers for a page: the page and
// every same-origin style sheet and script it names.
func firstVisit(page string, c *http.Client) int {
	if c == nil {
		c = http.DefaultClient
	}
	b := body(c, page)
	total := len(b)
	u, _ := url.Parse(page)
	for _, m := range regexp.MustCompile(`(?:href|src)="(/static/[^"]+)"`).FindAllStringSubmatch(b, -1) {
		total += len(body(c, u.Scheme+"://"+u.Host+m[1]))
	}
	return total
}

func body(c *http.Client, u string) string {
	resp, err := c.Get(u)
	check(err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func get(c *http.Client, u string) int {
	resp, err := c.Get(u)
	check(err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func postForm(c *http.Client, u string, form url.Values) string {
	resp, err := c.PostForm(u, form)
	check(err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		log.Fatalf("POST %s = %d", u, resp.StatusCode)
	}
	return string(b)
}

func timeLoads(n int, load func() int) stats {
	for range 20 { // warm up
		load()
	}
	lat := make([]float64, 0, n)
	for range n {
		start := time.Now()
		if s := load(); s != 200 {
			log.Fatalf("load answered %d", s)
		}
		lat = append(lat, servebin.Ms(time.Since(start)))
	}
	return summarise(lat)
}

func summarise(lat []float64) stats {
	slices.Sort(lat)
	return stats{p50: lat[len(lat)/2], p99: lat[min(len(lat)-1, len(lat)*99/100)]}
}

// identityToken is the HS256 JWS the company's app signs for its logged-in user.
func identityToken(secret []byte, subject string) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	now := time.Now().Unix()
	claims, _ := json.Marshal(map[string]any{"sub": subject, "iat": now, "exp": now + 3600})
	signing := head + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

// stubUpstream answers every request 200, like an SMS gateway accepting a send.
func stubUpstream() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte(`{"sent":true}`))
	}))
	return "http://" + ln.Addr().String()
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
