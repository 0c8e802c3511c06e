package consent

import (
	"sync/atomic"
	"time"
)

// Coarse clock tuning.
const (
	// coarseTick is how often the coarse clock advances while it runs: expiry is decided to
	// within it.
	coarseTick = 2 * time.Millisecond
	// coarseWindow is how many ticks the clock runs after it was woken before it sleeps
	// again (about 128 ms). An idle ledger therefore has no timer at all.
	coarseWindow = 64
)

// Coarse clock states.
const (
	clockAsleep  int32 = iota // now is stale; the first reader refreshes it and wakes the goroutine
	clockRunning              // now is at most coarseTick old
	clockStopped              // reads use the system clock
)

// coarseClock is a clock read with two atomic loads while it runs. Reading the system clock
// costs 20 to 50 ns on virtual machines, which would be most of a Check; expiry to within
// 2 ms needs nothing finer.
//
// A goroutine refreshes it every coarseTick, but only for coarseWindow ticks after a read
// found it asleep: it then sleeps (no timer, no wake-ups) until the next read, which reads
// the system clock itself, publishes the time and wakes the goroutine. A busy ledger wakes
// it about eight times a second; an idle one costs nothing.
type coarseClock struct {
	state atomic.Int32
	now   atomic.Int64
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}
}

func newCoarseClock() *coarseClock {
	c := &coarseClock{wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	c.now.Store(time.Now().UnixNano())
	c.state.Store(clockAsleep)
	go c.run()
	return c
}

func (c *coarseClock) run() {
	defer close(c.done)
	for {
		select {
		case <-c.stop:
			return
		case <-c.wake:
		}
		t := time.NewTicker(coarseTick)
		for range coarseWindow {
			select {
			case <-c.stop:
				t.Stop()
				return
			case <-t.C:
				c.now.Store(time.Now().UnixNano())
			}
		}
		t.Stop()
		// Readers that still see clockRunning read a time at most one tick old; the first
		// one after this sees clockAsleep and refreshes it.
		if !c.state.CompareAndSwap(clockRunning, clockAsleep) {
			return // stopped
		}
	}
}

// UnixNano returns the time, to within coarseTick (exact while the clock is asleep or
// stopped).
func (c *coarseClock) UnixNano() int64 {
	if c.state.Load() == clockRunning {
		return c.now.Load()
	}
	return c.refresh()
}

// refresh reads the system clock and, if the clock is asleep, publishes the time before
// marking it running (so that a reader that sees it running reads a fresh time) and wakes
// the goroutine.
func (c *coarseClock) refresh() int64 {
	now := time.Now().UnixNano()
	if c.state.Load() == clockStopped {
		return now
	}
	c.now.Store(now)
	if c.state.CompareAndSwap(clockAsleep, clockRunning) {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	return now
}

// Stop stops the goroutine; later reads use the system clock.
func (c *coarseClock) Stop() {
	for {
		s := c.state.Load()
		if s == clockStopped {
			return
		}
		if c.state.CompareAndSwap(s, clockStopped) {
			close(c.stop)
			<-c.done
			return
		}
	}
}
