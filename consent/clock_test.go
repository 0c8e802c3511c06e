package consent

import (
	"testing"
	"time"
)

func TestCoarseClockSleepsAndWakesFresh(t *testing.T) {
	c := newCoarseClock()
	defer c.Stop()
	check := func(when string) {
		t.Helper()
		before := time.Now().UnixNano()
		got := c.UnixNano()
		if lag := before - got; lag > int64(50*time.Millisecond) {
			t.Errorf("%s: coarse clock is %v behind", when, time.Duration(lag))
		}
	}
	check("first read")
	time.Sleep(10 * time.Millisecond)
	check("while running")
	// After the window the goroutine sleeps; the clock must not go stale.
	deadline := time.Now().Add(5 * time.Second)
	for c.state.Load() != clockAsleep {
		if time.Now().After(deadline) {
			t.Fatal("the clock never went to sleep")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	check("first read after sleeping")
	if s := c.state.Load(); s != clockRunning {
		t.Errorf("state after a read = %d; want running", s)
	}
	time.Sleep(10 * time.Millisecond)
	check("running again")
	c.Stop()
	check("stopped")
}

func BenchmarkCoarseClock(b *testing.B) {
	c := newCoarseClock()
	defer c.Stop()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var s int64
		for pb.Next() {
			s += c.UnixNano()
		}
		_ = s
	})
}
