package audit_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/privguard/privguard/audit"
	"github.com/privguard/privguard/journal/journaltest"
)

// A decision log is read back from disk, where anyone with access may have written
// anything: Walk, Count and VerifyDir never panic, and a break is a *BreakError.
func FuzzWalk(f *testing.F) {
	f.Add([]byte(`{"time":"2026-01-01T00:00:00Z","decision_id":"d","revision":"","subject":"hs_x","purpose":"p","regime":"pipl","effect":"allow","reasons":["allow"],"prev":""}` + "\n"))
	f.Add([]byte("{}\n{\"prev\":1}\n"))
	f.Add([]byte(`{"prev":"","reasons":[1,{"a":2}],"time":7}` + "\nnot json\n"))
	f.Add([]byte("\n\n\x00\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "decisions.log")
		os.WriteFile(filepath.Join(dir, "decisions-000001.log"), data, 0o600)
		os.WriteFile(path, data, 0o600)
		var br *audit.BreakError
		if _, err := audit.Count(context.Background(), path, audit.Filter{Purpose: "p", Reason: "allow", From: testStart}, 0); err != nil && !errors.As(err, &br) {
			t.Fatalf("Count: %v", err)
		}
		if _, err := audit.VerifyDir(context.Background(), path, &journaltest.Mem{}, audit.VerifyOptions{}); err != nil {
			t.Fatalf("VerifyDir: %v", err)
		}
	})
}
