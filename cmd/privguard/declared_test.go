package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A purpose and data categories declared in the YAML file are enforced like built-in ones,
// end to end: the sidecar's route for the declared purpose is denied without consent,
// served with it (minimised to the declared purpose's categories), denied again after a
// withdrawal; a declared sensitive category needs separate consent.
func TestSidecarEnforcesDeclaredPurpose(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(r.URL.Path, "/api/skin/") {
			w.Write([]byte(`{"skin":"dry, sensitive"}`))
			return
		}
		w.Write([]byte(`{"points":1200,"tier":"gold","email":"li.lei@example.com"}`))
	}))
	defer upstream.Close()
	sc := startSidecar(t, upstream.URL, `regime: pipl
categories:
  - {name: user.loyalty, description: {en: Loyalty programme, zh: 会员计划}}
  - {name: user.loyalty.points}
  - {name: user.loyalty.tier}
  - {name: user.skin_profile, sensitive: true}
purposes:
  - name: loyalty.points
    description: {en: Points programme, zh: 积分计划}
    legal_bases: {pipl: [consent], gdpr: [consent]}
    categories: [user.loyalty]
  - name: marketing.beauty_advice
    legal_bases: {pipl: [consent]}
    categories: [user.skin_profile]
routes:
  - match: "GET /api/members/{id}"
    purpose: loyalty.points
    subject: {path: id}
    fields: {points: user.loyalty.points, tier: user.loyalty.tier, email: user.contact.email}
  - match: "GET /api/skin/{id}"
    purpose: marketing.beauty_advice
    subject: {path: id}
    fields: {skin: user.skin_profile}
`)
	admin := func(path, body string) {
		t.Helper()
		req, _ := http.NewRequest("POST", sc.admin+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+sc.token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("admin %s = %s %s", path, resp.Status, b)
		}
	}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(sc.proxy + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	if code, body := get("/api/members/m-1"); code != http.StatusForbidden || !strings.Contains(body, "consent.missing") {
		t.Errorf("declared purpose without consent = %d %s; want 403 consent.missing", code, body)
	}
	admin("/v1/notices", `{"id":"loyalty","version":1,"language":"zh-CN","text":"积分与护肤建议","purposes":["loyalty","marketing.beauty_advice","sensitive.processing"],
		"controller":{"name":"E","contact":"privacy@example.com"},"retention":"1y","rights_channels":["x"]}`)
	grant := func(purpose, extra string) {
		admin("/v1/consents", `{"subject":"m-1","purpose":"`+purpose+`","action":"grant","regime":"pipl","notice":{"id":"loyalty","version":1},"channel":"app","method":"explicit"`+extra+`}`)
	}
	grant("loyalty.points", "")
	code, body := get("/api/members/m-1")
	if code != http.StatusOK || !strings.Contains(body, `"points":1200`) || !strings.Contains(body, "gold") || strings.Contains(body, "example.com") {
		t.Errorf("declared purpose with consent = %d %s; want 200 with the loyalty fields and the email dropped", code, body)
	}
	admin("/v1/consents", `{"subject":"m-1","purpose":"loyalty.points","action":"withdraw"}`)
	if code, body := get("/api/members/m-1"); code != http.StatusForbidden || !strings.Contains(body, "consent.withdrawn") {
		t.Errorf("declared purpose after withdrawal = %d %s; want 403 consent.withdrawn", code, body)
	}

	// serve's record of processing is that of the configuration it enforces.
	req, _ := http.NewRequest("GET", sc.admin+"/v1/ropa?format=json", nil)
	req.Header.Set("Authorization", "Bearer "+sc.token)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Error(err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"purpose": "loyalty.points"`) || !strings.Contains(string(b), `"at": "GET /api/members/{id}: points"`) {
			t.Errorf("GET /v1/ropa = %d %.300s; want the record with the declared purpose and its route", resp.StatusCode, b)
		}
	}

	grant("marketing.beauty_advice", "")
	if code, body := get("/api/skin/m-1"); code != http.StatusForbidden || !strings.Contains(body, "separate_consent.required") {
		t.Errorf("declared sensitive category with ordinary consent = %d %s; want 403 separate_consent.required", code, body)
	}
	grant("sensitive.processing", `,"separate":true,"separate_scope":"sensitive"`)
	if code, body := get("/api/skin/m-1"); strings.Contains(body, "separate_consent.required") {
		t.Errorf("declared sensitive category with separate consent = %d %s; want no separate_consent.required", code, body)
	}
}
