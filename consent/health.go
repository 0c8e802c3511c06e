package consent

import (
	"sync"
	"time"
)

// ProbeInterval is how long a successful write (a commit, or Ping's probe) keeps the
// ledger ready without another: readiness is at most this stale while the ledger is idle.
const ProbeInterval = 5 * time.Second

// writeHealth is the outcome of the store's latest write. Writes take a ticket when they
// start, so that of a commit and a probe racing, the one that started later decides.
type writeHealth struct {
	mu       sync.Mutex
	next     uint64
	recorded uint64    // ticket of the write recorded; 0: none yet
	failed   bool      // it failed
	okAt     time.Time // when the last successful write ended
}

func (h *writeHealth) start() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next++
	return h.next
}

// done records the outcome of the write with ticket, ended at now.
func (h *writeHealth) done(ticket uint64, now time.Time, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ticket < h.recorded {
		return
	}
	h.recorded, h.failed = ticket, err != nil
	if err == nil {
		h.okAt = now
	}
}

// fresh reports whether the latest write succeeded less than within before now.
func (h *writeHealth) fresh(now time.Time, within time.Duration) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.recorded > 0 && !h.failed && now.Sub(h.okAt) < within
}
