package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/identity"
	"github.com/privguard/privguard/identity/identitytest"
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
