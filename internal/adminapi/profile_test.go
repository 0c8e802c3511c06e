package adminapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/internal/adminapi"
)

// tagStore is a store of tags by subject that lists and erases them item by item.
type tagStore struct {
	mu   sync.Mutex
	tags map[privguard.SubjectID][]string
}

func (s *tagStore) Name() string { return "tags" }
func (s *tagStore) Export(context.Context, privguard.SubjectID) (dsar.Export, error) {
	return dsar.Export{Store: "tags"}, nil
}
func (s *tagStore) Erase(context.Context, privguard.SubjectID) (dsar.Erased, error) {
	return dsar.Erased{}, nil
}

func (s *tagStore) Derived(_ context.Context, subject privguard.SubjectID) ([]dsar.DerivedItem, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []dsar.DerivedItem
	for _, v := range s.tags[subject] {
		out = append(out, dsar.DerivedItem{Where: "user_tags.tag", Category: "user.derived.tags", Value: v})
	}
	return out, nil
}

func (s *tagStore) EraseDerived(_ context.Context, subject privguard.SubjectID, items []dsar.DerivedItem) (dsar.Erased, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, it := range items {
		before := len(s.tags[subject])
		s.tags[subject] = slices.DeleteFunc(s.tags[subject], func(v string) bool { return v == it.Value })
		n += before - len(s.tags[subject])
	}
	return dsar.Erased{Items: n}, nil
}

type profileJSON struct {
	Subject string `json:"subject"`
	Items   []struct {
		ID, Store, Where, Category, Value string
		Derived                           bool
	} `json:"items"`
}

func TestProfileListAndDelete(t *testing.T) {
	store := &tagStore{tags: map[privguard.SubjectID][]string{"cust-1": {"vip", "churn-risk"}, "cust-2": {"vip"}}}
	e, _ := newRequestsEnv(t, store)
	as := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

	var p profileJSON
	if resp := e.do("GET", "/v1/subjects/cust-1/profile", "", as("app-token"), &p); resp.StatusCode != 200 {
		t.Fatalf("GET profile = %d", resp.StatusCode)
	}
	if p.Subject != "cust-1" || len(p.Items) != 2 || p.Items[0].Value != "churn-risk" || p.Items[1].Value != "vip" ||
		!p.Items[0].Derived || p.Items[0].Store != "tags" || p.Items[0].Where != "user_tags.tag" || p.Items[0].Category != "user.derived.tags" ||
		p.Items[1].ID != dsar.ItemID("tags", "user_tags.tag", "vip") {
		t.Fatalf("GET profile = %+v", p)
	}
	vip := p.Items[1].ID

	for _, tc := range []struct {
		name, tok, method, path, body string
		want                          int
		typ                           string
	}{
		{"unknown_id", "app-token", "POST", "/v1/subjects/cust-1/profile/delete", `{"items":["no-such-item"]}`, 422, "validation"},
		{"another_subjects_id", "app-token", "POST", "/v1/subjects/cust-3/profile/delete", `{"items":["` + vip + `"]}`, 422, "validation"},
		{"no_items", "app-token", "POST", "/v1/subjects/cust-1/profile/delete", `{"items":[]}`, 422, "validation"},
		{"malformed", "app-token", "POST", "/v1/subjects/cust-1/profile/delete", `{"items":`, 400, "malformed-json"},
		{"bad_subject", "app-token", "GET", "/v1/subjects/a%20b/profile", ``, 400, "invalid-subject"},
		{"app_attests", "app-token", "POST", "/v1/subjects/cust-1/profile/delete", `{"items":["` + vip + `"],"identity":{"method":"operator","note":"x"}}`, 403, "forbidden"},
		{"no_requests_token_reads", "sms-token", "GET", "/v1/subjects/cust-1/profile", ``, 403, "token.requests_not_allowed"},
		{"no_requests_token_deletes", "sms-token", "POST", "/v1/subjects/cust-1/profile/delete", `{"items":["` + vip + `"]}`, 403, "token.requests_not_allowed"},
		{"auditor_deletes", "auditor-token", "POST", "/v1/subjects/cust-1/profile/delete", `{"items":["` + vip + `"]}`, 403, "forbidden"},
		{"put", "app-token", "PUT", "/v1/subjects/cust-1/profile", `{}`, 405, "method-not-allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out map[string]any
			resp := e.do(tc.method, tc.path, tc.body, as(tc.tok), &out)
			if resp.StatusCode != tc.want || out["type"] != privguard.ProblemTypePrefix+tc.typ {
				t.Errorf("%s %s = %d %v; want %d %s", tc.method, tc.path, resp.StatusCode, out, tc.want, tc.typ)
			}
			if tc.name == "unknown_id" {
				errs, _ := out["errors"].([]any)
				if len(errs) != 1 || errs[0].(map[string]any)["detail"] != "no-such-item" || errs[0].(map[string]any)["rule"] != "not_held" {
					t.Errorf("errors = %v; want the unknown id named", out["errors"])
				}
			}
		})
	}

	var r map[string]any
	resp := e.do("POST", "/v1/subjects/cust-1/profile/delete", `{"items":["`+vip+`"],"identity":{"method":"operator","note":"desk"}}`, as("dpo-token"), &r)
	if resp.StatusCode != http.StatusAccepted || r["type"] != "tag_deletion" || r["state"] != "verified" ||
		resp.Header.Get("Location") != "/v1/requests/"+r["id"].(string) {
		t.Fatalf("POST delete = %d %v", resp.StatusCode, r)
	}
	if _, err := e.eng.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.do("GET", "/v1/requests/"+r["id"].(string), "", nil, &r)
	if r["state"] != "completed" {
		t.Fatalf("the request is %v; want completed", r["state"])
	}
	e.do("GET", "/v1/subjects/cust-1/profile", "", nil, &p)
	if len(p.Items) != 1 || p.Items[0].Value != "churn-risk" || !slices.Equal(store.tags["cust-2"], []string{"vip"}) {
		t.Errorf("after the deletion: cust-1 %+v, cust-2 %v; want churn-risk and vip", p.Items, store.tags["cust-2"])
	}
	// Without an identity the request waits for verification (by code, as any request).
	resp = e.do("POST", "/v1/subjects/cust-1/profile/delete", `{"items":["`+p.Items[0].ID+`"]}`, as("app-token"), &r)
	if resp.StatusCode != http.StatusAccepted || r["state"] != "awaiting_verification" {
		t.Errorf("POST delete without identity = %d %v", resp.StatusCode, r)
	}
}

