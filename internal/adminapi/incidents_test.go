package adminapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/incident"
	"github.com/privguard/privguard/internal/adminapi"
	"github.com/privguard/privguard/internal/trail"
	"github.com/privguard/privguard/journal/journaltest"
)

type incidentAPI struct {
	t   *testing.T
	srv *httptest.Server
}

func newIncidentAPI(t *testing.T, now time.Time) (*incidentAPI, *trail.Trail) {
	t.Helper()
	store := &journaltest.Mem{}
	tr, err := trail.Open(store, bytes.Repeat([]byte{1}, 32), "r1", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	reg, err := incident.Open(incident.Config{Store: store, Pseudonym: tr.Subject, Now: func() time.Time { return now },
		Contact: incident.Contact{Controller: "Example Retail", DPO: "Li Wei", Contact: "dpo@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	tokens := adminapi.Tokens{}
	tokens.Add("pg_app", adminapi.Principal{Name: "crm"})
	tokens.Add("pg_dpo", adminapi.Principal{Name: "li.dpo", Roles: []string{"dpo"}})
	tokens.Add("pg_audit", adminapi.Principal{Name: "audit-firm", Roles: []string{"auditor"}})
	tokens.Add("pg_admin", adminapi.Principal{Name: "ops", Roles: []string{"admin"}})
	api, err := adminapi.New(adminapi.Config{Ledger: consenttest.Open(t, "", consent.Config{}), Tokens: tokens, Trail: tr, Incidents: reg})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &incidentAPI{t: t, srv: srv}, tr
}

func (a *incidentAPI) call(tok, method, path, body string) (int, http.Header, []byte) {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

const incidentJSON = `{"title":"CRM export left public","facts":"a CSV of customers was readable by URL","aware_at":"2026-11-02T08:00:00Z",
"categories":["user.contact.phone_number"],"subject_count":1200,"subjects":["cust-4242"],"effects":"fraud calls","cause":"a bucket policy changed"}`

// Roles: a dpo and an admin record and change incidents, an auditor reads them, an app
// does neither; every call but the app's is in the admin trail.
func TestIncidentRoles(t *testing.T) {
	a, tr := newIncidentAPI(t, time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
	st, h, body := a.call("pg_dpo", "POST", "/v1/incidents", incidentJSON)
	if st != 201 {
		t.Fatalf("dpo POST /v1/incidents = %d %s", st, body)
	}
	var v struct {
		ID            string
		Subjects      []string
		AssessmentDue bool `json:"assessment_due"`
		Clocks        []incident.Clock
	}
	json.Unmarshal(body, &v)
	if h.Get("Location") != "/v1/incidents/"+v.ID || !v.AssessmentDue || len(v.Clocks) != 3 {
		t.Errorf("answer %s; want the incident with its clocks, assessment due", body)
	}
	if bytes.Contains(body, []byte("cust-4242")) {
		t.Errorf("the answer holds the subject's id: %s", body)
	}
	if st, _, body := a.call("pg_admin", "POST", "/v1/incidents", incidentJSON); st != 201 {
		t.Errorf("admin POST = %d %s", st, body)
	}
	ev := "/v1/incidents/" + v.ID + "/events"
	if st, _, body := a.call("pg_dpo", "POST", ev, `{"kind":"assess","severity":"较大","risk":"high"}`); st != 200 {
		t.Errorf("dpo assess = %d %s", st, body)
	}
	for _, c := range []struct {
		tok, method, path, body string
		want                    int
	}{
		{"pg_audit", "GET", "/v1/incidents", "", 200},
		{"pg_audit", "GET", "/v1/incidents/" + v.ID, "", 200},
		{"pg_audit", "POST", "/v1/incidents", incidentJSON, 403},
		{"pg_audit", "POST", ev, `{"kind":"close"}`, 403},
		{"pg_app", "GET", "/v1/incidents", "", 403},
		{"pg_app", "GET", "/v1/incidents/" + v.ID, "", 403},
		{"pg_app", "POST", "/v1/incidents", incidentJSON, 403},
		{"pg_app", "POST", ev, `{"kind":"close"}`, 403},
		{"pg_dpo", "GET", "/v1/incidents/" + v.ID, "", 200},
		{"pg_dpo", "DELETE", "/v1/incidents/" + v.ID, "", 405},
		{"pg_audit", "GET", "/v1/incidents/" + v.ID + "/notices/authority", "", 422},
		{"pg_app", "GET", "/v1/incidents/" + v.ID + "/notices/authority", "", 403},
	} {
		if st, _, body := a.call(c.tok, c.method, c.path, c.body); st != c.want {
			t.Errorf("%s %s %s = %d %s; want %d", c.tok, c.method, c.path, st, body, c.want)
		}
	}
	st, _, body = a.call("pg_audit", "GET", "/v1/trail?act=POST%20/v1/incidents", "")
	if st != 200 {
		t.Fatalf("trail: %d %s", st, body)
	}
	var out struct{ Entries []trail.Stored }
	json.Unmarshal(body, &out)
	var acts []string
	for _, e := range out.Entries {
		acts = append(acts, e.Principal+" "+e.Act+" "+e.Outcome)
	}
	want := []string{"li.dpo POST /v1/incidents ok", "ops POST /v1/incidents ok", "li.dpo POST /v1/incidents/{id}/events ok",
		"audit-firm POST /v1/incidents refused", "audit-firm POST /v1/incidents/{id}/events refused",
		"crm POST /v1/incidents refused", "crm POST /v1/incidents/{id}/events refused"}
	if !slices.Equal(acts, want) {
		t.Errorf("trail acts %q; want %q", acts, want)
	}
	_ = tr
}

// The register answers pages and CSV; the CSV counts subjects, never names them.
func TestIncidentRegisterCSV(t *testing.T) {
	a, _ := newIncidentAPI(t, time.Date(2026, 11, 5, 9, 0, 0, 0, time.UTC))
	for range 3 {
		if st, _, body := a.call("pg_dpo", "POST", "/v1/incidents", incidentJSON); st != 201 {
			t.Fatalf("POST = %d %s", st, body)
		}
	}
	st, _, body := a.call("pg_audit", "GET", "/v1/incidents?limit=2&overdue=true", "")
	var page struct {
		Entries []incident.View
		Next    string
	}
	json.Unmarshal(body, &page)
	if st != 200 || len(page.Entries) != 2 || page.Next == "" || !page.Entries[0].Overdue || page.Entries[0].Subjects != nil || page.Entries[0].Named != 1 {
		t.Fatalf("page = %d %s; want 2 overdue entries and a next cursor", st, body)
	}
	st, _, body = a.call("pg_audit", "GET", "/v1/incidents?after="+page.Next, "")
	json.Unmarshal(body, &page)
	if st != 200 || len(page.Entries) != 1 {
		t.Errorf("next page = %d %s; want 1 entry", st, body)
	}
	st, h, body := a.call("pg_audit", "GET", "/v1/incidents?format=csv", "")
	if st != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") || bytes.Count(body, []byte("\n")) != 4 {
		t.Errorf("CSV = %d %s %q; want a header and 3 lines", st, h.Get("Content-Type"), body)
	}
	if bytes.Contains(body, []byte("cust-4242")) || !bytes.Contains(body, []byte("pipl.authority=overdue")) {
		t.Errorf("CSV %s; want clocks shown overdue and no subject id", body)
	}
}

// Bad input is a problem with a stable type, never a 500, never the subject's id.
func TestIncidentBadInput(t *testing.T) {
	a, _ := newIncidentAPI(t, time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
	st, _, body := a.call("pg_dpo", "POST", "/v1/incidents", incidentJSON)
	if st != 201 {
		t.Fatalf("POST = %d %s", st, body)
	}
	var v struct{ ID string }
	json.Unmarshal(body, &v)
	ev := "/v1/incidents/" + v.ID + "/events"
	with := func(k, val string) string {
		var m map[string]any
		json.Unmarshal([]byte(incidentJSON), &m)
		var x any
		json.Unmarshal([]byte(val), &x)
		m[k] = x
		b, _ := json.Marshal(m)
		return string(b)
	}
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		typ, field               string
	}{
		{"unknown_field", "POST", "/v1/incidents", with("secret_note", `"x"`), 400, "malformed-json", ""},
		{"aware_at_future", "POST", "/v1/incidents", with("aware_at", `"2026-11-03T08:00:00Z"`), 400, "validation", "aware_at"},
		{"aware_at_not_a_time", "POST", "/v1/incidents", with("aware_at", `"yesterday"`), 400, "malformed-json", ""},
		{"no_aware_at", "POST", "/v1/incidents", with("aware_at", `"0001-01-01T00:00:00Z"`), 400, "validation", "aware_at"},
		{"unknown_severity", "POST", "/v1/incidents", with("severity", `"catastrophic"`), 400, "validation", "severity"},
		{"unknown_risk", "POST", "/v1/incidents", with("risk", `"medium"`), 400, "validation", "risk"},
		{"no_facts", "POST", "/v1/incidents", with("facts", `""`), 400, "validation", "facts"},
		{"bad_subject", "POST", "/v1/incidents", with("subjects", `["cust\u0000-9999"]`), 400, "validation", "subjects[0]"},
		{"unknown_category", "POST", "/v1/incidents", with("categories", `["user.contact.emial"]`), 400, "validation", "categories[0]"},
		{"not_json", "POST", "/v1/incidents", `{"title":`, 400, "malformed-json", ""},
		{"unknown_kind", "POST", ev, `{"kind":"delete"}`, 400, "validation", "kind"},
		{"event_unknown_field", "POST", ev, `{"kind":"assess","severity":"major","by":"x"}`, 400, "malformed-json", ""},
		{"assess_unknown_severity", "POST", ev, `{"kind":"assess","severity":"huge"}`, 400, "validation", "severity"},
		{"unknown_incident", "POST", "/v1/incidents/inc_nope/events", `{"kind":"assess","risk":"none"}`, 404, "not-found", ""},
		{"get_unknown_incident", "GET", "/v1/incidents/inc_nope", "", 404, "not-found", ""},
		{"notify_future", "POST", ev, `{"kind":"notify-authority","authority":"sa","at":"2026-11-04T00:00:00Z"}`, 400, "validation", "at"},
		{"subject_notice_incomplete", "POST", ev, `{"kind":"notify-subjects"}`, 422, "notice-incomplete", ""},
		{"close_with_gaps", "POST", ev, `{"kind":"close"}`, 409, "incident-incomplete", ""},
		{"unknown_query", "GET", "/v1/incidents?state=open", "", 400, "validation", "state"},
		{"bad_status", "GET", "/v1/incidents?status=gone", "", 400, "validation", "status"},
		{"bad_overdue", "GET", "/v1/incidents?overdue=yes", "", 400, "validation", "overdue"},
		{"query_on_get", "GET", "/v1/incidents/" + v.ID + "?x=1", "", 400, "validation", "x"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, h, body := a.call("pg_dpo", c.method, c.path, c.body)
			var p privguard.Problem
			json.Unmarshal(body, &p)
			if st != c.status || h.Get("Content-Type") != privguard.ProblemContentType || p.Type != privguard.ProblemTypePrefix+c.typ {
				t.Errorf("%s %s = %d %s %s; want %d %s", c.method, c.path, st, h.Get("Content-Type"), body, c.status, c.typ)
			}
			if c.field != "" && p.Field != c.field {
				t.Errorf("field = %q; want %q", p.Field, c.field)
			}
			if bytes.Contains(body, []byte("9999")) || bytes.Contains(body, []byte("4242")) {
				t.Errorf("the problem holds a subject's id: %s", body)
			}
		})
	}
	// The notice as it would be sent: refused while incomplete, naming what is missing.
	st, _, body = a.call("pg_dpo", "GET", "/v1/incidents/"+v.ID+"/notices/subject", "")
	var p privguard.Problem
	json.Unmarshal(body, &p)
	if st != 422 || len(p.Errors) != 2 || p.Errors[0].Field != "remedies" || p.Errors[1].Field != "advice" {
		t.Errorf("subject notice of an incomplete incident = %d %s; want 422 naming remedies and advice", st, body)
	}
	if st, _, body := a.call("pg_dpo", "GET", "/v1/incidents/"+v.ID+"/notices/press", ""); st != 404 {
		t.Errorf("an unknown kind of notice = %d %s; want 404", st, body)
	}
	// Nothing refused was recorded: one incident, its one event.
	st, _, body = a.call("pg_audit", "GET", "/v1/incidents/"+v.ID, "")
	var got incident.View
	json.Unmarshal(body, &got)
	if st != 200 || got.Events != 1 {
		t.Errorf("GET = %d, %d events; want 1", st, got.Events)
	}
	if st, _, body := a.call("pg_dpo", "POST", ev, `{"kind":"update","actions":"bucket closed"}`); st != 200 {
		t.Fatalf("update = %d %s", st, body)
	}
	st, _, body = a.call("pg_dpo", "GET", "/v1/incidents/"+v.ID+"/notices/authority", "")
	var n incident.Notice
	json.Unmarshal(body, &n)
	if st != 200 || !strings.Contains(n.Texts["zh-CN"], "涉及人数（约）：1200") || !strings.Contains(n.Texts["en"], "dpo@example.com") {
		t.Errorf("authority notice = %d %s", st, body)
	}
}
