package queue

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// pauseMissed is the pause reason given by too many misses in a row.
const pauseMissed = "missed calls"

// Engine is the queue engine. Its methods are safe for concurrent use; each takes the
// time of the event and returns the Actions for the driver to execute.
type Engine struct {
	mu  sync.Mutex
	log *slog.Logger
	obs Observer

	samples   int                  // HandleTimeSamples
	queues    map[string]*queue    // current queues, and retired ones still holding callers
	advs      map[string]*advocate // by id
	advList   []*advocate          // configuration order, for deterministic iteration
	waiting   []*call              // every waiting call, in order (see before)
	calls     map[string]*call     // waiting and connected calls by id
	seq       uint64               // arrival sequence, to break ties
	available int                  // advocates in state Available
	notes     []func(Observer)     // observations to deliver after unlocking
	isolated  bool                 // no quorum: ring nobody (cluster.go)
}

type queue struct {
	QueueConfig
	retired  bool // removed by Reconfigure; stays until its last caller leaves
	waiting  int
	hist     []time.Duration // recent handle times, a ring buffer
	histNext int
	histSum  time.Duration
}

type advocate struct {
	AdvocateConfig
	order      int
	registered bool // the phone has a binding
	loggedIn   bool // false after Logout, until SetAvailable, Pause or a new registration
	paused     bool
	reason     string
	state      State
	since      time.Time // of state
	idleSince  time.Time // when they last became free; the longest idle is rung first
	misses     int       // in a row
	ring       *ring     // while ringing
	call       *call     // while on a call
	wrapQueue  string    // while wrapping up: the call's queue,
	wrapStart  time.Time // when wrap-up started,
	wrapEnd    time.Time // when it ends (zero when not wrapping up)
	talk       time.Duration
	removed    bool // removed by Reconfigure while on a call; deleted when it ends
	elsewhere  bool // taken by a call on another node (cluster.go)
}

type call struct {
	Caller
	arrived   time.Time
	seq       uint64
	rings     []*ring     // live rings while waiting, in the order they started
	missed    []*advocate // who missed this call since it was last offered to everyone
	adv       *advocate   // once connected
	connected time.Time
}

type ring struct {
	call     *call
	adv      *advocate
	deadline time.Time
}

// Option configures an Engine.
type Option func(*Engine)

// WithLogger logs state changes of note (automatic pauses, late results) to l.
func WithLogger(l *slog.Logger) Option { return func(e *Engine) { e.log = l } }

// WithObserver sends counts and durations to o.
func WithObserver(o Observer) Option { return func(e *Engine) { e.obs = o } }

// New returns an engine for cfg. All advocates start offline, with nobody waiting.
func New(cfg Config, opts ...Option) (*Engine, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	e := &Engine{
		log:    slog.New(slog.DiscardHandler),
		queues: make(map[string]*queue),
		advs:   make(map[string]*advocate),
		calls:  make(map[string]*call),
	}
	for _, o := range opts {
		o(e)
	}
	e.apply(cfg, time.Time{})
	e.notes = nil // an engine is born with its advocates offline: no changes to report
	return e, nil
}

// locked runs f under the lock, then delivers the observations it made.
func (e *Engine) locked(f func() ([]Action, error)) ([]Action, error) {
	e.mu.Lock()
	acts, err := f()
	notes := e.notes
	e.notes = nil
	e.mu.Unlock()
	for _, n := range notes {
		n(e.obs)
	}
	return acts, err
}

// note records an observation when there is an Observer.
func (e *Engine) note(f func(Observer)) {
	if e.obs != nil {
		e.notes = append(e.notes, f)
	}
}

// before reports whether a is served before b: higher priority, then earlier arrival.
func before(a, b *call) bool {
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	if !a.arrived.Equal(b.arrived) {
		return a.arrived.Before(b.arrived)
	}
	return a.seq < b.seq
}

