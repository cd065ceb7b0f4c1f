package routing

import (
	"strings"
	"time"
)

// Spec is the routing configuration as written, which Compile checks and turns into a
// Table. Its layout and field names follow the configuration file's (package config fills
// it in), so that Problem paths name the file's fields. Routing cannot import config:
// config imports routing (for NormalizeNumber and to run Compile's checks while parsing).
type Spec struct {
	// Lines are the configured lines. Compile trusts that names and numbers are valid and
	// unique: config checks them.
	Lines []LineSpec
	// CountryCode is the code a caller may leave out when dialling a line, as in
	// NumberMatches.
	CountryCode string
	// Languages lists languages a caller can have besides those the queues speak (the
	// languages offered in the menu). A route for a language in neither never matches.
	Languages []string
	Queues    []QueueSpec
	Targets   []TargetSpec
	Schedules []ScheduleSpec
	Routes    []RouteSpec
}

// LineSpec is a configured line: lines[].name and lines[].number.
type LineSpec struct {
	Name, Number string
}

// QueueSpec is queues[].
type QueueSpec struct {
	Name      string
	Languages []string
}

// TargetSpec is targets[].
type TargetSpec struct {
	Name, URI string
}

// ScheduleSpec is schedules[]: hours are "HH:MM-HH:MM" (ParseRange), weekly keys mon..sun.
type ScheduleSpec struct {
	Name      string
	Timezone  string
	Daily     []string
	Weekly    map[string][]string
	Overrides []DateSpec
}

// DateSpec is schedules[].overrides[]: Date as ParseDate reads it.
type DateSpec struct {
	Date   string
	Closed bool
	Hours  []string
	Note   string
}

// RouteSpec is routes[].
type RouteSpec struct {
	Name     string
	When     WhenSpec
	To       string
	Priority int
	Message  string
	Hangup   bool
	Overflow []StepSpec
}

// WhenSpec is routes[].when; an empty field is no condition.
type WhenSpec struct {
	Lines, Languages, Reasons []string
	Schedule                  string
	Open                      *bool
	NobodyIn                  string
	LongestWaitQueue          string        // when.longest_wait.queue
	LongestWaitOver           time.Duration // when.longest_wait.over
}

// StepSpec is routes[].overflow[].
type StepSpec struct {
	After time.Duration
	To    string
}

// Problem is one thing wrong with a Spec. Path is the field, in the configuration file's
// terms, such as "routes[2].when.schedule".
type Problem struct {
	Path string
	Msg  string
}

func (p Problem) Error() string { return p.Path + ": " + p.Msg }

// Problems is every problem Compile found, in the order of the Spec.
type Problems []Problem

func (ps Problems) Error() string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.Error()
	}
	return strings.Join(s, "\n")
}

var (
	_ error = Problem{}
	_ error = Problems(nil)
)
