package adminapi_test

import (
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/privguard/privguard"

	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/identity"
	"github.com/privguard/privguard/identity/identitytest"
	"github.com/privguard/privguard/internal/adminapi"
)

// identifierAPI is an API with identity links, its messages captured.
func identifierAPI(t *testing.T) (string, *identitytest.Capture) {
	t.Helper()
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "p.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	vlt := identitytest.NewVault(t, db.Vault())
	sent := &identitytest.Capture{}
	ids, err := identity.New(identity.Config{Store: db.Identity(), Vault: vlt, Sender: sent})
	if err != nil {
		t.Fatal(err)
	}
	n := identity.Notifier{Registry: ids}
	eng, err := dsar.New(dsar.Config{Store: db.DSAR(), Sealer: vlt, Notifier: n})
	if err != nil {
		t.Fatal(err)
	}
	tokens := adminapi.Tokens{}
	tokens.Add("pg_app", adminapi.Principal{Name: "crm"})
	tokens.Add("pg_admin", adminapi.Principal{Name: "root", Roles: []string{"admin"}})
	tokens.Add("pg_auditor", adminapi.Principal{Name: "audit-firm", Roles: []string{"auditor"}})
	tokens.Add("pg_scoped", adminapi.Principal{Name: "sms", Purposes: []privguard.Purpose{"marketing"}})
	api, err := adminapi.New(adminapi.Config{Ledger: consenttest.Open(t, "", consent.Config{}), Tokens: tokens, Vault: vlt,
		Requests: eng, Notifier: n, Identities: ids})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return srv.URL, sent
}