// Enqueue puts a caller in their queue and rings whoever can take the call.
func (e *Engine) Enqueue(c Caller, now time.Time) ([]Action, error) {
	return e.locked(func() ([]Action, error) {
		if c.ID == "" {
			return nil, fmt.Errorf("queue: enqueue: %w: empty id", ErrUnknownCall)
		}
		if _, dup := e.calls[c.ID]; dup {
			return nil, fmt.Errorf("queue: enqueue %q: %w", c.ID, ErrDuplicateCall)
		}
		q := e.queues[c.Queue]
		if q == nil || q.retired {
			return nil, fmt.Errorf("queue: enqueue %q: %w %q", c.ID, ErrUnknownQueue, c.Queue)
		}
		e.seq++
		k := &call{Caller: c, arrived: c.Since, seq: e.seq}
		if k.arrived.IsZero() || k.arrived.After(now) {
			k.arrived = now
		}
		i, _ := slices.BinarySearchFunc(e.waiting, k, func(x, y *call) int {
			if before(x, y) {
				return -1
			}
			return 1
		})
		e.waiting = slices.Insert(e.waiting, i, k)
		e.calls[c.ID] = k
		q.waiting++
		return e.dispatch(now, nil), nil
	})
}

// Abandon removes a waiting caller who hung up, cancelling any rings for them.
func (e *Engine) Abandon(callID string, now time.Time) ([]Action, error) {
	return e.locked(func() ([]Action, error) { return e.abandon(callID, now) })
}

func (e *Engine) abandon(callID string, now time.Time) ([]Action, error) {
	c, err := e.waitingCall(callID)
	if err != nil {
		return nil, fmt.Errorf("queue: abandon: %w", err)
	}
	acts := e.cancelRings(c, nil, now, nil)
	e.unqueue(c)
	delete(e.calls, c.ID)
	waited := now.Sub(c.arrived)
	e.note(func(o Observer) { o.Abandoned(c.Queue, waited) })
	return e.dispatch(now, acts), nil
}

// Leave removes a waiting caller who goes elsewhere (a target took the call), cancelling
// any rings for them. Unlike Abandon it counts no abandonment: the caller was served.
func (e *Engine) Leave(callID string, now time.Time) ([]Action, error) {
	return e.locked(func() ([]Action, error) {
		c, err := e.waitingCall(callID)
		if err != nil {
			return nil, fmt.Errorf("queue: leave: %w", err)
		}
		acts := e.cancelRings(c, nil, now, nil)
		e.unqueue(c)
		delete(e.calls, c.ID)
		return e.dispatch(now, acts), nil
	})
}

// CallEnded reports that a call is over. For a connected call, the advocate wraps up; for
// a call still waiting, it is the same as Abandon (so the driver need not know which).
func (e *Engine) CallEnded(callID string, now time.Time) ([]Action, error) {
	return e.locked(func() ([]Action, error) {
		c := e.calls[callID]
		if c == nil {
			return nil, fmt.Errorf("queue: call ended: %w %q", ErrUnknownCall, callID)
		}
		if c.adv == nil {
			return e.abandon(callID, now)
		}
		a := c.adv
		delete(e.calls, c.ID)
		a.call = nil
		talk := now.Sub(c.connected)
		e.note(func(o Observer) { o.Talked(c.Queue, a.ID, talk) })
		if a.removed {
			e.setState(a, Offline, now)
			e.deleteAdvocate(a)
			return e.dispatch(now, nil), nil
		}
		var wrap time.Duration
		if q := e.queues[c.Queue]; q != nil {
			wrap = q.WrapUp
		}
		if wrap > 0 && a.registered && a.loggedIn {
			a.talk, a.wrapQueue, a.wrapStart, a.wrapEnd = talk, c.Queue, now, now.Add(wrap)
		} else {
			e.sample(c.Queue, talk)
		}
		e.settle(a, now)
		return e.dispatch(now, nil), nil
	})
}

