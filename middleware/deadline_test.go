package middleware

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDeadlineIsWithDeadline(t *testing.T) {
	t.Run("unstarted_expires", func(t *testing.T) {
		var long, c deadline
		long.init(context.Background(), time.Hour)
		if long.Err() != nil {
			t.Fatal("expired at once")
		}
		c.init(context.Background(), time.Millisecond)
		defer c.release()
		time.Sleep(20 * time.Millisecond)
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Fatalf("Err = %v after the deadline", c.Err())
		}
	})
	t.Run("started_fires", func(t *testing.T) {
		var c deadline
		c.init(context.Background(), 20*time.Millisecond)
		defer c.release()
		select {
		case <-c.Done():
		case <-time.After(2 * time.Second):
			t.Fatal("Done never closed")
		}
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Fatalf("Err = %v", c.Err())
		}
	})
	t.Run("parent_cancel", func(t *testing.T) {
		parent, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, 1))
		var c deadline
		c.init(parent, time.Hour)
		defer c.release()
		cancel()
		if !errors.Is(c.Err(), context.Canceled) {
			t.Fatalf("unstarted Err = %v after the parent's cancel", c.Err())
		}
		<-c.Done()
		if c.Value(ctxKey{}) != 1 {
			t.Fatal("value of the parent lost")
		}
	})
	t.Run("derived_cancelled", func(t *testing.T) {
		var c deadline
		c.init(context.Background(), 20*time.Millisecond)
		defer c.release()
		child, cancel := context.WithCancel(&c)
		defer cancel()
		select {
		case <-child.Done():
		case <-time.After(2 * time.Second):
			t.Fatal("a context derived from it was not cancelled at its deadline")
		}
	})
	t.Run("earlier_parent_deadline", func(t *testing.T) {
		parent, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		var c deadline
		c.init(parent, time.Hour)
		if d, _ := c.Deadline(); time.Until(d) > time.Second {
			t.Fatalf("Deadline %v ignores the parent's", d)
		}
	})
}

type ctxKey struct{}
