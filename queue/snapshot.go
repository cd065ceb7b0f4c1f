package queue

import (
	"fmt"
	"slices"
	"time"

	"github.com/hotline-project/hotline/routing"
)

// Snapshot is the engine's state at one moment, for metrics and the admin API.
type Snapshot struct {
	Queues    []QueueSnapshot    // by name
	Advocates []AdvocateSnapshot // in configuration order
}

// QueueSnapshot is one queue's state.
type QueueSnapshot struct {
	Name      string
	Languages []string
	RingAll   bool
	Retired   bool // removed by a reload; kept until its callers leave
	Waiting   int  // callers waiting, including those being rung
	Ringing   int  // waiting callers with at least one advocate being rung
	// OldestWait is how long the caller waiting longest has waited; 0 if nobody waits.
	OldestWait time.Duration
	// Staffed counts the advocates serving the queue who are neither offline nor paused.
	Staffed int
	// Advocates counts the advocates serving the queue (sharing a language with it) by state.
	Advocates map[State]int
	// ByLanguage counts, for each of the queue's languages, the advocates who speak it,
	// by state.
	ByLanguage map[string]map[State]int
	// HandleTime is the average talk plus wrap-up of the queue's recent calls, over
	// HandleSamples calls; 0 with none.
	HandleTime    time.Duration
	HandleSamples int
}

// AdvocateSnapshot is one advocate's state.
type AdvocateSnapshot struct {
	ID, Name    string
	Languages   []string
	State       State
	PauseReason string    // while paused, or to take effect after a call
	Since       time.Time // when State began
	IdleSince   time.Time // when they were last free; the longest idle is rung first
	Misses      int       // in a row
	Call        string    // the call being rung or talked to, or ""
	Queue       string    // the queue of Call, or of the call being wrapped up
	WrapUpEnds  time.Time // while wrapping up
	Registered  bool      // their phone has a binding
	Removed     bool      // removed by a reload, finishing a call
}

// MarshalText names the state, so that JSON maps keyed by State read "on_call".
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a state's name.
func (s *State) UnmarshalText(b []byte) error {
	for _, x := range States {
		if x.String() == string(b) {
			*s = x
			return nil
		}
	}
	return fmt.Errorf("queue: unknown advocate state %q", b)
}

// Snapshot returns the state of every queue and advocate at now.
func (e *Engine) Snapshot(now time.Time) Snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	var s Snapshot
	names := make([]string, 0, len(e.queues))
	for n := range e.queues {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		q := e.queues[n]
		qs := QueueSnapshot{
			Name: n, Languages: slices.Clone(q.Languages), RingAll: q.RingAll, Retired: q.retired,
			Waiting: q.waiting, Advocates: make(map[State]int), ByLanguage: make(map[string]map[State]int),
			HandleSamples: len(q.hist),
		}
		if len(q.hist) > 0 {
			qs.HandleTime = q.histSum / time.Duration(len(q.hist))
		}
		for _, l := range q.Languages {
			qs.ByLanguage[l] = make(map[State]int)
		}
		for _, c := range e.waiting {
			if c.Queue != n {
				continue
			}
			if len(c.rings) > 0 {
				qs.Ringing++
			}
			qs.OldestWait = max(qs.OldestWait, now.Sub(c.arrived))
		}
		for _, a := range e.advList {
			if !serves(a, q) {
				continue
			}
			qs.Advocates[a.state]++
			if staffed(a) {
				qs.Staffed++
			}
			for _, l := range a.Languages {
				if m := qs.ByLanguage[l]; m != nil {
					m[a.state]++
				}
			}
		}
		s.Queues = append(s.Queues, qs)
	}
	for _, a := range e.advList {
		as := AdvocateSnapshot{
			ID: a.ID, Name: a.Name, Languages: slices.Clone(a.Languages), State: a.state,
			Since: a.since, IdleSince: a.idleSince, Misses: a.misses, WrapUpEnds: a.wrapEnd,
			Registered: a.registered, Removed: a.removed, Queue: a.wrapQueue,
		}
		if a.paused {
			as.PauseReason = a.reason
		}
		switch {
		case a.ring != nil:
			as.Call, as.Queue = a.ring.call.ID, a.ring.call.Queue
		case a.call != nil:
			as.Call, as.Queue = a.call.ID, a.call.Queue
		}
		s.Advocates = append(s.Advocates, as)
	}
	return s
}

// staffed reports whether a is at work: neither offline nor paused, nor leaving.
func staffed(a *advocate) bool {
	return !a.removed && a.state != Offline && a.state != Paused
}

// RoutingState returns the queues' state for routing.State. LoggedIn counts the staffed
// advocates (neither offline nor paused): a queue whose advocates are all paused has
// nobody to answer, and routing's "nobody in" conditions should hold for it.
func (e *Engine) RoutingState(now time.Time) map[string]routing.QueueState {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := make(map[string]routing.QueueState, len(e.queues))
	for n, q := range e.queues {
		var st routing.QueueState
		for _, a := range e.advList {
			if staffed(a) && serves(a, q) && !e.isolated {
				st.LoggedIn++
			}
		}
		m[n] = st
	}
	for _, c := range e.waiting {
		st := m[c.Queue]
		st.LongestWait = max(st.LongestWait, now.Sub(c.arrived))
		m[c.Queue] = st
	}
	return m
}

// Position returns a waiting caller's place in their queue, 1 for the next to be served.
// ok is false when the call is not waiting.
func (e *Engine) Position(callID string) (pos int, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.waitingCall(callID)
	if err != nil {
		return 0, false
	}
	return e.position(c), true
}

func (e *Engine) position(c *call) int {
	pos := 1
	for _, w := range e.waiting {
		if w == c {
			break
		}
		if w.Queue == c.Queue {
			pos++
		}
	}
	return pos
}

// EstimatedWait estimates how much longer a waiting caller will wait, for hold
// announcements: position × average handle time ÷ advocates at work who could take the
// call (serving the queue, speaking the caller's language, neither offline nor paused).
// ok is false, and nothing should be announced, when the call is not waiting, the queue
// has no handle-time history yet, or nobody who could take the call is at work.
func (e *Engine) EstimatedWait(callID string) (d time.Duration, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.waitingCall(callID)
	if err != nil {
		return 0, false
	}
	q := e.queues[c.Queue]
	if len(q.hist) == 0 {
		return 0, false
	}
	staff := 0
	for _, a := range e.advList {
		if staffed(a) && eligible(a, q, c) {
			staff++
		}
	}
	if staff == 0 {
		return 0, false
	}
	avg := q.histSum / time.Duration(len(q.hist))
	return time.Duration(e.position(c)) * avg / time.Duration(staff), true
}
