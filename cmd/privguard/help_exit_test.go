package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// runHelp runs privguard with args and returns its exit code, stdout and stderr.
func runHelp(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, func(string) string { return "" }, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// The help a new user asks for is a page on stdout and exits 0 (consent, dsar and keys
// --help exited 2; keys status --help printed a bare flag dump on stderr).
func TestHelpExitsZeroWithAPage(t *testing.T) {
	for _, args := range [][]string{
		{"consent", "--help"}, {"dsar", "--help"}, {"keys", "--help"}, {"policy", "--help"},
		{"keys", "status", "--help"}, {"keys", "shred", "--help"}, {"dsar", "submit", "--help"}, {"dsar", "status", "--help"},
		{"consent", "verify", "--help"}, {"policy", "test", "--help"}, {"serve", "--help"}, {"version", "--help"}, {"help", "keys", "status"},
	} {
		code, out, errText := runHelp(args...)
		if code != 0 || errText != "" || !strings.HasPrefix(out, "Usage: privguard ") || !strings.Contains(out, "xample") {
			t.Errorf("privguard %s = %d, stdout %q, stderr %q; want 0 and a page with usage and an example on stdout",
				strings.Join(args, " "), code, out, errText)
		}
	}
}
