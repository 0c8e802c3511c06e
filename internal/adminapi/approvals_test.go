package adminapi_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/internal/adminapi"
	"github.com/privguard/privguard/internal/approval"
	"github.com/privguard/privguard/internal/trail"
)

// newDualControlEnv is the request API with dual_control.export_rows: rows, the approvals
// and the admin trail in the bbolt file, and a second dpo (dpo2-token).
func newDualControlEnv(t *testing.T, rows int) (*env, *trail.Trail) {
	t.Helper()
	var tr *trail.Trail
	e, _ := newRequestsEnvWith(t, nil, func(cfg *adminapi.Config, db *boltstore.DB) {
		reg, err := approval.Open(db.Journal(), bytes.Repeat([]byte{4}, 32), nil)
		if err != nil {
			t.Fatal(err)
		}
		if tr, err = trail.Open(db.Journal(), bytes.Repeat([]byte{3}, 32), "r1", nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tr.Close)
		cfg.DualControl = adminapi.DualControl{ExportRows: rows, Approvals: reg}
		cfg.Trail = tr
		cfg.Tokens.Add("dpo2-token", adminapi.Principal{Name: "dpo-deputy", Roles: []string{"dpo"}})
	}, rowsStore{})
	return e, tr
}

// A bulk export of personal data above dual_control.export_rows runs only after another
// principal with the role dpo approved that very call; the one who asked cannot approve,
// an approval is spent once, by its asker, for its parameters; every step is in the
// admin trail.
func TestBulkExportNeedsASecondApprover(t *testing.T) {
	e, tr := newDualControlEnv(t, 2)
	as := func(tok string, extra ...string) map[string]string {
		h := map[string]string{"Authorization": "Bearer " + tok}
		for i := 0; i+1 < len(extra); i += 2 {
			h[extra[i]] = extra[i+1]
		}
		return h
	}
	for _, sub := range []string{"cust-1", "cust-2", "cust-3"} {
		if resp := e.do("POST", "/v1/requests", `{"type":"access","subject":"`+sub+`"}`, as("app-token"), nil); resp.StatusCode != 201 {
			t.Fatalf("submit %s: %d", sub, resp.StatusCode)
		}
	}
	call := func(tok, method, path, body string, extra ...string) (int, map[string]any) {
		t.Helper()
		var out map[string]any
		resp := e.do(method, path, body, as(tok, extra...), &out)
		return resp.StatusCode, out
	}
	wantType := func(what string, st int, out map[string]any, status int, slug string) {
		t.Helper()
		if st != status || out["type"] != privguard.ProblemTypePrefix+slug {
			t.Errorf("%s: %d %v; want %d %s", what, st, out, status, slug)
		}
	}

	// proves SEC-07: a list of 3 requests (each naming its subject) over export_rows 2
	// without a second approver is refused; the same call approved by another dpo runs.
	st, out := call("dpo-token", "GET", "/v1/requests?limit=100", "")
	wantType("export without approval", st, out, 403, "approval.required")
	instance, _ := out["instance"].(string)
	id := strings.TrimPrefix(instance, "/v1/approvals/")
	if !strings.HasPrefix(id, "ap_") {
		t.Fatalf("the refusal names no approval: %v", out)
	}
	if _, again := call("dpo-token", "GET", "/v1/requests?limit=100", ""); again["instance"] != instance {
		t.Errorf("asking again opened another approval: %v; want %s", again["instance"], instance)
	}
	st, out = call("dpo-token", "POST", "/v1/approvals/"+id+"/approve", "")
	wantType("self-approval", st, out, 403, "approval.same_principal")
	st, out = call("auditor-token", "POST", "/v1/approvals/"+id+"/approve", "")
	wantType("an auditor approving", st, out, 403, "forbidden")
	st, out = call("dpo-token", "GET", "/v1/requests?limit=100", "", adminapi.HeaderApproval, id)
	wantType("export with a pending approval", st, out, 403, "approval.required")
	if st, out = call("dpo2-token", "POST", "/v1/approvals/"+id+"/approve", ""); st != 200 || out["state"] != "approved" || out["approved_by"] != "dpo-deputy" {
		t.Fatalf("second dpo approves: %d %v", st, out)
	}
	st, out = call("dpo2-token", "POST", "/v1/approvals/"+id+"/approve", "")
	wantType("approving twice", st, out, 409, "conflict")
	if st, out = call("dpo-token", "GET", "/v1/requests?limit=100", ""); out["instance"] != instance || !strings.Contains(fmt.Sprint(out["detail"]), "approved by dpo-deputy") {
		t.Errorf("asking again once approved: %d %v; want the approval, saying it is approved", st, out)
	}
	st, out = call("auditor-token", "GET", "/v1/requests?limit=100", "", adminapi.HeaderApproval, id)
	wantType("another principal spends the approval", st, out, 403, "approval.required")
	st, out = call("dpo-token", "GET", "/v1/requests?limit=99", "", adminapi.HeaderApproval, id)
	wantType("the approval for another query", st, out, 403, "approval.required")
	if st, out = call("dpo-token", "GET", "/v1/requests?limit=100", "", adminapi.HeaderApproval, id); st != 200 || len(out["requests"].([]any)) != 3 {
		t.Fatalf("approved export: %d %v; want 200 with 3 requests", st, out)
	}
	st, out = call("dpo-token", "GET", "/v1/requests?limit=100", "", adminapi.HeaderApproval, id)
	wantType("spending the approval twice", st, out, 403, "approval.required")
	// At or under the bound, no approval is needed.
	if st, out = call("auditor-token", "GET", "/v1/requests?limit=2", ""); st != 200 || len(out["requests"].([]any)) != 2 {
		t.Errorf("export of 2 rows: %d %v; want 200", st, out)
	}

	// proves SEC-07: a bulk request naming 3 subjects needs the second approver too, for
	// that very body.
	bulk := `{"type":"deletion","subjects":["cust-1","cust-2","cust-3"],"trigger":"retention_expired"}`
	st, out = call("dpo-token", "POST", "/v1/requests/bulk", bulk)
	wantType("bulk without approval", st, out, 403, "approval.required")
	bid := strings.TrimPrefix(out["instance"].(string), "/v1/approvals/")
	if st, _ := call("dpo2-token", "POST", "/v1/approvals/"+bid+"/approve", ""); st != 200 {
		t.Fatalf("approve bulk: %d", st)
	}
	other := `{"type":"deletion","subjects":["cust-1","cust-2","cust-4"],"trigger":"retention_expired"}`
	st, out = call("dpo-token", "POST", "/v1/requests/bulk", other, adminapi.HeaderApproval, bid)
	wantType("bulk of other subjects with the approval", st, out, 403, "approval.required")
	if st, out = call("dpo-token", "POST", "/v1/requests/bulk", bulk, adminapi.HeaderApproval, bid); st != 201 {
		t.Fatalf("approved bulk: %d %v; want 201", st, out)
	}

	// The register of approvals, and the trail.
	var list struct {
		Approvals []approval.Approval `json:"approvals"`
	}
	if resp := e.do("GET", "/v1/approvals?state=used", "", as("auditor-token"), &list); resp.StatusCode != 200 || len(list.Approvals) != 2 {
		t.Errorf("GET /v1/approvals?state=used: %d %+v; want the 2 spent", resp.StatusCode, list)
	}
	tr.Close()
	acts := map[string]int{}
	if err := trail.Entries(context.Background(), tr.Store(), trail.Filter{}, func(s trail.Stored) error {
		if s.Act == "approval ask" || s.Act == "approval use" || s.Act == "POST /v1/approvals/{id}/approve" {
			acts[s.Act+" "+s.Outcome]++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"approval ask ok": 2, "approval use ok": 2, "POST /v1/approvals/{id}/approve ok": 2, "POST /v1/approvals/{id}/approve refused": 2,
		"POST /v1/approvals/{id}/approve invalid": 1}
	for k, n := range want {
		if acts[k] != n {
			t.Errorf("trail: %d × %q; want %d (all: %v)", acts[k], k, n, acts)
		}
	}
	if resp := e.do("GET", "/v1/approvals/ap_missing", "", as("auditor-token"), nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown approval: %d; want 404", resp.StatusCode)
	}
}
