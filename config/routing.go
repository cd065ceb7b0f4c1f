package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hotline-project/hotline/routing"
)

// Queue holds callers until an advocate who speaks one of its languages takes the call.
type Queue struct {
	// Name is how routes and menus refer to the queue: [a-z0-9_-]+, unique among queues
	// and targets.
	Name string `yaml:"name"`
	// Languages are the language tags the queue's advocates speak; at least one.
	Languages []string `yaml:"languages"`
	// QueueOverrides are the queue's own ring, wrap-up and announcement settings;
	// queue_defaults applies where it sets none.
	QueueOverrides `yaml:",inline"`
	// Callback is when the queue offers its waiting callers a callback (callback.go);
	// absent: never.
	Callback *QueueCallback `yaml:"callback,omitempty"`
}

// Target is a destination outside this server, such as a backup center.
type Target struct {
	// Name is how routes and menus refer to the target: [a-z0-9_-]+, unique among queues
	// and targets.
	Name string `yaml:"name"`
	// URI is the SIP or SIPS URI calls are sent to.
	URI string `yaml:"uri"`
}

// QueueOrTarget reports whether a queue or a target is called name.
func (c *Config) QueueOrTarget(name string) bool {
	for _, q := range c.Queues {
		if q.Name == name {
			return true
		}
	}
	for _, t := range c.Targets {
		if t.Name == name {
			return true
		}
	}
	return false
}

// Schedule is a set of opening hours in one time zone.
type Schedule struct {
	Name     string `yaml:"name"`     // [a-z0-9_-]+, unique
	Timezone string `yaml:"timezone"` // an IANA zone such as America/Chicago; required
	// Daily are the opening hours of every day not listed in Weekly, as "HH:MM-HH:MM"
	// ranges; a range whose end is not after its start runs past midnight.
	Daily []string `yaml:"daily"`
	// Weekly maps a day (mon, tue, wed, thu, fri, sat, sun) to its opening hours,
	// replacing Daily's; an empty list closes the day.
	Weekly map[string][]string `yaml:"weekly"`
	// Overrides replace the hours of single dates.
	Overrides []ScheduleOverride `yaml:"overrides"`
}

// ScheduleOverride replaces a schedule's hours on one date.
type ScheduleOverride struct {
	// Date is YYYY-MM-DD for that day only, or MM-DD for that day every year.
	Date string `yaml:"date"`
	// Closed closes the whole day; Hours must then be empty.
	Closed bool `yaml:"closed"`
	// Hours are the day's opening hours when not Closed; at least one range.
	Hours []string `yaml:"hours"`
	// Note says why, for people reading the file and the explanation of a decision.
	Note string `yaml:"note"`
}

// Route is one routing rule. Routes are tried in order; the first whose conditions all
// hold decides where the call goes.
type Route struct {
	Name string `yaml:"name"` // [a-z0-9_-]+, unique; used in logs and metrics
	When When   `yaml:"when"` // conditions; all must hold; none at all always matches
	// To is the queue or target the call goes to. Exactly one of To and Message is set.
	To string `yaml:"to"`
	// Priority orders waiting callers in a queue: higher is answered first. Queues only.
	Priority int `yaml:"priority"`
	// Message is a prompt played before hanging up, instead of To. It needs Hangup, so
	// that hanging up on a caller is always written out.
	Message string `yaml:"message"`
	Hangup  bool   `yaml:"hangup"`
	// Overflow moves a call that has waited in To's queue, in order of After.
	Overflow []OverflowStep `yaml:"overflow"`
}

// When holds a route's conditions. An empty list or value is no condition.
type When struct {
	Lines     []string `yaml:"lines"`     // line names (lines[].name)
	Languages []string `yaml:"languages"` // the caller's language
	Reasons   []string `yaml:"reasons"`   // the reason chosen in the menu
	// Schedule, with Open, matches while the schedule is open (true) or closed (false).
	Schedule string `yaml:"schedule"`
	Open     *bool  `yaml:"open"`
	// NobodyIn names a queue: matches while no advocate is logged in to it.
	NobodyIn string `yaml:"nobody_in"`
	// LongestWait matches while a queue's longest-waiting caller has waited over a limit.
	LongestWait LongestWait `yaml:"longest_wait"`
}

// LongestWait is the condition "Queue's longest wait is over Over".
type LongestWait struct {
	Queue string        `yaml:"queue"`
	Over  time.Duration `yaml:"over"`
}

// OverflowStep moves a call still waiting After it was queued.
type OverflowStep struct {
	After time.Duration `yaml:"after"` // since the call was first queued; increasing
	// To is a queue (keeping the route's priority) or a target. A target is called while
	// the caller keeps their place in the queue; if it is busy, does not answer or fails,
	// the caller stays queued and the later steps still apply.
	To string `yaml:"to"`
}

// Admin configures the admin HTTP API.
type Admin struct {
	// TokenFile holds the bearer token the API requires. The environment variable
	// HOTLINE_ADMIN_TOKEN takes precedence. With neither, the API is off.
	TokenFile string `yaml:"token_file"`
}

