package routing

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Table is a compiled routing configuration. It is immutable, so one Table may serve any
// number of calls at once; a reload compiles a new Table and swaps it in.
type Table struct {
	routes      []*route
	byName      map[string]*route
	schedules   map[string]*schedule
	queues      map[string]*QueueSpec
	targets     map[string]string // name -> URI
	lines       []LineSpec
	countryCode string
}

// route is a compiled RouteSpec.
type route struct {
	name     string
	index    int
	when     WhenSpec
	step     Step // the first destination; zero for a message
	priority int
	message  string
	overflow []Step
	badWhen  bool // Compile found a problem in when
}

// Attrs are what routing knows of a call.
type Attrs struct {
	Line     string // the line's name (lines[].name)
	Language string // the caller's language, such as "es"
	Reason   string // the reason chosen in the menu, such as "help_now"
	// Demoted, if set (DemotedNoRTP, DemotedSource), routes the call without its reason:
	// the silent-call policy (silent.go, Silent.Demotion).
	Demoted string
}

// State is what routing may depend on besides the call and the time: the queues as they
// are now and the emergency overrides in force. The caller takes the snapshot; routing
// has no clock or globals of its own.
type State struct {
	// Queues holds the state of queues by name. A queue missing here has an unknown
	// state, and conditions on it do not hold.
	Queues map[string]QueueState
	// Overrides are the emergency overrides set (Overrides.Snapshot).
	Overrides []Override
}

// QueueState is one queue's state.
type QueueState struct {
	LoggedIn    int           // advocates logged in
	LongestWait time.Duration // how long the caller waiting longest has waited; 0 if none
}

// Step is one destination of a call: a queue or a target.
type Step struct {
	After  time.Duration // since the call was first queued; 0 for the route's own destination
	Queue  string        // a queue's name, or
	Target string        // a target's name,
	URI    string        // and the target's SIP URI
}

// String describes s, such as "queue es" or "target partner (sip:x@example.org)".
func (s Step) String() string {
	if s.Target != "" {
		return fmt.Sprintf("target %s (%s)", s.Target, s.URI)
	}
	return "queue " + s.Queue
}

// Decision is where a call goes.
type Decision struct {
	// Route is the name of the route that decided, for logs and metrics.
	Route string
	// Step is the destination (queue or target). It is zero when the route plays Message
	// and hangs up.
	Step
	Message  string // a prompt name, with Hangup
	Hangup   bool
	Priority int // in the queue
	// Overflow are the later destinations of a queued call, in order of After.
	Overflow []Step
	// Override describes the emergency override that forced Route, or is "".
	Override string
	// Explain says why, one line per route tried and condition checked.
	Explain []string
	// Demoted is why the call was routed without its reason (Attrs.Demoted), or "".
	Demoted string
}

// String summarises d, such as "route help_now_es: queue es, priority 100".
func (d Decision) String() string {
	switch d.Kind() {
	case "message":
		return fmt.Sprintf("route %s: play %s and hang up", d.Route, d.Message)
	case "target":
		return fmt.Sprintf("route %s: %s", d.Route, d.Step)
	}
	return fmt.Sprintf("route %s: %s, priority %d", d.Route, d.Step, d.Priority)
}

// Kind is "queue", "target" or "message": the kind of the first destination.
func (d Decision) Kind() string {
	switch {
	case d.Message != "":
		return "message"
	case d.Target != "":
		return "target"
	default:
		return "queue"
	}
}

// At returns where a call queued by d belongs after it has waited for waited: the last
// overflow step due by then, or d's own destination.
func (d Decision) At(waited time.Duration) Step {
	s := d.Step
	for _, o := range d.Overflow {
		if o.After > waited {
			break
		}
		s = o
	}
	return s
}

// Next returns the first overflow step due after waited, to set a timer for; ok is false
// when none is left.
func (d Decision) Next(waited time.Duration) (s Step, ok bool) {
	for _, o := range d.Overflow {
		if o.After > waited {
			return o, true
		}
	}
	return Step{}, false
}

// Route decides where a call with attributes a goes at time now, given the state st. Every
// call gets a decision: Compile guarantees a last route that always matches.
func (t *Table) Route(a Attrs, now time.Time, st State) Decision {
	if a.Demoted != "" {
		return t.routeDemoted(a, now, st)
	}
	var why []string
	if o, ok := activeRouteOverride(st.Overrides, now); ok {
		if r := t.byName[o.Route]; r != nil {
			d := r.decide()
			d.Override = o.String()
			d.Explain = append(why, "emergency override: "+o.String()+"; routes are not tried")
			return d
		}
		why = append(why, fmt.Sprintf("emergency override %s ignored: no route %q in this configuration", o, o.Route))
	}
	for _, r := range t.routes {
		ok, conds := t.match(r, a, now, st)
		if !ok {
			why = append(why, fmt.Sprintf("route %s: skipped: %s", r.name, conds[len(conds)-1]))
			continue
		}
		if len(conds) == 0 {
			conds = []string{"no conditions"}
		}
		why = append(why, fmt.Sprintf("route %s: matched: %s", r.name, strings.Join(conds, "; ")))
		d := r.decide()
		d.Explain = why
		return d
	}
	// Unreachable with a Table from Compile; never leave a caller with nothing.
	r := t.routes[len(t.routes)-1]
	d := r.decide()
	d.Explain = append(why, fmt.Sprintf("route %s: used as the last route", r.name))
	return d
}

func (r *route) decide() Decision {
	return Decision{
		Route:    r.name,
		Step:     r.step,
		Message:  r.message,
		Hangup:   r.message != "",
		Priority: r.priority,
		Overflow: slices.Clone(r.overflow),
	}
}

