package routing

import (
	"errors"
	"fmt"
	"time"
)

const minutesPerDay = 24 * 60

// A Range is a span of wall-clock time that starts on some day: from Start up to, not
// including, End, both in minutes since midnight. Start is in [0, 1440) and End in
// (0, 1440]. An End not after Start (Overnight) means the range runs past midnight and
// ends at End on the next day.
type Range struct {
	Start, End int
}

// ParseRange parses "HH:MM-HH:MM", such as "08:00-17:30", "00:00-24:00" or "22:00-06:00"
// (overnight). 24:00 is allowed only as an end; an end of 00:00 means 24:00. A range that
// starts and ends at the same time is an error: write 00:00-24:00 for a whole day.
func ParseRange(s string) (Range, error) {
	if len(s) != len("HH:MM-HH:MM") || s[5] != '-' {
		return Range{}, fmt.Errorf("%q is not a time range like 08:00-17:00", s)
	}
	start, err := parseClock(s[:5])
	if err != nil {
		return Range{}, fmt.Errorf("%q: start: %w", s, err)
	}
	end, err := parseClock(s[6:])
	if err != nil {
		return Range{}, fmt.Errorf("%q: end: %w", s, err)
	}
	switch {
	case start == minutesPerDay:
		return Range{}, fmt.Errorf("%q: start: 24:00 can only end a range; write 00:00", s)
	case start == end:
		return Range{}, fmt.Errorf("%q starts and ends at the same time; write 00:00-24:00 for the whole day", s)
	case end == 0:
		end = minutesPerDay
	}
	return Range{Start: start, End: end}, nil
}

var errClock = errors.New("not a time of day HH:MM from 00:00 to 24:00")

// parseClock parses "HH:MM" into minutes since midnight, 0..1440.
func parseClock(s string) (int, error) {
	if len(s) != 5 || s[2] != ':' {
		return 0, errClock
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, errClock
		}
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	if m > 59 || h > 24 || h == 24 && m != 0 {
		return 0, errClock
	}
	return h*60 + m, nil
}

// Overnight reports whether r runs past midnight into the next day.
func (r Range) Overnight() bool { return r.End <= r.Start }

// String formats r as ParseRange reads it.
func (r Range) String() string {
	return fmt.Sprintf("%02d:%02d-%02d:%02d", r.Start/60, r.Start%60, r.End/60, r.End%60)
}

// spans returns the minutes r covers counted from the start of its day, [Start, End) with
// End in (0, 2880): past 1440 for an overnight range.
func (r Range) spans() (start, end int) {
	if r.Overnight() {
		return r.Start, r.End + minutesPerDay
	}
	return r.Start, r.End
}

// overlaps reports whether r and o, both starting on the same day, cover a common minute.
// With daily, both also start on every following day (as the daily hours do), so an
// overnight range can meet the other's next occurrence.
func (r Range) overlaps(o Range, daily bool) bool {
	rs, re := r.spans()
	os, oe := o.spans()
	if rs < oe && os < re {
		return true
	}
	return daily && (re > minutesPerDay && os < re-minutesPerDay || oe > minutesPerDay && rs < oe-minutesPerDay)
}

// A Date is a calendar date, or with Year 0 a month and day every year.
type Date struct {
	Year  int // 0 for every year
	Month time.Month
	Day   int
}

// ParseDate parses "YYYY-MM-DD" (that day only) or "MM-DD" (that day every year; 02-29 only
// in leap years). The date must exist.
func ParseDate(s string) (Date, error) {
	var d Date
	rest := s
	switch len(s) {
	case len("2006-01-02"):
		if s[4] != '-' {
			return Date{}, errDate(s)
		}
		y, ok := digits(s[:4])
		if !ok || y == 0 {
			return Date{}, errDate(s)
		}
		d.Year, rest = y, s[5:]
	case len("01-02"):
	default:
		return Date{}, errDate(s)
	}
	m, ok1 := digits(rest[:2])
	day, ok2 := digits(rest[3:])
	if !ok1 || !ok2 || rest[2] != '-' {
		return Date{}, errDate(s)
	}
	d.Month, d.Day = time.Month(m), day
	if m < 1 || m > 12 || day < 1 || day > daysIn(d.Month, d.Year) {
		return Date{}, fmt.Errorf("%q is not a day of the calendar", s)
	}
	return d, nil
}

func errDate(s string) error {
	return fmt.Errorf("%q is not a date like 2026-12-24 (that day) or 12-25 (every year)", s)
}

// digits parses a string of ASCII digits.
func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, s != ""
}

// daysIn returns the number of days in month m of year y; year 0 (every year) allows 29
// days in February.
func daysIn(m time.Month, y int) int {
	if y == 0 {
		y = 2000
	}
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// String formats d as ParseDate reads it.
func (d Date) String() string {
	if d.Year == 0 {
		return fmt.Sprintf("%02d-%02d", int(d.Month), d.Day)
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}

// civil is a date on the calendar of some time zone.
type civil struct {
	year  int
	month time.Month
	day   int
}

func civilOf(t time.Time) civil {
	y, m, d := t.Date()
	return civil{y, m, d}
}

// add returns the date n days later.
func (c civil) add(n int) civil {
	return civilOf(time.Date(c.year, c.month, c.day+n, 12, 0, 0, 0, time.UTC))
}

func (c civil) weekday() time.Weekday {
	return time.Date(c.year, c.month, c.day, 12, 0, 0, 0, time.UTC).Weekday()
}

// at returns the instant of wall-clock minute m of c in loc. A time that the clocks skip
// (the spring-forward gap) becomes the instant the skipped hour is moved to, as time.Date
// does.
func (c civil) at(m int, loc *time.Location) time.Time {
	return time.Date(c.year, c.month, c.day, 0, m, 0, 0, loc)
}

func (c civil) String() string {
	return fmt.Sprintf("%s %04d-%02d-%02d", c.weekday().String()[:3], c.year, int(c.month), c.day)
}