// setRoutingDefaults sets the routing that default.yaml shows, which a file without
// queues, targets, schedules or routes keeps.
func (c *Config) setRoutingDefaults() {
	open := true
	c.Queues = []Queue{
		{Name: "en", Languages: []string{"en"}},
		{Name: "es", Languages: []string{"es"}},
	}
	c.Targets = []Target{{Name: "partner_center", URI: "sip:overflow@partner.example.org"}}
	c.Schedules = []Schedule{{
		Name:      "advocates",
		Timezone:  "America/Chicago",
		Daily:     []string{"00:00-24:00"},
		Weekly:    map[string][]string{},
		Overrides: []ScheduleOverride{{Date: "12-25", Hours: []string{"00:00-24:00"}, Note: "Christmas Day: open as always"}},
	}}
	c.Routes = []Route{
		{
			Name:     "help_now_es",
			When:     When{Languages: []string{"es"}, Reasons: []string{"help_now"}, Schedule: "advocates", Open: &open},
			To:       "es",
			Priority: 100,
			Overflow: []OverflowStep{{After: 60 * time.Second, To: "en"}},
		},
		{Name: "help_now", When: When{Reasons: []string{"help_now"}}, To: "en", Priority: 100},
		{
			Name:     "spanish",
			When:     When{Languages: []string{"es"}},
			To:       "es",
			Priority: 10,
			Overflow: []OverflowStep{{After: 120 * time.Second, To: "en"}},
		},
		{Name: "default", To: "en", Priority: 10},
	}
}

// fillRoutingDefaults restores the default of a routing list written as null, and makes
// empty lists inside the routing sections nil, so that a file and its re-encoding (which
// writes nil as []) decode alike.
func (c *Config) fillRoutingDefaults() {
	d := &Config{}
	d.setRoutingDefaults()
	if c.Queues == nil {
		c.Queues = d.Queues
	}
	if c.Targets == nil {
		c.Targets = d.Targets
	}
	if c.Schedules == nil {
		c.Schedules = d.Schedules
	}
	if c.Routes == nil {
		c.Routes = d.Routes
	}
	for i := range c.Queues {
		nilIfEmpty(&c.Queues[i].Languages)
	}
	for i := range c.Schedules {
		s := &c.Schedules[i]
		nilIfEmpty(&s.Daily)
		if s.Weekly == nil {
			s.Weekly = map[string][]string{}
		}
		for day, hours := range s.Weekly {
			if hours == nil {
				s.Weekly[day] = []string{}
			}
		}
		nilIfEmpty(&s.Overrides)
		for j := range s.Overrides {
			nilIfEmpty(&s.Overrides[j].Hours)
		}
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		nilIfEmpty(&r.When.Lines)
		nilIfEmpty(&r.When.Languages)
		nilIfEmpty(&r.When.Reasons)
		nilIfEmpty(&r.Overflow)
	}
}

func nilIfEmpty[S ~[]E, E any](s *S) {
	if len(*s) == 0 {
		*s = nil
	}
}

// validateRouting records every problem with the routing sections: routing.Compile finds
// them, and their paths are this file's.
func (p *parser) validateRouting(c *Config) {
	_, err := routing.Compile(c.RoutingSpec())
	var problems routing.Problems
	if errors.As(err, &problems) {
		for _, pr := range problems {
			msg := pr.Msg
			section, _, _ := strings.Cut(pr.Path, ".")
			section, _, _ = strings.Cut(section, "[")
			if n, _ := p.find(section); n == nil {
				msg += fmt.Sprintf(" (in the default %s, which apply because the file has no %s:)", section, section)
			}
			p.errorf(pr.Path, "%s", msg)
		}
	} else if err != nil {
		p.errorf("routes", "%v", err)
	}
}

// RoutingSpec returns the routing part of c for routing.Compile. (Routing cannot import
// config, which imports it, so it defines its own input type and config fills it in.)
// Compile succeeds on the spec of any Config that Parse returned.
func (c *Config) RoutingSpec() routing.Spec {
	spec := routing.Spec{CountryCode: CountryCode}
	for _, l := range c.Lines {
		spec.Lines = append(spec.Lines, routing.LineSpec{Name: l.Name, Number: l.Number})
	}
	for _, l := range c.IVR.Languages {
		spec.Languages = append(spec.Languages, l.Language)
	}
	for _, q := range c.Queues {
		spec.Queues = append(spec.Queues, routing.QueueSpec{Name: q.Name, Languages: q.Languages})
	}
	for _, t := range c.Targets {
		spec.Targets = append(spec.Targets, routing.TargetSpec{Name: t.Name, URI: t.URI})
	}
	for _, s := range c.Schedules {
		ss := routing.ScheduleSpec{Name: s.Name, Timezone: s.Timezone, Daily: s.Daily, Weekly: s.Weekly}
		for _, o := range s.Overrides {
			ss.Overrides = append(ss.Overrides, routing.DateSpec{Date: o.Date, Closed: o.Closed, Hours: o.Hours, Note: o.Note})
		}
		spec.Schedules = append(spec.Schedules, ss)
	}
	for _, r := range c.Routes {
		rs := routing.RouteSpec{
			Name: r.Name,
			When: routing.WhenSpec{
				Lines:            r.When.Lines,
				Languages:        r.When.Languages,
				Reasons:          r.When.Reasons,
				Schedule:         r.When.Schedule,
				Open:             r.When.Open,
				NobodyIn:         r.When.NobodyIn,
				LongestWaitQueue: r.When.LongestWait.Queue,
				LongestWaitOver:  r.When.LongestWait.Over,
			},
			To:       r.To,
			Priority: r.Priority,
			Message:  r.Message,
			Hangup:   r.Hangup,
		}
		for _, o := range r.Overflow {
			rs.Overflow = append(rs.Overflow, routing.StepSpec{After: o.After, To: o.To})
		}
		spec.Routes = append(spec.Routes, rs)
	}
	return spec
}