// RingResult reports how a ring of the engine's ended. An answer connects the call (and
// cancels its other rings); any other outcome is a miss, and the call moves on.
func (e *Engine) RingResult(callID, advocateID string, out Outcome, now time.Time) ([]Action, error) {
	return e.locked(func() ([]Action, error) {
		if !out.Valid() {
			return nil, fmt.Errorf("queue: ring result for %q from %q: %w %d", callID, advocateID, ErrBadOutcome, out)
		}
		a := e.advs[advocateID]
		if a == nil {
			return nil, fmt.Errorf("queue: ring result for %q: %w %q", callID, ErrUnknownAdvocate, advocateID)
		}
		r := a.ring
		if r == nil || r.call.ID != callID {
			e.log.Debug("queue: late ring result", "advocate", advocateID, "outcome", out.String())
			return nil, fmt.Errorf("queue: %s from %q for %q: %w", out, advocateID, callID, ErrNoRing)
		}
		if out != Answered {
			acts := e.miss(r, out, now, nil)
			return e.dispatch(now, acts), nil
		}
		c := r.call
		e.endRing(r)
		acts := []Action{Connect{Call: c.ID, Advocate: a.ID, Queue: c.Queue, Waited: now.Sub(c.arrived)}}
		acts = e.cancelRings(c, nil, now, acts)
		e.unqueue(c)
		c.adv, c.connected = a, now
		a.call, a.misses = c, 0
		e.settle(a, now)
		waited := now.Sub(c.arrived)
		e.note(func(o Observer) { o.Answered(c.Queue, a.ID, waited) })
		return e.dispatch(now, acts), nil
	})
}

// miss ends r as a miss of outcome out: the advocate goes to the back of the idle order,
// and is paused after the queue's MaxMisses in a row.
func (e *Engine) miss(r *ring, out Outcome, now time.Time, acts []Action) []Action {
	a, c := r.adv, r.call
	e.endRing(r)
	c.missed = append(c.missed, a)
	a.misses++
	a.idleSince = now
	if q := e.queues[c.Queue]; q != nil && q.MaxMisses > 0 && a.misses >= q.MaxMisses && !a.paused {
		a.paused, a.reason = true, pauseMissed
		e.log.Info("queue: advocate paused after missed calls", "advocate", a.ID, "misses", a.misses)
	}
	e.note(func(o Observer) { o.RingMissed(c.Queue, a.ID, out) })
	e.settle(a, now)
	return acts
}

// Tick times out rings and ends wrap-ups due by now. Call it at NextDeadline.
func (e *Engine) Tick(now time.Time) []Action {
	acts, _ := e.locked(func() ([]Action, error) {
		var acts []Action
		for _, a := range e.advList {
			if r := a.ring; r != nil && !r.deadline.After(now) {
				acts = append(acts, CancelRing{Call: r.call.ID, Advocate: a.ID})
				acts = e.miss(r, NoAnswer, now, acts)
			}
			if !a.wrapEnd.IsZero() && !a.wrapEnd.After(now) {
				e.endWrap(a, now)
				e.settle(a, now)
			}
		}
		return e.dispatch(now, acts), nil
	})
	return acts
}

// NextDeadline returns when Tick next has work: the earliest ring deadline or wrap-up
// end. ok is false when there is none.
func (e *Engine) NextDeadline() (t time.Time, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, a := range e.advList {
		if a.ring != nil && (!ok || a.ring.deadline.Before(t)) {
			t, ok = a.ring.deadline, true
		}
		if !a.wrapEnd.IsZero() && (!ok || a.wrapEnd.Before(t)) {
			t, ok = a.wrapEnd, true
		}
	}
	return t, ok
}

// AdvocateOnline reports that the advocate's phone registered (a first binding). It makes
// them available, or paused if they were paused. For an advocate already registered it
// does nothing, so registration refreshes may call it too, and a logged-out advocate
// stays logged out.
func (e *Engine) AdvocateOnline(id string, now time.Time) ([]Action, error) {
	return e.locked(func() ([]Action, error) {
		a, err := e.advocate(id)
		if err != nil {
			return nil, fmt.Errorf("queue: advocate online: %w", err)
		}
		if a.registered {
			return nil, nil
		}
		a.registered, a.loggedIn = true, true
		e.settle(a, now)
		return e.dispatch(now, nil), nil
	})
}

