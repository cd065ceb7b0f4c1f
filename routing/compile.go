package routing

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

var (
	reName     = regexp.MustCompile(`^[a-z0-9_-]+$`)
	reLanguage = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]+)*$`)
)

// Compile checks spec and compiles it into a Table. On failure the error is Problems,
// listing everything wrong, and the Table is nil. Besides malformed values and unknown
// names, it reports routes that can never match (a route whose conditions an earlier
// route's always cover, a language no queue speaks and no menu offers, an open: true on a
// schedule that never opens) and overlapping or contradictory hours and date overrides.
// The last route must have no conditions and must not hang up, so that every call gets a
// decision.
//
// Compile loads the schedules' time zones (time.LoadLocation, with the tz database
// embedded as a fallback); a Table's decisions do no I/O.
func Compile(spec Spec) (*Table, error) {
	c := &compiler{t: &Table{
		byName:      map[string]*route{},
		schedules:   map[string]*schedule{},
		queues:      map[string]*QueueSpec{},
		targets:     map[string]string{},
		lines:       slices.Clone(spec.Lines),
		countryCode: spec.CountryCode,
	}}
	c.queuesAndTargets(spec.Queues, spec.Targets)
	c.schedules(spec.Schedules)
	c.routes(spec)
	if len(c.problems) > 0 {
		return nil, c.problems
	}
	return c.t, nil
}

type compiler struct {
	t        *Table
	problems Problems
}

func (c *compiler) errorf(path, format string, args ...any) {
	c.problems = append(c.problems, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// name checks a name that must be unique in seen (name -> path of the first).
func (c *compiler) name(path, name string, seen map[string]string) bool {
	switch first, dup := seen[name]; {
	case name == "":
		c.errorf(path, "required")
	case !reName.MatchString(name):
		c.errorf(path, "%q may only have lowercase letters, digits, _ and -", name)
	case dup:
		c.errorf(path, "duplicate of %s (%s)", first, name)
	default:
		seen[name] = strings.TrimSuffix(path, ".name")
		return true
	}
	return false
}

func (c *compiler) queuesAndTargets(queues []QueueSpec, targets []TargetSpec) {
	if len(queues) == 0 {
		c.errorf("queues", "at least one queue is required")
	}
	seen := map[string]string{} // queues and targets share names
	for i, q := range queues {
		path := fmt.Sprintf("queues[%d]", i)
		ok := c.name(path+".name", q.Name, seen)
		if len(q.Languages) == 0 {
			c.errorf(path+".languages", "at least one language is required")
		}
		langs := map[string]int{}
		for j, l := range q.Languages {
			lp := fmt.Sprintf("%s.languages[%d]", path, j)
			if k, dup := langs[l]; dup {
				c.errorf(lp, "duplicate of %s.languages[%d] (%s)", path, k, l)
			} else if !reLanguage.MatchString(l) {
				c.errorf(lp, "%q is not a language tag like en, es or fr-CA", l)
			}
			langs[l] = j
		}
		if ok {
			c.t.queues[q.Name] = &QueueSpec{Name: q.Name, Languages: slices.Clone(q.Languages)}
		}
	}
	for i, tg := range targets {
		path := fmt.Sprintf("targets[%d]", i)
		ok := c.name(path+".name", tg.Name, seen)
		lower := strings.ToLower(tg.URI)
		switch {
		case tg.URI == "":
			c.errorf(path+".uri", "required")
		case !strings.HasPrefix(lower, "sip:") && !strings.HasPrefix(lower, "sips:"),
			strings.ContainsAny(tg.URI, " \t\r\n\x00<>\""), len(tg.URI) <= len("sips:"):
			c.errorf(path+".uri", "%q is not a SIP URI like sip:overflow@partner.example.org", tg.URI)
		}
		if ok {
			c.t.targets[tg.Name] = tg.URI
		}
	}
}

func (c *compiler) schedules(specs []ScheduleSpec) {
	seen := map[string]string{}
	for i := range specs {
		sp := &specs[i]
		path := fmt.Sprintf("schedules[%d]", i)
		ok := c.name(path+".name", sp.Name, seen)
		s := &schedule{name: sp.Name, once: map[Date]*dateHours{}, yearly: map[Date]*dateHours{}}
		switch {
		case sp.Timezone == "":
			c.errorf(path+".timezone", "required: an IANA time zone such as America/Chicago")
		case sp.Timezone == "Local":
			c.errorf(path+".timezone", "Local depends on the server; give an IANA time zone such as America/Chicago")
		default:
			loc, err := time.LoadLocation(sp.Timezone)
			if err != nil {
				c.errorf(path+".timezone", "unknown time zone %q; give an IANA time zone such as America/Chicago", sp.Timezone)
			}
			s.loc = loc
		}
		daily := c.hoursList(path+".daily", sp.Daily, true)
		for d := range s.week {
			s.week[d], s.weekOf[d] = daily, "daily"
		}
		for _, day := range sortedKeys(sp.Weekly) {
			wd, known := weekdays[day]
			if !known {
				c.errorf(path+".weekly."+day, "%q is not a day: mon, tue, wed, thu, fri, sat or sun", day)
				continue
			}
			s.week[wd], s.weekOf[wd] = c.hoursList(path+".weekly."+day, sp.Weekly[day], false), "weekly."+day
		}
		c.checkWeekSpill(path, s)
		firstOf := map[Date]int{}
		for j, o := range sp.Overrides {
			op := fmt.Sprintf("%s.overrides[%d]", path, j)
			d, err := ParseDate(o.Date)
			switch {
			case o.Date == "":
				c.errorf(op+".date", "required: YYYY-MM-DD or, every year, MM-DD")
			case err != nil:
				c.errorf(op+".date", "%v", err)
			}
			dh := &dateHours{date: d, note: o.Note}
			switch {
			case o.Closed && len(o.Hours) > 0:
				c.errorf(op+".hours", "a closed day has no hours: remove closed: true or the hours")
			case !o.Closed && len(o.Hours) == 0:
				c.errorf(op, "give the day's hours, or closed: true")
			default:
				dh.hours = c.hoursList(op+".hours", o.Hours, false)
			}
			if err != nil {
				continue
			}
			if k, dup := firstOf[d]; dup {
				c.errorf(op+".date", "%s is already overridden by %s.overrides[%d]", d, path, k)
				continue
			}
			firstOf[d] = j
			if d.Year == 0 {
				s.yearly[d] = dh
			} else {
				s.once[d] = dh
			}
		}
		c.checkOverrideSpill(path, sp.Overrides, firstOf)
		if ok {
			c.t.schedules[sp.Name] = s
		}
	}
}

// hoursList parses a list of ranges that start on one day (every day, with daily),
// reporting bad and overlapping ones; it returns the good ones.
func (c *compiler) hoursList(path string, hours []string, daily bool) []Range {
	var out []Range
	var paths []string
	for i, h := range hours {
		p := fmt.Sprintf("%s[%d]", path, i)
		r, err := ParseRange(h)
		if err != nil {
			c.errorf(p, "%v", err)
			continue
		}
		if j := slices.IndexFunc(out, func(o Range) bool { return r.overlaps(o, daily) }); j >= 0 {
			c.errorf(p, "%s overlaps %s (%s)", r, paths[j], out[j])
			continue
		}
		out = append(out, r)
		paths = append(paths, p)
	}
	return out
}

// checkWeekSpill reports a day's overnight range that runs into hours of the next day, when
// either day has weekly hours (hoursList checks daily against itself).
func (c *compiler) checkWeekSpill(path string, s *schedule) {
	for d := range s.week {
		next := (d + 1) % 7
		if s.weekOf[d] == "daily" && s.weekOf[next] == "daily" {
			continue
		}
		at := s.weekOf[next]
		if at == "daily" {
			at = s.weekOf[d]
		}
		for _, r := range s.week[d] {
			if !r.Overnight() {
				continue
			}
			for _, r2 := range s.week[next] {
				if r2.Start < r.End {
					c.errorf(path+"."+at, "%s on %s overlaps %s, which runs on from %s (%s)",
						r2, dayName(time.Weekday(next)), r, dayName(time.Weekday(d)), s.weekOf[d])
				}
			}
		}
	}
}

func dayName(d time.Weekday) string {
	return strings.ToLower(d.String()[:3])
}

// checkOverrideSpill reports a one-off date override whose overnight hours run into the
// next day's one-off override hours: two overrides that claim the same hours.
func (c *compiler) checkOverrideSpill(path string, overrides []DateSpec, firstOf map[Date]int) {
	for i, o := range overrides {
		d, err := ParseDate(o.Date)
		if err != nil || firstOf[d] != i {
			continue
		}
		next := civil{d.Year, d.Month, d.Day}.add(1)
		nd := Date{next.year, next.month, next.day}
		if d.Year == 0 {
			nd.Year = 0
		}
		j, ok := firstOf[nd]
		if !ok {
			continue
		}
		for _, h := range overrides[i].Hours {
			r, err := ParseRange(h)
			if err != nil || !r.Overnight() {
				continue
			}
			for _, h2 := range overrides[j].Hours {
				if r2, err := ParseRange(h2); err == nil && r2.Start < r.End {
					c.errorf(fmt.Sprintf("%s.overrides[%d].hours", path, j),
						"%s of %s overlaps %s, which runs on from %s.overrides[%d] (%s)", r2, nd, r, path, i, d)
				}
			}
		}
	}
}

func (c *compiler) routes(spec Spec) {
	routes := spec.Routes
	if len(routes) == 0 {
		c.errorf("routes", "at least one route is required, and the last must have no conditions (the catch-all)")
		return
	}
	lines := map[string]bool{}
	for _, l := range spec.Lines {
		lines[l.Name] = true
	}
	languages := map[string]bool{}
	for _, l := range spec.Languages {
		languages[l] = true
	}
	for _, q := range spec.Queues {
		for _, l := range q.Languages {
			languages[l] = true
		}
	}
	seen := map[string]string{}
	for i := range routes {
		rs := &routes[i]
		path := fmt.Sprintf("routes[%d]", i)
		ok := c.name(path+".name", rs.Name, seen)
		r := &route{name: rs.Name, index: i, when: rs.When, priority: rs.Priority, message: rs.Message}
		if rs.When.Open != nil {
			open := *rs.When.Open
			r.when.Open = &open
		}
		before := len(c.problems)
		r.when.Lines = c.names(path+".when.lines", rs.When.Lines, "line", lines)
		r.when.Languages = c.names(path+".when.languages", rs.When.Languages, "language", languages)
		r.when.Reasons = c.names(path+".when.reasons", rs.When.Reasons, "reason", nil)
		c.whenState(path+".when", &r.when)
		r.badWhen = len(c.problems) > before
		c.action(path, rs, r)
		if ok {
			c.t.byName[r.name] = r
		}
		c.t.routes = append(c.t.routes, r)
	}
	last := len(routes) - 1
	lp := fmt.Sprintf("routes[%d]", last)
	switch {
	case !isEmptyWhen(routes[last].When):
		c.errorf(lp+".when", "the last route must have no conditions, so that every call gets a decision: add a catch-all route at the end")
	case routes[last].Message != "" || routes[last].Hangup:
		c.errorf(lp+".message", "the last route catches every other call; it must send the call to a queue or target, not hang up")
	}
	c.checkShadowed()
}

// names checks a condition's list of names; known, if not nil, holds the allowed ones. It
// returns the list, nil if empty.
func (c *compiler) names(path string, list []string, what string, known map[string]bool) []string {
	seen := map[string]int{}
	for i, n := range list {
		p := fmt.Sprintf("%s[%d]", path, i)
		j, dup := seen[n]
		switch {
		case dup:
			c.errorf(p, "duplicate of %s[%d] (%s)", path, j, n)
		case what == "language" && !reLanguage.MatchString(n):
			c.errorf(p, "%q is not a language tag like en, es or fr-CA", n)
		case what != "language" && !reName.MatchString(n):
			c.errorf(p, "%q may only have lowercase letters, digits, _ and -", n)
		case known != nil && !known[n] && what == "line":
			c.errorf(p, "undefined line %q (lines[].name)", n)
		case known != nil && !known[n]:
			c.errorf(p, "no queue speaks %q and no menu offers it, so this route never matches", n)
		}
		seen[n] = i
	}
	if len(list) == 0 {
		return nil
	}
	return slices.Clone(list) // a Table shares nothing with the Spec
}

// whenState checks the conditions on schedules and queues.
func (c *compiler) whenState(path string, w *WhenSpec) {
	switch {
	case w.Schedule == "" && w.Open != nil:
		c.errorf(path+".open", "needs a schedule")
	case w.Schedule == "":
	case w.Open == nil:
		c.errorf(path+".open", "required with a schedule: true (while open) or false (while closed)")
	default:
		s := c.t.schedules[w.Schedule]
		switch {
		case s == nil:
			c.errorf(path+".schedule", "undefined schedule %q", w.Schedule)
		case *w.Open && s.neverOpen():
			c.errorf(path+".open", "schedule %s has no hours, so this route never matches", w.Schedule)
		}
	}
	if w.NobodyIn != "" && c.t.queues[w.NobodyIn] == nil {
		c.errorf(path+".nobody_in", "undefined queue %q", w.NobodyIn)
	}
	switch lw := path + ".longest_wait"; {
	case w.LongestWaitQueue == "" && w.LongestWaitOver != 0:
		c.errorf(lw+".queue", "required with over")
	case w.LongestWaitQueue == "":
	case c.t.queues[w.LongestWaitQueue] == nil:
		c.errorf(lw+".queue", "undefined queue %q", w.LongestWaitQueue)
	case w.LongestWaitOver <= 0:
		c.errorf(lw+".over", "must be more than 0s, got %v", w.LongestWaitOver)
	}
}

// action checks where a route sends the call, and its overflow.
func (c *compiler) action(path string, rs *RouteSpec, r *route) {
	switch {
	case rs.Message != "" && rs.To != "":
		c.errorf(path+".message", "a route either sends the call somewhere (to) or plays a message and hangs up, not both")
		return
	case rs.Message != "":
		if !reName.MatchString(rs.Message) {
			c.errorf(path+".message", "%q is not a prompt name (lowercase letters, digits, _ and -)", rs.Message)
		}
		if !rs.Hangup {
			c.errorf(path+".hangup", "a route with a message hangs up on the caller; write hangup: true to say so")
		}
		if rs.Priority != 0 {
			c.errorf(path+".priority", "only a route to a queue has a priority")
		}
		if len(rs.Overflow) > 0 {
			c.errorf(path+".overflow", "only a route to a queue overflows")
		}
		return
	case rs.Hangup:
		c.errorf(path+".hangup", "hangup: true needs a message to play first")
		return
	case rs.To == "":
		c.errorf(path+".to", "required: a queue or target (or a message, with hangup: true)")
		return
	}
	r.step = c.dest(path+".to", rs.To)
	if r.step.Target != "" {
		if rs.Priority != 0 {
			c.errorf(path+".priority", "only a route to a queue has a priority")
		}
		if len(rs.Overflow) > 0 {
			c.errorf(path+".overflow", "only a route to a queue overflows; a call sent to a target leaves this server")
		}
		return
	}
	if rs.Priority < 0 {
		c.errorf(path+".priority", "must be 0 or more, got %d", rs.Priority)
	}
	// A target step keeps the caller queued until the target answers, so steps after it
	// still apply when it does not: the queue they are in is the last queue step's.
	prev, queue := r.step, r.step.Queue
	for i, o := range rs.Overflow {
		op := fmt.Sprintf("%s.overflow[%d]", path, i)
		switch {
		case o.After <= prev.After:
			if i == 0 {
				c.errorf(op+".after", "must be more than 0s, got %v", o.After)
			} else {
				c.errorf(op+".after", "must be later than %s (%v), got %v", prevPath(path, i), prev.After, o.After)
			}
		}
		s := c.dest(op+".to", o.To)
		s.After = o.After
		switch {
		case s.Queue != "" && s.Queue == queue:
			c.errorf(op+".to", "the call is already in queue %s", s.Queue)
		case s.Target != "" && s.Target == prev.Target:
			c.errorf(op+".to", "the call is already calling target %s", s.Target)
		}
		r.overflow = append(r.overflow, s)
		prev = s
		if s.Queue != "" {
			queue = s.Queue
		}
	}
}

func prevPath(path string, i int) string {
	if i == 0 {
		return path + ".to"
	}
	return fmt.Sprintf("%s.overflow[%d]", path, i-1)
}

// dest resolves a queue or target name.
func (c *compiler) dest(path, name string) Step {
	switch uri, isTarget := c.t.targets[name]; {
	case name == "":
		c.errorf(path, "required: a queue or target")
	case c.t.queues[name] != nil:
		return Step{Queue: name}
	case isTarget:
		return Step{Target: name, URI: uri}
	default:
		c.errorf(path, "undefined queue or target %q", name)
	}
	return Step{}
}

func isEmptyWhen(w WhenSpec) bool {
	return len(w.Lines) == 0 && len(w.Languages) == 0 && len(w.Reasons) == 0 && w.Schedule == "" &&
		w.Open == nil && w.NobodyIn == "" && w.LongestWaitQueue == "" && w.LongestWaitOver == 0
}

// checkShadowed reports each route that never matches because an earlier route matches
// whenever it would.
func (c *compiler) checkShadowed() {
	for i, r := range c.t.routes {
		for _, e := range c.t.routes[:i] {
			if !e.badWhen && !r.badWhen && covers(&e.when, &r.when) {
				what := "matches every call"
				if !isEmptyWhen(e.when) {
					what = "matches every call this one would"
				}
				c.errorf(fmt.Sprintf("routes[%d]", i), "never matches: routes[%d] (%s) before it %s", e.index, e.name, what)
				break
			}
		}
	}
}

// covers reports whether a call that meets w always meets e as well.
func covers(e, w *WhenSpec) bool {
	subset := func(e, w []string) bool {
		if len(e) == 0 {
			return true
		}
		if len(w) == 0 {
			return false
		}
		for _, x := range w {
			if !slices.Contains(e, x) {
				return false
			}
		}
		return true
	}
	return subset(e.Lines, w.Lines) && subset(e.Languages, w.Languages) && subset(e.Reasons, w.Reasons) &&
		(e.Schedule == "" || e.Schedule == w.Schedule && e.Open != nil && w.Open != nil && *e.Open == *w.Open) &&
		(e.NobodyIn == "" || e.NobodyIn == w.NobodyIn) &&
		(e.LongestWaitQueue == "" || e.LongestWaitQueue == w.LongestWaitQueue && e.LongestWaitOver <= w.LongestWaitOver)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
