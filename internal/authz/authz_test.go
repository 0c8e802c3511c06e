package authz_test

import (
	"slices"
	"testing"

	"github.com/privguard/privguard/internal/authz"
)

func TestDefaultPolicy(t *testing.T) {
	a, err := authz.New("")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		roles    []string
		obj, act string
		allow    bool
	}{
		{nil, "/v1/consents", "POST", true}, // no roles: an app
		{[]string{"app"}, "/v1/requests", "POST", true},
		{[]string{"app"}, "/v1/requests/{id}/code/verify", "POST", true},
		{[]string{"app"}, "/v1/requests/{id}/approve", "POST", false},
		{[]string{"app"}, "/v1/requests/{id}/link", "POST", false},
		{[]string{"app"}, "/v1/requests/{id}/verify", "POST", false},
		{[]string{"app"}, "/v1/requests/register", "GET", false},
		{[]string{"app"}, "/v1/vault/subjects/{subject}", "DELETE", false},
		{[]string{"app"}, authz.Attest, "use", false},
		{[]string{"app"}, authz.RecordFacts, "use", false},
		{[]string{"dpo"}, authz.RecordFacts, "use", true},
		{[]string{"auditor"}, authz.RecordFacts, "use", false},
		{[]string{"app"}, "/metrics", "GET", false},
		{[]string{"auditor"}, "/v1/requests/register", "GET", true},
		{[]string{"auditor"}, "/v1/requests", "POST", false},
		{[]string{"auditor"}, "/v1/consents", "POST", false},
		{[]string{"dpo"}, "/v1/requests/{id}/approve", "POST", true},
		{[]string{"dpo"}, "/v1/requests/{id}/link", "POST", true},
		{[]string{"dpo"}, authz.Attest, "use", true},
		{[]string{"dpo"}, "/v1/consents", "POST", false},   // not an app
		{[]string{"dpo"}, "/metrics", "GET", true},         // inherits auditor
		{[]string{"dpo"}, "/v1/vault/open", "POST", false}, // opening sealed fields is not its work
		{[]string{"dpo"}, "/v1/requests", "POST", true},
		{[]string{"auditor", "dpo"}, "/v1/requests/{id}/reject", "POST", true},
		{[]string{"admin"}, "/v1/vault/subjects/{subject}", "DELETE", true},
		{[]string{"nobody"}, "/healthz", "GET", false},
		{[]string{"app"}, "/v1/requests/{id}/../approve", "POST", false},
		{[]string{"importer"}, "/v1/consents/import", "POST", true},
		{[]string{"operator"}, "/v1/requests/{id}/review", "POST", true},
		{[]string{"dpo"}, "/v1/requests/{id}/review", "POST", true},
		{[]string{"app"}, "/v1/requests/{id}/review", "POST", false},
		{[]string{"operator"}, "/v1/requests/{id}/verify", "POST", false},
		{[]string{"app"}, "/v1/requests/{id}/human-review", "POST", true},
		{[]string{"importer"}, "/v1/consents", "POST", false}, // imports, records no first-hand choice
		{[]string{"importer"}, authz.RecordFacts, "use", false},
		{nil, "/v1/consents/import", "POST", false},
		{[]string{"app"}, "/v1/consents/import", "POST", false},
		{[]string{"dpo"}, "/v1/consents/import", "POST", false},
		{[]string{"admin"}, "/v1/consents/import", "POST", true},
		{[]string{"app", "importer"}, "/v1/consents/import", "POST", true},
	} {
		// Twice: the second answer comes from the memo.
		for range 2 {
			if got := a.Allow(tc.roles, tc.obj, tc.act); got != tc.allow {
				t.Errorf("Allow(%v, %s, %s) = %v; want %v", tc.roles, tc.obj, tc.act, got, tc.allow)
			}
		}
	}
}

func TestCustomPolicy(t *testing.T) {
	a, err := authz.New("p, support, /v1/requests/{id}, GET\n")
	if err != nil {
		t.Fatal(err)
	}
	if !a.Allow([]string{"support"}, "/v1/requests/{id}", "GET") || a.Allow([]string{"admin"}, "/v1/requests", "POST") {
		t.Error("a custom policy replaces the default one")
	}
	if _, err := authz.New("# only a comment\n"); err == nil {
		t.Error("a policy that grants nothing was accepted")
	}
}

func TestRolesFor(t *testing.T) {
	a, err := authz.New("")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		obj, act string
		want     []string
	}{
		{"/v1/requests/{id}/approve", "POST", []string{"admin", "dpo"}},
		{"/v1/consents", "POST", []string{"admin", "app"}},
		{"/v1/requests/register", "GET", []string{"admin", "auditor", "dpo"}}, // dpo inherits auditor
		{authz.Attest, "use", []string{"admin", "dpo"}},
	} {
		if got := a.RolesFor(tc.obj, tc.act); !slices.Equal(got, tc.want) {
			t.Errorf("RolesFor(%s, %s) = %v; want %v", tc.obj, tc.act, got, tc.want)
		}
	}
	custom, err := authz.New("p, support, /v1/requests/{id}, GET\ng, lead, support\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := custom.RolesFor("/v1/requests/{id}", "GET"); !slices.Equal(got, []string{"lead", "support"}) {
		t.Errorf("custom policy: RolesFor = %v; want [lead support]", got)
	}
	if got := custom.RolesFor("/v1/consents", "POST"); len(got) != 0 {
		t.Errorf("custom policy: RolesFor(/v1/consents) = %v; want none", got)
	}
}
