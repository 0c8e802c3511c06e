package audit

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/privguard/privguard"
)

// The hand-written encoding is encoding/json's, byte for byte, for every shape of event.
func TestAppendJSONIsMarshal(t *testing.T) {
	words := []string{"", "allow", "GET /api/profiles/{id}", `quote"back\slash`, "<script>&", "tab\there\nnl\x00",
		"个人信息", "é", "\u2028", "\xff invalid", "hs_0123abcd"}
	r := rand.New(rand.NewPCG(1, 2))
	pick := func() string { return words[r.IntN(len(words))] }
	list := func() []string {
		var out []string
		for range r.IntN(3) {
			out = append(out, pick())
		}
		return out
	}
	for i := range 5000 {
		e := Event{Time: time.Unix(r.Int64N(4e9), r.Int64N(1e9)).UTC(), DecisionID: pick(), Revision: pick(), Replica: pick(), Route: pick(),
			Subject: pick(), Purpose: privguard.Purpose(pick()), Regime: privguard.Regime(pick()), Effect: privguard.Effect(pick()),
			Obligations: list(), Consent: pick(), Assessment: pick(), Caller: pick(), Prev: pick()}
		for _, c := range list() {
			e.Categories = append(e.Categories, privguard.DataCategory(c))
		}
		for _, c := range list() {
			e.Reasons = append(e.Reasons, privguard.Reason(c))
		}
		if i%7 == 0 {
			e.Time = time.Date(2026, 12, 2, 1, 2, 3, 0, time.UTC) // no fraction
		}
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.appendJSON(nil); string(got) != string(want) {
			t.Fatalf("event %d:\n got %s\nwant %s", i, got, want)
		}
	}
}
