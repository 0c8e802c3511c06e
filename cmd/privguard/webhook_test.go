package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/privguard/privguard/connector/webhook"
)

// TestWebhookStoreEndToEnd runs serve with a SaaS tool behind a webhook store: the tool
// accepts the erasure (202), does it, and reports back with a signed callback to the path
// it was given; the request completes only then. A callback with a bad signature is
// refused with 401.
func TestWebhookStoreEndToEnd(t *testing.T) {
	// A SaaS store's erasure is tracked to its confirmation.
	secret := []byte("email-vendor-shared-secret-0123456789ab")
	vendorURL, calls := signedVendor(t, secret, http.StatusAccepted, "")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "vendor.secret"), secret, 0o600)
	cfg := filepath.Join(dir, "privguard.yaml")
	os.WriteFile(cfg, []byte(`admin_listen: 127.0.0.1:0
data: `+dir+`
dsar:
  stores:
    - {name: email-vendor, type: webhook, webhook: {url: "`+vendorURL+`", secret_file: "`+filepath.Join(dir, "vendor.secret")+`"}}
`), 0o600)
	url, tok, stop, _ := startServe(t, dir, "--config", cfg)
	defer stop()
	st, r := callJSON(t, url, tok, "POST", "/v1/requests", `{"type":"deletion","subject":"cust-7","identity":{"method":"operator","note":"desk"}}`)
	id, _ := r["id"].(string)
	if st != 201 {
		t.Fatalf("submit: %d %v", st, r)
	}
	var call webhook.Call
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && call.ID == ""; time.Sleep(100 * time.Millisecond) {
		if got := calls(); len(got) > 0 {
			call = got[0]
		}
	}
	if call.Op != webhook.OpErase || call.Subject != "cust-7" || call.Callback != "/v1/callbacks/email-vendor" {
		t.Fatalf("the vendor got %+v", call)
	}
	// The vendor has the call; the round records its 202 when it writes the request, so
	// wait for the state rather than assume the write came first.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, r = callJSON(t, url, tok, "GET", "/v1/requests/"+id, ""); r["state"] != "verified" {
			break
		}
	}
	if r["state"] != "in_progress" {
		t.Errorf("while the vendor works: %v; want in_progress", r["state"])
	}
	post := func(sig string, body []byte) int {
		req, _ := http.NewRequest("POST", url+call.Callback, bytes.NewReader(body))
		req.Header.Set(webhook.SignatureHeader, sig)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	done, _ := json.Marshal(webhook.Callback{ID: call.ID, Request: call.Request, Op: call.Op, Status: "done", Items: 4})
	if st := post(webhook.Sign([]byte("not-the-vendor-secret-0123456789abcdef"), done, time.Now()), done); st != 401 {
		t.Errorf("forged callback: %d; want 401", st)
	}
	if st := post(webhook.Sign(secret, done, time.Now()), done); st != 204 {
		t.Fatalf("callback: %d; want 204", st)
	}
	r = awaitCompleted(t, url, tok, id)
	if b, _ := json.Marshal(r["tasks"]); !strings.Contains(string(b), `"items":4`) {
		t.Errorf("tasks %s", b)
	}
}
