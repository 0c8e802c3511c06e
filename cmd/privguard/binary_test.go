package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// buildPrivguard builds this package's binary into a temporary directory with the extra go
// build flags and returns its path; it skips the test when the go tool is not at hand.
func buildPrivguard(t *testing.T, flags ...string) string {
	t.Helper()
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := exec.LookPath(goTool); err != nil {
		if goTool, err = exec.LookPath("go"); err != nil {
			t.Skip("no go tool to build the privguard binary with")
		}
	}
	bin := filepath.Join(t.TempDir(), "privguard")
	args := append(append([]string{"build", "-o", bin}, flags...), ".")
	if out, err := exec.Command(goTool, args...).CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// A version set at build time wins over what the build information says.
func TestVersionLdflagsWins(t *testing.T) {
	bin := buildPrivguard(t, "-ldflags", "-X main.version=v9.8.7-test")
	out, err := exec.Command(bin, "version").Output()
	if err != nil || string(out) != "privguard v9.8.7-test\n" {
		t.Errorf("privguard version = %q, %v; want \"privguard v9.8.7-test\\n\"", out, err)
	}
}
