package policy

import (
	"testing"
	"time"
)

// The day clock refreshes at midnight in its location, and at least every dayRefresh.
func TestDayClockRefresh(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	c := &dayClock{loc: cst}
	for _, tc := range []struct {
		now  time.Time
		want time.Duration
	}{
		{time.Date(2026, 12, 31, 15, 59, 30, 0, time.UTC), 30 * time.Second}, // 23:59:30 in Shanghai
		{time.Date(2026, 12, 31, 2, 0, 0, 0, time.UTC), dayRefresh},
	} {
		if got := c.untilNext(tc.now); got != tc.want {
			t.Errorf("untilNext(%v) = %v; want %v", tc.now, got, tc.want)
		}
	}
	if d := dayOf(time.Date(2026, 12, 31, 16, 0, 0, 0, time.UTC), cst); d.date != "2027-01-01" {
		t.Errorf("dayOf = %s; want the date in Shanghai", d.date)
	}
}
