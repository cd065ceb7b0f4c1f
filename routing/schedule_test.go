package routing

import (
	"strings"
	"testing"
	"time"
)

// compileSchedule compiles a Spec holding only s (and the routes Compile needs).
func compileSchedule(t *testing.T, s ScheduleSpec) *schedule {
	t.Helper()
	s.Name = "s"
	tb, err := Compile(Spec{
		Queues:    []QueueSpec{{Name: "q", Languages: []string{"en"}}},
		Schedules: []ScheduleSpec{s},
		Routes:    []RouteSpec{{Name: "all", To: "q"}},
	})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return tb.schedules["s"]
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

type openCase struct {
	at   string // RFC 3339
	open bool
	why  string // a substring of the explanation
}

func checkOpen(t *testing.T, s *schedule, cases []openCase) {
	t.Helper()
	for _, c := range cases {
		st := s.status(mustTime(t, c.at))
		if st.open != c.open || !strings.Contains(st.why, c.why) {
			t.Errorf("at %s: open %v, %q; want open %v, containing %q", c.at, st.open, st.why, c.open, c.why)
		}
	}
}

func TestScheduleWeekly(t *testing.T) {
	// 2026-01-02 is a Friday.
	s := compileSchedule(t, ScheduleSpec{
		Timezone: "America/Chicago",
		Daily:    []string{"08:00-17:00"},
		Weekly: map[string][]string{
			"sat": {"08:00-12:00", "22:00-06:00"},
			"sun": {},
		},
	})
	checkOpen(t, s, []openCase{
		{"2026-01-02T07:59:59-06:00", false, "closed: 07:59 CST Fri 2026-01-02 (America/Chicago) is outside 08:00-17:00 of Fri 2026-01-02 (daily); opens 08:00 CST Fri 2026-01-02"},
		{"2026-01-02T08:00:00-06:00", true, "open: 08:00 CST Fri 2026-01-02 (America/Chicago) is within 08:00-17:00 of Fri 2026-01-02 (daily)"},
		{"2026-01-02T16:59:00-06:00", true, "within 08:00-17:00"},
		{"2026-01-02T17:00:00-06:00", false, "opens 08:00 CST Sat 2026-01-03"},
		// The same instant written in UTC is judged in the schedule's zone.
		{"2026-01-02T14:00:00Z", true, "08:00 CST Fri"},
		{"2026-01-03T11:59:00-06:00", true, "within 08:00-12:00 of Sat 2026-01-03 (weekly.sat)"},
		{"2026-01-03T12:00:00-06:00", false, "outside 08:00-12:00, 22:00-06:00 of Sat 2026-01-03 (weekly.sat); opens 22:00 CST Sat 2026-01-03"},
		{"2026-01-03T22:00:00-06:00", true, "within 22:00-06:00 of Sat 2026-01-03 (weekly.sat)"},
		// Saturday's night runs into Sunday, which has no hours of its own.
		{"2026-01-04T05:59:00-06:00", true, "05:59 CST Sun 2026-01-04 (America/Chicago) is within 22:00-06:00 of Sat 2026-01-03 (weekly.sat)"},
		{"2026-01-04T06:00:00-06:00", false, "no hours on Sun 2026-01-04 (weekly.sun); opens 08:00 CST Mon 2026-01-05"},
	})
}

func TestScheduleOverrides(t *testing.T) {
	s := compileSchedule(t, ScheduleSpec{
		Timezone: "America/Chicago",
		Daily:    []string{"22:00-06:00"},
		Overrides: []DateSpec{
			{Date: "2026-12-24", Hours: []string{"08:00-14:00"}, Note: "Christmas Eve"},
			{Date: "12-25", Closed: true, Note: "Christmas"},
			{Date: "2027-12-25", Hours: []string{"10:00-12:00"}}, // a one-off date beats a yearly one
			{Date: "12-31", Hours: []string{"20:00-02:00"}},
			{Date: "01-01", Closed: true},
		},
	})
	checkOpen(t, s, []openCase{
		// Christmas Eve's hours replace the night starting on the 24th...
		{"2026-12-24T03:00:00-06:00", true, "within 22:00-06:00 of Wed 2026-12-23 (daily)"},
		{"2026-12-24T09:00:00-06:00", true, "within 08:00-14:00 of Thu 2026-12-24 (override 2026-12-24: Christmas Eve)"},
		{"2026-12-24T22:00:00-06:00", false, "outside 08:00-14:00 of Thu 2026-12-24 (override 2026-12-24: Christmas Eve); opens 22:00 CST Sat 2026-12-26"},
		// ...so the example, 3 am on Christmas Day, is closed.
		{"2026-12-25T03:00:00-06:00", false, "no hours on Fri 2026-12-25 (override 12-25 closed: Christmas); opens 22:00 CST Sat 2026-12-26"},
		{"2027-12-25T11:00:00-06:00", true, "within 10:00-12:00 of Sat 2027-12-25 (override 2027-12-25)"},
		{"2028-12-25T11:00:00-06:00", false, "override 12-25 closed: Christmas"},
		// Across the year's end: New Year's Eve runs into a closed New Year's Day.
		{"2026-12-31T21:00:00-06:00", true, "within 20:00-02:00 of Thu 2026-12-31 (override 12-31)"},
		{"2027-01-01T01:59:00-06:00", true, "01:59 CST Fri 2027-01-01 (America/Chicago) is within 20:00-02:00 of Thu 2026-12-31 (override 12-31)"},
		{"2027-01-01T02:00:00-06:00", false, "no hours on Fri 2027-01-01 (override 01-01 closed); opens 22:00 CST Sat 2027-01-02"},
		// The night of the 30th runs into the 31st, whose own hours start later.
		{"2026-12-31T05:00:00-06:00", true, "within 22:00-06:00 of Wed 2026-12-30 (daily)"},
		{"2026-12-31T12:00:00-06:00", false, "opens 20:00 CST Thu 2026-12-31"},
	})
}

// Daylight-saving time: hours are wall-clock times in the schedule's zone.
func TestScheduleDST(t *testing.T) {
	t.Run("America/Chicago", func(t *testing.T) {
		// 2026-03-08 02:00 CST becomes 03:00 CDT; 2026-11-01 02:00 CDT becomes 01:00 CST.
		night := compileSchedule(t, ScheduleSpec{
			Timezone: "America/Chicago",
			Weekly:   map[string][]string{"sat": {"22:00-06:00"}, "sun": {"12:00-13:00"}},
		})
		checkOpen(t, night, []openCase{
			// Spring forward: the night of Saturday 03-07 is an hour shorter but still
			// ends at 06:00 on the wall clock.
			{"2026-03-08T07:59:00Z", true, "01:59 CST Sun 2026-03-08"},
			{"2026-03-08T08:00:00Z", true, "03:00 CDT Sun 2026-03-08 (America/Chicago) is within 22:00-06:00 of Sat 2026-03-07"},
			{"2026-03-08T10:59:00Z", true, "05:59 CDT"},
			{"2026-03-08T11:00:00Z", false, "06:00 CDT Sun 2026-03-08 (America/Chicago) is outside 12:00-13:00 of Sun 2026-03-08 (weekly.sun); opens 12:00 CDT Sun 2026-03-08"},
			// Fall back: the night is an hour longer.
			{"2026-11-01T06:45:00Z", true, "01:45 CDT Sun 2026-11-01 (America/Chicago) is within 22:00-06:00 of Sat 2026-10-31"},
			{"2026-11-01T07:45:00Z", true, "01:45 CST Sun 2026-11-01 (America/Chicago) is within 22:00-06:00 of Sat 2026-10-31"},
			{"2026-11-01T11:59:00Z", true, "05:59 CST"},
			{"2026-11-01T12:00:00Z", false, "06:00 CST Sun 2026-11-01"},
		})
		early := compileSchedule(t, ScheduleSpec{
			Timezone: "America/Chicago",
			Weekly:   map[string][]string{"sun": {"01:00-01:30", "02:15-02:45"}},
		})
		checkOpen(t, early, []openCase{
			// 02:15-02:45 falls in the skipped hour, so it never opens that day.
			{"2026-03-08T07:15:00Z", true, "01:15 CST Sun 2026-03-08"},
			{"2026-03-08T07:59:00Z", false, "01:59 CST Sun 2026-03-08 (America/Chicago) is outside 01:00-01:30, 02:15-02:45 of Sun 2026-03-08 (weekly.sun); opens 01:00 CDT Sun 2026-03-15"},
			{"2026-03-08T08:20:00Z", false, "03:20 CDT"},
			{"2026-03-01T08:20:00Z", true, "02:20 CST Sun 2026-03-01"},
			// Fall back: 01:00-01:30 happens twice, and is open both times.
			{"2026-11-01T06:15:00Z", true, "01:15 CDT Sun 2026-11-01 (America/Chicago) is within 01:00-01:30"},
			{"2026-11-01T06:45:00Z", false, "01:45 CDT Sun 2026-11-01 (America/Chicago) is outside 01:00-01:30, 02:15-02:45 of Sun 2026-11-01 (weekly.sun); opens 01:00 CST Sun 2026-11-01"},
			{"2026-11-01T07:15:00Z", true, "01:15 CST Sun 2026-11-01 (America/Chicago) is within 01:00-01:30"},
			// 02:15 CST comes once, after the repeated hour.
			{"2026-11-01T08:15:00Z", true, "02:15 CST Sun 2026-11-01 (America/Chicago) is within 02:15-02:45"},
		})
		// A range that starts in the skipped hour opens when the clocks jump.
		gap := compileSchedule(t, ScheduleSpec{
			Timezone: "America/Chicago",
			Weekly:   map[string][]string{"sun": {"02:30-04:00"}},
		})
		checkOpen(t, gap, []openCase{
			{"2026-03-08T07:45:00Z", false, "01:45 CST Sun 2026-03-08 (America/Chicago) is outside 02:30-04:00 of Sun 2026-03-08 (weekly.sun); opens 03:00 CDT Sun 2026-03-08"},
			{"2026-03-08T08:00:00Z", true, "03:00 CDT Sun 2026-03-08 (America/Chicago) is within 02:30-04:00"},
			{"2026-03-08T09:00:00Z", false, "opens 02:30 CDT Sun 2026-03-15"},
		})
	})
	t.Run("Europe/London", func(t *testing.T) {
		// 2026-03-29 01:00 GMT becomes 02:00 BST; 2026-10-25 02:00 BST becomes 01:00 GMT.
		s := compileSchedule(t, ScheduleSpec{
			Timezone: "Europe/London",
			Daily:    []string{"01:00-02:00", "09:00-17:00"},
		})
		checkOpen(t, s, []openCase{
			{"2026-03-28T01:30:00Z", true, "01:30 GMT Sat 2026-03-28"},
			{"2026-03-29T00:59:00Z", false, "00:59 GMT Sun 2026-03-29"},
			{"2026-03-29T01:00:00Z", false, "02:00 BST Sun 2026-03-29"}, // 01:00-02:00 never comes
			{"2026-03-29T08:00:00Z", true, "09:00 BST Sun 2026-03-29 (Europe/London) is within 09:00-17:00"},
			{"2026-03-29T16:00:00Z", false, "17:00 BST Sun 2026-03-29 (Europe/London) is outside 01:00-02:00, 09:00-17:00 of Sun 2026-03-29 (daily); opens 01:00 BST Mon 2026-03-30"},
			{"2026-10-25T00:30:00Z", true, "01:30 BST Sun 2026-10-25 (Europe/London) is within 01:00-02:00"},
			{"2026-10-25T01:30:00Z", true, "01:30 GMT Sun 2026-10-25 (Europe/London) is within 01:00-02:00"},
			{"2026-10-25T02:00:00Z", false, "02:00 GMT Sun 2026-10-25"},
			{"2026-10-25T09:00:00Z", true, "09:00 GMT"},
		})
	})
	t.Run("Australia/Sydney", func(t *testing.T) {
		// Southern summer time spans the year's end: AEDT from 2026-10-04 (02:00 AEST
		// becomes 03:00 AEDT) to 2027-04-04 (03:00 AEDT becomes 02:00 AEST).
		s := compileSchedule(t, ScheduleSpec{
			Timezone:  "Australia/Sydney",
			Daily:     []string{"22:00-06:00"},
			Overrides: []DateSpec{{Date: "01-01", Closed: true}},
		})
		checkOpen(t, s, []openCase{
			{"2026-12-31T12:30:00Z", true, "23:30 AEDT Thu 2026-12-31"},
			{"2026-12-31T18:59:00Z", true, "05:59 AEDT Fri 2027-01-01 (Australia/Sydney) is within 22:00-06:00 of Thu 2026-12-31"},
			{"2026-12-31T19:00:00Z", false, "opens 22:00 AEDT Sat 2027-01-02"},
			// Summer time ends: 02:00-03:00 comes twice; the night ends at 06:00 AEST.
			{"2027-04-03T15:30:00Z", true, "02:30 AEDT Sun 2027-04-04"},
			{"2027-04-03T16:30:00Z", true, "02:30 AEST Sun 2027-04-04"},
			{"2027-04-03T19:59:00Z", true, "05:59 AEST Sun 2027-04-04"},
			{"2027-04-03T20:00:00Z", false, "06:00 AEST Sun 2027-04-04"},
			// Summer time starts: 02:00-03:00 is skipped; the night ends at 06:00 AEDT.
			{"2026-10-03T15:59:00Z", true, "01:59 AEST Sun 2026-10-04"},
			{"2026-10-03T16:00:00Z", true, "03:00 AEDT Sun 2026-10-04"},
			{"2026-10-03T18:59:00Z", true, "05:59 AEDT Sun 2026-10-04"},
			{"2026-10-03T19:00:00Z", false, "06:00 AEDT Sun 2026-10-04"},
		})
	})
}

func TestScheduleNeverOpens(t *testing.T) {
	s := compileSchedule(t, ScheduleSpec{Timezone: "UTC"})
	checkOpen(t, s, []openCase{{"2026-06-01T12:00:00Z", false, "does not open in the next 14 days"}})
	if !s.neverOpen() {
		t.Error("neverOpen() = false for a schedule without hours")
	}
}
