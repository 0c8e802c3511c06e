package adminapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
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
	"github.com/privguard/privguard/identity"
	"github.com/privguard/privguard/incident"
	"github.com/privguard/privguard/internal/adminapi"
	"github.com/privguard/privguard/internal/approval"
	"github.com/privguard/privguard/internal/auditpack"
	"github.com/privguard/privguard/internal/callers"
	"github.com/privguard/privguard/internal/ropa"
	"github.com/privguard/privguard/internal/trail"
	"github.com/privguard/privguard/outreach"
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
	incidents, err := incident.Open(incident.Config{Store: db.Journal(), Pseudonym: tr.Subject,
		Contact: incident.Contact{Controller: "Example Retail", DPO: "Li Wei", Contact: "dpo@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := identity.New(identity.Config{Store: db.Identity(), Vault: vlt})
	if err != nil {
		t.Fatal(err)
	}
	ledger := consenttest.Open(t, "", consent.Config{})
	api, err := adminapi.New(adminapi.Config{Ledger: ledger, Tokens: tokens, Vault: vlt, Requests: eng, Identities: ids,
		Trail: tr, Disclosures: gate, Regime: privguard.RegimePIPL, Metrics: http.NotFoundHandler(),
		RecordOfProcessing: func() (*ropa.Record, error) { return nil, errors.New("not configured in this test") },
		Assessments:        noAssessments{}, DualControl: adminapi.DualControl{ExportRows: 10, Approvals: reg}, Callers: cs,
		Incidents: incidents, DecisionLog: filepath.Join(dir, "decisions.log"), Retention: noRetention{},
		Outreach: &outreach.Gate{Ledger: ledger, PublicURL: "https://privacy.example.com", Key: bytes.Repeat([]byte{5}, 32)},
		AuditPack: func(context.Context, auditpack.Period, io.Writer) error {
			return errors.New("not configured in this test")
		}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return api, srv
}

// routeUse classifies a route for the roles walk: who, besides the dpo and the admin,
// calls it.
type routeUse int

const (
	// appRoute: an app's (a token without roles) work; the app is not refused it.
	appRoute routeUse = iota
	// register: a register or an export of the DPO's; an app is refused it.
	register
	// dpoAct: a DPO's or an importer's act on the records; an app is refused it.
	dpoAct
)

// everyRoute is every route that takes a bearer token, classified. A route the server
// registers that is not here fails the walk, so that a new route is classified when it
// is added.
var everyRoute = map[string]routeUse{
	"GET /healthz": appRoute, "GET /readyz": appRoute,
	"POST /v1/notices": dpoAct, "GET /v1/notices/{id}": appRoute,
	"POST /v1/consents": appRoute, "GET /v1/consents/{id}/receipt": appRoute,
	"GET /v1/subjects/{subject}/consents": appRoute, "GET /v1/subjects/{subject}/consents/history": appRoute,
	"POST /v1/subjects/{subject}/account": dpoAct,
	"GET /v1/subjects/{subject}/profile":  appRoute, "POST /v1/subjects/{subject}/profile/delete": appRoute,
	"POST /v1/consents/import": dpoAct, "GET /v1/consents/export": register,
	"POST /v1/vault/seal": appRoute, "POST /v1/vault/open": appRoute, "POST /v1/vault/blind-index": appRoute,
	"DELETE /v1/vault/subjects/{subject}": dpoAct,
	"POST /v1/requests":                   appRoute, "GET /v1/requests/{id}": appRoute,
	"POST /v1/requests/{id}/code": appRoute, "POST /v1/requests/{id}/code/verify": appRoute,
	"POST /v1/requests/bulk": dpoAct, "GET /v1/requests": register, "GET /v1/requests/register": register,
	"POST /v1/requests/{id}/verify": dpoAct, "POST /v1/requests/{id}/extend": dpoAct, "POST /v1/requests/{id}/cancel": dpoAct,
	"POST /v1/requests/{id}/reject": dpoAct, "POST /v1/requests/{id}/retry": dpoAct, "POST /v1/requests/{id}/approve": dpoAct,
	"POST /v1/requests/{id}/link": dpoAct, "POST /v1/requests/{id}/review": dpoAct, "POST /v1/requests/{id}/human-review": appRoute,
	"GET /v1/trail": register, "GET /v1/disclosures": register, "GET /v1/transfers": register, "GET /v1/ropa": register,
	"GET /v1/assessments": register, "GET /v1/decisions/stats": register, "GET /v1/audit/pack": register, "GET /metrics": register,
	"GET /v1/approvals": register, "GET /v1/approvals/{id}": register, "POST /v1/approvals/{id}/approve": dpoAct,
	"GET /v1/callers": register, "POST /v1/callers/{name}/terminate": dpoAct, "POST /v1/callers/{name}/deletion-confirmation": dpoAct,
	"POST /v1/incidents": dpoAct, "GET /v1/incidents": register, "GET /v1/incidents/{id}": register, "GET /v1/incidents/{id}/notices/{kind}": register,
	"POST /v1/incidents/{id}/events": dpoAct,
	"POST /v1/retention/runs":        dpoAct, "GET /v1/retention/runs/{id}": register,
	"POST /v1/subjects/{subject}/identifiers": appRoute, "GET /v1/subjects/{subject}/identifiers": appRoute,
	"DELETE /v1/subjects/{subject}/identifiers/{hash}": appRoute, "POST /v1/subjects/{subject}/identifiers/{hash}/code": appRoute,
	"POST /v1/subjects/{subject}/identifiers/{hash}/verify": appRoute,
	"POST /v1/outreach/check":                               appRoute,
	"GET /v1/outreach/suppressions":                         appRoute,
}

// Walking every route the server registers, with every optional part configured (so
// that a route added later is walked too, and fails the walk until it is classified): an
// auditor's token makes no write succeed (every non-GET is 403 forbidden) and is not
// refused a GET; an app's token is refused every register of the DPO's and every act of
// the DPO's, and not refused its own routes.
//
// proves SEC-07 (least privilege): the read-only role and the apps' role write nothing
// and read no register, on every route.
func TestRolesOnEveryRoute(t *testing.T) {
	tokens := adminapi.Tokens{}
	tokens.Add("pg_auditor", adminapi.Principal{Name: "audit-firm", Roles: []string{"auditor"}})
	tokens.Add("pg_app", adminapi.Principal{Name: "crm"})
	api, srv := newFullAPI(t, tokens)
	routes := api.Routes()
	for _, r := range routes {
		if _, ok := everyRoute[r]; !ok {
			t.Errorf("route %s is registered but not classified in everyRoute: say who may call it", r)
		}
	}
	for r := range everyRoute {
		if !slices.Contains(routes, r) {
			t.Errorf("route %s is not registered with every part configured; the walk would miss it", r)
		}
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
	forbidden := privguard.ProblemTypePrefix + adminapi.TypeForbidden
	for _, pattern := range routes {
		st, typ := call("pg_auditor", pattern)
		switch {
		case !strings.HasPrefix(pattern, "GET ") && (st != http.StatusForbidden || typ != forbidden):
			t.Errorf("auditor %s: %d %s; want 403 forbidden", pattern, st, typ)
		case strings.HasPrefix(pattern, "GET ") && (st == http.StatusForbidden || st == http.StatusUnauthorized):
			t.Errorf("auditor %s: %d %s; want the read not refused", pattern, st, typ)
		}
		st, typ = call("pg_app", pattern)
		switch use := everyRoute[pattern]; {
		case use != appRoute && (st != http.StatusForbidden || typ != forbidden):
			t.Errorf("app %s: %d %s; want 403 forbidden", pattern, st, typ)
		case use == appRoute && (st == http.StatusForbidden || st == http.StatusUnauthorized):
			t.Errorf("app %s: %d %s; want its own route not refused", pattern, st, typ)
		}
	}
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }

// noRetention is a retention runner with no runs.
type noRetention struct{}

func (noRetention) Run(context.Context, bool) (string, any, error) {
	return "", nil, errors.New("not configured in this test")
}

func (noRetention) Report(context.Context, string) (any, error) { return nil, privguard.ErrNotFound }
