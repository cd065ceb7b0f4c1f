package routing

import (
	"fmt"
	"slices"
	"strings"
	"time"

	// Time zones must not depend on the host: embed the tz database as a fallback.
	_ "time/tzdata"
)

// schedule is a compiled ScheduleSpec.
//
// Hours are wall-clock times in the schedule's zone. A day's ranges belong to the day they
// start on: an overnight range of Thursday runs into Friday morning even if Friday is a
// holiday, and a date override replaces the ranges that start on that date. On the day the
// clocks go forward, times in the skipped hour never occur, so a range inside it never
// opens; on the day they go back, the repeated hour is open both times if its wall-clock
// time is within the hours.
type schedule struct {
	name   string
	loc    *time.Location
	week   [7][]Range // by time.Weekday
	weekOf [7]string  // where week's hours come from: "daily" or "weekly.sat"
	once   map[Date]*dateHours
	yearly map[Date]*dateHours // Year 0
}

// dateHours is a compiled date override.
type dateHours struct {
	date  Date
	hours []Range // empty when closed
	note  string
}

// hours returns the ranges that start on day d, and where they come from.
func (s *schedule) hours(d civil) ([]Range, string) {
	if o := s.once[Date{d.year, d.month, d.day}]; o != nil {
		return o.hours, o.describe()
	}
	if o := s.yearly[Date{0, d.month, d.day}]; o != nil {
		return o.hours, o.describe()
	}
	wd := d.weekday()
	return s.week[wd], s.weekOf[wd]
}

func (o *dateHours) describe() string {
	s := "override " + o.date.String()
	if len(o.hours) == 0 {
		s += " closed"
	}
	if o.note != "" {
		s += ": " + o.note
	}
	return s
}

// status is whether a schedule is open at one instant, and why.
type status struct {
	open bool
	why  string
}

// window finds the range that has s open at t: on t's date in the schedule's zone or, for
// an overnight range, the day before. ok is false when s is closed at t.
func (s *schedule) window(t time.Time) (r Range, day civil, from string, ok bool) {
	lt := t.In(s.loc)
	today := civilOf(lt)
	m := lt.Hour()*60 + lt.Minute()
	hours, from := s.hours(today)
	for _, r := range hours {
		if m >= r.Start && (r.Overnight() || m < r.End) {
			return r, today, from, true
		}
	}
	yesterday := today.add(-1)
	yHours, yFrom := s.hours(yesterday)
	for _, r := range yHours {
		if r.Overnight() && m < r.End {
			return r, yesterday, yFrom, true
		}
	}
	return Range{}, today, from, false
}

// status reports whether s is open at t, explained in the schedule's zone.
func (s *schedule) status(t time.Time) status {
	lt := t.In(s.loc)
	at := fmt.Sprintf("%s %s (%s)", lt.Format("15:04 MST"), civilOf(lt), s.loc)
	r, day, from, ok := s.window(t)
	if ok {
		return status{true, fmt.Sprintf("open: %s is within %s of %s (%s)", at, r, day, from)}
	}
	var why string
	if hours, _ := s.hours(day); len(hours) == 0 {
		why = fmt.Sprintf("closed: %s; no hours on %s (%s)", at, day, from)
	} else {
		why = fmt.Sprintf("closed: %s is outside %s of %s (%s)", at, rangesString(hours), day, from)
	}
	if next, ok := s.nextOpen(t); ok {
		why += "; opens " + next.In(s.loc).Format("15:04 MST Mon 2006-01-02")
	} else {
		why += fmt.Sprintf("; does not open in the next %d days", lookAhead)
	}
	return status{false, why}
}

// openings returns the instants at which r, starting on d, opens: usually one, two when
// its start is in the hour the clocks repeat, and when its start is in the hour they skip,
// the first minute after it that is open.
func (s *schedule) openings(d civil, r Range) []time.Time {
	wall := time.Date(d.year, d.month, d.day, 0, r.Start, 0, 0, time.UTC)
	approx := d.at(r.Start, s.loc)
	var out []time.Time
	for _, probe := range []time.Time{approx.Add(-3 * time.Hour), approx.Add(3 * time.Hour)} {
		_, offset := probe.Zone()
		t := wall.Add(-time.Duration(offset) * time.Second)
		lt := t.In(s.loc)
		if civilOf(lt) == d && lt.Hour()*60+lt.Minute() == r.Start && !slices.Contains(out, t) && s.isOpen(t) {
			out = append(out, t)
		}
	}
	if len(out) > 0 {
		return out
	}
	// In the gap: the first open minute from two hours before.
	for t := approx.Add(-2 * time.Hour).Truncate(time.Minute); t.Before(approx.Add(2 * time.Hour)); t = t.Add(time.Minute) {
		if lt := t.In(s.loc); civilOf(lt) == d && lt.Hour()*60+lt.Minute() >= r.Start && s.isOpen(t) {
			return []time.Time{t}
		}
	}
	return nil
}

func (s *schedule) isOpen(t time.Time) bool {
	_, _, _, ok := s.window(t)
	return ok
}

// lookAhead is how many days status looks for the next opening.
const lookAhead = 14

// nextOpen returns the first instant after t at which s opens, within lookAhead days.
func (s *schedule) nextOpen(t time.Time) (time.Time, bool) {
	today := civilOf(t.In(s.loc))
	var best time.Time
	for i := 0; i <= lookAhead; i++ {
		d := today.add(i)
		hours, _ := s.hours(d)
		for _, r := range hours {
			for _, start := range s.openings(d, r) {
				if start.After(t) && (best.IsZero() || start.Before(best)) {
					best = start
				}
			}
		}
		if !best.IsZero() {
			return best, true
		}
	}
	return time.Time{}, false
}

func rangesString(rs []Range) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.String()
	}
	return strings.Join(s, ", ")
}

// neverOpen reports whether s has no hours at all.
func (s *schedule) neverOpen() bool {
	for _, h := range s.week {
		if len(h) > 0 {
			return false
		}
	}
	for _, o := range s.once {
		if len(o.hours) > 0 {
			return false
		}
	}
	for _, o := range s.yearly {
		if len(o.hours) > 0 {
			return false
		}
	}
	return true
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}
