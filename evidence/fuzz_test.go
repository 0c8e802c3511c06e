package evidence_test

import (
	"bytes"
	"testing"

	"github.com/privguard/privguard/evidence"
)

// FuzzVerify feeds Open and VerifyConsent hostile files, seeded with a real export and
// mutations of its members: they must never panic, and what they accept must be a bundle
// of the consent kind.
func FuzzVerify(f *testing.F) {
	l, _, _ := known(f)
	file := exportTB(f, l, evidence.Scope{Subject: subjects[0]})
	f.Add(file)
	f.Add(exportTB(f, l, period))
	f.Add([]byte("PK\x03\x04"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := evidence.Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		if _, err := evidence.VerifyConsent(b); err == nil && b.Manifest.Kind != evidence.ConsentKind {
			t.Fatalf("a bundle of kind %q verified as a consent export", b.Manifest.Kind)
		}
	})
}
