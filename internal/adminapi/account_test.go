package adminapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/privguard/privguard"
)

func TestSubjectAccount(t *testing.T) {
	e, _ := newRequestsEnv(t)
	app := map[string]string{"Authorization": "Bearer app-token"}
	dpo := map[string]string{"Authorization": "Bearer dpo-token"}
	at := time.Now().Add(-72 * time.Hour).UTC().Truncate(time.Second)

	var rec map[string]any
	resp := e.do("POST", "/v1/subjects/cust-7/account", `{"event":"closed","at":"`+at.Format(time.RFC3339)+`"}`, dpo, &rec)
	if resp.StatusCode != http.StatusCreated || rec["action"] != "close_account" || rec["effective_at"] != at.Format(time.RFC3339) ||
		rec["actor_type"] != "operator" || rec["subject"] != "cust-7" {
		t.Fatalf("POST account (closed) = %d %v; want 201 with a close_account record", resp.StatusCode, rec)
	}
	if resp := e.do("POST", "/v1/subjects/cust-8/account", `{"event":"service_ended"}`, dpo, &rec); resp.StatusCode != http.StatusCreated || rec["action"] != "end_service" {
		t.Fatalf("POST account (service_ended) = %d %v; want 201 with an end_service record", resp.StatusCode, rec)
	}
	closed := map[privguard.SubjectID]time.Time{}
	if err := e.ledger.EachClosed(t.Context(), time.Now().Add(time.Minute), func(s privguard.SubjectID, at time.Time) error {
		closed[s] = at
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !closed["cust-7"].Equal(at) || closed["cust-8"].IsZero() {
		t.Errorf("EachClosed = %v; want cust-7 at %v and cust-8", closed, at)
	}

	for _, tc := range []struct {
		name, method, path, body string
		header                   map[string]string
		status                   int
		field                    string
	}{
		{"app may not", "POST", "/v1/subjects/cust-9/account", `{"event":"closed"}`, app, 403, ""},
		{"future time", "POST", "/v1/subjects/cust-9/account", `{"event":"closed","at":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"}`, dpo, 422, "effective_at"},
		{"unknown event", "POST", "/v1/subjects/cust-9/account", `{"event":"deleted"}`, dpo, 422, "event"},
		{"no event", "POST", "/v1/subjects/cust-9/account", `{}`, dpo, 422, "event"},
		{"bad time", "POST", "/v1/subjects/cust-9/account", `{"event":"closed","at":"yesterday"}`, dpo, 400, ""},
		{"unknown field", "POST", "/v1/subjects/cust-9/account", `{"event":"closed","why":"x"}`, dpo, 400, ""},
		{"other method", "GET", "/v1/subjects/cust-9/account", "", dpo, 405, ""},
	} {
		before := e.ledger.Stats().Records
		var p privguard.Problem
		resp := e.do(tc.method, tc.path, tc.body, tc.header, &p)
		if resp.StatusCode != tc.status || (tc.field != "" && p.Field != tc.field) {
			t.Errorf("%s: %d %+v; want %d (field %q)", tc.name, resp.StatusCode, p, tc.status, tc.field)
		}
		if after := e.ledger.Stats().Records; after != before {
			t.Errorf("%s: wrote %d records", tc.name, after-before)
		}
	}
}