// failingTags is a tag store whose listing fails with the driver quoting the subject's data.
type failingTags struct{ tagStore }

func (*failingTags) Derived(context.Context, privguard.SubjectID) ([]dsar.DerivedItem, error) {
	return nil, errors.New(`connection reset near "li.lei@example.com"`)
}

// A store that cannot list makes the profile unavailable (503, never a shorter profile),
// and neither the answer nor the log quotes what the driver said.
func TestProfileStoreDown(t *testing.T) {
	e, _ := newRequestsEnv(t, &failingTags{})
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/v1/subjects/cust-1/profile", ""},
		{"POST", "/v1/subjects/cust-1/profile/delete", `{"items":["x"]}`},
	} {
		var out map[string]any
		resp := e.do(tc.method, tc.path, tc.body, nil, &out)
		if resp.StatusCode != http.StatusServiceUnavailable || out["type"] != privguard.ProblemTypePrefix+"unavailable" {
			t.Errorf("%s %s = %d %v; want 503 unavailable", tc.method, tc.path, resp.StatusCode, out)
		}
		if b, _ := json.Marshal(out); strings.Contains(string(b), "li.lei") {
			t.Errorf("the answer quotes the driver: %s", b)
		}
	}
	if strings.Contains(e.logs.String(), "li.lei") {
		t.Errorf("the log quotes the driver: %s", e.logs.String())
	}
}

func FuzzProfileDeleteBody(f *testing.F) {
	for _, seed := range []string{`{"items":["a"]}`, `{"items":[]}`, `{"items":[""]}`, `{"items":"a"}`, `[`, `{}`,
		`{"items":["a"],"identity":{"method":"operator","note":"n"}}`, `{"items":["a"],"identity_token":"x.y.z"}`,
		`{"items":["a"],"identity":{"method":"code"},"identity_token":"x"}`} {
		f.Add(seed)
	}
	store := &tagStore{tags: map[privguard.SubjectID][]string{"a": {"vip"}}}
	db, err := boltstore.Open(filepath.Join(f.TempDir(), "p.db"), boltstore.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	eng, err := dsar.New(dsar.Config{Store: db.DSAR(), Connectors: []dsar.Connector{store}})
	if err != nil {
		f.Fatal(err)
	}
	v, _ := dsar.NewTokenVerifier(nil, idSecret)
	tokens := adminapi.Tokens{}
	tokens.Add(token, adminapi.Principal{Name: "fuzz", Roles: []string{"admin"}})
	api, err := adminapi.New(adminapi.Config{Ledger: consenttest.Open(f, "", consent.Config{}), Tokens: tokens, Requests: eng, IdentityTokens: v})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", "/v1/subjects/a/profile/delete", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		api.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		if w.Code >= 400 && w.Header().Get("Content-Type") != privguard.ProblemContentType {
			t.Fatalf("status %d without a problem body for %q", w.Code, body)
		}
	})
}
