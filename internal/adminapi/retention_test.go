package adminapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/internal/adminapi"
)

// sweepingStore is a connector that sweeps nothing.
type sweepingStore struct{}

func (sweepingStore) Name() string { return "crm" }
func (sweepingStore) Export(context.Context, privguard.SubjectID) (dsar.Export, error) {
	return dsar.Export{}, nil
}
func (sweepingStore) Erase(context.Context, privguard.SubjectID) (dsar.Erased, error) {
	return dsar.Erased{}, nil
}
func (sweepingStore) Sweep(context.Context, dsar.SweepAction, int) (int, bool, error) {
	return 0, false, nil
}
func (sweepingStore) CountSweep(context.Context, dsar.SweepAction) (int, error) { return 0, nil }

// runner starts runs of one action naming a subject.
type runner struct{ eng *dsar.Engine }

func (r runner) Run(ctx context.Context, dry bool) (string, any, error) {
	if dry {
		return "", map[string]bool{"dry_run": true}, nil
	}
	req, err := r.eng.SubmitRetention(ctx, map[string][]dsar.SweepAction{"crm": {{Rule: "r", Table: "t", Mode: dsar.SweepDelete,
		Subjects: []privguard.SubjectID{"cust-closed-1"}}}}, nil)
	return req.ID, map[string]string{"run": req.ID}, err
}

func (r runner) Report(ctx context.Context, id string) (any, error) { return r.eng.Get(ctx, id) }

// A retention run needs its body said (a real run changes the stores), and is not a
// data-subject request: the /v1/requests routes do not show or act on it (it lists the
// subjects it erases), so an app cannot read it and no one cancels it half-way there.
func TestRetentionRunsAreNotSubjectRequests(t *testing.T) {
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "p.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	eng, err := dsar.New(dsar.Config{Store: db.DSAR(), Connectors: []dsar.Connector{sweepingStore{}}})
	if err != nil {
		t.Fatal(err)
	}
	tokens := adminapi.Tokens{}
	tokens.Add("pg_dpo", adminapi.Principal{Name: "dpo", Roles: []string{"dpo"}})
	tokens.Add("pg_app", adminapi.Principal{Name: "crm"})
	api, err := adminapi.New(adminapi.Config{Ledger: consenttest.Open(t, "", consent.Config{}), Tokens: tokens, Requests: eng,
		Retention: runner{eng}, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	for _, body := range []string{"", "null", `{"dry_run":null}`, `{}`} {
		if st, _ := call(t, srv.URL, "pg_dpo", "POST", "/v1/retention/runs", body); st < 400 || st >= 500 {
			t.Errorf("POST %q: %d; want a 4xx, no run", body, st)
		}
	}
	if st, _ := call(t, srv.URL, "pg_dpo", "POST", "/v1/retention/runs", `{"dry_run":true}`); st != 200 {
		t.Fatalf("dry run: %d", st)
	}
	st, out := call(t, srv.URL, "pg_dpo", "POST", "/v1/retention/runs", `{"dry_run":false}`)
	if st != 202 {
		t.Fatalf("run: %d %v", st, out)
	}
	id := out["run"].(string)
	if st, _ := call(t, srv.URL, "pg_dpo", "POST", "/v1/retention/runs", `{"dry_run":false}`); st != 409 {
		t.Errorf("second run while one is open: %d", st)
	}
	for _, c := range []struct{ tok, method, path, body string }{
		{"pg_app", "GET", "/v1/requests/" + id, ""},
		{"pg_dpo", "GET", "/v1/requests/" + id, ""},
		{"pg_dpo", "POST", "/v1/requests/" + id + "/cancel", `{"reason":"x"}`},
		{"pg_dpo", "POST", "/v1/requests/" + id + "/retry", ""},
	} {
		if st, body := call(t, srv.URL, c.tok, c.method, c.path, c.body); st != 404 || strings.Contains(callText(body), "cust-closed-1") {
			t.Errorf("%s %s %s: %d %v; want 404 naming no subject", c.tok, c.method, c.path, st, body)
		}
	}
	if _, list := call(t, srv.URL, "pg_dpo", "GET", "/v1/requests", ""); strings.Contains(callText(list), id) {
		t.Errorf("the run is listed among the requests: %v", list)
	}
	if st, _ := call(t, srv.URL, "pg_app", "GET", "/v1/retention/runs/"+id, ""); st != 403 {
		t.Errorf("app reads a run: %d", st)
	}
	if st, _ := call(t, srv.URL, "pg_dpo", "GET", "/v1/retention/runs/"+id, ""); st != 200 {
		t.Errorf("dpo reads the run: %d", st)
	}
}

// call sends body (JSON, if any) with token and returns the status and the decoded answer.
func call(t *testing.T, base, token, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &out)
	if out == nil {
		out = map[string]any{"body": string(b)}
	}
	return resp.StatusCode, out
}

func callText(m map[string]any) string { b, _ := json.Marshal(m); return string(b) }
