package webhook_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/connector/webhook"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/dsar/dsartest"
)

var secret = []byte("vendor-shared-secret-0123456789abcdef")

// vendor is a SaaS tool's privacy endpoint: it keeps rows per subject, checks every
// signature, and in async mode accepts work (202) and finishes it when told.
type vendor struct {
	mu       sync.Mutex
	rows     map[privguard.SubjectID][]string
	async    bool
	status   int // forced answer status, if set
	calls    []webhook.Call
	keys     map[string]int // idempotency keys seen
	pending  []webhook.Call
	notices  []dsar.RecipientNotice
	badSigs  int
	redirect bool
}

func newVendor() *vendor {
	return &vendor{rows: map[privguard.SubjectID][]string{}, keys: map[string]int{}}
}

func (v *vendor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, time.Now()); err != nil {
		v.mu.Lock()
		v.badSigs++
		v.mu.Unlock()
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var c webhook.Call
	if err := json.Unmarshal(body, &c); err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls = append(v.calls, c)
	v.keys[r.Header.Get("Idempotency-Key")]++
	switch {
	case v.redirect:
		http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", http.StatusTemporaryRedirect)
		return
	case v.status != 0:
		w.WriteHeader(v.status)
		return
	case c.Op == webhook.OpCorrect && c.Patch["user.contact.email"] == "":
		http.Error(w, "unknown category", http.StatusUnprocessableEntity) // this vendor holds emails only
		return
	case v.async:
		v.pending = append(v.pending, c)
		w.WriteHeader(http.StatusAccepted)
		return
	}
	json.NewEncoder(w).Encode(v.do(c))
}

// do performs a call on the vendor's data.
func (v *vendor) do(c webhook.Call) webhook.Answer {
	switch c.Op {
	case webhook.OpExport:
		t := dsar.Table{Name: "contacts", Categories: map[string]privguard.DataCategory{"email": "user.contact.email"}, Rows: []map[string]any{}}
		for _, r := range v.rows[c.Subject] {
			t.Rows = append(t.Rows, map[string]any{"email": r})
		}
		return webhook.Answer{Status: "done", Items: len(t.Rows), Tables: []dsar.Table{t}}
	case webhook.OpErase:
		n := len(v.rows[c.Subject])
		delete(v.rows, c.Subject)
		return webhook.Answer{Status: "done", Items: n}
	case webhook.OpCorrect:
		n := 0
		if val, ok := c.Patch["user.contact.email"]; ok {
			for i := range v.rows[c.Subject] {
				v.rows[c.Subject][i], n = val, n+1
			}
		}
		return webhook.Answer{Status: "done", Items: n}
	case webhook.OpNotify:
		v.notices = append(v.notices, *c.Notice)
		return webhook.Answer{Status: "done", Items: 1}
	}
	return webhook.Answer{Status: "unknown-op"}
}

func (v *vendor) Seed(_ context.Context, s privguard.SubjectID, n int, value string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	for i := range n {
		v.rows[s] = append(v.rows[s], fmt.Sprintf("%s-%d", value, i))
	}
	return nil
}

func (v *vendor) Remaining(_ context.Context, s privguard.SubjectID) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.rows[s]), nil
}

