package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/identity"
	"github.com/privguard/privguard/identity/identitytest"
	"github.com/privguard/privguard/portal"
)

// The privacy centre finds a subject by what it typed, sends the sign-in code to the
// linked address through the outbox, and entering it verifies the link.
func TestIdentityDirectory(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := boltstore.Open(filepath.Join(dir, "p.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	outbox := filepath.Join(dir, "outbox.jsonl")
	ids, err := identity.New(identity.Config{Store: db.Identity(), Vault: identitytest.NewVault(t, db.Vault()), Sender: &identity.Outbox{Path: outbox}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ids.Add(ctx, "cust-1", identity.Phone, "13800138000", ""); err != nil {
		t.Fatal(err)
	}
	d := identityDirectory{ids}
	l, ok, err := d.Find(ctx, "+86 138 0013 8000")
	if err != nil || !ok || l.Subject != "cust-1" || l.Kind != "phone" || l.Verified || l.Masked != "+86 138****8000" {
		t.Fatalf("Find = %+v, %v, %v; want cust-1's unverified phone", l, ok, err)
	}
	if _, ok, err := d.Find(ctx, "Nobody@Example.com"); ok || err != nil {
		t.Errorf("Find of an unknown email = %v, %v; want not found, no error", ok, err)
	}
	if _, _, err := d.Find(ctx, "not a number"); !errors.Is(err, privguard.ErrInvalid) {
		t.Errorf("Find of garbage: %v; want ErrInvalid", err)
	}
	if err := d.SendCode(ctx, l, "123456", "en"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(outbox)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m["channel"] != "sms" || m["to"] != "+8613800138000" || m["kind"] != "signin" ||
		m["code"] != "123456" || !strings.Contains(m["text"].(string), "123456") {
		t.Errorf("outbox %s; want the sign-in code by sms", b)
	}
	if err := d.Confirm(ctx, l); err != nil {
		t.Fatal(err)
	}
	if got, _ := ids.Lookup(ctx, identity.Phone, "13800138000"); !got.Verified || got.Evidence != "code" {
		t.Errorf("after Confirm the link is %+v; want verified by code", got)
	}
}

// The codes per identifier count the number, however it is spelled: an extension, full-width
// digits, "tel:" or "0086" do not make it another identifier (each spelling was sent its
// own five codes, an SMS bomb and five more guesses each).
func TestPortalCodesPerIdentifierCountSpellings(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := boltstore.Open(filepath.Join(dir, "p.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	outbox := filepath.Join(dir, "outbox.jsonl")
	ids, err := identity.New(identity.Config{Store: db.Identity(), Vault: identitytest.NewVault(t, db.Vault()), Sender: &identity.Outbox{Path: outbox}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ids.Add(ctx, "cust-1", identity.Phone, "13800138000", ""); err != nil {
		t.Fatal(err)
	}
	d := identityDirectory{ids}
	for _, v := range []string{"+86 138 0013 8000 ext. 7", "１３８００１３８０００", "tel:+86-138-0013-8000", "0086 138 0013 8000"} {
		if got, err := d.Canonical(v); err != nil || got != "phone:+8613800138000" {
			t.Errorf("Canonical(%q) = %q, %v; want phone:+8613800138000", v, got, err)
		}
	}
	if got, err := d.Canonical("Li@Example.COM"); err != nil || got != "email:li@example.com" {
		t.Errorf("Canonical of an email = %q, %v", got, err)
	}
	p, err := portal.New(portal.Config{Ledger: consenttest.Open(t, "", consent.Config{}), Directory: d, CodesPerIdentifier: 2,
		Secret: []byte("a portal secret of at least thirty-two bytes"), Controller: portal.Controller{Name: "X", DPOContact: "dpo@x"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	defer srv.Close()
	send := func(typed string) int {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar}
		resp, err := c.Get(srv.URL + "/signin")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
		if m == nil {
			t.Fatalf("no CSRF token:\n%s", page)
		}
		resp, err = c.PostForm(srv.URL+"/signin/code", url.Values{"csrf": {string(m[1])}, "identifier": {typed}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i, v := range []string{"+8613800138000", "+86 138 0013 8000 ext. 1", "+86 138 0013 8000 ext. 2", "１３８００１３８０００", "tel:+86-138-0013-8000"} {
		want := http.StatusOK
		if i >= 2 {
			want = http.StatusTooManyRequests
		}
		if got := send(v); got != want {
			t.Errorf("code %d (%q) = %d, want %d", i+1, v, got, want)
		}
	}
	// An unknown number is counted the same way (else the limit would tell them apart).
	for i, v := range []string{"+8613900139000", "+86 139 0013 9000 ext. 1", "tel:0086-139-0013-9000"} {
		want := http.StatusOK
		if i >= 2 {
			want = http.StatusTooManyRequests
		}
		if got := send(v); got != want {
			t.Errorf("unknown number, code %d (%q) = %d, want %d", i+1, v, got, want)
		}
	}
}
