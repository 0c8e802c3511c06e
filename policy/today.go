package policy

import (
	"runtime"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// dayRefresh bounds how long the engine's date may lag the system clock after the clock
// is set (the date is recomputed at every midnight of the engine's location and at least
// this often).
const dayRefresh = time.Minute

// day is one calendar date as the policy sees it (input.today).
type day struct {
	date string // 2026-03-01
	term *ast.Term
}

func dayOf(t time.Time, loc *time.Location) *day {
	s := t.In(loc).Format(time.DateOnly)
	return &day{date: s, term: ast.StringTerm(s)}
}

// dayClock keeps today's date for decisions that do not bring their own time, so that a
// decision reads an atomic pointer rather than the system clock (which costs a quarter of
// a memoised decision on a virtual machine). A timer, not a goroutine, recomputes it.
type dayClock struct {
	loc     *time.Location
	cur     atomic.Pointer[day]
	timer   *time.Timer
	stopped atomic.Bool
}

// startDayClock starts the clock of e, stopped once e is unreachable. The timer's function
// holds the clock, never the engine.
func startDayClock(e *Engine, loc *time.Location) *dayClock {
	c := &dayClock{loc: loc}
	now := time.Now()
	c.cur.Store(dayOf(now, loc))
	c.timer = time.AfterFunc(c.untilNext(now), c.tick)
	runtime.AddCleanup(e, func(c *dayClock) { c.stop() }, c)
	return c
}

func (c *dayClock) tick() {
	now := time.Now()
	c.cur.Store(dayOf(now, c.loc))
	if !c.stopped.Load() {
		c.timer.Reset(c.untilNext(now))
	}
}

// untilNext is the time to the next refresh: the next midnight, or dayRefresh if sooner.
func (c *dayClock) untilNext(now time.Time) time.Duration {
	t := now.In(c.loc)
	midnight := time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, c.loc)
	return min(midnight.Sub(now), dayRefresh)
}

func (c *dayClock) stop() {
	c.stopped.Store(true)
	c.timer.Stop()
}
