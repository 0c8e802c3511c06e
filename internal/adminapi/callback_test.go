package adminapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/internal/adminapi"
)

// asyncStore is a store that takes callbacks; none is authentic.
type asyncStore struct{ rowsStore }

func (asyncStore) Name() string { return "vendor" }
func (asyncStore) ParseCallback(string, []byte) (dsar.Completion, error) {
	return dsar.Completion{}, errors.New("bad signature")
}

// ackRecipient is a recipient that takes callbacks.
type ackRecipient struct{}

func (ackRecipient) Name() string                                                { return "ads" }
func (ackRecipient) NotifyRecipient(context.Context, dsar.RecipientNotice) error { return nil }
func (ackRecipient) ParseCallback(string, []byte) (dsar.Completion, error) {
	return dsar.Completion{}, errors.New("bad signature")
}

// countingBody yields n bytes without holding them, counting what was read; with gate
// set, it blocks before the first byte until the gate is closed.
type countingBody struct {
	n, read int64
	gate    chan struct{}
	started chan struct{}
	once    sync.Once
	total   *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	if b.gate != nil {
		b.once.Do(func() { close(b.started) })
		<-b.gate
	}
	if b.read >= b.n {
		return 0, io.EOF
	}
	k := min(int64(len(p)), b.n-b.read)
	for i := range p[:k] {
		p[i] = 'x'
	}
	b.read += k
	if b.total != nil {
		b.total.Add(k)
	}
	return int(k), nil
}

func newCallbackAPI(t *testing.T, maxBody, budget int64) http.Handler {
	t.Helper()
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "p.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	eng, err := dsar.New(dsar.Config{Store: db.DSAR(), Connectors: []dsar.Connector{rowsStore{}, asyncStore{}},
		Recipients: []dsar.RecipientNotifier{ackRecipient{}}})
	if err != nil {
		t.Fatal(err)
	}
	tokens := adminapi.Tokens{}
	tokens.Add(token, adminapi.Principal{Name: "x", Roles: []string{"admin"}})
	api, err := adminapi.New(adminapi.Config{Ledger: consenttest.Open(t, "", consent.Config{}), Tokens: tokens, Requests: eng,
		MaxCallbackBody: maxBody, CallbackBudget: budget})
	if err != nil {
		t.Fatal(err)
	}
	return api
}

func TestCallbacksBoundWhatTheyRead(t *testing.T) {
	// A callback is read before its signature can be checked. What an unauthenticated
	// caller makes privguard read is bounded: nothing for a name that takes no callbacks
	// or a request without a signature, a few KB for a recipient's acknowledgement, the
	// configured cap for a store's report.
	const huge = 60 << 20
	api := newCallbackAPI(t, 1<<20, 0)
	for _, tc := range []struct {
		name, store, sig string
		declared         bool // Content-Length set
		status           int
		maxRead          int64
	}{
		{"unknown name", "nope", "t=1,v1=00", true, 404, 0},
		{"unknown name, chunked", "nope", "t=1,v1=00", false, 404, 0},
		{"a store without callbacks", "crm", "t=1,v1=00", false, 404, 0},
		{"no signature", "vendor", "", false, 401, 0},
		{"declared over the store's cap", "vendor", "t=1,v1=00", true, 413, 0},
		{"chunked over the store's cap", "vendor", "t=1,v1=00", false, 413, 1<<20 + 64<<10},
		{"chunked over a recipient's cap", "recipient:ads", "t=1,v1=00", false, 413, adminapi.MaxAckCallback + 64<<10},
		{"declared over a recipient's cap", "recipient:ads", "t=1,v1=00", true, 413, 0},
	} {
		body := &countingBody{n: huge}
		req := httptest.NewRequest("POST", "/v1/callbacks/"+tc.store, body)
		req.ContentLength = -1
		if tc.declared {
			req.ContentLength = huge
		}
		if tc.sig != "" {
			req.Header.Set("Privguard-Signature", tc.sig)
		}
		w := httptest.NewRecorder()
		api.ServeHTTP(w, req)
		if w.Code != tc.status || w.Header().Get("Content-Type") != privguard.ProblemContentType {
			t.Errorf("%s: %d %s; want a %d problem", tc.name, w.Code, w.Body, tc.status)
		}
		if body.read > tc.maxRead {
			t.Errorf("%s: read %d bytes of the body; want at most %d", tc.name, body.read, tc.maxRead)
		}
	}
	// Within the caps, a callback is read and judged on its signature.
	for _, store := range []string{"vendor", "recipient:ads"} {
		req := httptest.NewRequest("POST", "/v1/callbacks/"+store, &countingBody{n: 1000})
		req.Header.Set("Privguard-Signature", "t=1,v1=00")
		w := httptest.NewRecorder()
		api.ServeHTTP(w, req)
		if w.Code != 401 {
			t.Errorf("%s: a small forged callback: %d %s; want 401", store, w.Code, w.Body)
		}
	}
}

func TestCallbacksInFlightAreBounded(t *testing.T) {
	// Callbacks being read at once hold at most the budget: two slow store callbacks of
	// the largest size fill it, and a third is answered 503 at once, before it is read.
	api := newCallbackAPI(t, 1<<20, 2<<20)
	gate := make(chan struct{})
	var total atomic.Int64
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range 2 {
		body := &countingBody{n: 1000, gate: gate, started: make(chan struct{}), total: &total}
		req := httptest.NewRequest("POST", "/v1/callbacks/vendor", body)
		req.ContentLength = -1 // unknown length: the whole cap is reserved
		req.Header.Set("Privguard-Signature", "t=1,v1=00")
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := httptest.NewRecorder()
			api.ServeHTTP(w, req)
			codes[i] = w.Code
		}()
		select {
		case <-body.started:
		case <-time.After(10 * time.Second):
			t.Fatal("the callback body was never read")
		}
	}
	third := &countingBody{n: 1000}
	req := httptest.NewRequest("POST", "/v1/callbacks/recipient:ads", third)
	req.Header.Set("Privguard-Signature", "t=1,v1=00")
	w := httptest.NewRecorder()
	api.ServeHTTP(w, req)
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || third.read != 0 {
		t.Errorf("a third callback while the budget is held: %d Retry-After %q, read %d; want 503 with Retry-After, nothing read",
			w.Code, w.Header().Get("Retry-After"), third.read)
	}
	close(gate)
	wg.Wait()
	if codes[0] != 401 || codes[1] != 401 {
		t.Errorf("the held callbacks ended %v; want 401 (not authentic)", codes)
	}
	// The budget is given back.
	req = httptest.NewRequest("POST", "/v1/callbacks/recipient:ads", &countingBody{n: 1000})
	req.Header.Set("Privguard-Signature", "t=1,v1=00")
	w = httptest.NewRecorder()
	api.ServeHTTP(w, req)
	if w.Code != 401 {
		t.Errorf("after the held callbacks ended: %d; want 401", w.Code)
	}
}
