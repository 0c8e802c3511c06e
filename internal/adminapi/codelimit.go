package adminapi

import (
	"sync"
	"time"

	"github.com/privguard/privguard"
)

// Limits on the one-time codes sent to one subject, over all its requests (the engine
// bounds each request: dsar.CodeSendsPerRequest, dsar.CodeResendInterval).
const (
	DefaultCodesPerSubject = 10
	CodeSubjectWindow      = 24 * time.Hour
)

// codeLimiter counts the codes sent to each subject in a sliding window. It is in memory: a
// restart forgets it (the per-request limits are stored with the requests). It holds only
// subjects sent a code within the window, at most max times each.
type codeLimiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	sent   map[privguard.SubjectID][]time.Time
	calls  int
}

func newCodeLimiter(max int, window time.Duration) *codeLimiter {
	return &codeLimiter{max: max, window: window, sent: map[privguard.SubjectID][]time.Time{}}
}

// reserve counts a code for subject at now, or, if the subject had max codes in the
// window, counts nothing and returns how long until one leaves it.
func (l *codeLimiter) reserve(subject privguard.SubjectID, now time.Time) (wait time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.calls++; l.calls%1024 == 0 {
		for s, ts := range l.sent {
			if len(l.live(ts, now)) == 0 {
				delete(l.sent, s)
			}
		}
	}
	ts := l.live(l.sent[subject], now)
	if len(ts) >= l.max {
		l.sent[subject] = ts
		return ts[0].Add(l.window).Sub(now), false
	}
	l.sent[subject] = append(ts, now)
	return 0, true
}

// release takes back the code reserved for subject at t (it was not sent).
func (l *codeLimiter) release(subject privguard.SubjectID, t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := l.sent[subject]
	for i := len(ts) - 1; i >= 0; i-- {
		if ts[i].Equal(t) {
			l.sent[subject] = append(ts[:i:i], ts[i+1:]...)
			return
		}
	}
}

// live returns the times of ts (oldest first) still within the window at now.
func (l *codeLimiter) live(ts []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= l.window {
		i++
	}
	return ts[i:]
}
