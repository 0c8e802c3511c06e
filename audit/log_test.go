package audit_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/audit"
	"github.com/privguard/privguard/middleware"
)

func TestDecisionLogIsChainedAndPseudonymous(t *testing.T) {
	// proves AUD-02: a tamper-evident decision log with the subject pseudonymised.
	path := filepath.Join(t.TempDir(), "decisions.log")
	key := []byte("0123456789abcdef0123456789abcdef")
	l, err := audit.Open(audit.Config{Path: path, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	const canary = "canary-qzxw@example.com" // letters that never occur in hex digests
	for i := range 50 {
		in := privguard.Input{Subject: canary, Purpose: "marketing.communications.sms", Regime: privguard.RegimePIPL,
			Consent: privguard.ConsentFacts{State: "given"}}
		d := privguard.Decision{ID: "d-" + string(rune('a'+i%26)), Effect: privguard.Allow, Revision: "r1", Reasons: []privguard.Reason{"allow"}}
		l.Record("GET /x/{id}", &in, &d)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopen and continue the chain.
	l, err = audit.Open(audit.Config{Path: path, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	in := privguard.Input{Subject: "other", Purpose: "analytics.ab_testing", Regime: privguard.RegimeGDPR}
	l.Record("GET /y", &in, &privguard.Decision{ID: "d-z", Effect: privguard.Deny, Reasons: []privguard.Reason{"consent.missing"}})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte("qzxw")) || bytes.Contains(raw, []byte(`"other"`)) {
		t.Fatal("a subject id reached the decision log")
	}
	if !bytes.Contains(raw, []byte(l.Pseudonym(canary))) {
		t.Error("the canary's pseudonym is not in the log: with the key, a DPO must be able to find it")
	}
	lines, bad, err := audit.Verify(bytes.NewReader(raw))
	if err != nil || bad != 0 || lines != 51 {
		t.Fatalf("Verify = %d lines, bad %d, %v; want 51 good lines", lines, bad, err)
	}
	// Alter line 20, then remove line 30: Verify names the first line after each change.
	ls := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	altered := append([]string{}, ls...)
	altered[19] = strings.Replace(altered[19], `"allow"`, `"deny!"`, 1)
	if _, bad, _ := audit.Verify(strings.NewReader(strings.Join(altered, "\n"))); bad != 21 {
		t.Errorf("altered line 20: Verify names line %d; want 21", bad)
	}
	removed := append(append([]string{}, ls[:29]...), ls[30:]...)
	if _, bad, _ := audit.Verify(strings.NewReader(strings.Join(removed, "\n"))); bad != 30 {
		t.Errorf("removed line 30: Verify names line %d; want 30", bad)
	}
}

func TestRecordNeverBlocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.log")
	l, err := audit.Open(audit.Config{Path: path, Key: []byte("0123456789abcdef"), Buffer: 4})
	if err != nil {
		t.Fatal(err)
	}
	in := privguard.Input{Subject: "s", Purpose: "p"}
	d := privguard.Decision{ID: "d", Effect: privguard.Allow}
	for range 100_000 {
		l.Record("r", &in, &d)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l.Dropped()+l.Written() != 100_000 || l.Dropped() == 0 {
		t.Errorf("dropped %d written %d; want every event either written or counted as dropped, some dropped", l.Dropped(), l.Written())
	}
}

// A campaign's batch is logged whole, one line per subject with that subject's decision,
// even when it is far larger than the buffer: it takes one place in it.
func TestBatchIsLoggedWhole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.log")
	l, err := audit.Open(audit.Config{Path: path, Key: []byte("0123456789abcdef0123456789abcdef"), Buffer: 2})
	if err != nil {
		t.Fatal(err)
	}
	allow := &privguard.Decision{ID: "d-1", Effect: privguard.Allow, Reasons: []privguard.Reason{"allow"},
		Obligations: []privguard.Obligation{{Kind: privguard.ObligeContactBudget, Remaining: 1}}}
	deny := &privguard.Decision{ID: "d-2", Effect: privguard.Deny, Reasons: []privguard.Reason{"consent.withdrawn"}}
	const n = 20_000
	entries := make([]middleware.BatchEntry, n)
	for i := range entries {
		entries[i] = middleware.BatchEntry{Subject: privguard.SubjectID(fmt.Sprintf("canary-qzxw-%d", i)), Consent: "given", Decision: allow}
		if i%3 == 0 {
			entries[i].Consent, entries[i].Decision = "withdrawn", deny
		}
	}
	in := privguard.Input{Purpose: "marketing.communications.sms", Regime: privguard.RegimePIPL}
	l.RecordBatch("POST /send", &in, entries)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l.Dropped() != 0 || l.Written() != n {
		t.Fatalf("written %d, dropped %d; want all %d written", l.Written(), l.Dropped(), n)
	}
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte("qzxw")) {
		t.Fatal("a subject id reached the decision log")
	}
	if lines, bad, err := audit.Verify(bytes.NewReader(raw)); err != nil || bad != 0 || lines != n {
		t.Fatalf("Verify = %d lines, bad %d, %v", lines, bad, err)
	}
	for i, line := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
		var e audit.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		want := entries[i]
		if e.Subject != l.Pseudonym(want.Subject) || e.DecisionID != want.Decision.ID || e.Consent != want.Consent ||
			e.Effect != want.Decision.Effect || e.Route != "POST /send" || e.Purpose != in.Purpose ||
			(want.Decision == allow) != (len(e.Obligations) == 1) {
			t.Fatalf("line %d = %+v; want the decision of %+v", i+1, e, want)
		}
	}
}
