package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/privguard/privguard/internal/consentload"
)

// privguard consent import streams a file, says which lines were refused, and writes
// exactly the items not committed to --rest: fixed, that file imports cleanly.
func TestConsentImportCommand(t *testing.T) {
	target := startServeInProcess(t)
	dir := t.TempDir()
	var file strings.Builder
	var bad []string
	for i := range 300 {
		line := string(consentload.ImportItem("cli-"+strconv.Itoa(i), i))
		if i%50 == 7 {
			line = strings.Replace(line, `"proof_ref"`, `"proof_reference"`, 1) // unknown field: refused
			bad = append(bad, line)
		}
		file.WriteString(line + "\n")
		if i == 10 {
			file.WriteString("\n") // blank lines are skipped
		}
	}
	path := filepath.Join(dir, "audience.ndjson")
	os.WriteFile(path, []byte(file.String()), 0o600)
	rest := filepath.Join(dir, "rest.ndjson")
	getenv := func(k string) string {
		if k == "PRIVGUARD_ADMIN_TOKEN" {
			return target.Token
		}
		return ""
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"consent", "import", "--admin", target.Admin, "--rest", rest, path}, getenv, &stdout, &stderr)
	if code != 1 || !strings.Contains(stdout.String(), "300 items: 294 created, 0 replayed, 6 rejected") {
		t.Fatalf("import = %d, stdout %q, stderr %q; want 1 and 294 created, 6 rejected", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "line 8: rejected: ") {
		t.Errorf("stderr does not name the refused line 8:\n%s", stderr.String())
	}
	got, _ := os.ReadFile(rest)
	if string(got) != strings.Join(bad, "\n")+"\n" {
		t.Errorf("--rest file =\n%s\nwant the 6 refused lines as they were", got)
	}
	fixed := strings.ReplaceAll(string(got), `"proof_reference"`, `"proof_ref"`)
	os.WriteFile(rest, []byte(fixed), 0o600)
	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), []string{"consent", "import", "--admin", target.Admin, rest}, getenv, &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), "6 items: 6 created") {
		t.Errorf("importing the fixed rest = %d, %q %q; want 0 and 6 created", code, stdout.String(), stderr.String())
	}
}

// --rest or --answers naming the input file (or each other) is refused before anything is
// written: the file would be emptied while it is read.
func TestConsentImportKeepsItsInput(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audience.ndjson")
	content := string(consentload.ImportItem("keep-1", 1)) + "\n"
	os.WriteFile(path, []byte(content), 0o600)
	getenv := func(k string) string {
		if k == "PRIVGUARD_ADMIN_TOKEN" {
			return "pg_unused"
		}
		return ""
	}
	out := filepath.Join(dir, "out.ndjson")
	for _, args := range [][]string{
		{"--rest", path, path},
		{"--answers", filepath.Join(dir, ".", "audience.ndjson"), path},
		{"--rest", out, "--answers", out, path},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"consent", "import", "--admin", "http://127.0.0.1:1"}, args...), getenv, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "would be overwritten") {
			t.Errorf("import %v = %d, %q; want 2 and a refusal", args, code, stderr.String())
		}
		if got, _ := os.ReadFile(path); string(got) != content {
			t.Fatalf("import %v changed its input to %q", args, got)
		}
	}
}
