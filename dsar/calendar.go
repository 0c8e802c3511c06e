package dsar

import (
	_ "embed"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// DefaultCNWorkdays is China's holiday and adjusted-working-day schedule shipped with
// privguard (cn-workdays.yaml). New years are added as data.
//
//go:embed cn-workdays.yaml
var DefaultCNWorkdays []byte

// Calendar says which days are working days in mainland China: Monday to Friday, except
// the listed public holidays, plus the listed adjusted working days (调休) on weekends.
type Calendar struct {
	years    map[int]bool
	holidays map[civil]bool
	workdays map[civil]bool
}

// civil is a calendar date.
type civil struct {
	y int
	m time.Month
	d int
}

func civilOf(t time.Time) civil { y, m, d := t.Date(); return civil{y, m, d} }

// ParseCalendar reads a schedule in the format of cn-workdays.yaml.
func ParseCalendar(b []byte) (*Calendar, error) {
	var doc struct {
		Years map[int]struct {
			Holidays []string `yaml:"holidays"`
			Workdays []string `yaml:"workdays"`
		} `yaml:"years"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("dsar: calendar: %w", err)
	}
	c := &Calendar{years: map[int]bool{}, holidays: map[civil]bool{}, workdays: map[civil]bool{}}
	for year, y := range doc.Years {
		c.years[year] = true
		for _, list := range []struct {
			days []string
			into map[civil]bool
			want func(time.Weekday) bool
			what string
		}{
			{y.Holidays, c.holidays, func(time.Weekday) bool { return true }, "holiday"},
			{y.Workdays, c.workdays, func(w time.Weekday) bool { return w == time.Saturday || w == time.Sunday }, "adjusted working day"},
		} {
			for _, s := range list.days {
				d, err := time.Parse(time.DateOnly, s)
				if err != nil || d.Year() != year {
					return nil, fmt.Errorf("dsar: calendar %d: %q is not a date of that year", year, s)
				}
				if !list.want(d.Weekday()) {
					return nil, fmt.Errorf("dsar: calendar %d: %s is listed as an %s but is a %s", year, s, list.what, d.Weekday())
				}
				list.into[civilOf(d)] = true
			}
		}
	}
	return c, nil
}

// Knows reports whether the calendar lists year; for other years only weekends are known.
func (c *Calendar) Knows(year int) bool { return c.years[year] }

// Workday reports whether the date of t is a working day.
func (c *Calendar) Workday(t time.Time) bool {
	d := civilOf(t)
	if c.workdays[d] {
		return true
	}
	if c.holidays[d] {
		return false
	}
	w := t.Weekday()
	return w != time.Saturday && w != time.Sunday
}

// AddWorkdays returns the end of the n-th working day after the day of t (the day of
// receipt itself does not count), in t's location. unknown lists the years the calendar did
// not know on the way (counted as weekends only: report them).
func (c *Calendar) AddWorkdays(t time.Time, n int) (due time.Time, unknown []int) {
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
	seen := map[int]bool{}
	for n > 0 {
		day = day.AddDate(0, 0, 1)
		if !c.Knows(day.Year()) && !seen[day.Year()] {
			seen[day.Year()] = true
			unknown = append(unknown, day.Year())
		}
		if c.Workday(day) {
			n--
		}
	}
	return endOfDay(day), unknown
}

// workdaysBetween counts the working days whose start lies in [from, to).
func (c *Calendar) workdaysBetween(from, to time.Time) int {
	n := 0
	day := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, from.Location())
	if day.Before(from) {
		day = day.AddDate(0, 0, 1)
	}
	for ; day.Before(to); day = day.AddDate(0, 0, 1) {
		if c.Workday(day) {
			n++
		}
	}
	return n
}

func endOfDay(d time.Time) time.Time {
	return time.Date(d.Year(), d.Month(), d.Day(), 23, 59, 59, 0, d.Location())
}

// addMonths adds n calendar months to t, clamping the day to the target month's last day
// (31 January + 1 month = 28 or 29 February), as GDPR Art. 12(3) is read with Regulation
// 1182/71 Art. 3(2)(c).
func addMonths(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(n), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(d, last)-1)
}
