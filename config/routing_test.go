package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hotline-project/hotline/routing"
)

// TestRoutingErrors checks what hotline check reports about the routing sections: unknown
// names, routes that never match, missing catch-alls, bad hours and overrides.
func TestRoutingErrors(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"routing-actions.yaml", `testdata/routing-actions.yaml:10: routes[0].message: a route either sends the call somewhere (to) or plays a message and hangs up, not both
testdata/routing-actions.yaml:12: routes[1].hangup: a route with a message hangs up on the caller; write hangup: true to say so
testdata/routing-actions.yaml:17: routes[2].hangup: hangup: true needs a message to play first
testdata/routing-actions.yaml:18: routes[3].to: required: a queue or target (or a message, with hangup: true)
testdata/routing-actions.yaml:23: routes[4].priority: only a route to a queue has a priority
testdata/routing-actions.yaml:24: routes[4].overflow: only a route to a queue overflows; a call sent to a target leaves this server
testdata/routing-actions.yaml:28: routes[5].priority: must be 0 or more, got -1
testdata/routing-actions.yaml:30: routes[5].overflow[0].after: must be more than 0s, got 0s
testdata/routing-actions.yaml:31: routes[5].overflow[1].to: the call is already in queue es
testdata/routing-actions.yaml:32: routes[5].overflow[2].after: must be later than routes[5].overflow[1] (2m0s), got 1m0s
testdata/routing-actions.yaml:34: routes[5].overflow[4].to: the call is already in queue en
testdata/routing-actions.yaml:36: routes[6].when.open: required with a schedule: true (while open) or false (while closed)
testdata/routing-actions.yaml:39: routes[7].when.open: needs a schedule
testdata/routing-actions.yaml:39: routes[7].when.longest_wait.queue: required with over
testdata/routing-actions.yaml:42: routes[8].when.languages[0]: "EN" is not a language tag like en, es or fr-CA
testdata/routing-actions.yaml:42: routes[8].when.longest_wait.over: must be more than 0s, got 0s
testdata/routing-actions.yaml:46: routes[9].message: "Closed Now" is not a prompt name (lowercase letters, digits, _ and -)`},
		{"routing-catchall-hangup.yaml", `testdata/routing-catchall-hangup.yaml:7: routes[1].message: the last route catches every other call; it must send the call to a queue or target, not hang up`},
		{"routing-catchall.yaml", `testdata/routing-catchall.yaml:7: routes[1].when: the last route must have no conditions, so that every call gets a decision: add a catch-all route at the end`},
		{"routing-default-routes.yaml", `testdata/routing-default-routes.yaml:2: routes[0].to: undefined queue or target "es" (in the default routes, which apply because the file has no routes:)
testdata/routing-default-routes.yaml:2: routes[0].overflow[0].to: undefined queue or target "en" (in the default routes, which apply because the file has no routes:)
testdata/routing-default-routes.yaml:2: routes[1].to: undefined queue or target "en" (in the default routes, which apply because the file has no routes:)
testdata/routing-default-routes.yaml:2: routes[2].to: undefined queue or target "es" (in the default routes, which apply because the file has no routes:)
testdata/routing-default-routes.yaml:2: routes[2].overflow[0].to: undefined queue or target "en" (in the default routes, which apply because the file has no routes:)
testdata/routing-default-routes.yaml:2: routes[3].to: undefined queue or target "en" (in the default routes, which apply because the file has no routes:)`},
		{"routing-empty.yaml", `testdata/routing-empty.yaml:2: routes: at least one route is required, and the last must have no conditions (the catch-all)`},
		{"routing-hours.yaml", `testdata/routing-hours.yaml:6: schedules[0].daily[0]: "8:00-17:00" is not a time range like 08:00-17:00
testdata/routing-hours.yaml:6: schedules[0].daily[1]: "09:00-09:00" starts and ends at the same time; write 00:00-24:00 for the whole day
testdata/routing-hours.yaml:6: schedules[0].daily[2]: "24:00-02:00": start: 24:00 can only end a range; write 00:00
testdata/routing-hours.yaml:8: schedules[0].weekly.sat[1]: 11:00-14:00 overlaps schedules[0].weekly.sat[0] (08:00-12:00)
testdata/routing-hours.yaml:10: schedules[0].weekly.mon: 05:00-07:00 on mon overlaps 22:00-06:00, which runs on from sun (weekly.sun)
testdata/routing-hours.yaml:11: schedules[0].weekly.saturday: "saturday" is not a day: mon, tue, wed, thu, fri, sat or sun
testdata/routing-hours.yaml:13: schedules[1].timezone: unknown time zone "America/Chigaco"; give an IANA time zone such as America/Chicago
testdata/routing-hours.yaml:15: schedules[2].timezone: Local depends on the server; give an IANA time zone such as America/Chicago
testdata/routing-hours.yaml:16: schedules[3].timezone: required: an IANA time zone such as America/Chicago
testdata/routing-hours.yaml:19: schedules[4].daily[1]: 05:00-08:00 overlaps schedules[4].daily[0] (22:00-06:00)`},
		{"routing-names.yaml", `testdata/routing-names.yaml:4: queues[1].name: "En" may only have lowercase letters, digits, _ and -
testdata/routing-names.yaml:4: queues[1].languages[0]: "english" is not a language tag like en, es or fr-CA
testdata/routing-names.yaml:5: queues[2].name: duplicate of queues[0] (en)
testdata/routing-names.yaml:5: queues[2].languages[1]: duplicate of queues[2].languages[0] (es)
testdata/routing-names.yaml:6: queues[3].languages: at least one language is required
testdata/routing-names.yaml:7: queues[4].name: required
testdata/routing-names.yaml:9: targets[0].name: duplicate of queues[0] (en)
testdata/routing-names.yaml:10: targets[1].uri: "https://example.org" is not a SIP URI like sip:overflow@partner.example.org
testdata/routing-names.yaml:11: targets[2].uri: required
testdata/routing-names.yaml:14: routes[1].name: duplicate of routes[0] (default)
testdata/routing-names.yaml:14: routes[1]: never matches: routes[0] (default) before it matches every call`},
		{"routing-never.yaml", `testdata/routing-never.yaml:11: routes[1]: never matches: routes[0] (help) before it matches every call this one would
testdata/routing-never.yaml:15: routes[2].when.languages[0]: no queue speaks "fr" and no menu offers it, so this route never matches
testdata/routing-never.yaml:18: routes[3].when.open: schedule no_hours has no hours, so this route never matches
testdata/routing-never.yaml:22: routes[5]: never matches: routes[4] (everyone) before it matches every call`},
		{"routing-overrides.yaml", `testdata/routing-overrides.yaml:9: schedules[0].overrides[1].date: 12-25 is already overridden by schedules[0].overrides[0]
testdata/routing-overrides.yaml:11: schedules[0].overrides[3].hours: 02:00-06:00 of 2027-01-01 overlaps 20:00-04:00, which runs on from schedules[0].overrides[2] (2026-12-31)
testdata/routing-overrides.yaml:12: schedules[0].overrides[4].hours: a closed day has no hours: remove closed: true or the hours
testdata/routing-overrides.yaml:13: schedules[0].overrides[5]: give the day's hours, or closed: true
testdata/routing-overrides.yaml:14: schedules[0].overrides[6].date: "2026-02-29" is not a day of the calendar
testdata/routing-overrides.yaml:15: schedules[0].overrides[7].date: "25/12" is not a date like 2026-12-24 (that day) or 12-25 (every year)
testdata/routing-overrides.yaml:16: schedules[0].overrides[8].date: required: YYYY-MM-DD or, every year, MM-DD`},
		{"routing-refs.yaml", `testdata/routing-refs.yaml:8: routes[0].when.lines[0]: undefined line "mian" (lines[].name)
testdata/routing-refs.yaml:8: routes[0].when.schedule: undefined schedule "ofice"
testdata/routing-refs.yaml:9: routes[0].to: undefined queue or target "partner_centre"
testdata/routing-refs.yaml:11: routes[1].when.nobody_in: undefined queue "es"
testdata/routing-refs.yaml:11: routes[1].when.longest_wait.queue: undefined queue "bilingual"
testdata/routing-refs.yaml:14: routes[1].overflow[0].to: undefined queue or target "spanish"`},
	}
	checkLoadErrors(t, tests)
}

