package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serve refuses to start on a configuration naming an unknown purpose or data category:
// exit 2, the field's path and the name probably meant on stderr, nothing created.
func TestServeRefusesUnknownNames(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "privguard.yaml")
	os.WriteFile(cfg, []byte(`listen: 127.0.0.1:0
upstream: http://127.0.0.1:9
routes:
  - match: "GET /api/profiles/{id}"
    purpose: personalise.recommendation
    subject: {path: id}
    fields: {email: user.contact.emial}
`), 0o600)
	var stdout, stderr bytes.Buffer
	data := filepath.Join(dir, "data")
	// Bounded, so that a serve which wrongly starts ends the test instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, []string{"serve", "--config", cfg, "--data", data, "--admin-listen", "127.0.0.1:0"},
		func(string) string { return "" }, &stdout, &stderr)
	if code != 2 {
		t.Fatalf("serve = %d; want 2. stderr:\n%s", code, stderr.String())
	}
	for _, want := range []string{
		`routes[0].purpose: unknown purpose "personalise.recommendation"; did you mean "personalize.recommendation"?`,
		`routes[0].fields[email]: unknown data category "user.contact.emial"; did you mean "user.contact.email"?`,
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %s:\n%s", want, stderr.String())
		}
	}
	if _, err := os.Stat(data); err == nil {
		t.Errorf("serve created %s before refusing the configuration", data)
	}
}
