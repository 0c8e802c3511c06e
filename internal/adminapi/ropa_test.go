package adminapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/internal/adminapi"
	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/internal/ropa"
)

// ropaServer serves GET /v1/ropa for the example configuration, with a token per role.
func ropaServer(t *testing.T, build func() (*ropa.Record, error)) (*httptest.Server, *bytes.Buffer) {
	t.Helper()
	tokens := adminapi.Tokens{}
	for _, role := range []string{"admin", "auditor", "dpo", "app", "importer"} {
		tokens.Add("pg_token-for-the-"+role+"-role", adminapi.Principal{Name: role, Roles: []string{role}})
	}
	logs := &bytes.Buffer{}
	api, err := adminapi.New(adminapi.Config{Ledger: consenttest.Open(t, "", consent.Config{}), Tokens: tokens,
		Logger: slog.New(slog.NewJSONHandler(logs, nil)), RecordOfProcessing: build})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return srv, logs
}

func getAs(t *testing.T, srv *httptest.Server, role, method, query string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+"/v1/ropa"+query, nil)
	req.Header.Set("Authorization", "Bearer pg_token-for-the-"+role+"-role")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestRopaAPI(t *testing.T) {
	cfg, err := config.Load("../../examples/dpo/privguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := ropaServer(t, func() (*ropa.Record, error) { return ropa.Build(cfg, ropa.Options{}) })

	// The auditor reads the DPO's desk, as does the dpo; apps (and importers) read none of it.
	for _, tc := range []struct {
		role string
		want int
	}{{"auditor", 200}, {"dpo", 200}, {"admin", 200}, {"app", 403}, {"importer", 403}} {
		resp, body := getAs(t, srv, tc.role, "GET", "")
		if resp.StatusCode != tc.want {
			t.Errorf("GET /v1/ropa as %s = %d %s; want %d", tc.role, resp.StatusCode, body, tc.want)
		}
		if tc.want == 403 && (resp.Header.Get("Content-Type") != "application/problem+json" || bytes.Contains(body, []byte("Example Retail"))) {
			t.Errorf("the %s's 403 is not a problem, or shows the record: %s", tc.role, body)
		}
	}
	resp, body := getAs(t, srv, "auditor", "GET", "")
	var rec ropa.Record
	if err := json.Unmarshal(body, &rec); err != nil || resp.Header.Get("Content-Type") != "application/json" || len(rec.Activities) != 5 {
		t.Errorf("GET /v1/ropa = %s %s (%v); want the example's record as JSON", resp.Header.Get("Content-Type"), body, err)
	}
	resp, body = getAs(t, srv, "auditor", "GET", "?format=csv&lang=zh")
	if !bytes.HasPrefix(body, []byte("\ufeff处理活动 / Processing activity")) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), "privguard-ropa.csv") {
		t.Errorf("?format=csv = %s %q; want the CSV as an attachment", resp.Header.Get("Content-Type"), body[:min(len(body), 80)])
	}
	resp, body = getAs(t, srv, "dpo", "GET", "?format=html&lang=zh")
	if !bytes.Contains(body, []byte("个人信息处理活动记录")) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("?format=html&lang=zh = %s; want the Chinese page", resp.Header.Get("Content-Type"))
	}
	// The auditor changes nothing: other methods are refused.
	if resp, _ := getAs(t, srv, "auditor", "POST", ""); resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST /v1/ropa = %d; want 405 or 403", resp.StatusCode)
	}

	for _, tc := range []struct{ query, typ, field string }{
		{"?format=xlsx", "validation", "format"},
		{"?lang=fr", "validation", "lang"},
		{"?format=csv&format=json", "ambiguous-request", "format"},
		{"?format=%3Cscript%3E", "validation", "format"},
	} {
		resp, body := getAs(t, srv, "auditor", "GET", tc.query)
		var p struct{ Type, Field, Detail string }
		json.Unmarshal(body, &p)
		if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.HasSuffix(p.Type, tc.typ) || p.Field != tc.field || strings.Contains(string(body), "<script>") {
			t.Errorf("GET /v1/ropa%s = %d %s; want a 400 %s problem on %s, not echoing the value", tc.query, resp.StatusCode, body, tc.typ, tc.field)
		}
	}
}

// A record that cannot be built is a 500 problem without the error's text, logged.
func TestRopaAPIFailure(t *testing.T) {
	srv, logs := ropaServer(t, func() (*ropa.Record, error) { return nil, errors.New("config: secret detail") })
	resp, body := getAs(t, srv, "auditor", "GET", "")
	if resp.StatusCode != 500 || strings.Contains(string(body), "secret detail") || !strings.Contains(logs.String(), "secret detail") {
		t.Errorf("GET /v1/ropa on a failing build = %d %s; want 500 without the internal error, which is logged", resp.StatusCode, body)
	}
}
