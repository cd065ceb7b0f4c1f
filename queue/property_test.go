package queue

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// sim drives an Engine with random events, as a driver would, keeping the driver's view
// of rings and calls from the Actions, and checks the engine's invariants after each step.
type sim struct {
	t    *testing.T
	e    *Engine
	pick func(n int) int // a choice in [0, n)
	now  time.Time
	step int
	log  []string // recent events, for failure messages

	cfg       Config
	nextCall  int
	rings     map[[2]string]bool // live (call, advocate) rings, as the driver sees them
	connected map[string]string  // call -> advocate
	waiting   []string           // calls the driver believes queued
	answered  int                // Connects seen
	ticked    int                // Ticks that timed out a ring
}

var (
	simLangs     = []string{"en", "es", "fr"}
	simCallLangs = []string{"en", "es", "fr", "", "de"}
)

func newSim(t *testing.T, pick func(int) int) *sim {
	s := &sim{t: t, pick: pick, now: time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC),
		rings: map[[2]string]bool{}, connected: map[string]string{}}
	s.cfg = s.randomConfig()
	e, err := New(s.cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.e = e
	return s
}

func (s *sim) langs() []string {
	n := 1 + s.pick(2)
	var l []string
	for range n {
		x := simLangs[s.pick(len(simLangs))]
		if !slices.Contains(l, x) {
			l = append(l, x)
		}
	}
	return l
}

func (s *sim) randomConfig() Config {
	var c Config
	for i := range 4 {
		if s.pick(4) == 0 && i > 0 {
			continue
		}
		c.Queues = append(c.Queues, QueueConfig{
			Name: fmt.Sprintf("q%d", i), Languages: s.langs(), RingAll: s.pick(3) == 0,
			RingTimeout: time.Duration(5+s.pick(20)) * time.Second,
			WrapUp:      time.Duration(s.pick(3)*10) * time.Second, MaxMisses: s.pick(4),
		})
	}
	for i := range 8 {
		if s.pick(5) == 0 {
			continue
		}
		c.Advocates = append(c.Advocates, AdvocateConfig{ID: fmt.Sprintf("a%d", i), Languages: s.langs()})
	}
	c.HandleTimeSamples = s.pick(4)
	return c
}

func (s *sim) fail(format string, args ...any) {
	s.t.Helper()
	start := max(0, len(s.log)-12)
	s.t.Fatalf("step %d: %s\nrecent events:\n  %s", s.step, fmt.Sprintf(format, args...), strings.Join(s.log[start:], "\n  "))
}

// apply checks a batch of actions against the driver's view and updates it.
func (s *sim) apply(acts []Action) {
	s.t.Helper()
	for _, a := range acts {
		switch a := a.(type) {
		case Ring:
			k := [2]string{a.Call, a.Advocate}
			if s.rings[k] {
				s.fail("ring %v already live", k)
			}
			for r := range s.rings {
				if r[1] == a.Advocate {
					s.fail("ring %v while %v is live", k, r)
				}
			}
			for c, adv := range s.connected {
				if adv == a.Advocate {
					s.fail("ring %v while the advocate talks to %s", k, c)
				}
			}
			if !slices.Contains(s.waiting, a.Call) {
				s.fail("ring %v for a call not waiting", k)
			}
			if !a.Deadline.After(s.now) {
				s.fail("ring %v with deadline %v not after now %v", k, a.Deadline, s.now)
			}
			s.rings[k] = true
		case CancelRing:
			k := [2]string{a.Call, a.Advocate}
			if !s.rings[k] {
				s.fail("cancel of ring %v that is not live", k)
			}
			delete(s.rings, k)
		case Connect:
			s.answered++
			k := [2]string{a.Call, a.Advocate}
			if !s.rings[k] {
				s.fail("connect %v without a live ring", k)
			}
			delete(s.rings, k)
			s.connected[a.Call] = a.Advocate
			s.waiting = slices.DeleteFunc(s.waiting, func(c string) bool { return c == a.Call })
		default:
			s.fail("unknown action %T", a)
		}
	}
}

