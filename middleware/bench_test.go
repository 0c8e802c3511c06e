package middleware_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/middleware"
	"github.com/privguard/privguard/policy"
)

// benchEnv is a ledger with n subjects granted SMS and recommendation consent, and the
// middleware in front of a handler.
func benchEnv(b *testing.B, n int) (*consent.Ledger, func(http.Handler) http.Handler) {
	b.Helper()
	l := consenttest.Open(b, "", consent.Config{})
	if _, _, err := l.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		b.Fatal(err)
	}
	errs := make(chan error, 64)
	work := make(chan int, 1024)
	for range 64 {
		go func() {
			var err error
			for i := range work {
				for _, p := range []privguard.Purpose{"marketing.communications.sms", "personalize.recommendation"} {
					if _, _, e := l.Append(ctx, consent.Request{Subject: privguard.SubjectID(fmt.Sprintf("c-%d", i)), Purpose: p,
						Action: consent.ActionGrant, Regime: privguard.RegimePIPL, Notice: &consent.NoticeRef{ID: "marketing", Version: 1},
						Channel: consent.ChannelApp, Method: consent.MethodExplicit}); e != nil {
						err = e
					}
				}
			}
			errs <- err
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	for range 64 {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	engine, err := policy.New(ctx, policy.Config{})
	if err != nil {
		b.Fatal(err)
	}
	// As the sidecar runs it: strict paths, unmatched requests denied.
	wrap, err := middleware.New(middleware.Config{Routes: routes, Decider: engine, Facts: l, Regime: privguard.RegimePIPL,
		StrictPaths: true, DenyUnmatched: true})
	if err != nil {
		b.Fatal(err)
	}
	return l, wrap
}

func profileHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"id":"c-1","email":"li.lei@example.com","phone":"13812345678","history":["p1","p2"],"tags":[{"name":"vip"}],"recommendations":["a","b","c"]}`))
}

// BenchmarkProfile compares the bare handler with the wrapped one (warm decision, response
// minimised), in process, side by side.
func BenchmarkProfile(b *testing.B) {
	_, wrap := benchEnv(b, 1000)
	bare := http.HandlerFunc(profileHandler)
	wrapped := wrap(bare)
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"bare", bare}, {"wrapped", wrapped}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r := httptest.NewRequest("GET", "/api/profiles/c-"+fmt.Sprint(i%1000), nil)
				w := httptest.NewRecorder()
				c.h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
				i++
			}
		})
	}
}

// BenchmarkCampaignBatch filters a send to 100,000 recipients (80,000 consented).
func BenchmarkCampaignBatch(b *testing.B) {
	if testing.Short() {
		b.Skip("builds an 80,000-subject ledger")
	}
	_, wrap := benchEnv(b, 80_000)
	ids := make([]string, 100_000)
	for i := range ids {
		ids[i] = fmt.Sprintf("c-%d", i)
	}
	body, _ := json.Marshal(map[string]any{"recipients": ids, "text": "Sale!"})
	// The handler only reads the body and counts the recipients, so that the figure is the
	// filter's cost, not the application's own JSON decoding.
	var kept int
	h := wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		kept = bytes.Count(b, []byte(`"c-`))
	}))
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/api/campaigns/1/send", strings.NewReader(string(body)))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK || kept != 80_000 {
			b.Fatalf("status %d kept %d", w.Code, kept)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/batch")
}

// profileBody returns a JSON profile of about size bytes: personal fields the
// recommendation purpose must not see, and a browsing history it may.
func profileBody(size int) []byte {
	history := []string{}
	n := 0
	for n < size {
		h := fmt.Sprintf("sku-%08d", len(history))
		history = append(history, h)
		n += len(h) + 3
	}
	b, _ := json.Marshal(map[string]any{"id": "c-1", "email": "li.lei@example.com", "phone": "13812345678",
		"history": history, "tags": []map[string]any{{"name": "vip", "score": 3}}})
	return b
}

// BenchmarkMinimise prices response minimisation: bare vs wrapped for 1 KB, 10 KB and 1 MB
// profiles.
func BenchmarkMinimise(b *testing.B) {
	_, wrap := benchEnv(b, 10)
	for _, size := range []int{1 << 10, 10 << 10, 1 << 20} {
		body := profileBody(size)
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		})
		for _, c := range []struct {
			name string
			h    http.Handler
		}{{"bare", h}, {"wrapped", wrap(h)}} {
			b.Run(fmt.Sprintf("size=%dKB/%s", size>>10, c.name), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					w := httptest.NewRecorder()
					c.h.ServeHTTP(w, httptest.NewRequest("GET", "/api/profiles/c-1", nil))
					if w.Code != http.StatusOK {
						b.Fatalf("status %d", w.Code)
					}
				}
			})
		}
	}
}

// BenchmarkHostile prices what attackers can send: a huge subject header, and a batch body
// nested 10,000 levels deep. Both must be refused cheaply.
func BenchmarkHostile(b *testing.B) {
	_, wrap := benchEnv(b, 10)
	h := wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { b.Fatal("handler called") }))
	huge := strings.Repeat("x", 60<<10)
	deep := `{"recipients":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`
	b.Run("huge_subject_header", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := httptest.NewRequest("GET", "/api/ads", nil)
			r.Header.Set("X-Customer", huge)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusBadRequest {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
	b.Run("deeply_nested_batch", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("POST", "/api/campaigns/1/send", strings.NewReader(deep)))
			if w.Code != http.StatusBadRequest {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
}