// AdvocateOffline reports that the advocate's phone lost its last binding. A ring to it
// is cancelled (the caller keeps their place); a call in progress goes on, and the
// advocate is offline when it ends.
func (e *Engine) AdvocateOffline(id string, now time.Time) ([]Action, error) {
	return e.locked(func() ([]Action, error) {
		a, err := e.advocate(id)
		if err != nil {
			return nil, fmt.Errorf("queue: advocate offline: %w", err)
		}
		a.registered = false
		return e.stepAway(a, now), nil
	})
}

// Logout makes the advocate offline although their phone is registered (a feature code
// or the admin API), with the same effects as AdvocateOffline. SetAvailable or Pause logs
// them in again.
func (e *Engine) Logout(id string, now time.Time) ([]Action, error) {
	return e.locked(func() ([]Action, error) {
		a, err := e.advocate(id)
		if err != nil {
			return nil, fmt.Errorf("queue: logout: %w", err)
		}
		a.loggedIn = false
		return e.stepAway(a, now), nil
	})
}

// Pause stops the advocate taking calls, for reason ("" means "paused"). A ring to them is
// cancelled (not a miss); wrap-up ends at once; a call in progress goes on, and the pause
// takes effect after its wrap-up. An offline advocate stays paused when they register.
func (e *Engine) Pause(id, reason string, now time.Time) ([]Action, error) {
	return e.locked(func() ([]Action, error) {
		a, err := e.advocate(id)
		if err != nil {
			return nil, fmt.Errorf("queue: pause: %w", err)
		}
		if reason == "" {
			reason = "paused"
		}
		a.paused, a.reason, a.loggedIn = true, reason, true
		return e.stepAway(a, now), nil
	})
}

// SetAvailable makes the advocate available: it ends a pause (and resets their misses),
// logs them in, and ends wrap-up early. Ringing or on a call, they carry on, and are
// available afterwards. It fails with ErrNotRegistered when their phone is not registered.
func (e *Engine) SetAvailable(id string, now time.Time) ([]Action, error) {
	return e.locked(func() ([]Action, error) {
		a, err := e.advocate(id)
		if err != nil {
			return nil, fmt.Errorf("queue: set available: %w", err)
		}
		if !a.registered {
			return nil, fmt.Errorf("queue: set available %q: %w", id, ErrNotRegistered)
		}
		if a.paused {
			a.misses = 0
		}
		a.paused, a.reason, a.loggedIn = false, "", true
		if !a.wrapEnd.IsZero() {
			e.endWrap(a, now)
		}
		e.settle(a, now)
		return e.dispatch(now, nil), nil
	})
}

// stepAway applies a change that may take a, now, out of service: a ring is cancelled
// without penalty and wrap-up ends.
func (e *Engine) stepAway(a *advocate, now time.Time) []Action {
	var acts []Action
	if !a.registered || !a.loggedIn || a.paused {
		if r := a.ring; r != nil {
			e.endRing(r)
			acts = append(acts, CancelRing{Call: r.call.ID, Advocate: a.ID})
		}
		if !a.wrapEnd.IsZero() {
			e.endWrap(a, now)
		}
	}
	e.settle(a, now)
	return e.dispatch(now, acts)
}

// Move puts a waiting caller in another queue, keeping their arrival time and priority
// (overflow). Rings to advocates who can take the call in the new queue go on; others are
// cancelled without penalty.
func (e *Engine) Move(callID, queueName string, now time.Time) ([]Action, error) {
	return e.locked(func() ([]Action, error) {
		c, err := e.waitingCall(callID)
		if err != nil {
			return nil, fmt.Errorf("queue: move: %w", err)
		}
		q := e.queues[queueName]
		if q == nil || q.retired {
			return nil, fmt.Errorf("queue: move %q: %w %q", callID, ErrUnknownQueue, queueName)
		}
		if c.Queue == queueName {
			return nil, nil
		}
		e.leaveQueue(c)
		c.Queue = queueName
		q.waiting++
		return e.dispatch(now, e.prune(c, q, now, nil)), nil
	})
}

// Waited returns how long a waiting caller has waited; ok is false if they are not waiting.
func (e *Engine) Waited(callID string, now time.Time) (d time.Duration, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.calls[callID]
	if c == nil || c.adv != nil {
		return 0, false
	}
	return now.Sub(c.arrived), true
}

