package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/privguard/privguard/boltstore"
)

// Every command that opens the data file, run while another process holds it (as a running
// serve does), says plainly that serve must be stopped first, and, for the commands that
// only read, how to run against a copy; the advice it gives works.
func TestCommandsOnALockedDataFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "privguard-data")
	if code := run(context.Background(), []string{"keys", "init", "--data", dir}, os.Getenv, &bytes.Buffer{}, &bytes.Buffer{}); code != 0 {
		t.Fatalf("keys init = %d", code)
	}
	held, err := boltstore.Open(filepath.Join(dir, dataFile), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Close() }) // after the parallel subtests, unlike a defer

	copyAdvice := "stop serve first, or run this against a copy (cp -a " + dir + " " + dir + "-copy && privguard "
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"consent_verify", []string{"consent", "verify", "--data", dir}, copyAdvice + "consent verify --data " + dir + "-copy)"},
		{"keys_status", []string{"keys", "status", "--data", dir}, copyAdvice + "keys status --data " + dir + "-copy)"},
		{"keys_shred", []string{"keys", "shred", "--data", dir, "cust-1"}, "stop serve first (privguard keys shred changes the data file"},
		{"keys_rotate", []string{"keys", "rotate", "--data", dir}, "stop serve first (privguard keys rotate changes the data file"},
		{"keys_compact", []string{"keys", "compact", "--data", dir}, "stop serve first (privguard keys compact changes the data file"},
		{"serve", []string{"serve", "--data", dir, "--admin-listen", "127.0.0.1:0"}, "is in use by another privguard process (another serve, or a keys command): stop it first"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Bounded, so that a command which wrongly gets the file ends the test.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			code := run(ctx, tc.args, func(string) string { return "" }, &stdout, &stderr)
			if code != 2 {
				t.Errorf("%v = %d; want 2", tc.args, code)
			}
			if !strings.Contains(stderr.String(), "the data file "+filepath.Join(dir, dataFile)+" is in use by another privguard process") ||
				!strings.Contains(stderr.String(), tc.want) {
				t.Errorf("%v stderr:\n%s\nwant it to contain %q", tc.args, stderr.String(), tc.want)
			}
			if strings.Contains(stderr.String(), "locked") || strings.Contains(stderr.String(), `"level"`) {
				t.Errorf("%v stderr is not plain: %s", tc.args, stderr.String())
			}
		})
	}
	t.Run("the_copy_advice_works", func(t *testing.T) {
		t.Parallel()
		if _, err := exec.LookPath("cp"); err != nil {
			t.Skip("no cp on this machine")
		}
		if out, err := exec.Command("cp", "-a", dir, dir+"-copy").CombinedOutput(); err != nil {
			t.Fatalf("cp -a: %v %s", err, out)
		}
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"consent", "verify", "--data", dir + "-copy"}, os.Getenv, &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "OK") {
			t.Errorf("consent verify on the copy = %d; stdout %s stderr %s", code, stdout.String(), stderr.String())
		}
	})
}

// A keys command on a directory without a data file says so instead of creating an empty
// one (a mistyped --data).
func TestKeysNeedsADataFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "typo")
	os.MkdirAll(dir, 0o700)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"keys", "status", "--data", dir}, os.Getenv, &stdout, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), "no data file at "+filepath.Join(dir, dataFile)) {
		t.Errorf("keys status = %d, stderr %s; want 2 and no data file", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, dataFile)); err == nil {
		t.Errorf("keys status created %s", filepath.Join(dir, dataFile))
	}
}
