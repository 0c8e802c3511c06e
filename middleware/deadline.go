package middleware

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// deadline is context.WithDeadline made lazy. Most decisions are answered from the policy
// engine's memo without waiting on the context, so the timer, the registration with the
// request's context and the Done channel are made only when something asks for Done; until
// then Err compares the clock itself. The semantics are WithDeadline's.
type deadline struct {
	context.Context           // the parent
	at              time.Time // when the context expires
	once            sync.Once
	started         atomic.Bool
	ctx             context.Context // WithDeadline(parent, at), once started
	cancel          context.CancelFunc
}

func (c *deadline) init(parent context.Context, timeout time.Duration) {
	c.Context, c.at = parent, time.Now().Add(timeout)
}

func (c *deadline) start() {
	c.ctx, c.cancel = context.WithDeadline(c.Context, c.at)
	c.started.Store(true)
}

// Deadline implements context.Context.
func (c *deadline) Deadline() (time.Time, bool) {
	if d, ok := c.Context.Deadline(); ok && d.Before(c.at) {
		return d, true
	}
	return c.at, true
}

// Done implements context.Context.
func (c *deadline) Done() <-chan struct{} {
	c.once.Do(c.start)
	return c.ctx.Done()
}

// Err implements context.Context.
func (c *deadline) Err() error {
	if c.started.Load() {
		return c.ctx.Err()
	}
	if err := c.Context.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.at) {
		return context.DeadlineExceeded
	}
	return nil
}

// Value implements context.Context. Once started, values come through the inner context,
// so that contexts derived from this one find its cancellation (context.WithCancel looks
// for it by value) instead of watching it from a goroutine of their own.
func (c *deadline) Value(key any) any {
	if c.started.Load() {
		return c.ctx.Value(key)
	}
	return c.Context.Value(key)
}

// release frees the timer, if one was made (the CancelFunc of WithDeadline).
func (c *deadline) release() {
	if c.started.Load() {
		c.cancel()
	}
}
