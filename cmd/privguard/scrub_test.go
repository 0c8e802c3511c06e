package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// TestErasureLeavesNoCorrectedValue: a subject's correction completes, then its erasure;
// afterwards the old correction request, read through the API (by an app token) and after
// a restart, no longer shows the new value nor the operator's notes, and after `keys
// compact` the data file holds none of them.
func TestErasureLeavesNoCorrectedValue(t *testing.T) {
	secret := []byte("crm-vendor-shared-secret-0123456789abcdef")
	vendorURL, _ := signedVendor(t, secret, http.StatusOK, `{"status":"done","items":1}`)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "vendor.secret"), secret, 0o600)
	cfg := filepath.Join(dir, "privguard.yaml")
	os.WriteFile(cfg, []byte(`admin_listen: 127.0.0.1:0
data: `+dir+`
dsar:
  stores:
    - {name: crm-vendor, type: webhook, webhook: {url: "`+vendorURL+`", secret_file: "`+filepath.Join(dir, "vendor.secret")+`"}}
`), 0o600)
	const (
		newEmail = "scrub.li.lei.new@example.com"
		idNote   = "scrub: ID card 110101199003070011 at the desk"
		okNote   = "scrub: matches the invoice to 88 Nanjing Road"
	)
	secrets := []string{newEmail, idNote, okNote}
	url, tok, stop, _ := startServe(t, dir, "--config", cfg)
	body, _ := json.Marshal(map[string]any{"type": "correction", "subject": "scrub-1", "regime": "pipl",
		"identity": map[string]string{"method": "operator", "note": idNote}, "patch": map[string]string{"user.contact.email": newEmail}})
	st, r := callJSON(t, url, tok, "POST", "/v1/requests", string(body))
	corr, _ := r["id"].(string)
	if st != 201 {
		t.Fatalf("submit correction: %d %v", st, r)
	}
	if st, r := callJSON(t, url, tok, "POST", "/v1/requests/"+corr+"/approve", `{"note":"`+okNote+`"}`); st != 200 {
		t.Fatalf("approve: %d %v", st, r)
	}
	awaitCompleted(t, url, tok, corr)
	st, r = callJSON(t, url, tok, "POST", "/v1/requests", `{"type":"deletion","subject":"scrub-1","regime":"pipl","identity":{"method":"operator","note":"desk"}}`)
	del, _ := r["id"].(string)
	if st != 201 {
		t.Fatalf("submit deletion: %d %v", st, r)
	}
	awaitCompleted(t, url, tok, del)
	shows := func(when string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url+"/v1/requests/"+corr, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s, GET of the correction shows %q: %s", when, s, b)
			}
		}
		if !bytes.Contains(b, []byte(`"user.contact.email":"[erased]"`)) {
			t.Errorf("%s, the correction lost the patch's category: %s", when, b)
		}
	}
	shows("after the erasure")
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}

	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"keys", "compact", "--data", dir}, func(string) string { return "" }, &out, &errOut); code != 0 {
		t.Fatalf("keys compact: %d %s", code, errOut.String())
	}
	raw, err := os.ReadFile(filepath.Join(dir, "privguard.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("the compacted data file holds %q", s)
		}
	}
	url, tok, stop, _ = startServe(t, dir, "--config", cfg)
	defer stop()
	shows("after a restart")
}
