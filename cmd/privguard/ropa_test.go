package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/privguard/privguard/internal/config"
)

func runRopa(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"ropa"}, args...), os.Getenv, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

const exampleDPO = "../../examples/dpo/privguard.yaml"

func TestRopaCommand(t *testing.T) {
	code, out, errText := runRopa("--config", exampleDPO, "--format", "csv", "--lang", "zh")
	if code != 0 || errText != "" || !strings.HasPrefix(out, "\ufeff处理活动 / Processing activity,目的 / Purpose") {
		t.Fatalf("ropa --format csv = %d, stderr %q, stdout %.200q; want 0 and the CSV", code, errText, out)
	}
	code, out, _ = runRopa("--config", exampleDPO)
	var rec struct {
		Schema     string
		Activities []struct{ Purpose string }
	}
	if code != 0 || json.Unmarshal([]byte(out), &rec) != nil || rec.Schema != "urn:privguard:schema:ropa:1" || len(rec.Activities) != 5 {
		t.Errorf("ropa (json by default) = %d %.200q; want the record of the example's 5 activities", code, out)
	}
	if code, out, _ := runRopa("--config", exampleDPO, "--format", "html", "--lang", "zh", "--strict"); code != 0 || !strings.Contains(out, "个人信息处理活动记录") {
		t.Errorf("ropa --format html --lang zh --strict = %d; want 0 and the Chinese page", code)
	}

	dir := t.TempDir()
	gappy := filepath.Join(dir, "gappy.yaml")
	os.WriteFile(gappy, []byte("purposes:\n  - {name: loyalty.points, legal_bases: {pipl: [contract]}}\n"), 0o600)
	code, out, errText = runRopa("--config", gappy, "--format", "csv")
	if code != 0 || !strings.Contains(errText, "not declared") || !strings.Contains(errText, "controller.dpo.contact") || !strings.Contains(out, "loyalty.points") {
		t.Errorf("ropa on a configuration with gaps = %d, stderr %q; want 0, the record, and the gaps listed", code, errText)
	}
	outFile := filepath.Join(dir, "ropa.csv")
	code, out, errText = runRopa("--config", gappy, "--format", "csv", "--strict", "--out", outFile)
	if code != 1 || !strings.Contains(errText, "loyalty.points: owner (set purposes[0].owner)") {
		t.Errorf("ropa --strict with gaps = %d, stderr %q; want 1 naming each gap and its key", code, errText)
	}
	if b, err := os.ReadFile(outFile); err != nil || !bytes.HasPrefix(b, []byte("\ufeff")) || !strings.Contains(out, outFile+"\t") {
		t.Errorf("--out wrote %q (%v), said %q; want the CSV in the file and its size on stdout", b, err, out)
	}
	if st, err := os.Stat(outFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("--out file mode = %v (%v); want 0600", st.Mode().Perm(), err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "csv"}, "--config FILE is required"},
		{[]string{"--config", exampleDPO, "--format", "xlsx"}, `--format "xlsx": want json, csv or html`},
		{[]string{"--config", exampleDPO, "--lang", "fr"}, `--lang "fr": want en or zh`},
		{[]string{"--config", exampleDPO, "extra"}, `unexpected argument "extra"`},
	} {
		if code, _, errText := runRopa(tc.args...); code != 2 || !strings.Contains(errText, tc.want) {
			t.Errorf("ropa %v = %d %q; want 2 saying %q", tc.args, code, errText, tc.want)
		}
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("routes:\n  - {match: 'GET /m/{id}', purpose: loyalty.points, subject: {path: id}}\n"), 0o600)
	if code, _, errText := runRopa("--config", bad); code != 2 || !strings.Contains(errText, `unknown purpose "loyalty.points"`) {
		t.Errorf("ropa on an invalid configuration = %d %q; want 2 and the configuration's error", code, errText)
	}
}

// An export interrupted half way leaves no file that looks complete: neither a new one nor
// a changed old one, and no temporary file behind.
func TestRopaOutIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ropa.json")
	if _, err := writeRecordFile(path, func(w io.Writer) error {
		w.Write([]byte(`{"schema": "urn:privguard:schema:ropa:1", "activities": [`))
		return errors.New("interrupted")
	}); err == nil {
		t.Fatal("writeRecordFile ignored the write's error")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("an interrupted export left %v", entries)
	}
	os.WriteFile(path, []byte("the previous record\n"), 0o600)
	writeRecordFile(path, func(w io.Writer) error { w.Write([]byte("half")); return errors.New("interrupted") })
	if b, _ := os.ReadFile(path); string(b) != "the previous record\n" {
		t.Errorf("an interrupted export changed the previous file to %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("an interrupted export left %v", entries)
	}
	if code, _, errText := runRopa("--config", exampleDPO, "--out", filepath.Join(dir, "missing", "ropa.json")); code != 2 || errText == "" {
		t.Errorf("ropa --out into a missing directory = %d %q; want 2 and why", code, errText)
	}
}

// The README's "For the DPO" configuration is valid as it is shown.
func TestReadmeDPOConfigIsValid(t *testing.T) {
	n := 0
	for _, b := range readmeBlocks(t) {
		if b.section != "For the DPO" || b.lang != "yaml" {
			continue
		}
		n++
		cfg, err := config.Parse([]byte(b.text))
		if err == nil {
			_, err = cfg.Taxonomy()
		}
		if err != nil {
			t.Errorf("README.md:%d: %v", b.line, err)
		}
	}
	if n == 0 {
		t.Error(`README.md has no yaml block under "## For the DPO"`)
	}
}
