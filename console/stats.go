package console

import (
	"sync"
	"time"

	"github.com/hotline-project/hotline/queue"
)

// Stats counts each queue's callers answered and abandoned today (the server's local
// day), for the wallboard. It is a queue.Observer; every event also wakes the console's
// event streams, so a change shows at once.
type Stats struct {
	now       func() time.Time
	threshold func(queue string) time.Duration

	mu   sync.Mutex
	day  string
	byQ  map[string]*dayCounts
	wake chan struct{} // closed and replaced on every change
}

// dayCounts are one queue's counts for one day.
type dayCounts struct {
	Answered, Abandoned, WithinThreshold int
}

// NewStats returns counts that start empty; now (time.Now if nil) tells the day and
// threshold (nil: none) is a queue's service-level threshold.
func NewStats(now func() time.Time, threshold func(queue string) time.Duration) *Stats {
	if now == nil {
		now = time.Now
	}
	return &Stats{now: now, threshold: threshold, byQ: map[string]*dayCounts{}, wake: make(chan struct{})}
}

// rollLocked starts a new day's counts when the day has changed.
func (s *Stats) rollLocked() {
	if d := s.now().Format(time.DateOnly); d != s.day {
		s.day, s.byQ = d, map[string]*dayCounts{}
	}
}

func (s *Stats) countsLocked(q string) *dayCounts {
	s.rollLocked()
	c := s.byQ[q]
	if c == nil {
		c = &dayCounts{}
		s.byQ[q] = c
	}
	return c
}

// Today returns queue q's counts today.
func (s *Stats) Today(q string) (answered, abandoned, withinThreshold int) {
	if s == nil {
		return 0, 0, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.countsLocked(q)
	return c.Answered, c.Abandoned, c.WithinThreshold
}

// changed returns a channel closed at the next change.
func (s *Stats) changed() <-chan struct{} {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wake
}

// notify wakes whoever waits on changed.
func (s *Stats) notify() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notifyLocked()
}

func (s *Stats) notifyLocked() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// Answered implements queue.Observer.
func (s *Stats) Answered(q, _ string, waited time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.countsLocked(q)
	c.Answered++
	if s.threshold != nil && waited <= s.threshold(q) {
		c.WithinThreshold++
	}
	s.notifyLocked()
}

// Abandoned implements queue.Observer.
func (s *Stats) Abandoned(q string, _ time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.countsLocked(q).Abandoned++
	s.notifyLocked()
}

// RingMissed implements queue.Observer.
func (s *Stats) RingMissed(string, string, queue.Outcome) { s.notify() }

// Talked implements queue.Observer.
func (s *Stats) Talked(string, string, time.Duration) {}

// WrappedUp implements queue.Observer.
func (s *Stats) WrappedUp(string, string, time.Duration) { s.notify() }

// StateChanged implements queue.Observer.
func (s *Stats) StateChanged(string, queue.State, queue.State) { s.notify() }

var _ queue.Observer = (*Stats)(nil)

// Observers sends each event to every observer in turn.
type Observers []queue.Observer

// Answered implements queue.Observer.
func (o Observers) Answered(q, a string, w time.Duration) {
	for _, x := range o {
		x.Answered(q, a, w)
	}
}

// Abandoned implements queue.Observer.
func (o Observers) Abandoned(q string, w time.Duration) {
	for _, x := range o {
		x.Abandoned(q, w)
	}
}

// RingMissed implements queue.Observer.
func (o Observers) RingMissed(q, a string, out queue.Outcome) {
	for _, x := range o {
		x.RingMissed(q, a, out)
	}
}

// Talked implements queue.Observer.
func (o Observers) Talked(q, a string, d time.Duration) {
	for _, x := range o {
		x.Talked(q, a, d)
	}
}

// WrappedUp implements queue.Observer.
func (o Observers) WrappedUp(q, a string, d time.Duration) {
	for _, x := range o {
		x.WrappedUp(q, a, d)
	}
}

// StateChanged implements queue.Observer.
func (o Observers) StateChanged(a string, from, to queue.State) {
	for _, x := range o {
		x.StateChanged(a, from, to)
	}
}
