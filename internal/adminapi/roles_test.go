package adminapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/disclosure"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/internal/adminapi"
	"github.com/privguard/privguard/internal/approval"
	"github.com/privguard/privguard/internal/callers"
	"github.com/privguard/privguard/internal/ropa"
	"github.com/privguard/privguard/internal/trail"
	"github.com/privguard/privguard/pia"
	"github.com/privguard/privguard/vault"
)

type noAssessments struct{}

func (noAssessments) Register(context.Context) (*pia.Register, error) {
	return nil, errors.New("not configured in this test")
}

// newFullAPI is the admin API with every optional part configured, so that it registers
// every route it has.
func newFullAPI(t *testing.T, tokens adminapi.Tokens) (*adminapi.Server, *httptest.Server) {
	t.Helper()
	dir := t.TempDir()
	db, err := boltstore.Open(filepath.Join(dir, "p.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := vault.InitLocalKEK(filepath.Join(dir, "kek.json")); err != nil {
		t.Fatal(err)
	}
	kek, err := vault.LoadLocalKEK(filepath.Join(dir, "kek.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	vlt, err := vault.New(vault.Config{Store: db.Vault(), KEK: kek, TombstoneKey: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := dsar.New(dsar.Config{Store: db.DSAR(), Sealer: vlt})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := trail.Open(db.Journal(), bytes.Repeat([]byte{1}, 32), "r1", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	gate, err := disclosure.New(disclosure.Config{Log: db.Journal(), Sets: db.Journal(), Key: bytes.Repeat([]byte{2}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gate.Close() })
	reg, err := approval.Open(db.Journal(), bytes.Repeat([]byte{4}, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := callers.Open(context.Background(), db.Journal(), []callers.Caller{{Name: "sms-gateway", SHA256: callers.Hash("pg_sms"),
		Purposes: []privguard.Purpose{"marketing.communications.sms"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	api, err := adminapi.New(adminapi.Config{Ledger: consenttest.Open(t, "", consent.Config{}), Tokens: tokens, Vault: vlt, Requests: eng,
		Trail: tr, Disclosures: gate, Regime: privguard.RegimePIPL, Metrics: http.NotFoundHandler(),
		RecordOfProcessing: func() (*ropa.Record, error) { return nil, errors.New("not configured in this test") },
		Assessments:        noAssessments{}, DualControl: adminapi.DualControl{ExportRows: 10, Approvals: reg}, Callers: cs})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return api, srv
}

// registerRoutes are the DPO's registers and exports: an app (a token without roles) reads
// none of them.
var registerRoutes = []string{
	"GET /v1/requests", "GET /v1/requests/register", "GET /v1/disclosures", "GET /v1/transfers", "GET /v1/trail",
	"GET /v1/ropa", "GET /v1/assessments", "GET /v1/approvals", "GET /v1/approvals/{id}", "GET /v1/callers", "GET /metrics",
}

// Walking every route the server registers (so a route added later is walked too): an
// auditor's token makes no write succeed (every non-GET is 403 forbidden), and an app's
// token is refused every register of the DPO's.
//
// proves SEC-07 (least privilege): the read-only role and the apps' role write nothing
// and read no register, on every route.
func TestRolesOnEveryRoute(t *testing.T) {
	tokens := adminapi.Tokens{}
	tokens.Add("pg_auditor", adminapi.Principal{Name: "audit-firm", Roles: []string{"auditor"}})
	tokens.Add("pg_app", adminapi.Principal{Name: "crm"})
	api, srv := newFullAPI(t, tokens)
	routes := api.Routes()
	for _, r := range registerRoutes {
		if !slices.Contains(routes, r) {
			t.Errorf("register route %s is not registered; the walk would miss it", r)
		}
	}
	if len(routes) < 30 {
		t.Fatalf("only %d routes registered: %v", len(routes), routes)
	}
	wildcard := regexp.MustCompile(`\{[a-z]+\}`)
	call := func(tok, pattern string) (int, string) {
		t.Helper()
		method, path, _ := strings.Cut(pattern, " ")
		req, _ := http.NewRequest(method, srv.URL+wildcard.ReplaceAllString(path, "x1"), strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p privguard.Problem
		if resp.StatusCode >= 400 {
			_ = jsonDecode(resp, &p)
		}
		return resp.StatusCode, p.Type
	}
	writes := 0
	for _, pattern := range routes {
		if strings.HasPrefix(pattern, "GET ") {
			continue
		}
		writes++
		if st, typ := call("pg_auditor", pattern); st != http.StatusForbidden || typ != privguard.ProblemTypePrefix+adminapi.TypeForbidden {
			t.Errorf("auditor %s: %d %s; want 403 forbidden", pattern, st, typ)
		}
	}
	if writes < 19 {
		t.Errorf("walked %d write routes; want every one (%v)", writes, routes)
	}
	for _, pattern := range registerRoutes {
		if st, typ := call("pg_app", pattern); st != http.StatusForbidden || typ != privguard.ProblemTypePrefix+adminapi.TypeForbidden {
			t.Errorf("app %s: %d %s; want 403 forbidden", pattern, st, typ)
		}
	}
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
