package consent

import (
	"sync/atomic"
	"time"
)

// coarseTick is how often the coarse clock advances: expiry is decided to within it.
const coarseTick = 2 * time.Millisecond

// coarseClock is a clock read with one atomic load, refreshed every coarseTick by a
// goroutine. Reading the system clock costs 20 to 50 ns on virtual machines, which would be
// most of a Check; expiry to within 2 ms needs nothing finer.
type coarseClock struct {
	now     atomic.Int64
	stopped atomic.Bool
	stop    chan struct{}
	done    chan struct{}
}

func newCoarseClock() *coarseClock {
	c := &coarseClock{stop: make(chan struct{}), done: make(chan struct{})}
	c.now.Store(time.Now().UnixNano())
	go func() {
		defer close(c.done)
		t := time.NewTicker(coarseTick)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case now := <-t.C:
				c.now.Store(now.UnixNano())
			}
		}
	}()
	return c
}

// UnixNano returns the time, to within coarseTick (exact once the clock is stopped).
func (c *coarseClock) UnixNano() int64 {
	if c.stopped.Load() {
		return time.Now().UnixNano()
	}
	return c.now.Load()
}

// Stop stops the goroutine; later reads use the system clock.
func (c *coarseClock) Stop() {
	if c.stopped.CompareAndSwap(false, true) {
		close(c.stop)
		<-c.done
	}
}
