package outreach

import (
	"fmt"
	"sync"
	"testing"

	"github.com/privguard/privguard"
)

// TestReasonCodes numbers reasons from several goroutines and gives each recipient its
// own reason back, past the 254 codes too.
func TestReasonCodes(t *testing.T) {
	const n = 1000
	var c reasonCodes
	got := make([]uint8, n)
	want := func(i int) privguard.Reason {
		if i%7 == 0 {
			return ""
		}
		return privguard.Reason(fmt.Sprintf("reason.%d", i%300))
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				got[i] = c.code(i, want(i))
			}
		})
	}
	wg.Wait()
	for i := range n {
		if r := c.reason(i, got[i]); r != want(i) {
			t.Fatalf("recipient %d: reason %q, want %q", i, r, want(i))
		}
	}
}
