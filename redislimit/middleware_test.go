package redislimit_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/middleware"
	"github.com/privguard/privguard/policy"
	"github.com/privguard/privguard/redislimit"
)

// recorder keeps the decisions, as the decision log would get them.
type recorder struct {
	mu        sync.Mutex
	decisions []privguard.Decision
}

func (r *recorder) Record(_ string, _ *privguard.Input, d *privguard.Decision) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.decisions = append(r.decisions, *d)
}

func (r *recorder) last() privguard.Decision {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.decisions[len(r.decisions)-1]
}

var sendRoutes = []middleware.Route{
	{Match: "POST /sms/{id}", Purpose: "marketing.communications.sms", Subject: middleware.Locator{Path: "id"}},
	{Match: "POST /push/{id}", Purpose: "marketing.communications.push", Subject: middleware.Locator{Path: "id"}},
	{Match: "POST /campaigns/sms", Purpose: "marketing.communications.sms", Subjects: middleware.Locator{JSON: "to"}},
}

// replica is one privguard instance in front of a handler that records who it reached.
type replica struct {
	h       http.Handler
	rec     *recorder
	mu      sync.Mutex
	reached []string
}

func newReplica(t *testing.T, ledger *consent.Ledger, counter middleware.ContactCounter, allowUncounted map[string]bool) *replica {
	t.Helper()
	engine, err := policy.New(ctx, policy.Config{Frequency: map[string]policy.FrequencyLimit{
		"sms": {Max: 2, Window: "1h"}, "push": {Max: 2, Window: "1h"}}})
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{rec: &recorder{}}
	mw, err := middleware.New(middleware.Config{Routes: sendRoutes, Decider: engine, Facts: ledger, Regime: privguard.RegimePIPL,
		Contacts: counter, AllowUncounted: allowUncounted, Recorder: r.rec})
	if err != nil {
		t.Fatal(err)
	}
	r.h = mw(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if req.PathValue("id") != "" {
			r.reached = append(r.reached, req.PathValue("id"))
		} else {
			var body struct{ To []string }
			json.NewDecoder(req.Body).Decode(&body)
			r.reached = append(r.reached, body.To...)
		}
		w.Write([]byte(`{"ok":true}`))
	}))
	return r
}

func (r *replica) send(path, body string) (int, string) {
	var req *http.Request
	if body != "" {
		req = httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
	} else {
		req = httptest.NewRequest("POST", path, nil)
	}
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, req)
	return w.Code, w.Body.String()
}

