package evidence_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/privguard/privguard/evidence"
)

// TestExportIsAFunctionOfTheHead: two exports of one scope at one head, made at different
// times, have the same records, counts and inclusion members (receipts are Ed25519,
// deterministic); only the checkpoint's time and the manifest differ.
func TestExportIsAFunctionOfTheHead(t *testing.T) {
	l, _, _ := known(t)
	sums := func(at time.Time) map[string]string {
		var buf bytes.Buffer
		if _, err := evidence.Export(ctx, l, period, &buf, at, "test"); err != nil {
			t.Fatal(err)
		}
		b, err := evidence.Open(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, m := range b.Manifest.Members {
			out[m.Name] = m.SHA256
		}
		return out
	}
	a, b := sums(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)), sums(time.Date(2026, 3, 9, 12, 0, 0, 0, time.UTC))
	for _, m := range []string{evidence.MemberRecords, evidence.MemberCounts, evidence.MemberInclusion, evidence.MemberKey} {
		if a[m] == "" || a[m] != b[m] {
			t.Errorf("%s differs between two exports at one head: %s, %s", m, a[m], b[m])
		}
	}
	if a[evidence.MemberCheckpoint] == b[evidence.MemberCheckpoint] {
		t.Errorf("the checkpoints of exports signed at different times are the same")
	}
}
