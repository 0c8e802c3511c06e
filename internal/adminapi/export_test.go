package adminapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/evidence"
	"github.com/privguard/privguard/internal/adminapi"
)

// exportServer serves a ledger with a few grants, with a token per role.
func exportServer(t *testing.T) (*httptest.Server, *bytes.Buffer) {
	t.Helper()
	clock := &consenttest.Clock{}
	l := consenttest.Open(t, "", consent.Config{Now: clock.Now})
	ctx := context.Background()
	if _, _, err := l.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
		t.Fatal(err)
	}
	for _, s := range []privguard.SubjectID{"cust-0001", "cust-0002", "13800138000"} {
		if _, _, err := l.Append(ctx, consent.Request{Subject: s, Purpose: "marketing.communications.sms", Action: consent.ActionGrant,
			Regime: privguard.RegimePIPL, Notice: &consent.NoticeRef{ID: "marketing", Version: 1, Language: "zh-CN"},
			Channel: consent.ChannelWeb, Method: consent.MethodExplicit}); err != nil {
			t.Fatal(err)
		}
	}
	tokens := adminapi.Tokens{}
	for _, role := range []string{"admin", "auditor", "dpo", "app", "importer"} {
		tokens.Add("pg_token-for-the-"+role+"-role", adminapi.Principal{Name: role, Roles: []string{role}})
	}
	logs := &bytes.Buffer{}
	api, err := adminapi.New(adminapi.Config{Ledger: l, Tokens: tokens, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return srv, logs
}

func exportAs(t *testing.T, srv *httptest.Server, role, query string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/v1/consents/export"+query, nil)
	req.Header.Set("Authorization", "Bearer pg_token-for-the-"+role+"-role")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestConsentExportAPI(t *testing.T) {
	srv, logs := exportServer(t)
	const byPurpose = "?purpose=marketing.communications&from=2026-01-01&to=2026-02-01"
	for _, tc := range []struct {
		role string
		want int
	}{{"auditor", 200}, {"dpo", 200}, {"admin", 200}, {"app", 403}, {"importer", 403}} {
		resp, body := exportAs(t, srv, tc.role, byPurpose)
		if resp.StatusCode != tc.want {
			t.Errorf("GET /v1/consents/export as %s = %d %s; want %d", tc.role, resp.StatusCode, body, tc.want)
			continue
		}
		if tc.want == 403 {
			if resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("the %s's 403 is not a problem: %s", tc.role, body)
			}
			continue
		}
		b, err := evidence.Open(bytes.NewReader(body), int64(len(body)))
		if err != nil {
			t.Fatalf("the export as %s does not open: %v", tc.role, err)
		}
		rep, err := evidence.VerifyConsent(b)
		if err != nil || rep.Records != 3 || rep.Totals.Grants != 3 {
			t.Errorf("the export as %s: %+v, %v; want 3 grants that verify", tc.role, rep, err)
		}
		if resp.Header.Get("Content-Type") != "application/zip" || !strings.Contains(resp.Header.Get("Content-Disposition"), "consent-evidence-marketing-communications-20260101-20260201.zip") {
			t.Errorf("headers = %v", resp.Header)
		}
	}
	resp, body := exportAs(t, srv, "auditor", "?subject=13800138000")
	if resp.StatusCode != 200 {
		t.Fatalf("by subject = %d %s", resp.StatusCode, body)
	}
	if rep, err := verifyBytes(body); err != nil || rep.Records != 1 || rep.Scope.Subject != "13800138000" {
		t.Errorf("by subject: %+v, %v; want the subject's one record", rep, err)
	}
	if bytes.Contains(logs.Bytes(), []byte("13800138000")) {
		t.Errorf("a subject id reached the log:\n%s", logs.String())
	}
}

func verifyBytes(body []byte) (evidence.ConsentReport, error) {
	b, err := evidence.Open(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		return evidence.ConsentReport{}, err
	}
	return evidence.VerifyConsent(b)
}

func TestConsentExportBadFilters(t *testing.T) {
	srv, _ := exportServer(t)
	for _, tc := range []struct {
		name, query, typ, field string
	}{
		{"no_filter", "", adminapi.TypeValidation, "purpose"},
		{"purpose_without_period", "?purpose=marketing", adminapi.TypeValidation, "from"},
		{"no_to", "?purpose=marketing&from=2026-01-01", adminapi.TypeValidation, "to"},
		{"bad_date", "?purpose=marketing&from=yesterday&to=2026-01-01", adminapi.TypeValidation, "from"},
		{"reversed", "?purpose=marketing&from=2026-02-01&to=2026-01-01", adminapi.TypeValidation, "to"},
		{"bad_purpose", "?purpose=Marketing!&from=2026-01-01&to=2026-02-01", adminapi.TypeValidation, "purpose"},
		{"unknown_purpose", "?purpose=marketing.carrier_pigeon&from=2026-01-01&to=2026-02-01", adminapi.TypeValidation, "purpose"},
		{"subject_and_purpose", "?subject=cust-0001&purpose=marketing", adminapi.TypeValidation, "subject"},
		{"bad_subject", "?subject=a%20b", adminapi.TypeInvalidSubject, "subject"},
		{"long_subject", "?subject=" + strings.Repeat("a", 300), adminapi.TypeInvalidSubject, "subject"},
		{"unknown_parameter", "?subject=cust-0001&format=csv", adminapi.TypeValidation, "format"},
		{"twice", "?subject=cust-0001&subject=cust-0002", adminapi.TypeAmbiguous, "subject"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := exportAs(t, srv, "auditor", tc.query)
			var p privguard.Problem
			if err := json.Unmarshal(body, &p); err != nil || resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("GET %s = %d %s; want a 400 problem", tc.query, resp.StatusCode, body)
			}
			if !strings.HasSuffix(p.Type, tc.typ) || p.Field != tc.field {
				t.Errorf("GET %s = type %s field %q; want %s field %q", tc.query, p.Type, p.Field, tc.typ, tc.field)
			}
			if bytes.Contains(body, []byte("cust-")) {
				t.Errorf("the problem repeats a subject id: %s", body)
			}
		})
	}
}
