package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/middleware"
)

// decisions keeps what a Recorder gets.
type decisions struct {
	mu  sync.Mutex
	all []privguard.Decision
}

func (d *decisions) Record(_ string, _ *privguard.Input, dec *privguard.Decision) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.all = append(d.all, *dec)
}

func (d *decisions) last() privguard.Decision {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.all[len(d.all)-1]
}

// withCounter replaces e's middleware by one counting with c.
func (e *env) withCounter(c middleware.ContactCounter, allowUncounted map[string]bool) *decisions {
	e.t.Helper()
	rec := &decisions{}
	mw, err := middleware.New(middleware.Config{Routes: routes, Decider: mustEngine(e.t), Facts: e.ledger, Regime: privguard.RegimePIPL,
		Contacts: c, AllowUncounted: allowUncounted, Recorder: rec})
	if err != nil {
		e.t.Fatal(err)
	}
	var mu sync.Mutex
	e.handler = mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		e.app(w, r)
	}))
	return rec
}

// TestReservedLimitHoldsUnderConcurrency: 100 pushes to one subject at once get exactly
// the default limit (5 a day) through, each with the budget left before it.
func TestReservedLimitHoldsUnderConcurrency(t *testing.T) {
	e := newEnv(t)
	e.grant("f-1", "marketing.communications.push")
	rec := e.withCounter(middleware.NewContacts(map[string]time.Duration{"push": 24 * time.Hour}, nil), nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	budgets := map[string]int{}
	for range 100 {
		wg.Go(func() {
			r := httptest.NewRequest("POST", "/api/messages", strings.NewReader(`{"customer":"f-1"}`))
			r.Header.Set(middleware.PurposeHeader, "marketing.communications.push")
			w := httptest.NewRecorder()
			e.handler.ServeHTTP(w, r)
			mu.Lock()
			defer mu.Unlock()
			codes[w.Code]++
			if w.Code == http.StatusForbidden && !strings.Contains(w.Body.String(), "frequency.exceeded") {
				t.Errorf("refused with %s; want frequency.exceeded", w.Body)
			}
		})
	}
	wg.Wait()
	if codes[http.StatusOK] != 5 || codes[http.StatusForbidden] != 95 {
		t.Errorf("answers %v; want exactly 5 × 200 (the push limit) and 95 × 403", codes)
	}
	for _, d := range rec.all {
		for _, o := range d.Obligations {
			if o.Kind == privguard.ObligeContactBudget {
				budgets[fmt.Sprint(o.Remaining)]++
			}
		}
	}
	if want := map[string]int{"1": 1, "2": 1, "3": 1, "4": 1, "5": 1}; fmt.Sprint(budgets) != fmt.Sprint(want) {
		t.Errorf("budgets of the allowed sends %v; want 5, 4, 3, 2, 1 once each", budgets)
	}
}

// TestDenyIsNotCounted: a send the policy refuses for another reason takes no contact.
func TestDenyIsNotCounted(t *testing.T) {
	e := newEnv(t)
	c := middleware.NewContacts(map[string]time.Duration{"sms": time.Hour}, nil)
	e.withCounter(c, nil)
	e.grant("f-1", "marketing.communications.sms")
	if w := e.do("POST", "/api/campaigns/1/send", `{"recipients":["f-1","nobody"]}`, nil); w.Code != http.StatusOK {
		t.Fatalf("send = %d %s", w.Code, w.Body)
	}
	if n, m := c.Contacts("f-1", "sms"), c.Contacts("nobody", "sms"); n != 1 || m != 0 {
		t.Errorf("contacts f-1 %d, nobody %d; want 1 and 0 (nobody has no consent and was not sent to)", n, m)
	}
}

// downCounter is a shared counter that cannot be reached.
type downCounter struct{}

var errDown = fmt.Errorf("counter down: %w", privguard.ErrUnavailable)

func (downCounter) Contacts(privguard.SubjectID, string) int { return 1 << 30 }
func (downCounter) AddContact(privguard.SubjectID, string)   {}
func (downCounter) Reserve(context.Context, privguard.SubjectID, string, int) (bool, int, error) {
	return false, 0, errDown
}
func (downCounter) ReserveBatch(context.Context, string, []middleware.Reservation) error {
	return errDown
}

func TestCounterUnavailable(t *testing.T) {
	cases := []struct {
		name    string
		allow   map[string]bool
		code    int
		reasons []privguard.Reason // of the last decision recorded
		body    string
	}{
		{name: "deny_channel_refuses", code: http.StatusServiceUnavailable,
			reasons: []privguard.Reason{privguard.ReasonFrequencyUnavailable}, body: `"reasons":["consent.missing","frequency.unavailable"]`},
		{name: "allow_channel_sends_uncounted", allow: map[string]bool{"sms": true}, code: http.StatusOK,
			reasons: []privguard.Reason{"allow", privguard.ReasonFrequencyUncounted}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.grant("f-1", "marketing.communications.sms")
			e.grant("f-1", "marketing.communications.email")
			rec := e.withCounter(downCounter{}, tc.allow)
			w := e.do("POST", "/api/campaigns/1/send", `{"recipients":["nobody","f-1"]}`, nil)
			if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.body) {
				t.Errorf("batch = %d %s; want %d with %s", w.Code, w.Body, tc.code, tc.body)
			}
			if d := rec.last(); !slices.Equal(d.Reasons, tc.reasons) {
				t.Errorf("batch: f-1 recorded %v; want %v", d.Reasons, tc.reasons)
			}
			if tc.code == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			// One subject: email has no AllowUncounted in either case.
			w = e.do("POST", "/api/messages", `{"customer":"f-1"}`, map[string]string{middleware.PurposeHeader: "marketing.communications.email"})
			if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "urn:privguard:problem:frequency-unavailable") {
				t.Errorf("email = %d %s; want 503 frequency-unavailable", w.Code, w.Body)
			}
			// A route without a channel never asks the counter.
			e.grant("f-1", "personalize.recommendation")
			if w := e.do("GET", "/api/profiles/f-1", "", nil); w.Code != http.StatusOK {
				t.Errorf("profile = %d %s; want 200 (no channel, no count)", w.Code, w.Body)
			}
		})
	}
}

