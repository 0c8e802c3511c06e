// Package browsertest finds the headless Chromium the browser tests drive (Debian's
// chromium package; .ci/run installs it).
package browsertest

import (
	"os"
	"os/exec"
	"testing"
)

// Chromium returns the path of a Chromium to run headless: $PRIVGUARD_TEST_CHROMIUM, else
// the first of chromium, chromium-browser and google-chrome on PATH. Without one the test
// is skipped, saying how to install it.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("PRIVGUARD_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH (apt-get install -y chromium; .ci/run installs it) and PRIVGUARD_TEST_CHROMIUM is not set")
	return ""
}