func (s *sim) advocateID() string { return fmt.Sprintf("a%d", s.pick(9)) } // a8 never exists
func (s *sim) queueName() string  { return fmt.Sprintf("q%d", s.pick(5)) } // q4 never exists

func (s *sim) configured(id string) bool {
	return slices.ContainsFunc(s.cfg.Advocates, func(a AdvocateConfig) bool { return a.ID == id })
}

func (s *sim) current(queue string) bool {
	return slices.ContainsFunc(s.cfg.Queues, func(q QueueConfig) bool { return q.Name == queue })
}

// expect checks an event's error against what the driver's view predicts.
func (s *sim) expect(what string, err error, want error) {
	s.t.Helper()
	if (want == nil) != (err == nil) || want != nil && !errors.Is(err, want) {
		s.fail("%s: err = %v, want %v", what, err, want)
	}
}

func (s *sim) liveRing() ([2]string, bool) {
	if len(s.rings) == 0 {
		return [2]string{}, false
	}
	keys := make([][2]string, 0, len(s.rings))
	for k := range s.rings {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int {
		if a[0] != b[0] {
			return cmpString(a[0], b[0])
		}
		return cmpString(a[1], b[1])
	})
	return keys[s.pick(len(keys))], true
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *sim) connectedCall() (string, bool) {
	if len(s.connected) == 0 {
		return "", false
	}
	keys := make([]string, 0, len(s.connected))
	for k := range s.connected {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys[s.pick(len(keys))], true
}

// do runs one random event.
func (s *sim) do() {
	s.step++
	s.now = s.now.Add(time.Duration(s.pick(4000)) * time.Millisecond)
	ticked := false
	var acts []Action
	var err error
	event := s.pick(17)
	switch event {
	case 0, 1:
		if len(s.waiting) >= 40 {
			return
		}
		s.nextCall++
		c := Caller{ID: fmt.Sprintf("c%d", s.nextCall), Queue: s.queueName(), Language: simCallLangs[s.pick(len(simCallLangs))], Priority: s.pick(3)}
		s.log = append(s.log, fmt.Sprintf("enqueue %+v", c))
		acts, err = s.e.Enqueue(c, s.now)
		if s.current(c.Queue) {
			s.expect("enqueue", err, nil)
			s.waiting = append(s.waiting, c.ID)
		} else {
			s.expect("enqueue", err, ErrUnknownQueue)
		}
	case 2:
		if len(s.waiting) == 0 {
			return
		}
		id := s.waiting[s.pick(len(s.waiting))]
		s.log = append(s.log, "abandon "+id)
		if s.pick(2) == 0 {
			acts, err = s.e.Abandon(id, s.now)
		} else {
			acts, err = s.e.CallEnded(id, s.now)
		}
		s.expect("abandon", err, nil)
		s.waiting = slices.DeleteFunc(s.waiting, func(c string) bool { return c == id })
		s.apply(acts)
		for k := range s.rings {
			if k[0] == id {
				s.fail("ring %v left after abandon", k)
			}
		}
		acts = nil
	case 3, 4, 5:
		k, ok := s.liveRing()
		if !ok {
			return
		}
		out := Answered // half the time; otherwise a miss of any kind
		if s.pick(2) == 0 {
			out = Outcome(2 + s.pick(4))
		}
		s.log = append(s.log, fmt.Sprintf("result %v %v", k, out))
		acts, err = s.e.RingResult(k[0], k[1], out, s.now)
		s.expect("ring result", err, nil)
		if out != Answered {
			delete(s.rings, k)
		}
	case 6:
		// A stale or bogus result changes nothing.
		call := fmt.Sprintf("c%d", s.pick(s.nextCall+2))
		adv := s.advocateID()
		if s.rings[[2]string{call, adv}] {
			return
		}
		before := fmt.Sprintf("%+v", s.e.Snapshot(s.now))
		s.log = append(s.log, fmt.Sprintf("stale result %s %s", call, adv))
		acts, err = s.e.RingResult(call, adv, Outcome(s.pick(7)), s.now)
		if err == nil {
			s.fail("stale result accepted")
		}
		if after := fmt.Sprintf("%+v", s.e.Snapshot(s.now)); after != before {
			s.fail("stale result changed the state:\n%s\n%s", before, after)
		}
	case 7:
		id, ok := s.connectedCall()
		if !ok {
			return
		}
		s.log = append(s.log, "hang up "+id)
		acts, err = s.e.CallEnded(id, s.now)
		s.expect("call ended", err, nil)
		delete(s.connected, id)
	case 8, 9:
		s.now = s.now.Add(time.Duration(s.pick(25)) * time.Second)
		if d, ok := s.e.NextDeadline(); ok && s.pick(2) == 0 && d.After(s.now) {
			s.now = d
		}
		s.log = append(s.log, "tick "+s.now.Format(time.TimeOnly))
		acts = s.e.Tick(s.now)
		ticked = true
		if slices.ContainsFunc(acts, func(a Action) bool { _, ok := a.(CancelRing); return ok }) {
			s.ticked++
		}
	case 10:
		id := s.advocateID()
		on := s.pick(3) != 0
		s.log = append(s.log, fmt.Sprintf("online %s %v", id, on))
		if on {
			acts, err = s.e.AdvocateOnline(id, s.now)
		} else {
			acts, err = s.e.AdvocateOffline(id, s.now)
		}
		s.expectAdvocate(id, err, nil)
	case 11:
		id := s.advocateID()
		switch s.pick(5) {
		case 0:
			s.log = append(s.log, "pause "+id)
			acts, err = s.e.Pause(id, "break", s.now)
			s.expectAdvocate(id, err, nil)
		case 1:
			s.log = append(s.log, "logout "+id)
			acts, err = s.e.Logout(id, s.now)
			s.expectAdvocate(id, err, nil)
		default:
			s.log = append(s.log, "available "+id)
			acts, err = s.e.SetAvailable(id, s.now)
			if err != nil && !errors.Is(err, ErrNotRegistered) {
				s.expectAdvocate(id, err, nil)
			}
		}
	case 12:
		if len(s.waiting) == 0 {
			return
		}
		id := s.waiting[s.pick(len(s.waiting))]
		to := s.queueName()
		s.log = append(s.log, "move "+id+" "+to)
		acts, err = s.e.Move(id, to, s.now)
		if s.current(to) {
			s.expect("move", err, nil)
		} else {
			s.expect("move", err, ErrUnknownQueue)
		}
	case 13:
		if s.pick(3) != 0 {
			return
		}
		cfg := s.randomConfig()
		s.log = append(s.log, fmt.Sprintf("reconfigure %+v", cfg))
		acts, err = s.e.Reconfigure(cfg, s.now)
		s.expect("reconfigure", err, nil)
		s.cfg = cfg
	case 14:
		// Another node's claim takes an advocate, or ends (cluster.go).
		id := s.advocateID()
		busy := s.pick(3) == 0
		s.log = append(s.log, fmt.Sprintf("elsewhere %s %v", id, busy))
		acts, err = s.e.Elsewhere(id, busy, s.now)
		s.expectAdvocate(id, err, nil)
	case 15:
		// A ring the driver could not claim.
		k, ok := s.liveRing()
		if !ok {
			return
		}
		s.log = append(s.log, fmt.Sprintf("unrung %v", k))
		acts, err = s.e.Unrung(k[0], k[1], s.now)
		s.expect("unrung", err, nil)
		delete(s.rings, k)
	case 16:
		isolated := s.pick(5) == 0 // mostly back: an isolated engine answers nobody
		s.log = append(s.log, fmt.Sprintf("isolate %v", isolated))
		acts = s.e.Isolate(isolated, s.now)
		if isolated && slices.ContainsFunc(acts, func(a Action) bool { _, ok := a.(Ring); return ok }) {
			s.fail("an isolated engine rang someone")
		}
	}
	if s.e.Isolated() && slices.ContainsFunc(acts, func(a Action) bool { _, ok := a.(Ring); return ok }) {
		s.fail("an isolated engine rang someone")
	}
	s.apply(acts)
	s.check(ticked)
}

func (s *sim) expectAdvocate(id string, err, want error) {
	s.t.Helper()
	if !s.configured(id) {
		want = ErrUnknownAdvocate
	}
	s.expect("advocate "+id, err, want)
}

// check verifies the engine's invariants and that it agrees with the driver's view.
func (s *sim) check(ticked bool) {
	s.t.Helper()
	e := s.e
	available := 0
	engineRings := map[[2]string]bool{}
	for i, a := range e.advList {
		if e.advs[a.ID] != a {
			s.fail("advocate %s listed but not indexed", a.ID)
		}
		if i > 0 && e.advList[i-1].order >= a.order {
			s.fail("advocate order not increasing at %s", a.ID)
		}
		if a.state == Available {
			available++
		}
		var want State
		switch {
		case a.ring != nil:
			want = Ringing
		case a.call != nil, a.elsewhere && a.registered && a.loggedIn:
			want = OnCall
		case !a.wrapEnd.IsZero():
			want = WrapUp
		case !a.registered || !a.loggedIn:
			want = Offline
		case a.paused:
			want = Paused
		default:
			want = Available
		}
		if a.state != want {
			s.fail("advocate %s is %v, flags say %v", a.ID, a.state, want)
		}
		if a.ring != nil && (a.call != nil || !a.wrapEnd.IsZero()) || a.call != nil && !a.wrapEnd.IsZero() {
			s.fail("advocate %s does two things at once", a.ID)
		}
		if a.removed && a.call == nil {
			s.fail("removed advocate %s is not on a call", a.ID)
		}
		if r := a.ring; r != nil {
			c := r.call
			if r.adv != a || !slices.Contains(c.rings, r) || e.calls[c.ID] != c || c.adv != nil {
				s.fail("advocate %s rings for %s, which does not ring them back or is not waiting", a.ID, c.ID)
			}
			if !a.registered || !a.loggedIn || a.paused || a.removed {
				s.fail("advocate %s rings though out of service", a.ID)
			}
			if a.elsewhere {
				s.fail("advocate %s rings here though taken on another node", a.ID)
			}
			if !eligible(a, e.queues[c.Queue], c) {
				s.fail("advocate %s rings for %s in %s but may not take it", a.ID, c.ID, c.Queue)
			}
			if ticked && !r.deadline.After(s.now) {
				s.fail("ring %s>%s past its deadline after Tick", c.ID, a.ID)
			}
			engineRings[[2]string{c.ID, a.ID}] = true
		}
		if c := a.call; c != nil && (c.adv != a || e.calls[c.ID] != c) {
			s.fail("advocate %s on call %s, which is not theirs", a.ID, c.ID)
		}
		if ticked && !a.wrapEnd.IsZero() && !a.wrapEnd.After(s.now) {
			s.fail("advocate %s wrap-up past its end after Tick", a.ID)
		}
	}
	if len(e.advs) != len(e.advList) {
		s.fail("%d advocates indexed, %d listed", len(e.advs), len(e.advList))
	}
	if available != e.available {
		s.fail("available count %d, actual %d", e.available, available)
	}
	if !maps2Equal(engineRings, s.rings) {
		s.fail("engine rings %v, driver rings %v", engineRings, s.rings)
	}

	perQueue := map[string]int{}
	for i, c := range e.waiting {
		if i > 0 && !before(e.waiting[i-1], c) {
			s.fail("waiting order broken at %s", c.ID)
		}
		if e.calls[c.ID] != c || c.adv != nil {
			s.fail("waiting call %s is not indexed or is connected", c.ID)
		}
		q := e.queues[c.Queue]
		if q == nil {
			s.fail("call %s waits in missing queue %s", c.ID, c.Queue)
		}
		perQueue[c.Queue]++
		if !q.RingAll && len(c.rings) > 1 {
			s.fail("call %s in %s rings %d advocates", c.ID, c.Queue, len(c.rings))
		}
		for _, r := range c.rings {
			if r.adv.ring != r || r.call != c {
				s.fail("call %s has a ring its advocate %s does not", c.ID, r.adv.ID)
			}
		}
		for _, a := range e.advList {
			if a.state != Available || !eligible(a, q, c) || e.isolated {
				continue
			}
			switch {
			case len(c.rings) == 0:
				s.fail("call %s rings nobody while %s is available for it", c.ID, a.ID)
			case q.RingAll && !slices.Contains(c.missed, a):
				s.fail("ring-all call %s does not ring available %s", c.ID, a.ID)
			}
		}
	}
	if !slices.Equal(sortedCopy(s.waiting), sortedIDs(e.waiting)) {
		s.fail("engine waiting %v, driver waiting %v", sortedIDs(e.waiting), sortedCopy(s.waiting))
	}
	connected := 0
	for id, c := range e.calls {
		if c.adv == nil {
			continue
		}
		connected++
		if c.adv.call != c || c.adv.state != OnCall || slices.Contains(e.waiting, c) {
			s.fail("connected call %s inconsistent", id)
		}
		if s.connected[id] != c.adv.ID {
			s.fail("engine connects %s to %s, driver to %q", id, c.adv.ID, s.connected[id])
		}
	}
	if connected != len(s.connected) || connected+len(e.waiting) != len(e.calls) {
		s.fail("%d connected (driver %d), %d waiting, %d calls", connected, len(s.connected), len(e.waiting), len(e.calls))
	}
	for name, q := range e.queues {
		if q.Name != name || q.waiting != perQueue[name] {
			s.fail("queue %s counts %d waiting, actually %d", name, q.waiting, perQueue[name])
		}
		if q.retired && q.waiting == 0 {
			s.fail("retired queue %s kept with nobody waiting", name)
		}
		if !q.retired && !s.current(name) {
			s.fail("queue %s not configured but not retired", name)
		}
		var sum time.Duration
		for _, d := range q.hist {
			sum += d
		}
		if sum != q.histSum || len(q.hist) > e.samples {
			s.fail("queue %s history: %d samples (max %d), sum %v, want %v", name, len(q.hist), e.samples, q.histSum, sum)
		}
	}
	// Positions in each queue are 1, 2, 3... in waiting order.
	next := map[string]int{}
	for _, c := range e.waiting {
		next[c.Queue]++
		if pos := e.position(c); pos != next[c.Queue] {
			s.fail("position of %s in %s: %d, want %d", c.ID, c.Queue, pos, next[c.Queue])
		}
	}
}

func maps2Equal(a, b map[[2]string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func sortedCopy(s []string) []string { c := slices.Clone(s); slices.Sort(c); return c }

func sortedIDs(cs []*call) []string {
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestRandomEvents(t *testing.T) {
	steps := 20000
	if testing.Short() {
		steps = 2000
	}
	for seed := range uint64(8) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
			s := newSim(t, rng.IntN)
			// Bring most advocates online so that calls flow.
			for _, a := range s.cfg.Advocates {
				acts, err := s.e.AdvocateOnline(a.ID, s.now)
				s.expect("online", err, nil)
				s.apply(acts)
			}
			for range steps {
				s.do()
			}
			// The walk must have reached the interesting states, or it proves little.
			if s.answered < steps/100 || s.ticked < steps/100 {
				t.Fatalf("only %d answers and %d ring timeouts in %d steps", s.answered, s.ticked, steps)
			}
			t.Logf("%d steps: %d answered, %d ring timeouts, %d waiting at the end", steps, s.answered, s.ticked, len(s.waiting))
		})
	}
}

// FuzzEvents drives the engine with events chosen by the fuzzer's bytes and checks the
// same invariants as TestRandomEvents.
func FuzzEvents(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13})
	f.Add([]byte("\x00\x00\x03\x00\x00\x0a\x00\x01\x00\x00\x04\x00\x00\x08\x09\x07\x07"))
	f.Fuzz(func(t *testing.T, script []byte) {
		i := 0
		pick := func(n int) int {
			if i >= len(script) {
				i++
				return 0
			}
			b := script[i]
			i++
			return int(b) % n
		}
		s := newSim(t, pick)
		for i < len(script)+1 {
			s.do()
		}
	})
}
