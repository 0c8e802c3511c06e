package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestRunScript runs run.sh as the README tells: three serve replicas and this service on
// the test PostgreSQL database; the script fails unless the service enforces the grant and
// the withdrawal recorded through two other replicas.
func TestRunScript(t *testing.T) {
	dsn := os.Getenv("PRIVGUARD_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("PRIVGUARD_TEST_POSTGRES_DSN is not set (CI sets it; see .ci/run)")
	}
	if testing.Short() {
		t.Skip("builds and runs four processes: not in -short")
	}
	cmd := exec.Command("bash", "examples/replicas/run.sh")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "PRIVGUARD_PG_DSN="+dsn)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run.sh: %v\n%s", err, out)
	}
	for _, want := range []string{"after the grant through r2: 200", "after the withdrawal through r3: 403", "OK: 2 records"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("run.sh output lacks %q:\n%s", want, out)
		}
	}
}
