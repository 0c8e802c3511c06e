package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
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
