package dsar

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/privguard/privguard"
)

func day(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, time.UTC)
	if err != nil {
		panic(err)
	}
	return t
}

func cst(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, ChinaTime)
	if err != nil {
		panic(err)
	}
	return t
}

func engine(t *testing.T) *Deadlines {
	t.Helper()
	d, err := NewDeadlines(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestGDPRCalendarMonth(t *testing.T) {
	// proves DSR-03 (GDPR): one calendar month, clamped to the month's end.
	d := engine(t)
	cases := []struct{ received, want string }{
		{"2026-01-31 10:00", "2026-02-28 10:00"},
		{"2028-01-31 10:00", "2028-02-29 10:00"}, // leap year
		{"2026-03-31 10:00", "2026-04-30 10:00"},
		{"2026-01-15 10:00", "2026-02-15 10:00"},
		{"2026-12-31 23:00", "2027-01-31 23:00"},
	}
	for _, tc := range cases {
		dl, err := d.Due(privguard.RegimeGDPR, day(tc.received), nil, nil, day(tc.received))
		if err != nil || !dl.Due.Equal(day(tc.want)) {
			t.Errorf("received %s: due %v, %v; want %s", tc.received, dl.Due, err, tc.want)
		}
	}
}

func TestGDPRExtension(t *testing.T) {
	// proves DSR-03: +2 months only with reasons recorded and told within the first month.
	d := engine(t)
	received := day("2026-01-31 10:00")
	ok := &Extension{Months: 2, Reason: "complex: 14 systems", RecordedAt: day("2026-02-10 09:00"), NotifiedAt: day("2026-02-10 09:05")}
	dl, err := d.Due(privguard.RegimeGDPR, received, nil, ok, received)
	if err != nil || !dl.Extended || !dl.Due.Equal(day("2026-04-30 10:00")) || !dl.FirstDue.Equal(day("2026-02-28 10:00")) {
		t.Fatalf("extended = %+v, %v; want due 2026-04-30", dl, err)
	}
	bad := []*Extension{
		{Months: 3, Reason: "x", RecordedAt: day("2026-02-01 00:00"), NotifiedAt: day("2026-02-01 00:00")},
		{Months: 1, RecordedAt: day("2026-02-01 00:00"), NotifiedAt: day("2026-02-01 00:00")},
		{Months: 1, Reason: "late", RecordedAt: day("2026-03-01 00:00"), NotifiedAt: day("2026-03-01 00:00")},
		{Months: 1, Reason: "not told", RecordedAt: day("2026-02-01 00:00")},
	}
	for i, ext := range bad {
		if _, err := d.Due(privguard.RegimeGDPR, received, nil, ext, received); !errors.Is(err, ErrExtensionRefused) {
			t.Errorf("bad extension %d: %v; want ErrExtensionRefused", i, err)
		}
	}
	if _, err := d.Due(privguard.RegimePIPL, received, nil, ok, received); !errors.Is(err, ErrExtensionRefused) {
		t.Errorf("PIPL extension: %v; want refused", err)
	}
}

func TestPIPLWorkingDays(t *testing.T) {
	// proves DSR-03 (PIPL): 15 working days on the PRC calendar, across Golden Week with its
	// make-up working weekend days.
	d := engine(t)
	cases := []struct{ name, received, want string }{
		// Mon 2026-03-02: 15 working days, no holidays -> Mon 2026-03-23.
		{"plain_weeks", "2026-03-02 10:00", "2026-03-23 23:59"},
		// Thu 2026-09-24: 9-25..27 Mid-Autumn (holiday: Fri-Sun), 9-28..30 work (3),
		// 10-1..7 National Day off, Sat 10-10 a working day; then Thu 10-8 (4), Fri 10-9 (5),
		// Sat 10-10 (6), Mon 10-12.. Fri 10-16 (11), Mon 10-19..Thu 10-22 (15).
		{"golden_week", "2026-09-24 18:00", "2026-10-22 23:59"},
		// Received on Sunday 2026-09-20, itself an adjusted working day (the day of receipt never
		// counts): 9-21..24 (4), 9-28..30 (7), 10-8, 10-9, Sat 10-10 (10), 10-12..16 (15).
		{"received_on_makeup_sunday", "2026-09-20 09:00", "2026-10-16 23:59"},
		// Spring Festival: 2-13 (1), Sat 2-14 working (2), 2-15..23 off, 2-24..27 (6),
		// Sat 2-28 working (7), 3-2..6 (12), 3-9..11 (15).
		{"spring_festival", "2026-02-12 12:00", "2026-03-11 23:59"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dl, err := d.Due(privguard.RegimePIPL, cst(tc.received), nil, nil, cst(tc.received))
			if err != nil || !dl.Due.Equal(cst(tc.want).Add(59*time.Second)) {
				t.Errorf("due %v, %v; want %s", dl.Due, err, tc.want)
			}
			if len(dl.Warnings) != 0 {
				t.Errorf("warnings %v for a listed year", dl.Warnings)
			}
		})
	}
}

func TestPIPLCapAndUnknownYear(t *testing.T) {
	d, _ := NewDeadlines(nil, 22) // 22 working days would pass 30 calendar days: capped
	dl, _ := d.Due(privguard.RegimePIPL, cst("2026-09-24 10:00"), nil, nil, cst("2026-09-24 10:00"))
	if want := cst("2026-10-24 23:59").Add(59 * time.Second); !dl.Due.Equal(want) {
		t.Errorf("capped due %v; want %v (30 calendar days)", dl.Due, want)
	}
	dl, _ = engine(t).Due(privguard.RegimePIPL, cst("2026-12-24 10:00"), nil, nil, cst("2026-12-24 10:00"))
	if len(dl.Warnings) != 1 {
		t.Errorf("warnings %v; want one for 2027, a year the calendar does not list", dl.Warnings)
	}
	if _, err := NewDeadlines(nil, 40); err == nil {
		t.Error("40 working days accepted")
	}
}

func TestPausesStopTheClock(t *testing.T) {
	d := engine(t)
	received := cst("2026-03-02 10:00") // Monday
	// Waiting for the subject from Tue 03-03 10:00 to Tue 03-10 10:00: 5 working days paused.
	pauses := []Pause{{From: cst("2026-03-03 10:00"), To: cst("2026-03-10 10:00")}}
	dl, _ := d.Due(privguard.RegimePIPL, received, pauses, nil, cst("2026-03-12 10:00"))
	if want := cst("2026-03-30 23:59").Add(59 * time.Second); !dl.Due.Equal(want) {
		t.Errorf("PIPL with a pause: due %v; want %v", dl.Due, want)
	}
	g, _ := d.Due(privguard.RegimeGDPR, day("2026-01-15 10:00"), []Pause{{From: day("2026-01-20 10:00"), To: day("2026-01-23 10:00")}}, nil, day("2026-02-01 00:00"))
	if !g.Due.Equal(day("2026-02-18 10:00")) {
		t.Errorf("GDPR with a 3-day pause: due %v; want 2026-02-18", g.Due)
	}
	if !Overdue(day("2026-02-18 10:00"), day("2026-02-18 10:01")) || Overdue(day("2026-02-18 10:00"), day("2026-02-18 09:59")) {
		t.Error("Overdue is wrong at the boundary")
	}
	if !DueSoon(day("2026-02-18 10:00"), day("2026-02-16 10:00"), 72*time.Hour) {
		t.Error("DueSoon missed a request due in 48 h")
	}
}

func TestCalendarRejectsBadData(t *testing.T) {
	for _, y := range []string{
		"years: {2026: {holidays: [2026-13-01]}}",
		"years: {2026: {holidays: [2025-01-01]}}",
		"years: {2026: {workdays: [2026-03-04]}}", // a Wednesday is not an adjusted weekend day
		"years: [",
	} {
		if _, err := ParseCalendar([]byte(y)); err == nil {
			t.Errorf("ParseCalendar(%q) accepted", y)
		}
	}
}

func TestExtensionJSON(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	b, _ := json.Marshal(Extension{Months: 2, Reason: "complex", RecordedAt: at, NotifiedAt: at})
	if !strings.Contains(string(b), `"recorded_at":"2026-03-02T09:00:00Z"`) || !strings.Contains(string(b), `"notified_at"`) {
		t.Errorf("Marshal = %s; want snake_case names", b)
	}
	for _, stored := range []string{string(b), `{"Months":2,"Reason":"complex","RecordedAt":"2026-03-02T09:00:00Z","NotifiedAt":"2026-03-02T09:00:00Z"}`} {
		var x Extension
		if err := json.Unmarshal([]byte(stored), &x); err != nil || x.Months != 2 || !x.RecordedAt.Equal(at) || !x.NotifiedAt.Equal(at) {
			t.Errorf("Unmarshal(%s) = %+v, %v", stored, x, err)
		}
	}
}