func TestIdentifierRoutes(t *testing.T) {
	url, sent := identifierAPI(t)
	st, l := call(t, url, "pg_app", "POST", "/v1/subjects/cust-1/identifiers", `{"type":"email","value":" Li.Wei@Example.COM "}`)
	hash, _ := l["hash"].(string)
	if st != 201 || l["masked"] != "l***@example.com" || l["verified"] != false || len(hash) != 32 || strings.Contains(callText(l), "li.wei") {
		t.Fatalf("POST identifier = %d %v; want 201, masked, unverified, no value", st, l)
	}
	// Idempotent: the same address again is the same link.
	if st, again := call(t, url, "pg_app", "POST", "/v1/subjects/cust-1/identifiers", `{"type":"email","value":"li.wei@example.com"}`); st != 201 || again["hash"] != hash {
		t.Errorf("POST the same identifier again = %d %v; want the same link", st, again)
	}
	if st, p := call(t, url, "pg_app", "POST", "/v1/subjects/cust-2/identifiers", `{"type":"email","value":"LI.WEI@example.com"}`); st != 409 || p["field"] != "value" {
		t.Errorf("POST another subject's email = %d %v; want 409 on value", st, p)
	}
	for _, c := range []struct{ body, status, field string }{
		{`{"type":"qq","value":"12345"}`, "422", "type"},
		{`{"type":"phone","value":"12"}`, "422", "value"},
		{`{"type":"email","value":"bogus at home"}`, "422", "value"},
		{`{"type":"wechat_openid","value":"a b"}`, "422", "value"},
		{`{"type":"email","value":"x@example.com","extra":1}`, "400", ""},
		{`{"type":"email","value":`, "400", ""},
	} {
		st, p := call(t, url, "pg_app", "POST", "/v1/subjects/cust-1/identifiers", c.body)
		if strconv.Itoa(st) != c.status || (c.field != "" && p["field"] != c.field) ||
			!strings.HasPrefix(p["type"].(string), privguard.ProblemTypePrefix) {
			t.Errorf("POST %s = %d %v; want a %s problem naming %q", c.body, st, p, c.status, c.field)
		}
		if strings.Contains(callText(p), "bogus") || strings.Contains(callText(p), `"a b"`) {
			t.Errorf("the problem %v repeats the value", p)
		}
	}
	if st, p := call(t, url, "pg_app", "POST", "/v1/subjects/-bad/identifiers", `{"type":"email","value":"a@example.com"}`); st != 400 || p["field"] != "subject" {
		t.Errorf("POST for a malformed subject = %d %v; want 400 on subject", st, p)
	}

	// A request of cust-1 cannot be sent a code: the email is not verified.
	_, req := call(t, url, "pg_app", "POST", "/v1/requests", `{"type":"access","subject":"cust-1"}`)
	id := req["id"].(string)
	if st, p := call(t, url, "pg_app", "POST", "/v1/requests/"+id+"/code", ""); st != 409 || p["type"] != privguard.ProblemTypePrefix+adminapi.TypeNoAddress ||
		!strings.Contains(p["detail"].(string), "no verified phone or email is linked to the subject") {
		t.Errorf("request code without an address = %d %v; want 409 no-address", st, p)
	}
	// Verify the email by code.
	if st, p := call(t, url, "pg_app", "POST", "/v1/subjects/cust-1/identifiers/"+hash+"/verify", `{"code":"123456"}`); st != 403 {
		t.Errorf("verify before a code = %d %v; want 403", st, p)
	}
	if st, out := call(t, url, "pg_app", "POST", "/v1/subjects/cust-1/identifiers/"+hash+"/code", ""); st != 202 || out["channel"] != "email" || out["to"] != "l***@example.com" {
		t.Fatalf("send code = %d %v", st, out)
	}
	if st, p := call(t, url, "pg_app", "POST", "/v1/subjects/cust-1/identifiers/"+hash+"/code", ""); st != 429 {
		t.Errorf("a second code at once = %d %v; want 429", st, p)
	}
	m := sent.Last()
	if m.Channel != "email" || m.Address != "li.wei@example.com" || m.Message.Kind != "code" {
		t.Fatalf("sent %+v", m)
	}
	if st, p := call(t, url, "pg_app", "POST", "/v1/subjects/cust-1/identifiers/"+hash+"/verify", `{"code":"12"}`); st != 422 {
		t.Errorf("verify a malformed code = %d %v; want 422", st, p)
	}
	if st, out := call(t, url, "pg_app", "POST", "/v1/subjects/cust-1/identifiers/"+hash+"/verify", `{"code":"`+m.Message.Code+`"}`); st != 200 || out["verified"] != true || out["evidence"] != "code" {
		t.Fatalf("verify = %d %v", st, out)
	}
	// Now the request's code goes to the email.
	if st, p := call(t, url, "pg_app", "POST", "/v1/requests/"+id+"/code", ""); st != 202 {
		t.Fatalf("request code = %d %v", st, p)
	}
	if m := sent.Last(); m.Address != "li.wei@example.com" || m.Message.Request != id || len(m.Message.Code) != 6 {
		t.Errorf("request code sent %+v; want to the verified email", m)
	}
	// The app's word verifies a phone at once.
	st, ph := call(t, url, "pg_app", "POST", "/v1/subjects/cust-1/identifiers", `{"type":"phone","value":"+1 (650) 253-0000","verified":true}`)
	if st != 201 || ph["evidence"] != "app:crm" || ph["masked"] != "+1 650***0000" {
		t.Errorf("attested phone = %d %v; want evidence app:crm", st, ph)
	}
	st, list := call(t, url, "pg_auditor", "GET", "/v1/subjects/cust-1/identifiers", "")
	if ls, _ := list["identifiers"].([]any); st != 200 || len(ls) != 2 || strings.Contains(callText(list), "2530000") {
		t.Errorf("GET identifiers = %d %v; want two masked links", st, list)
	}
	if st, _ := call(t, url, "pg_auditor", "DELETE", "/v1/subjects/cust-1/identifiers/"+hash, ""); st != 403 {
		t.Errorf("auditor DELETE = %d; want 403", st)
	}
	if st, _ := call(t, url, "pg_scoped", "GET", "/v1/subjects/cust-1/identifiers", ""); st != 403 {
		t.Errorf("a purpose-scoped token reads identifiers: %d; want 403", st)
	}
	if st, p := call(t, url, "pg_app", "DELETE", "/v1/subjects/cust-2/identifiers/"+hash, ""); st != 404 {
		t.Errorf("DELETE cust-1's link as cust-2 = %d %v; want 404", st, p)
	}
	if st, p := call(t, url, "pg_app", "DELETE", "/v1/subjects/cust-1/identifiers/nothex", ""); st != 404 {
		t.Errorf("DELETE a malformed hash = %d %v; want 404", st, p)
	}
	if st, _ := call(t, url, "pg_app", "DELETE", "/v1/subjects/cust-1/identifiers/"+hash, ""); st != 204 {
		t.Errorf("DELETE = %d; want 204", st)
	}
	if st, _ := call(t, url, "pg_app", "PUT", "/v1/subjects/cust-1/identifiers", `{}`); st != 405 {
		t.Errorf("PUT = %d; want 405", st)
	}
}

// An erased subject's keys are shredded: no address can be sealed for it again.
func TestIdentifierOfAnErasedSubject(t *testing.T) {
	url, _ := identifierAPI(t)
	if st, p := call(t, url, "pg_admin", "DELETE", "/v1/vault/subjects/gone-1", ""); st != 204 && st != 200 {
		t.Fatalf("shred = %d %v", st, p)
	}
	if st, p := call(t, url, "pg_app", "POST", "/v1/subjects/gone-1/identifiers", `{"type":"email","value":"gone@example.com"}`); st != 410 {
		t.Errorf("link an erased subject's email = %d %v; want 410", st, p)
	}
}

// The identity links' hashes are the vault's blind index of a reserved field: the API does
// not compute it for anyone (it would be the lookup key of a phone or email).
func TestBlindIndexOfTheIdentityFieldsIsRefused(t *testing.T) {
	url, _ := identifierAPI(t)
	if st, p := call(t, url, "pg_app", "POST", "/v1/vault/blind-index", `{"field":"privguard/identity/phone","value":"+8613800138000"}`); st != 422 || p["field"] != "field" {
		t.Errorf("blind index of privguard/identity/phone = %d %v; want 422 on field", st, p)
	}
	if st, p := call(t, url, "pg_app", "POST", "/v1/vault/blind-index", `{"field":"user.contact.phone","value":"+8613800138000"}`); st != 200 {
		t.Errorf("blind index of an app's own field = %d %v; want 200", st, p)
	}
}
