package adminapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/identity"
	"github.com/privguard/privguard/identity/identitytest"
	"github.com/privguard/privguard/internal/adminapi"
)

// GET /v1/outreach/suppressions answers the hashes of the subjects who withdrew, in JSON
// and in CSV, incrementally from a cursor, and refuses bad queries with a problem naming
// the parameter.
func TestSuppressionsRoute(t *testing.T) {
	ctx := context.Background()
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "p.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	vlt := identitytest.NewVault(t, db.Vault())
	ids, err := identity.New(identity.Config{Store: db.Identity(), Vault: vlt})
	if err != nil {
		t.Fatal(err)
	}
	ledger := consenttest.Open(t, "", consent.Config{})
	if _, _, err := ledger.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		t.Fatal(err)
	}
	tokens := adminapi.Tokens{}
	tokens.Add("pg_app", adminapi.Principal{Name: "crm"})
	api, err := adminapi.New(adminapi.Config{Ledger: ledger, Tokens: tokens, Vault: vlt, Identities: ids})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	withdraw := func(s privguard.SubjectID, phone string) {
		t.Helper()
		if _, err := ids.Add(ctx, s, identity.Phone, phone, "crm"); err != nil {
			t.Fatal(err)
		}
		req := consent.Request{Subject: s, Purpose: "marketing.communications.sms", Action: consent.ActionWithdraw,
			Regime: privguard.RegimePIPL, Channel: consent.ChannelApp, Method: consent.MethodExplicit}
		if _, _, err := ledger.Append(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	sha := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }

	withdraw("cust-1", "+8613800138000")
	st, body := call(t, srv.URL, "pg_app", "GET", "/v1/outreach/suppressions?channel=sms", "")
	hashes, _ := body["hashes"].([]any)
	next, _ := body["next"].(string)
	if st != 200 || body["channel"] != "sms" || len(hashes) != 1 || hashes[0].(map[string]any)["sha256_phone"] != sha("+8613800138000") || next == "" {
		t.Fatalf("GET suppressions = %d %v; want cust-1's phone hash and a cursor", st, body)
	}
	withdraw("cust-2", "+8613900139000")
	st, body = call(t, srv.URL, "pg_app", "GET", "/v1/outreach/suppressions?channel=sms&phone=digits&since="+next, "")
	hashes, _ = body["hashes"].([]any)
	if st != 200 || len(hashes) != 1 || hashes[0].(map[string]any)["sha256_phone"] != sha("8613900139000") {
		t.Errorf("GET suppressions since %s = %d %v; want cust-2's hash only, without '+'", next, st, body)
	}

	req, _ := http.NewRequest("GET", srv.URL+"/v1/outreach/suppressions?channel=sms&format=csv&limit=1", nil)
	req.Header.Set("Authorization", "Bearer pg_app")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "sha256_phone\n" + sha("+8613800138000") + "\n"; resp.StatusCode != 200 || string(b) != want ||
		resp.Header.Get("X-Privguard-More") != "true" || resp.Header.Get("X-Privguard-Next") == "" {
		t.Errorf("GET suppressions CSV = %d %q %v; want %q, more", resp.StatusCode, b, resp.Header, want)
	}

	for _, c := range []struct{ query, field string }{
		{"", "channel"}, {"channel=push", "channel"}, {"channel=sms&since=-1", "since"}, {"channel=sms&limit=0", "limit"},
		{"channel=sms&limit=10001", "limit"}, {"channel=sms&phone=plus", "phone"}, {"channel=sms&format=xml", "format"},
		{"channel=sms&subject=cust-1", "subject"}, {"channel=sms&channel=email", "channel"},
	} {
		st, p := call(t, srv.URL, "pg_app", "GET", "/v1/outreach/suppressions?"+c.query, "")
		if st != 400 || p["field"] != c.field {
			t.Errorf("GET suppressions?%s = %d %v; want 400 naming %s", c.query, st, p, c.field)
		}
	}
}
