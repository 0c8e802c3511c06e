// Package consentload drives consent writes (and, for mixed load, reads and sidecar checks)
// against a running privguard over HTTP and measures throughput and latency. It is the
// engine of the bench/consentload command, which runs it against the real `privguard serve`
// binary, and of the in-process benchmark in cmd/privguard that is profiled.
//
// Every client is a closed loop (one request at a time, no think time) on its own kept-alive
// connection. Request bodies are built before the clock starts, so the generator's own cost
// per request is the HTTP client's. A run is safe to repeat against the same server: each
// run writes subjects under its own prefix.
package consentload

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Target is the server under load.
type Target struct {
	// Admin is the admin API's base URL ("http://127.0.0.1:8081"). Required.
	Admin string
	// Sidecar is the sidecar's base URL; required for Checkers.
	Sidecar string
	// Token is a bearer token that may register notices and record consent (admin).
	Token string
}

// Options says what load to apply.
type Options struct {
	// Writers post grants (POST /v1/consents), each a new subject.
	Writers int
	// Readers read a subject's consent state (GET /v1/subjects/{subject}/consents).
	Readers int
	// Checkers call a route the sidecar enforces (GET /api/profiles/{id}): a consent
	// check, a policy decision and a decision-log line per call.
	Checkers int
	// Duration is how long the measured phase lasts; Warmup runs before it, unmeasured.
	Duration, Warmup time.Duration
	// Idempotency sends an Idempotency-Key with every grant, as the README's example does.
	Idempotency bool
	// Prefix makes this run's subjects distinct from earlier runs'.
	Prefix string
}

// Stats is one kind of request's outcome in the measured phase.
type Stats struct {
	OK, Failed int
	Rate       float64 // successful requests per second
	P50, P99   time.Duration
	// FirstError is the first unexpected answer, if any.
	FirstError string
}

func (s Stats) String() string {
	if s.OK+s.Failed == 0 {
		return "-"
	}
	out := fmt.Sprintf("%.0f/s p50 %s p99 %s (%d ok", s.Rate, ms(s.P50), ms(s.P99), s.OK)
	if s.Failed > 0 {
		out += fmt.Sprintf(", %d FAILED: %s", s.Failed, s.FirstError)
	}
	return out + ")"
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) + "ms" }

// Result is a run's outcome.
type Result struct {
	Grants, Reads, Checks Stats
}