// match checks r's conditions in order. It returns whether all hold and a description of
// each one checked; when one fails, it is the last.
func (t *Table) match(r *route, a Attrs, now time.Time, st State) (bool, []string) {
	var conds []string
	w := &r.when
	list := func(what string, want []string, got string) bool {
		if len(want) == 0 {
			return true
		}
		if slices.Contains(want, got) {
			conds = append(conds, fmt.Sprintf("%s is %s", what, quoteEmpty(got)))
			return true
		}
		conds = append(conds, fmt.Sprintf("%s is %s, not %s", what, quoteEmpty(got), strings.Join(want, " or ")))
		return false
	}
	if !list("line", w.Lines, a.Line) || !list("language", w.Languages, a.Language) || !list("reason", w.Reasons, a.Reason) {
		return false, conds
	}
	if w.Schedule != "" {
		s := t.schedules[w.Schedule]
		var st2 status
		if o, ok := activeClosedOverride(st.Overrides, w.Schedule, now); ok {
			st2 = status{false, "closed by emergency override: " + o.String()}
		} else {
			st2 = s.status(now)
		}
		conds = append(conds, fmt.Sprintf("schedule %s is %s", s.name, st2.why))
		if st2.open != *w.Open {
			conds[len(conds)-1] += fmt.Sprintf(" (route wants open: %v)", *w.Open)
			return false, conds
		}
	}
	if w.NobodyIn != "" {
		q, known := st.Queues[w.NobodyIn]
		switch {
		case !known:
			conds = append(conds, fmt.Sprintf("state of queue %s is unknown (route wants nobody logged in)", w.NobodyIn))
			return false, conds
		case q.LoggedIn > 0:
			conds = append(conds, fmt.Sprintf("%d logged in to queue %s (route wants nobody)", q.LoggedIn, w.NobodyIn))
			return false, conds
		}
		conds = append(conds, fmt.Sprintf("nobody logged in to queue %s", w.NobodyIn))
	}
	if w.LongestWaitQueue != "" {
		q, known := st.Queues[w.LongestWaitQueue]
		switch {
		case !known:
			conds = append(conds, fmt.Sprintf("state of queue %s is unknown (route wants longest wait over %v)", w.LongestWaitQueue, w.LongestWaitOver))
			return false, conds
		case q.LongestWait <= w.LongestWaitOver:
			conds = append(conds, fmt.Sprintf("longest wait in queue %s is %v, not over %v", w.LongestWaitQueue, q.LongestWait, w.LongestWaitOver))
			return false, conds
		}
		conds = append(conds, fmt.Sprintf("longest wait in queue %s is %v, over %v", w.LongestWaitQueue, q.LongestWait, w.LongestWaitOver))
	}
	return true, conds
}

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// ResolveLine returns the name of the line s designates: a line's name, or a number that
// reaches a line (NumberMatches with the Spec's country code).
func (t *Table) ResolveLine(s string) (string, bool) {
	for _, l := range t.lines {
		if l.Name == s {
			return l.Name, true
		}
	}
	for _, l := range t.lines {
		if NumberMatches(l.Number, s, t.countryCode) {
			return l.Name, true
		}
	}
	return "", false
}

// TargetURI returns the SIP URI of the target called name; ok is false if there is none.
func (t *Table) TargetURI(name string) (uri string, ok bool) {
	uri, ok = t.targets[name]
	return uri, ok
}

// HasRoute reports whether t has a route called name.
func (t *Table) HasRoute(name string) bool { return t.byName[name] != nil }

// HasSchedule reports whether t has a schedule called name.
func (t *Table) HasSchedule(name string) bool { return t.schedules[name] != nil }

// Routes returns the routes' names, in order.
func (t *Table) Routes() []string {
	names := make([]string, len(t.routes))
	for i, r := range t.routes {
		names[i] = r.name
	}
	return names
}

// Schedules returns the schedules' names, sorted.
func (t *Table) Schedules() []string { return sortedKeys(t.schedules) }

// ScheduleOpen reports whether the schedule called name is open at now given the emergency
// overrides, with an explanation; ok is false if there is no such schedule.
func (t *Table) ScheduleOpen(name string, now time.Time, overrides []Override) (open bool, why string, ok bool) {
	s := t.schedules[name]
	if s == nil {
		return false, "", false
	}
	if o, forced := activeClosedOverride(overrides, name, now); forced {
		return false, "closed by emergency override: " + o.String(), true
	}
	st := s.status(now)
	return st.open, st.why, true
}

// QueueOpen reports whether calls are being routed to the queue called name at now: some
// route that sends calls there (as its destination or an overflow step) has no schedule
// condition, or wants its schedule open and it is. A queue reached only through routes
// whose schedule is closed, or only while a schedule is closed, reports false: a dashboard
// alerts on "no advocate available" only while the queue is open.
func (t *Table) QueueOpen(name string, now time.Time, overrides []Override) bool {
	for _, r := range t.routes {
		if !routeReaches(r, name) {
			continue
		}
		w := r.when
		if w.Schedule == "" || w.Open == nil {
			return true
		}
		if !*w.Open {
			continue
		}
		if open, _, ok := t.ScheduleOpen(w.Schedule, now, overrides); ok && open {
			return true
		}
	}
	return false
}

func routeReaches(r *route, queue string) bool {
	if r.step.Queue == queue {
		return true
	}
	for _, s := range r.overflow {
		if s.Queue == queue {
			return true
		}
	}
	return false
}