// dispatch rings whoever can take a waiting call, in queue order, and appends the Rings
// to acts. Those who missed a call are not rung for it again until everyone who could take
// it has been tried (or is busy): then the round starts over, so that nobody is left
// waiting while someone who could answer is free.
func (e *Engine) dispatch(now time.Time, acts []Action) []Action {
	var group []*advocate
	// Callers alike (same queue, same language as far as the queue goes) share their
	// candidates: once nobody free can take one, nobody can take the rest this pass. This
	// keeps a long queue cheap while advocates of other languages sit idle.
	var hopeless []class
	for _, c := range e.waiting {
		if e.available == 0 || e.isolated {
			break
		}
		q := e.queues[c.Queue]
		if !q.RingAll && len(c.rings) > 0 {
			continue
		}
		k := class{q, c.Language, c.Advocate}
		if !slices.Contains(q.Languages, c.Language) {
			k.lang = ""
		}
		if slices.Contains(hopeless, k) {
			continue
		}
		var free bool
		group, free = e.candidates(c, q, group[:0])
		if !free {
			hopeless = append(hopeless, k)
			continue
		}
		if len(group) == 0 && len(c.rings) == 0 {
			c.missed = c.missed[:0]
			group, _ = e.candidates(c, q, group)
		}
		if len(group) == 0 {
			continue
		}
		if !q.RingAll {
			acts = e.startRing(c, q, group[0], now, acts)
			continue
		}
		for _, a := range group {
			acts = e.startRing(c, q, a, now, acts)
		}
	}
	return acts
}

// class is what makes callers alike for dispatch.
type class struct {
	q    *queue
	lang string
	adv  string // Caller.Advocate
}

// candidates appends to group the available advocates who may be rung for c, longest idle
// first; without ring-all only the first is wanted, so only the first is found. free
// reports whether anyone available could take the call, counting those who missed it.
func (e *Engine) candidates(c *call, q *queue, group []*advocate) (_ []*advocate, free bool) {
	var best *advocate
	for _, a := range e.advList {
		if a.state != Available || !eligible(a, q, c) {
			continue
		}
		free = true
		if slices.Contains(c.missed, a) {
			continue
		}
		if q.RingAll {
			group = append(group, a)
		} else if best == nil || idler(a, best) {
			best = a
		}
	}
	if best != nil {
		return append(group, best), true
	}
	slices.SortStableFunc(group, func(x, y *advocate) int {
		if idler(x, y) {
			return -1
		}
		if idler(y, x) {
			return 1
		}
		return 0
	})
	return group, free
}

// idler reports whether a has been idle longer than b (configuration order breaks ties).
func idler(a, b *advocate) bool {
	if !a.idleSince.Equal(b.idleSince) {
		return a.idleSince.Before(b.idleSince)
	}
	return a.order < b.order
}

// eligible reports whether a may take call c in queue q: a serves q and speaks the
// caller's language, if that is one of q's; or a is the one advocate the call names.
func eligible(a *advocate, q *queue, c *call) bool {
	if c.Advocate != "" {
		return a.ID == c.Advocate
	}
	if !serves(a, q) {
		return false
	}
	if c.Language == "" || !slices.Contains(q.Languages, c.Language) {
		return true
	}
	return slices.Contains(a.Languages, c.Language)
}

// serves reports whether a shares a language with q.
func serves(a *advocate, q *queue) bool {
	for _, l := range a.Languages {
		if slices.Contains(q.Languages, l) {
			return true
		}
	}
	return false
}

func (e *Engine) startRing(c *call, q *queue, a *advocate, now time.Time, acts []Action) []Action {
	r := &ring{call: c, adv: a, deadline: now.Add(q.RingTimeout)}
	c.rings = append(c.rings, r)
	a.ring = r
	e.settle(a, now)
	return append(acts, Ring{Call: c.ID, Advocate: a.ID, Queue: q.Name, Deadline: r.deadline})
}