func newConnector(t *testing.T, url string) *webhook.Connector {
	t.Helper()
	c, err := webhook.New(webhook.Config{Name: "email-vendor", URL: url, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConformance(t *testing.T) {
	v := newVendor()
	srv := httptest.NewServer(v)
	defer srv.Close()
	dsartest.TestConnector(t, newConnector(t, srv.URL), v)
	if v.badSigs != 0 {
		t.Errorf("%d calls had a bad signature", v.badSigs)
	}
	for _, c := range v.calls {
		if c.Subject == "x'--" && !strings.Contains(c.ID, ":email-vendor:") {
			t.Errorf("call id %q", c.ID)
		}
	}
}

func TestFailuresAreErrorsWithoutDetail(t *testing.T) {
	v := newVendor()
	srv := httptest.NewServer(v)
	defer srv.Close()
	c := newConnector(t, srv.URL)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		setup func()
	}{
		{"server error", func() { v.status = 500 }},
		{"not found is not done", func() { v.status = 404 }},
		{"redirect not followed", func() { v.status, v.redirect = 0, true }},
	} {
		tc.setup()
		_, err := c.Erase(ctx, "cust-1")
		var ce *dsar.ConnectorError
		if !errors.As(err, &ce) || ce.Op != "erase" || strings.Contains(err.Error(), "cust-1") {
			t.Errorf("%s: %v; want a ConnectorError naming the op, not the subject", tc.name, err)
		}
	}
	// An oversized answer is refused.
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte(" "), 2048))
	}))
	defer big.Close()
	small, _ := webhook.New(webhook.Config{Name: "v", URL: big.URL, Secret: secret, MaxResponse: 1024})
	if _, err := small.Export(ctx, "cust-1"); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized answer: %v", err)
	}
	// A table with an invalid category is refused (it could not be disclosed truthfully).
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"status":"done","tables":[{"name":"t","categories":{"c":"NOT A CATEGORY"},"rows":[]}]}`)
	}))
	defer bad.Close()
	if _, err := newConnector(t, bad.URL).Export(ctx, "cust-1"); err == nil {
		t.Error("an invalid category in an answer was accepted")
	}
}

func TestNewRefusesUnsafeConfig(t *testing.T) {
	for _, cfg := range []webhook.Config{
		{Name: "v", URL: "http://vendor.example.com/privacy", Secret: secret}, // clear text off loopback
		{Name: "v", URL: "https://vendor.example.com/privacy", Secret: []byte("short")},
		{Name: "v", URL: "/relative", Secret: secret},
		{URL: "https://vendor.example.com/privacy", Secret: secret},
	} {
		if _, err := webhook.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg.URL)
		}
	}
	if _, err := webhook.New(webhook.Config{Name: "v", URL: "https://vendor.example.com/privacy", Secret: secret}); err != nil {
		t.Error(err)
	}
}

func TestSignature(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"request":"r1","status":"done"}`)
	sig := webhook.Sign(secret, body, now)
	if err := webhook.Verify(secret, sig, body, now.Add(time.Minute)); err != nil {
		t.Errorf("valid signature: %v", err)
	}
	rotated := sig + ",v1=" + strings.Repeat("ab", 32)
	if err := webhook.Verify(secret, rotated, body, now); err != nil {
		t.Errorf("signature among several: %v", err)
	}
	for name, tc := range map[string]struct {
		secret []byte
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		"tampered body": {secret, sig, []byte(`{"request":"r2","status":"done"}`), now, webhook.ErrBadSignature},
		"other secret":  {[]byte("another-secret-0123456789abcdefghij"), sig, body, now, webhook.ErrBadSignature},
		"replayed late": {secret, sig, body, now.Add(webhook.Tolerance + time.Second), webhook.ErrStale},
		"from future":   {secret, sig, body, now.Add(-webhook.Tolerance - time.Second), webhook.ErrStale},
		"missing":       {secret, "", body, now, webhook.ErrNoSignature},
		"garbage":       {secret, "t=abc,v1=zz", body, now, webhook.ErrNoSignature},
	} {
		if err := webhook.Verify(tc.secret, tc.header, tc.body, tc.now); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v; want %v", name, err, tc.want)
		}
	}
}

