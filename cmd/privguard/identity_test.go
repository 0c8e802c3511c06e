package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A deletion that completes removes the subject's identity links; the erasure stays
// recorded in the consent ledger (its suppression entry is the ledger's, untouched), and
// the phone no longer names the subject.
func TestErasureRemovesIdentityLinks(t *testing.T) {
	dir := t.TempDir()
	url, tok, stop, _ := startServe(t, dir)
	defer stop()
	call := func(method, path, body string) (int, map[string]any) {
		return callJSON(t, url, tok, method, path, body)
	}
	for _, body := range []string{`{"type":"phone","value":"+86 139 0013 9001","verified":true}`, `{"type":"email","value":"gone@example.com"}`,
		`{"type":"wechat_openid","value":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}`} {
		if st, out := call("POST", "/v1/subjects/era-1/identifiers", body); st != 201 {
			t.Fatalf("link %s: %d %v", body, st, out)
		}
	}
	if st, out := call("POST", "/v1/subjects/era-2/identifiers", `{"type":"email","value":"stays@example.com","verified":true}`); st != 201 {
		t.Fatalf("link era-2: %d %v", st, out)
	}
	_, r := call("POST", "/v1/requests", `{"type":"deletion","identifier":{"type":"phone","value":"13900139001"},"regime":"pipl",
		"identity":{"method":"operator","note":"ID card at the desk"}}`)
	id, _ := r["id"].(string)
	if id == "" || r["subject"] != "era-1" {
		t.Fatalf("submit by identifier = %v; want a request of era-1", r)
	}
	awaitCompleted(t, url, tok, id)
	if st, out := call("GET", "/v1/subjects/era-1/identifiers", ""); st != 200 || len(out["identifiers"].([]any)) != 0 {
		t.Errorf("era-1's identifiers after the erasure: %d %v; want none", st, out)
	}
	if _, out := call("GET", "/v1/subjects/era-2/identifiers", ""); len(out["identifiers"].([]any)) != 1 {
		t.Errorf("era-2's identifiers after era-1's erasure: %v; want its one", out)
	}
	_, h := call("GET", "/v1/subjects/era-1/consents/history", "")
	if b, _ := json.Marshal(h["records"]); !strings.Contains(string(b), `"action":"erase"`) {
		t.Errorf("the ledger has no erase record of era-1: %s", b)
	}
	if st, out := call("POST", "/v1/requests", `{"type":"access","identifier":{"type":"phone","value":"13900139001"}}`); st != 422 {
		t.Errorf("a request by the erased phone: %d %v; want 422", st, out)
	}
}

// A request names its subject by a verified identifier; an unverified one and an unknown
// one get the same 422.
func TestRequestByIdentifier(t *testing.T) {
	dir := t.TempDir()
	url, tok, stop, _ := startServe(t, dir)
	defer stop()
	call := func(method, path, body string) (int, map[string]any) {
		return callJSON(t, url, tok, method, path, body)
	}
	call("POST", "/v1/subjects/idr-1/identifiers", `{"type":"email","value":"Verified@Example.com","verified":true}`)
	call("POST", "/v1/subjects/idr-1/identifiers", `{"type":"phone","value":"13800138111"}`)
	st, r := call("POST", "/v1/requests", `{"type":"access","identifier":{"type":"email","value":"verified@example.COM"}}`)
	if st != 201 || r["subject"] != "idr-1" {
		t.Errorf("a request by a verified email: %d %v; want 201 for idr-1", st, r)
	}
	st1, p1 := call("POST", "/v1/requests", `{"type":"access","identifier":{"type":"phone","value":"13800138111"}}`)
	st2, p2 := call("POST", "/v1/requests", `{"type":"access","identifier":{"type":"phone","value":"13800138222"}}`)
	if st1 != 422 || st2 != 422 || p1["detail"] != p2["detail"] || p1["field"] != "identifier" {
		t.Errorf("unverified: %d %v; unknown: %d %v; want the same 422 on identifier", st1, p1, st2, p2)
	}
	if st, p := call("POST", "/v1/requests", `{"type":"access","identifier":{"type":"phone","value":"12"}}`); st != 422 || p["field"] != "identifier.value" {
		t.Errorf("a malformed phone: %d %v; want 422 on identifier.value", st, p)
	}
	if st, p := call("POST", "/v1/requests", `{"type":"access","subject":"idr-1","identifier":{"type":"email","value":"verified@example.com"}}`); st != 422 && st != 400 {
		t.Errorf("both subject and identifier: %d %v; want refused", st, p)
	}
}

// A subject with no verified phone or email is sent no download link: the request says
// so, and the operator can still hand one over.
func TestDownloadLinkWithoutAnAddressStaysWithTheOperator(t *testing.T) {
	dir := t.TempDir()
	url, tok, stop, _ := startServe(t, dir)
	defer stop()
	call := func(method, path, body string) (int, map[string]any) {
		return callJSON(t, url, tok, method, path, body)
	}
	call("POST", "/v1/subjects/nolink-1/identifiers", `{"type":"email","value":"unverified@example.com"}`)
	_, r := call("POST", "/v1/requests", `{"type":"access","subject":"nolink-1","identity":{"method":"operator","note":"at the desk"}}`)
	id, _ := r["id"].(string)
	awaitCompleted(t, url, tok, id)
	var events string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, r = call("GET", "/v1/requests/"+id, "")
		if b, _ := json.Marshal(r["events"]); strings.Contains(string(b), "download link not sent") {
			events = string(b)
			break
		}
	}
	if events == "" {
		t.Errorf("request %v; want an event saying the download link was not sent", r)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "outbox.jsonl")); strings.Contains(string(b), `"kind":"download"`) {
		t.Errorf("outbox %s; want no download link (the only email is unverified)", b)
	}
	if st, out := call("POST", "/v1/requests/"+id+"/link", ""); st != 201 || out["token"] == nil {
		t.Errorf("operator's link = %d %v; want 201 with a token", st, out)
	}
}