func TestRoutingGood(t *testing.T) {
	c, err := Load("testdata/routing-good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	open := true
	closed := false
	want := defaults()
	want.Lines = []Line{{Number: "18883737888", Name: "main"}, {Number: "18005550100", Name: "text"}}
	want.Queues = []Queue{
		{Name: "en", Languages: []string{"en"}},
		{Name: "es", Languages: []string{"es"}},
		{Name: "bilingual", Languages: []string{"en", "es"}},
	}
	want.Targets = []Target{{Name: "partner_center", URI: "sip:overflow@partner.example.org"}}
	want.Schedules = []Schedule{
		{
			Name:     "advocates",
			Timezone: "America/Chicago",
			Daily:    []string{"08:00-20:00"},
			Weekly:   map[string][]string{"sat": {"08:00-12:00", "22:00-06:00"}, "sun": {}},
			Overrides: []ScheduleOverride{
				{Date: "2026-12-24", Hours: []string{"08:00-14:00"}, Note: "Christmas Eve"},
				{Date: "12-25", Closed: true, Note: "Christmas"},
			},
		},
		{Name: "nights", Timezone: "Europe/London", Daily: []string{"22:00-06:00"}, Weekly: map[string][]string{}},
	}
	want.Routes = []Route{
		{Name: "text_line", When: When{Lines: []string{"text"}}, To: "partner_center"},
		{Name: "es_unstaffed", When: When{Languages: []string{"es"}, NobodyIn: "es"}, To: "bilingual", Priority: 20},
		{
			Name: "es_help_now",
			When: When{Languages: []string{"es"}, Reasons: []string{"help_now"}, Schedule: "advocates", Open: &open},
			To:   "es", Priority: 100,
			Overflow: []OverflowStep{{After: time.Minute, To: "bilingual"}, {After: 3 * time.Minute, To: "partner_center"}},
		},
		{Name: "swamped", When: When{Reasons: []string{"help_now", "other"}, LongestWait: LongestWait{Queue: "en", Over: 5 * time.Minute}}, To: "partner_center"},
		{Name: "tips_closed", When: When{Reasons: []string{"tip"}, Schedule: "nights", Open: &closed}, Message: "tips_closed", Hangup: true},
		{Name: "default", To: "en", Priority: 10},
	}
	want.Admin = Admin{TokenFile: "/etc/hotline/admin-token"}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load:\n got %+v\nwant %+v", c, want)
	}
	tb, err := routing.Compile(c.RoutingSpec())
	if err != nil {
		t.Fatalf("Compile of a parsed config: %v", err)
	}
	if got, want := strings.Join(tb.Routes(), " "), "text_line es_unstaffed es_help_now swamped tips_closed default"; got != want {
		t.Errorf("Routes() = %s, want %s", got, want)
	}
	// The spec's lines let the Table resolve dialled numbers like LookupLine.
	if name, ok := tb.ResolveLine("+1 800 555 0100"); name != "text" || !ok {
		t.Errorf("ResolveLine = %q, %v; want text", name, ok)
	}
}

