package outreach_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/connector/webhook"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/identity"
	"github.com/privguard/privguard/identity/identitytest"
	"github.com/privguard/privguard/outreach"
)

var secret = bytes.Repeat([]byte("s"), 32)

func newInbox(t *testing.T, maxSeen int, now func() time.Time) (*outreach.Inbox, *consent.Ledger, *identity.Registry) {
	t.Helper()
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "p.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ids, err := identity.New(identity.Config{Store: db.Identity(), Vault: identitytest.NewVault(t, db.Vault())})
	if err != nil {
		t.Fatal(err)
	}
	ledger := consenttest.Open(t, "", consent.Config{})
	in, err := outreach.NewInbox(outreach.InboxConfig{Ledger: ledger, Identities: ids, Gateways: map[string][]byte{"gw": secret},
		MaxSeen: maxSeen, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return in, ledger, ids
}

func TestNewInboxRefusesBadConfig(t *testing.T) {
	ledger := consenttest.Open(t, "", consent.Config{})
	if _, err := outreach.NewInbox(outreach.InboxConfig{Ledger: ledger}); err == nil {
		t.Error("NewInbox without identities: no error")
	}
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "p.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ids, _ := identity.New(identity.Config{Store: db.Identity(), Vault: identitytest.NewVault(t, db.Vault())})
	if _, err := outreach.NewInbox(outreach.InboxConfig{Ledger: ledger, Identities: ids, Gateways: map[string][]byte{"gw": []byte("short")}}); err == nil {
		t.Error("NewInbox with a 5-byte secret: no error")
	}
}

func TestAuthenticate(t *testing.T) {
	now := time.Now()
	in, _, _ := newInbox(t, 2, func() time.Time { return now })
	body := []byte(`{"from":"13800138000","text":"TD","received_at":"2026-01-02T03:04:05Z"}`)
	sig := webhook.Sign(secret, body, now)
	for _, tc := range []struct {
		name, gateway, sig string
		want               error
	}{
		{"unknown_gateway", "other", sig, outreach.ErrUnknownGateway},
		{"no_signature", "gw", "", outreach.ErrNotAuthentic},
		{"other_key", "gw", webhook.Sign(bytes.Repeat([]byte("x"), 32), body, now), outreach.ErrNotAuthentic},
		{"stale", "gw", webhook.Sign(secret, body, now.Add(-webhook.Tolerance-time.Second)), outreach.ErrNotAuthentic},
		{"future", "gw", webhook.Sign(secret, body, now.Add(webhook.Tolerance+time.Second)), outreach.ErrNotAuthentic},
	} {
		if _, err := in.Authenticate(tc.gateway, tc.sig, body); !errors.Is(err, tc.want) {
			t.Errorf("%s: Authenticate = %v; want %v", tc.name, err, tc.want)
		}
	}
	release, err := in.Authenticate("gw", sig, body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Authenticate("gw", sig, body); !errors.Is(err, outreach.ErrReplayed) {
		t.Errorf("the same delivery while in flight: %v; want ErrReplayed", err)
	}
	// Not applied: its retry is taken.
	release(false)
	release, err = in.Authenticate("gw", sig, body)
	if err != nil {
		t.Fatalf("the retry of a delivery not applied: %v", err)
	}
	release(true)
	if _, err := in.Authenticate("gw", sig, body); !errors.Is(err, outreach.ErrReplayed) {
		t.Errorf("the same delivery after it was applied: %v; want ErrReplayed", err)
	}
	// The window is bounded: past MaxSeen unexpired deliveries, ErrBusy; once they expire,
	// room again.
	if _, err := in.Authenticate("gw", webhook.Sign(secret, body, now.Add(-time.Second)), body); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Authenticate("gw", webhook.Sign(secret, body, now.Add(-2*time.Second)), body); !errors.Is(err, outreach.ErrBusy) {
		t.Errorf("past MaxSeen: %v; want ErrBusy", err)
	}
	now = now.Add(2*webhook.Tolerance + time.Second)
	if _, err := in.Authenticate("gw", webhook.Sign(secret, body, now), body); err != nil {
		t.Errorf("after the window passed: %v", err)
	}
}

func TestApply(t *testing.T) {
	in, ledger, ids := newInbox(t, 0, nil)
	ctx := context.Background()
	if _, err := ids.Add(ctx, "cust-1", identity.Phone, "13800138000", ""); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Minute)
	for _, tc := range []struct {
		name  string
		reply outreach.Reply
		field string
	}{
		{"not_a_phone", outreach.Reply{From: "abc", Text: "TD", ReceivedAt: at}, "from"},
		{"no_time", outreach.Reply{From: "13800138000", Text: "TD"}, "received_at"},
		{"future", outreach.Reply{From: "13800138000", Text: "TD", ReceivedAt: time.Now().Add(time.Hour)}, "received_at"},
		{"long", outreach.Reply{From: "13800138000", Text: string(bytes.Repeat([]byte("a"), outreach.MaxReplyText+1)), ReceivedAt: at}, "text"},
	} {
		var re *outreach.ReplyError
		if _, err := in.Apply(ctx, "gw", tc.reply); !errors.As(err, &re) || re.Field != tc.field || !errors.Is(err, privguard.ErrInvalid) {
			t.Errorf("%s: Apply = %v; want a ReplyError on %s", tc.name, err, tc.field)
		}
	}
	// A stop for a subject with no consent recorded still records the withdrawal (a
	// suppression fact); a repeat records nothing more.
	for i := range 2 {
		res, err := in.Apply(ctx, "gw", outreach.Reply{From: "+86 138 0013 8000", Text: "STOP", ReceivedAt: at.Add(time.Duration(i) * time.Second)})
		if err != nil || res != outreach.ResultWithdrawn {
			t.Fatalf("stop %d: %v %v; want withdrawn", i+1, res, err)
		}
	}
	n := 0
	ledger.Walk(ctx, func(r *consent.Record, _ []byte) error {
		if r.Action == consent.ActionWithdraw && r.Subject == "cust-1" && r.Actor == "gateway:gw" {
			n++
		}
		return nil
	})
	if n != 1 {
		t.Errorf("withdrawals = %d; want 1 for two stops", n)
	}
}