// Config is the serve configuration the load runs against: the sidecar in front of
// upstream (host:port or URL) with the profile route, its data in dataDir, both listeners
// on free ports.
func Config(upstream, dataDir string) string {
	if !strings.Contains(upstream, "://") {
		upstream = "http://" + upstream
	}
	return fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstream: %s
data: %s
regime: pipl
routes:
  - match: "GET /api/profiles/{id}"
    purpose: personalize.recommendation
    subject: {path: id}
    fields: {email: user.contact.email, phone: user.contact.phone_number, history: user.behavior.browsing_history}
`, upstream, dataDir)
}

// Client returns an HTTP client that keeps one idle connection per concurrent caller.
func Client(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns + 16,
		MaxIdleConnsPerHost: conns + 16,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}, Timeout: 2 * time.Minute}
}

// NoticeBody is the notice every generated grant cites (id "marketing", version 1, zh-CN).
const NoticeBody = `{"id":"marketing","version":1,"language":"zh-CN","text":"我们将使用您的手机号码和购买记录向您发送促销短信，并为您推荐商品。",
"purposes":["marketing.communications","marketing.profiling","personalize"],
"controller":{"name":"Example Retail Ltd","contact":"privacy@example.com"},
"retention":"until you withdraw, at most 13 months after your last purchase",
"rights_channels":["https://example.com/privacy/choices"]}`

// SeedSubjects is how many subjects Setup grants personalisation, for readers and checkers.
const SeedSubjects = 1000

// GrantBody is a complete grant of marketing.communications.sms as a collecting app sends
// it (the README's example): notice, channel, method, user agent and IP.
func GrantBody(subject string, i int) []byte {
	return fmt.Appendf(nil, `{"subject":%q,"purpose":"marketing.communications.sms","action":"grant","regime":"pipl",`+
		`"notice":{"id":"marketing","version":1,"language":"zh-CN"},"channel":"app","method":"explicit",`+
		`"evidence":{"user_agent":"ExampleApp/7.2 (iOS 18)","ip":"100.%d.%d.%d","ui_screen":"onboarding/consent"}}`,
		subject, byte(i>>16), byte(i>>8), byte(i))
}

// ImportItem is one line of an import: a grant collected by a partner, with its proof.
func ImportItem(subject string, i int) []byte {
	return fmt.Appendf(nil, `{"subject":%q,"purpose":"marketing.communications.sms","action":"grant","regime":"pipl",`+
		`"notice":{"id":"marketing","version":1,"language":"zh-CN"},"channel":"web","method":"imported",`+
		`"evidence":{"collected_by":"third_party","contract_ref":"dpa-2026-014","proof_ref":"partner-crm://export-77/%d"}}`,
		subject, i)
}

func seedSubject(i int) string { return "seed-" + strconv.Itoa(i) }

// Setup registers the notice and grants SeedSubjects subjects personalisation, so that
// readers have state to read and checkers are allowed.
func Setup(ctx context.Context, t Target) error {
	c := Client(8)
	status, body, err := post(ctx, c, t, "/v1/notices", []byte(NoticeBody), "")
	if err != nil {
		return err
	}
	if status != http.StatusCreated && status != http.StatusOK {
		return fmt.Errorf("register notice: %d %s", status, body)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= SeedSubjects {
					return
				}
				b := fmt.Appendf(nil, `{"subject":%q,"purpose":"personalize.recommendation","action":"grant","regime":"pipl",`+
					`"notice":{"id":"marketing","version":1},"channel":"app","method":"explicit"}`, seedSubject(i))
				status, body, err := post(ctx, c, t, "/v1/consents", b, "seed-"+strconv.Itoa(i))
				if err == nil && status != http.StatusCreated && status != http.StatusOK {
					err = fmt.Errorf("seed grant: %d %s", status, body)
				}
				if err != nil {
					select {
					case errc <- err:
					default:
					}
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func post(ctx context.Context, c *http.Client, t Target, path string, body []byte, key string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.Admin+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+t.Token)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// worker is one closed-loop client: do is called until the run ends and returns whether
// the answer was the expected one (and, if not, what it was).
type worker struct {
	lat        []time.Duration
	ok, failed int
	firstErr   string
}

func (w *worker) record(start time.Time, measuring bool, good bool, what string) {
	if !measuring {
		return
	}
	if good {
		w.ok++
		w.lat = append(w.lat, time.Since(start))
		return
	}
	w.failed++
	if w.firstErr == "" {
		w.firstErr = what
	}
}

func summarise(ws []*worker, elapsed time.Duration) Stats {
	var s Stats
	var all []time.Duration
	for _, w := range ws {
		s.OK += w.ok
		s.Failed += w.failed
		if s.FirstError == "" {
			s.FirstError = w.firstErr
		}
		all = append(all, w.lat...)
	}
	if len(all) == 0 {
		return s
	}
	slices.Sort(all)
	s.P50 = all[len(all)/2]
	s.P99 = all[min(len(all)-1, len(all)*99/100)]
	s.Rate = float64(s.OK) / elapsed.Seconds()
	return s
}

// Run applies opts' load to t and measures it. Setup must have run on the server.
func Run(ctx context.Context, t Target, opts Options) (Result, error) {
	if opts.Writers+opts.Readers+opts.Checkers == 0 {
		return Result{}, errors.New("consentload: no clients")
	}
	if opts.Checkers > 0 && t.Sidecar == "" {
		return Result{}, errors.New("consentload: checkers need the sidecar's address")
	}
	c := Client(opts.Writers + opts.Readers + opts.Checkers)
	auth := "Bearer " + t.Token
	var (
		measuring atomic.Bool
		stop      atomic.Bool
		wg        sync.WaitGroup
		writers   = make([]*worker, opts.Writers)
		readers   = make([]*worker, opts.Readers)
		checkers  = make([]*worker, opts.Checkers)
	)
	// Bodies for about 25k grants/s per writer-second are built up front; a writer that
	// runs out builds more.
	perWriter := max(1000, int((opts.Duration+opts.Warmup).Seconds()*25_000)/max(1, opts.Writers))
	for wi := range writers {
		w := &worker{}
		writers[wi] = w
		bodies := make([][]byte, perWriter)
		keys := make([]string, perWriter)
		for k := range bodies {
			subject := fmt.Sprintf("%sw%d-%d", opts.Prefix, wi, k)
			bodies[k] = GrantBody(subject, wi*perWriter+k)
			keys[k] = "k-" + subject
		}
		wg.Go(func() {
			for k := 0; !stop.Load(); k++ {
				if k >= len(bodies) {
					subject := fmt.Sprintf("%sw%d-%d", opts.Prefix, wi, k)
					bodies = append(bodies, GrantBody(subject, wi*perWriter+k))
					keys = append(keys, "k-"+subject)
				}
				m := measuring.Load()
				start := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, t.Admin+"/v1/consents", bytes.NewReader(bodies[k]))
				req.Header["Authorization"] = []string{auth}
				req.Header["Content-Type"] = []string{"application/json"}
				if opts.Idempotency {
					req.Header["Idempotency-Key"] = []string{keys[k]}
				}
				status, what := do(c, req)
				w.record(start, m && !stop.Load(), status == http.StatusCreated, what)
			}
		})
	}
	for ri := range readers {
		w := &worker{}
		readers[ri] = w
		wg.Go(func() {
			for k := ri * 7919; !stop.Load(); k++ {
				m := measuring.Load()
				start := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.Admin+"/v1/subjects/"+seedSubject(k%SeedSubjects)+"/consents", nil)
				req.Header["Authorization"] = []string{auth}
				status, what := do(c, req)
				w.record(start, m && !stop.Load(), status == http.StatusOK, what)
			}
		})
	}
	for ci := range checkers {
		w := &worker{}
		checkers[ci] = w
		wg.Go(func() {
			for k := ci * 7919; !stop.Load(); k++ {
				m := measuring.Load()
				start := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.Sidecar+"/api/profiles/"+seedSubject(k%SeedSubjects), nil)
				status, what := do(c, req)
				w.record(start, m && !stop.Load(), status == http.StatusOK, what)
			}
		})
	}
	select {
	case <-time.After(opts.Warmup):
	case <-ctx.Done():
	}
	measuring.Store(true)
	start := time.Now()
	select {
	case <-time.After(opts.Duration):
	case <-ctx.Done():
	}
	elapsed := time.Since(start)
	stop.Store(true)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	return Result{Grants: summarise(writers, elapsed), Reads: summarise(readers, elapsed), Checks: summarise(checkers, elapsed)}, nil
}

// do sends req and drains the answer; what describes an unexpected one.
func do(c *http.Client, req *http.Request) (status int, what string) {
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return resp.StatusCode, fmt.Sprintf("%d %s", resp.StatusCode, b)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, ""
}

// ImportResult is the outcome of one import.
type ImportResult struct {
	Items, Created, Failed int
	Elapsed                time.Duration
	FirstError             string
}

// Rate is items committed per second.
func (r ImportResult) Rate() float64 { return float64(r.Created) / r.Elapsed.Seconds() }

func (r ImportResult) String() string {
	s := fmt.Sprintf("%d items in %.2fs: %.0f grants/s (%d created", r.Items, r.Elapsed.Seconds(), r.Rate(), r.Created)
	if r.Failed > 0 {
		s += fmt.Sprintf(", %d FAILED: %s", r.Failed, r.FirstError)
	}
	return s + ")"
}

// Import streams n generated import items (NDJSON) to POST /v1/consents/import in one
// request and reads the per-item answers as they come.
func Import(ctx context.Context, t Target, n int, prefix string) (ImportResult, error) {
	pr, pw := io.Pipe()
	go func() {
		bw := bufio.NewWriterSize(pw, 256<<10)
		for i := range n {
			bw.Write(ImportItem(prefix+strconv.Itoa(i), i))
			bw.WriteByte('\n')
		}
		pw.CloseWithError(bw.Flush())
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.Admin+"/v1/consents/import", pr)
	if err != nil {
		return ImportResult{}, err
	}
	req.Header.Set("Authorization", "Bearer "+t.Token)
	req.Header.Set("Content-Type", "application/x-ndjson")
	start := time.Now()
	c := Client(1)
	c.Timeout = 0 // an import of millions takes as long as it takes
	resp, err := c.Do(req)
	if err != nil {
		return ImportResult{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
		return ImportResult{}, fmt.Errorf("import: %d %s", resp.StatusCode, b)
	}
	res := ImportResult{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Index   *int   `json:"index"`
			Outcome string `json:"outcome"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return res, fmt.Errorf("import answer %q: %w", sc.Bytes(), err)
		}
		if line.Index == nil {
			continue // the summary
		}
		res.Items++
		switch line.Outcome {
		case "created", "replayed":
			res.Created++
		default:
			res.Failed++
			if res.FirstError == "" {
				res.FirstError = sc.Text()
			}
		}
	}
	res.Elapsed = time.Since(start)
	return res, sc.Err()
}