func ledgerWith(t *testing.T, subjects ...privguard.SubjectID) *consent.Ledger {
	t.Helper()
	l := consenttest.Open(t, "", consent.Config{})
	if _, _, err := l.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		t.Fatal(err)
	}
	for _, s := range subjects {
		for _, p := range []privguard.Purpose{"marketing.communications.sms", "marketing.communications.push"} {
			if _, _, err := l.Append(ctx, consent.Request{Subject: s, Purpose: p, Action: consent.ActionGrant, Regime: privguard.RegimePIPL,
				Notice: &consent.NoticeRef{ID: "marketing", Version: 1}, Channel: consent.ChannelApp, Method: consent.MethodExplicit}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return l
}

// budget is the decision's contact budget (-1: none).
func budget(d privguard.Decision) int {
	for _, o := range d.Obligations {
		if o.Kind == privguard.ObligeContactBudget {
			return o.Remaining
		}
	}
	return -1
}

// TestReplicasShareTheLimit: two privguard instances, each with its own Redis client, let
// through two texts a window between them, not two each.
func TestReplicasShareTheLimit(t *testing.T) {
	addr := redisAddr(t)
	p := prefix(t, addr)
	ledger := ledgerWith(t, "cust-1", "cust-2", "cust-3")
	windows := map[string]time.Duration{"sms": time.Hour, "push": time.Hour}
	a := newReplica(t, ledger, counter(t, redislimit.Config{Addr: addr, KeyPrefix: p, Windows: windows}), nil)
	b := newReplica(t, ledger, counter(t, redislimit.Config{Addr: addr, KeyPrefix: p, Windows: windows}), nil)
	for i, r := range []*replica{a, b} {
		if code, body := r.send("/sms/cust-1", ""); code != http.StatusOK {
			t.Fatalf("send %d = %d %s; want 200", i+1, code, body)
		}
	}
	if got := a.rec.last(); budget(got) != 2 {
		t.Errorf("first send's decision = %+v; want a budget of 2 (nobody contacted before)", got)
	}
	if got := b.rec.last(); budget(got) != 1 {
		t.Errorf("second send's decision = %+v; want a budget of 1 (one contact by the other replica)", got)
	}
	code, body := a.send("/sms/cust-1", "")
	if code != http.StatusForbidden || !strings.Contains(body, string(privguard.ReasonFrequencyExceeded)) {
		t.Errorf("third send within the window = %d %s; want 403 frequency.exceeded", code, body)
	}
	if d := a.rec.last(); d.Allowed() || !slices.Equal(d.Reasons, []privguard.Reason{privguard.ReasonFrequencyExceeded}) {
		t.Errorf("recorded %+v; want a deny for frequency.exceeded", d)
	}
	// A batch through the other replica: cust-1 is at the limit, the others are not.
	code, body = b.send("/campaigns/sms", `{"to":["cust-1","cust-2","cust-3"]}`)
	if code != http.StatusOK || !slices.Equal(b.reached[len(b.reached)-2:], []string{"cust-2", "cust-3"}) {
		t.Errorf("batch = %d %s, reached %v; want cust-2 and cust-3 only", code, body, b.reached)
	}
	for range 2 {
		b.send("/campaigns/sms", `{"to":["cust-2","cust-3"]}`)
		a.send("/campaigns/sms", `{"to":["cust-2","cust-3"]}`)
	}
	if n := len(a.reached) + len(b.reached); n != 2+2+2 {
		t.Errorf("%d contacts reached in all: %v %v; want 6 (2 for each of 3 subjects)", n, a.reached, b.reached)
	}
}

// TestConcurrentSendsThroughReplicas: 60 concurrent sends to one subject through three
// instances reach the handler exactly twice.
func TestConcurrentSendsThroughReplicas(t *testing.T) {
	addr := redisAddr(t)
	p := prefix(t, addr)
	ledger := ledgerWith(t, "cust-1")
	windows := map[string]time.Duration{"sms": time.Hour}
	var rs [3]*replica
	for i := range rs {
		rs[i] = newReplica(t, ledger, counter(t, redislimit.Config{Addr: addr, KeyPrefix: p, Windows: windows}), nil)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for i := range 60 {
		wg.Go(func() {
			code, _ := rs[i%3].send("/sms/cust-1", "")
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes[http.StatusOK] != 2 || codes[http.StatusForbidden] != 58 {
		t.Errorf("answers %v; want exactly 2 × 200 and 58 × 403", codes)
	}
	if n := len(rs[0].reached) + len(rs[1].reached) + len(rs[2].reached); n != 2 {
		t.Errorf("the handlers were reached %d times; want 2", n)
	}
}

// TestRedisDown: a channel that denies when the counter is unreachable refuses the send
// (503, reason frequency.unavailable), one that allows lets it through and the decision
// log says it was not counted; both within the timeout.
func TestRedisDown(t *testing.T) {
	ledger := ledgerWith(t, "cust-1", "cust-2")
	const timeout = 150 * time.Millisecond
	c := counter(t, redislimit.Config{Addr: closedAddr(t), Windows: map[string]time.Duration{"sms": time.Hour, "push": time.Hour}, Timeout: timeout})
	r := newReplica(t, ledger, c, map[string]bool{"push": true})
	start := time.Now()
	code, body := r.send("/sms/cust-1", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "frequency-unavailable") || !strings.Contains(body, `"reasons":["frequency.unavailable"]`) {
		t.Errorf("sms (deny) = %d %s; want 503 frequency-unavailable", code, body)
	}
	if d := r.rec.last(); d.Allowed() || !slices.Equal(d.Reasons, []privguard.Reason{privguard.ReasonFrequencyUnavailable}) {
		t.Errorf("sms recorded %+v; want a deny for frequency.unavailable", d)
	}
	code, body = r.send("/campaigns/sms", `{"to":["cust-1","cust-2","nobody"]}`)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"reasons":["consent.missing","frequency.unavailable"]`) {
		t.Errorf("sms batch (deny) = %d %s; want 503 naming frequency.unavailable (and nobody's missing consent)", code, body)
	}
	code, body = r.send("/push/cust-1", "")
	if code != http.StatusOK {
		t.Errorf("push (allow) = %d %s; want 200", code, body)
	}
	if d := r.rec.last(); !d.Allowed() || !slices.Contains(d.Reasons, privguard.ReasonFrequencyUncounted) {
		t.Errorf("push recorded %+v; want an allow marked frequency.uncounted", d)
	}
	if elapsed := time.Since(start); elapsed > 3*timeout {
		t.Errorf("three sends took %s; want them refused or passed within the timeout (%s)", elapsed, timeout)
	}
	if !slices.Equal(r.reached, []string{"cust-1"}) {
		t.Errorf("reached %v; want the push to cust-1 only", r.reached)
	}
}
