package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAdminRolesAndPolicyFile: configured tokens carry roles, and admin.policy_file
// replaces the default policy.
func TestAdminRolesAndPolicyFile(t *testing.T) {
	dir := t.TempDir()
	hash := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	os.WriteFile(filepath.Join(dir, "admin.token"), []byte("pg_admin-token-for-the-test\n"), 0o600) // read by startServe
	os.WriteFile(filepath.Join(dir, "policy.csv"), []byte("p, admin, *, *\np, app, /healthz, GET\n"), 0o600)
	cfg := filepath.Join(dir, "privguard.yaml")
	os.WriteFile(cfg, []byte(`admin:
  policy_file: `+filepath.Join(dir, "policy.csv")+`
  tokens:
    - {name: ops, sha256: `+hash("pg_admin-token-for-the-test")+`, roles: [admin]}
    - {name: crm-backend, sha256: `+hash("pg_app-token-for-the-test")+`}
`), 0o600)
	url, admin, stop, _ := startServe(t, dir, "--config", cfg)
	defer stop()
	if st, out := callJSON(t, url, admin, "POST", "/v1/requests", `{"type":"objection","subject":"c-1"}`); st != 201 {
		t.Errorf("admin submit: %d %v", st, out)
	}
	if st, out := callJSON(t, url, "pg_app-token-for-the-test", "POST", "/v1/requests", `{"type":"objection","subject":"c-1"}`); st != 403 {
		t.Errorf("app submit under a policy that only lets it check health: %d %v", st, out)
	}
	if st, _ := callJSON(t, url, "pg_app-token-for-the-test", "GET", "/healthz", ""); st != 200 {
		t.Errorf("app health: %d", st)
	}
}

// TestConfiguredTokensReplaceTheGeneratedOne: with admin.tokens set, the token a first start
// wrote to admin.token stops working; serve says so at start, and the 401 says why.
func TestConfiguredTokensReplaceTheGeneratedOne(t *testing.T) {
	dir := t.TempDir()
	hash := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	const generated = "pg_generated-token-for-the-test"
	os.WriteFile(filepath.Join(dir, "admin.token"), []byte(generated+"\n"), 0o600)
	cfg := filepath.Join(dir, "privguard.yaml")
	os.WriteFile(cfg, []byte(`admin:
  tokens:
    - {name: ops, sha256: `+hash("pg_ops-token-for-the-test")+`, roles: [admin]}
`), 0o600)
	url, _, stop, logs := startServe(t, dir, "--config", cfg)
	defer stop()
	if l := logs.String(); !strings.Contains(l, "NOT accepted") || !strings.Contains(l, filepath.Join(dir, "admin.token")) || strings.Contains(l, generated) {
		t.Errorf("start-up logs do not say the generated token is ignored (or show it):\n%s", l)
	}
	st, out := callJSON(t, url, generated, "GET", "/healthz", "")
	if detail, _ := out["detail"].(string); st != 401 || !strings.Contains(detail, "admin.tokens") {
		t.Errorf("the generated token: %d %v; want 401 saying admin.tokens replaced it", st, out)
	}
	if st, _ := callJSON(t, url, "pg_ops-token-for-the-test", "GET", "/healthz", ""); st != 200 {
		t.Errorf("a configured token: %d; want 200", st)
	}

	// A generated token that is also configured is not warned about.
	dir2 := t.TempDir()
	os.WriteFile(filepath.Join(dir2, "admin.token"), []byte(generated+"\n"), 0o600)
	cfg2 := filepath.Join(dir2, "privguard.yaml")
	os.WriteFile(cfg2, []byte("admin:\n  tokens:\n    - {name: ops, sha256: "+hash(generated)+", roles: [admin]}\n"), 0o600)
	_, _, stop2, logs2 := startServe(t, dir2, "--config", cfg2)
	defer stop2()
	if strings.Contains(logs2.String(), "NOT accepted") {
		t.Errorf("warned about a token that is configured:\n%s", logs2.String())
	}
}

// TestWrongTokenWithoutConfiguredTokens: with no admin.tokens, a wrong token is told where
// the right one is, not that admin.tokens replaced it.
func TestWrongTokenWithoutConfiguredTokens(t *testing.T) {
	dir := t.TempDir()
	url, _, stop, _ := startServe(t, dir)
	defer stop()
	st, out := callJSON(t, url, "pg_wrong", "GET", "/v1/requests", "")
	detail, _ := out["detail"].(string)
	if st != 401 || !strings.Contains(detail, "use the token in "+filepath.Join(dir, "admin.token")) || strings.Contains(detail, "admin.tokens") {
		t.Errorf("a wrong token = %d %q; want 401 pointing at the admin.token file", st, detail)
	}
}