// TestAsyncCompletionThroughEngine: the vendor accepts an erasure (202) and reports it
// done by a signed callback; the request completes only then.
func TestAsyncCompletionThroughEngine(t *testing.T) {
	// proves DSR-11: the recipient is told of the erasure and its acknowledgement is tracked.
	ctx := context.Background()
	v, r := newVendor(), newVendor()
	v.async, r.async = true, true
	v.Seed(ctx, "cust-1", 2, "li.lei@example.com")
	srv, rsrv := httptest.NewServer(v), httptest.NewServer(r)
	defer srv.Close()
	defer rsrv.Close()
	recipient, err := webhook.New(webhook.Config{Name: "ad-platform", URL: rsrv.URL, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "p.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	erased := 0
	e, err := dsar.New(dsar.Config{Store: db.DSAR(), Connectors: []dsar.Connector{newConnector(t, srv.URL)},
		Recipients: []dsar.RecipientNotifier{recipient},
		OnErased:   func(context.Context, privguard.SubjectID) error { erased++; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	req, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "cust-1", Regime: privguard.RegimeGDPR, Identity: &dsar.Identity{Method: "token"}})
	if err != nil {
		t.Fatal(err)
	}
	e.Step(ctx)
	got, _ := e.Get(ctx, req.ID)
	if got.State != dsar.StateInProgress || got.Tasks[0].State != dsar.TaskWaiting || got.Tasks[1].State != dsar.TaskWaiting || erased != 0 {
		t.Fatalf("after 202s: %s %+v, erased %d; want in progress, both waiting", got.State, got.Tasks, erased)
	}
	// The calls name their task and where to report.
	v.mu.Lock()
	call := v.pending[0]
	v.mu.Unlock()
	if call.ID != req.ID+":email-vendor:erase" || call.Callback != "/v1/callbacks/email-vendor" || call.Store != "email-vendor" {
		t.Errorf("store call %+v", call)
	}
	r.mu.Lock()
	note := r.pending[0]
	r.mu.Unlock()
	if note.ID != req.ID+":recipient:ad-platform:notify" || note.Callback != "/v1/callbacks/recipient:ad-platform" {
		t.Errorf("recipient call %+v", note)
	}
	// The recipient's acknowledgement (same secret here) sent to the store's path must not
	// complete the store's erasure.
	ackWrong, _ := json.Marshal(webhook.Callback{ID: note.ID, Request: req.ID, Op: webhook.OpNotify, Status: "done", Items: 1})
	if err := e.Complete(ctx, "email-vendor", webhook.Sign(secret, ackWrong, time.Now()), ackWrong); !errors.Is(err, dsar.ErrBadCallback) {
		t.Errorf("another task's callback on the store's path: %v", err)
	}
	// A forged callback changes nothing.
	done, _ := json.Marshal(webhook.Callback{ID: call.ID, Request: req.ID, Op: webhook.OpErase, Status: "done", Items: 2})
	if err := e.Complete(ctx, "email-vendor", webhook.Sign([]byte("attacker-secret-0123456789abcdefgh"), done, time.Now()), done); !errors.Is(err, dsar.ErrBadCallback) {
		t.Errorf("forged callback: %v", err)
	}
	// The vendor does the work, then calls back.
	v.mu.Lock()
	v.do(call)
	v.mu.Unlock()
	if err := e.Complete(ctx, "email-vendor", webhook.Sign(secret, done, time.Now()), done); err != nil {
		t.Fatal(err)
	}
	e.Step(ctx)
	got, _ = e.Get(ctx, req.ID)
	if got.Tasks[0].State != dsar.TaskDone || got.Tasks[0].Items != 2 || erased != 1 || got.State != dsar.StateInProgress {
		t.Fatalf("after the store's callback: %s %+v erased %d; want store done, keys shredded, still waiting for the recipient", got.State, got.Tasks, erased)
	}
	// The recipient acknowledges the notice.
	if len(r.pending) != 1 || r.pending[0].Notice == nil || r.pending[0].Notice.Event != "erasure" {
		t.Fatalf("recipient got %+v", r.pending)
	}
	ack, _ := json.Marshal(webhook.Callback{ID: note.ID, Request: req.ID, Op: webhook.OpNotify, Status: "done", Items: 1})
	if err := e.Complete(ctx, "recipient:ad-platform", webhook.Sign(secret, ack, time.Now()), ack); err != nil {
		t.Fatal(err)
	}
	// A resent callback is accepted and changes nothing.
	if err := e.Complete(ctx, "recipient:ad-platform", webhook.Sign(secret, ack, time.Now()), ack); err != nil {
		t.Errorf("resent callback: %v", err)
	}
	e.Step(ctx)
	if got, _ = e.Get(ctx, req.ID); got.State != dsar.StateCompleted || erased != 1 {
		t.Errorf("after both callbacks: %s, erased %d", got.State, erased)
	}
	if n, _ := v.Remaining(ctx, "cust-1"); n != 0 {
		t.Errorf("%d vendor rows remain", n)
	}
}

// TestPendingWorkIsAskedAgain: without a callback, the engine asks again after
// PendingRecheck with the same idempotency key, and a 200 then finishes the task.
func TestPendingWorkIsAskedAgain(t *testing.T) {
	ctx := context.Background()
	v := newVendor()
	v.async = true
	v.Seed(ctx, "cust-1", 1, "x")
	srv := httptest.NewServer(v)
	defer srv.Close()
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "p.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	e, _ := dsar.New(dsar.Config{Store: db.DSAR(), Connectors: []dsar.Connector{newConnector(t, srv.URL)}, Now: func() time.Time { return now }})
	req, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "cust-1", Regime: privguard.RegimeGDPR, Identity: &dsar.Identity{Method: "token"}})
	e.Step(ctx)
	e.Step(ctx) // not due yet: no second call
	if len(v.calls) != 1 {
		t.Fatalf("%d calls before the recheck; want 1", len(v.calls))
	}
	v.async = false
	now = now.Add(dsar.PendingRecheck + time.Second)
	e.Step(ctx)
	if got, _ := e.Get(ctx, req.ID); got.State != dsar.StateCompleted {
		t.Errorf("after the recheck: %s", got.State)
	}
	if len(v.keys) != 1 {
		t.Errorf("idempotency keys %v; want the same key on the recheck", v.keys)
	}
}

func TestReceivePackageIsSigned(t *testing.T) {
	zip := []byte("PK\x03\x04 pretend zip")
	sum := sha256.Sum256(zip)
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Content-Type") != "application/zip" || r.Header.Get("X-Privguard-Request") != "req-1" ||
			webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, time.Now()) != nil {
			http.Error(w, "refused", http.StatusUnauthorized)
			return
		}
		got = body
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	c := newConnector(t, srv.URL)
	if err := c.ReceivePackage(context.Background(), "req-1", zip, hex.EncodeToString(sum[:])); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, zip) {
		t.Error("the receiver did not get the package")
	}
	bad, _ := webhook.New(webhook.Config{Name: "x", URL: srv.URL, Secret: []byte("another-secret-0123456789abcdefghij")})
	if err := bad.ReceivePackage(context.Background(), "req-1", zip, hex.EncodeToString(sum[:])); err == nil {
		t.Error("a refused transfer was reported delivered")
	}
}

// TestFailuresHaveKinds: how a webhook store failed is named by the HTTP status or the
// network error, never by the answer's text.
func TestFailuresHaveKinds(t *testing.T) {
	answer := func(status int, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			io.WriteString(w, body)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close() // nothing listens there any more
	for _, tc := range []struct {
		name, url string
		want      dsar.ErrorKind
	}{
		{"refused", gone.URL, dsar.KindConnectionRefused},
		{"unauthorized", answer(http.StatusUnauthorized, "bad signature for o'brien@example.com"), dsar.KindAuthFailed},
		{"gateway_timeout", answer(http.StatusGatewayTimeout, ""), dsar.KindTimeout},
		{"server_error", answer(http.StatusInternalServerError, ""), dsar.KindBadAnswer},
		{"not_json", answer(http.StatusOK, "<html>"), dsar.KindBadAnswer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newConnector(t, tc.url).Erase(context.Background(), "kind-1")
			if k := dsar.KindOf(err); k != tc.want {
				t.Errorf("Erase: %v (kind %q); want %s", err, k, tc.want)
			}
		})
	}
}
