package adminapi_test

import (
	"context"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/internal/adminapi"
	"github.com/privguard/privguard/internal/callers"
)

// A dpo ends a processor's contract and records its deletion confirmation; the register
// shows the confirmation awaited until then; nobody terminates or confirms twice.
func TestCallerTerminationThroughTheAPI(t *testing.T) {
	var reg *callers.Registry
	e, _ := newRequestsEnvWith(t, nil, func(cfg *adminapi.Config, db *boltstore.DB) {
		var err error
		reg, err = callers.Open(context.Background(), db.Journal(), []callers.Caller{{Name: "sms-gateway", SHA256: callers.Hash("pg_sms"),
			Purposes: []privguard.Purpose{"marketing.communications.sms"}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Callers = reg
	})
	as := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	for _, tc := range []struct {
		tok, method, path, body string
		want                    int
	}{
		{"app-token", "POST", "/v1/callers/sms-gateway/terminate", "", 403},
		{"auditor-token", "POST", "/v1/callers/sms-gateway/terminate", "", 403},
		{"dpo-token", "POST", "/v1/callers/sms-gateway/deletion-confirmation", `{"reference":"early"}`, 409},
		{"dpo-token", "POST", "/v1/callers/nobody/terminate", "", 404},
		{"dpo-token", "POST", "/v1/callers/sms-gateway/terminate", "", 200},
		{"dpo-token", "POST", "/v1/callers/sms-gateway/terminate", "", 409},
		{"dpo-token", "POST", "/v1/callers/sms-gateway/deletion-confirmation", `{}`, 422},
	} {
		var out map[string]any
		if resp := e.do(tc.method, tc.path, tc.body, as(tc.tok), &out); resp.StatusCode != tc.want {
			t.Errorf("%s %s %s: %d %v; want %d", tc.tok, tc.method, tc.path, resp.StatusCode, out, tc.want)
		}
	}
	if _, ok := reg.Caller("pg_sms"); ok {
		t.Error("the terminated caller's credential is still accepted")
	}
	var list struct{ Callers []callers.Status }
	if e.do("GET", "/v1/callers", "", as("auditor-token"), &list); len(list.Callers) != 1 || list.Callers[0].Deletion == nil ||
		list.Callers[0].Deletion.State != "awaiting_confirmation" || list.Callers[0].TerminatedBy != "dpo-office" {
		t.Fatalf("GET /v1/callers: %+v; want sms-gateway awaiting its confirmation", list)
	}
	var st callers.Status
	if resp := e.do("POST", "/v1/callers/sms-gateway/deletion-confirmation", `{"reference":"ticket PRC-2291"}`, as("dpo-token"), &st); resp.StatusCode != 200 ||
		st.Deletion.State != "confirmed" || st.Deletion.Reference != "ticket PRC-2291" {
		t.Errorf("confirm: %d %+v", resp.StatusCode, st)
	}
	if resp := e.do("POST", "/v1/callers/sms-gateway/deletion-confirmation", `{"reference":"again"}`, as("dpo-token"), nil); resp.StatusCode != 409 {
		t.Errorf("confirming twice: %d; want 409", resp.StatusCode)
	}
}