// TestDefaultRouting checks that the embedded default routes every kind of call as its
// comments say.
func TestDefaultRouting(t *testing.T) {
	tb, err := routing.Compile(MustDefault().RoutingSpec())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 25, 3, 0, 0, 0, time.UTC)
	tests := []struct {
		lang, reason string
		want         string
		overflow     string
	}{
		{"es", "help_now", "route help_now_es: queue es, priority 100", "1m0s:queue en"},
		{"en", "help_now", "route help_now: queue en, priority 100", ""},
		{"", "help_now", "route help_now: queue en, priority 100", ""},
		{"es", "tip", "route spanish: queue es, priority 10", "2m0s:queue en"},
		{"es", "other", "route spanish: queue es, priority 10", "2m0s:queue en"},
		{"en", "tip", "route default: queue en, priority 10", ""},
		{"en", "other", "route default: queue en, priority 10", ""},
		{"", "", "route default: queue en, priority 10", ""},
	}
	for _, tt := range tests {
		d := tb.Route(routing.Attrs{Line: "main", Language: tt.lang, Reason: tt.reason}, now, routing.State{})
		var steps []string
		for _, s := range d.Overflow {
			steps = append(steps, s.After.String()+":"+s.String())
		}
		if d.String() != tt.want || strings.Join(steps, " ") != tt.overflow {
			t.Errorf("%s/%s: %s, overflow %q; want %s, overflow %q", tt.lang, tt.reason, d, steps, tt.want, tt.overflow)
		}
	}
	// Spanish help_now callers still reach someone while the schedule is forced closed.
	st := routing.State{Overrides: []routing.Override{{Kind: routing.ForceClosed, Schedule: "advocates", Since: now}}}
	if d := tb.Route(routing.Attrs{Line: "main", Language: "es", Reason: "help_now"}, now, st); d.String() != "route help_now: queue en, priority 100" {
		t.Errorf("es/help_now with advocates forced closed: %s", d)
	}
}

func TestQueueOrTarget(t *testing.T) {
	c := MustDefault()
	for name, want := range map[string]bool{"en": true, "es": true, "partner_center": true, "fr": false, "": false, "advocates": false, "default": false} {
		if got := c.QueueOrTarget(name); got != want {
			t.Errorf("QueueOrTarget(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestRoutingNullLists checks that routing lists written as null keep their defaults, as
// other lists do, and that empty lists inside them survive printing and parsing again.
func TestRoutingNullLists(t *testing.T) {
	c, err := Parse("null.yaml", []byte("lines: [{number: \"988\"}]\nqueues:\ntargets: ~\nschedules:\nroutes:\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := defaults()
	if !reflect.DeepEqual(c.Queues, d.Queues) || !reflect.DeepEqual(c.Targets, d.Targets) ||
		!reflect.DeepEqual(c.Schedules, d.Schedules) || !reflect.DeepEqual(c.Routes, d.Routes) {
		t.Errorf("null routing lists did not keep their defaults: %+v", c)
	}
	c, err = Parse("empty.yaml", []byte("lines: [{number: \"988\"}]\nroutes: [{name: default, to: en}]\ntargets: []\nschedules:\n  - {name: advocates, timezone: UTC, daily: [], weekly: {sun: , mon: []}, overrides: []}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Targets) != 0 || c.Targets == nil {
		t.Errorf("targets: [] gave %#v, want an empty list", c.Targets)
	}
	s := c.Schedules[0]
	if s.Daily != nil || s.Overrides != nil || s.Weekly["sun"] == nil || s.Weekly["mon"] == nil {
		t.Errorf("schedule lists not normalised: %#v", s)
	}
}
