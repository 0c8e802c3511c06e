package portal

import (
	"sync"
	"time"
)

// limiter counts events per key in fixed windows, in memory (per process). It bounds the
// codes sent to one identifier and asked for by one client, and the codes tried.
type limiter struct {
	max    int
	window time.Duration
	mu     sync.Mutex
	counts map[string]*window
	swept  time.Time
}

type window struct {
	start time.Time
	n     int
}

func newLimiter(max int, per time.Duration) *limiter {
	return &limiter{max: max, window: per, counts: map[string]*window{}}
}

// allow counts one event for key at now and reports whether it is within the limit, and if
// not, how long until it is.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > l.window {
		for k, w := range l.counts {
			if now.Sub(w.start) >= l.window {
				delete(l.counts, k)
			}
		}
		l.swept = now
	}
	w := l.counts[key]
	if w == nil || now.Sub(w.start) >= l.window {
		w = &window{start: now}
		l.counts[key] = w
	}
	if w.n >= l.max {
		return false, w.start.Add(l.window).Sub(now)
	}
	w.n++
	return true, 0
}