// endRing forgets r, leaving its advocate's state to settle.
func (e *Engine) endRing(r *ring) {
	r.adv.ring = nil
	if i := slices.Index(r.call.rings, r); i >= 0 {
		r.call.rings = slices.Delete(r.call.rings, i, i+1)
	}
}

// cancelRings cancels c's rings, but those keep reports true for, without penalty.
func (e *Engine) cancelRings(c *call, keep func(*ring) bool, now time.Time, acts []Action) []Action {
	for _, r := range slices.Clone(c.rings) {
		if keep != nil && keep(r) {
			continue
		}
		e.endRing(r)
		acts = append(acts, CancelRing{Call: c.ID, Advocate: r.adv.ID})
		e.settle(r.adv, now)
	}
	return acts
}

// unqueue takes c out of the waiting order and its queue.
func (e *Engine) unqueue(c *call) {
	if i := slices.Index(e.waiting, c); i >= 0 {
		e.waiting = slices.Delete(e.waiting, i, i+1)
	}
	e.leaveQueue(c)
}

// leaveQueue takes c out of its queue's count, dropping a retired queue that is now empty.
func (e *Engine) leaveQueue(c *call) {
	q := e.queues[c.Queue]
	q.waiting--
	if q.retired && q.waiting == 0 {
		delete(e.queues, q.Name)
	}
}

// endWrap ends a's wrap-up, recording the call's handle time.
func (e *Engine) endWrap(a *advocate, now time.Time) {
	wrap := now.Sub(a.wrapStart)
	qn := a.wrapQueue
	e.sample(qn, a.talk+wrap)
	e.note(func(o Observer) { o.WrappedUp(qn, a.ID, wrap) })
	a.wrapEnd, a.wrapStart, a.wrapQueue, a.talk = time.Time{}, time.Time{}, "", 0
}

// sample records the handle time of one of queue's calls.
func (e *Engine) sample(queueName string, d time.Duration) {
	q := e.queues[queueName]
	if q == nil {
		return
	}
	if len(q.hist) < e.samples {
		q.hist = append(q.hist, d)
		q.histSum += d
		return
	}
	q.histSum += d - q.hist[q.histNext]
	q.hist[q.histNext] = d
	q.histNext = (q.histNext + 1) % len(q.hist)
}

// settle puts a in the state its activity and flags call for.
func (e *Engine) settle(a *advocate, now time.Time) {
	var s State
	switch {
	case a.ring != nil:
		s = Ringing
	case a.call != nil, a.elsewhere && a.registered && a.loggedIn:
		s = OnCall
	case !a.wrapEnd.IsZero():
		s = WrapUp
	case !a.registered || !a.loggedIn:
		s = Offline
	case a.paused:
		s = Paused
	default:
		s = Available
	}
	e.setState(a, s, now)
}

func (e *Engine) setState(a *advocate, s State, now time.Time) {
	from := a.state
	if from == s {
		return
	}
	if from == Available {
		e.available--
	}
	if s == Available {
		e.available++
		// Back from a ring cancelled through no fault of theirs, an advocate keeps their
		// place; a miss has already moved them to the back.
		if from != Ringing {
			a.idleSince = now
		}
	}
	a.state, a.since = s, now
	id := a.ID
	e.note(func(o Observer) { o.StateChanged(id, from, s) })
}

func (e *Engine) advocate(id string) (*advocate, error) {
	a := e.advs[id]
	if a == nil || a.removed {
		return nil, fmt.Errorf("%w %q", ErrUnknownAdvocate, id)
	}
	return a, nil
}

func (e *Engine) waitingCall(id string) (*call, error) {
	c := e.calls[id]
	switch {
	case c == nil:
		return nil, fmt.Errorf("%w %q", ErrUnknownCall, id)
	case c.adv != nil:
		return nil, fmt.Errorf("%q: %w", id, ErrNotWaiting)
	}
	return c, nil
}

func (e *Engine) deleteAdvocate(a *advocate) {
	delete(e.advs, a.ID)
	if i := slices.Index(e.advList, a); i >= 0 {
		e.advList = slices.Delete(e.advList, i, i+1)
	}
}