func TestContactsReserve(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	c := middleware.NewContacts(map[string]time.Duration{"sms": time.Hour}, func() time.Time { return now })
	for i, want := range []bool{true, true, false, false} {
		if ok, n, err := c.Reserve(ctx, "s", "sms", 2); ok != want || n != min(i, 2) || err != nil {
			t.Errorf("Reserve %d = %v, %d, %v; want %v, %d", i+1, ok, n, err, want, min(i, 2))
		}
	}
	if ok, n, _ := c.Reserve(ctx, "s", "sms", -1); !ok || n != 2 {
		t.Errorf("Reserve without a limit = %v, %d; want granted at 2", ok, n)
	}
	if ok, n, _ := c.Reserve(ctx, "s", "fax", 0); !ok || n != 0 {
		t.Errorf("Reserve on an uncounted channel = %v, %d; want granted at 0", ok, n)
	}
	now = now.Add(61 * time.Minute)
	rs := []middleware.Reservation{{Subject: "s", Limit: 1}, {Subject: "t", Limit: 0}}
	if err := c.ReserveBatch(ctx, "sms", rs); err != nil || !rs[0].Granted || rs[0].Count != 0 || rs[1].Granted {
		t.Errorf("ReserveBatch after the window = %+v, %v; want s granted at 0, t refused", rs, err)
	}
}

// BenchmarkContactsReserve: the embedded counter's reservation, over 10,000 subjects (the
// policy's limit never reached: every call adds).
func BenchmarkContactsReserve(b *testing.B) {
	c := middleware.NewContacts(map[string]time.Duration{"sms": time.Hour}, nil)
	ids := make([]privguard.SubjectID, 10_000)
	for i := range ids {
		ids[i] = privguard.SubjectID(fmt.Sprintf("c-%d", i))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, _, err := c.Reserve(ctx, ids[i%len(ids)], "sms", 1<<20); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
