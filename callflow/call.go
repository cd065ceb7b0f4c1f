package callflow

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/ivr"
	"github.com/hotline-project/hotline/outcome"
	"github.com/hotline-project/hotline/prompts"
	"github.com/hotline-project/hotline/queue"
	"github.com/hotline-project/hotline/routing"
)

// Call is one caller's call, from the hand-over by sip until its record is written. Its
// loop (Handle, then waitLoop) is the only goroutine that changes its decision, plays to
// its leg or bridges it; rings run on their own goroutines and hand an answered leg over
// through answered.
type Call struct {
	f   *Flow
	ID  string
	leg Leg
	rec Record
	log *slog.Logger
	// caller is the caller's identity (Inbound.Caller): presented to a party only where
	// configured (midcall.go); never logged.
	caller string

	snap      *Snapshot     // the configuration the call started with (see reroute)
	attrs     routing.Attrs // what the menus learned: line, language, reason
	menuRoute string        // the destination a menu action named, or ""
	dec       routing.Decision
	since     time.Time // when first queued (by a dropped call whose place this one got back)
	hash      string    // the keyed hash of the caller's identity; "" when withheld. Never logged
	restored  *Place    // the place a dropped call of the caller kept, given back to this one
	// keptOnDrop: keepPlace held the place when the call dropped (waitOnce then leaves
	// the place written while waiting in the store).
	keptOnDrop bool
	keys       Leg  // the caller's leg as the menus see it (without the quick-exit key)
	offered    bool // a callback was offered (once per call)

	outcomeMu sync.Mutex
	outcome   outcome.Call
	phase     atomic.Int32 // phaseMenus, phaseWaiting or phaseBridge: for the quick-exit key

	// guarded by f.mu
	queue    string                 // the queue the call waits in
	rings    map[string]*ringHandle // advocate -> its ring now (ring.go)
	lastRing map[string]time.Time   // advocate -> when their phone was last rung for the call
	talking  answer                 // the advocate's side while bridged (leg nil otherwise)
	engineID string                 // the queue engine's id of the call while talking (c.ID, or a transfer's)

	connectedOnce bool // the record has the advocate who took the call
	// ringEnded, when set, hears how each ring for the call ended: a warm transfer's call
	// (transfer.go) does.
	ringEnded func(advocate string, out queue.Outcome)

	answered chan answer   // an advocate's answered leg, from the ring (at most one)
	rerouted chan *reroute // a new decision after a reload
}

// answer is an advocate's answered leg, handed to the caller's side to be bridged.
type answer struct {
	leg      Leg
	advocate string
	queue    string
	at       time.Time // when the engine connected them: the end of the wait
	waited   time.Duration
	log      *slog.Logger
}

// reroute is a decision made again after a reload removed the call's queue.
type reroute struct {
	snap *Snapshot
	dec  routing.Decision
}

// Handle takes an answered call through the menus, routes it and sends it on; it returns
// when the call is over and its record written. It is the sip.Handler of every caller.
//
// Handle and the functions a waiting call stays parked in (waitLoop, waitOnce,
// waitState.event) keep small stack frames, and the work done once (setting up, the
// menus' result, routing) is in functions that return before the wait: the runtime
// halves a parked goroutine's stack only when a quarter of it holds the frames, and a
// call's goroutine lives as long as the call (bench/memory, README "Benchmarks").
func (f *Flow) Handle(ctx context.Context, in *Inbound) {
	c := f.newCall(in)
	defer c.finish(ctx)
	c.keys = c.guardKeys()
	then, wait := c.keptPlace(ctx)
	if !wait {
		res, err := c.snap.Menus.Run(ctx, c.keys, c.log)
		if then, wait = c.afterMenus(ctx, in.Line, in.Screen, res, err); !wait {
			return
		}
	}
	c.waitLoop(ctx, then)
}

// newCall makes the call's object and begins its record.
//
//go:noinline
func (f *Flow) newCall(in *Inbound) *Call {
	c := &Call{
		f: f, ID: in.ID, leg: in.Leg, rec: noRecord{}, caller: in.Caller,
		log:      f.log.With("call", in.ID, "line", in.Line),
		snap:     f.live.Load(),
		attrs:    routing.Attrs{Line: in.Line},
		rings:    map[string]*ringHandle{},
		lastRing: map[string]time.Time{},
		answered: make(chan answer, 1),
		rerouted: make(chan *reroute, 1),
	}
	if f.records != nil {
		c.rec = f.records.Begin(in.ID, in.Line, in.Caller, in.Arrived)
	}
	c.hash = f.hash(in.Caller)
	c.rec.Answered(f.clock.Now())
	return c
}

// finish writes the call's record as Handle returns.
func (c *Call) finish(ctx context.Context) {
	// The caller's leg is gone when Handle returns: writing the record now holds up
	// nobody, and it is committed before the call's goroutine ends.
	if c.f.stopping() {
		c.end(outcome.Shutdown)
	}
	_ = c.rec.Finish(ctx)
}

// keptPlace gives a caller whose dropped call kept its place that place back (see
// comeBack): it reports whether it did, and what the caller hears first in the queue.
//
//go:noinline
func (c *Call) keptPlace(ctx context.Context) (then []*prompts.Prompt, ok bool) {
	p, ok := c.restorePlace(ctx)
	if !ok {
		return nil, false
	}
	return c.comeBack(p), true
}

// afterMenus routes the call the menus ended (res, err) and sends it on. It reports
// whether the call waits in a queue, and what the caller hears first there; a call that
// hung up, or was routed to a message or a target, is done with when it returns false.
//
//go:noinline
func (c *Call) afterMenus(ctx context.Context, line string, screen func() (bool, bool), res *ivr.Result, err error) (then []*prompts.Prompt, wait bool) {
	f := c.f
	f.menus.Ended(res.Language, string(res.End))
	c.rec.Menus(res.Language, res.Reason)
	if err != nil {
		if !errors.Is(err, ivr.ErrHangup) && ctx.Err() == nil {
			c.log.Error("menus failed", "err", err)
		}
		return nil, false
	}
	if res.Hangup {
		c.end(outcome.MenuHangup)
		_ = c.leg.Hangup(ctx, "menu")
		return nil, false
	}
	c.attrs, c.menuRoute = attrsOf(line, *res, demotion(screen, res.End)), res.Route
	c.dec = f.route(c.snap.Table, c.attrs, c.menuRoute, f.clock.Now())
	f.routing.Decision(c.dec)
	d := c.dec
	c.log.Info("call routed", "route", d.Route, "kind", d.Kind(), "to", d.Step.String(),
		"priority", d.Priority, "override", d.Override, "demoted", d.Demoted)
	dest := d.Queue
	if d.Target != "" {
		dest = d.Target
	}
	c.rec.Routed(d.Route, dest)
	switch d.Kind() {
	case "message":
		if q := c.callbackQueue("closed"); q != "" {
			if id := c.offerCallback(ctx, c.snap, q); id != "" {
				c.bookedClosed(ctx, id)
				return nil, false
			}
		}
		// The menus' last words ("connecting you") are not played: the call is not being
		// connected (issue 13, item 5).
		c.end(outcome.Message)
		c.play(ctx, d.Message)
		_ = c.leg.Hangup(ctx, "route message")
		return nil, false
	case "target":
		c.sendToTarget(ctx, d.Step, res.Then)
		return nil, false
	}
	return res.Then, true
}

// comeBack puts a caller whose dropped call kept its place back in line: the same
// queue, priority and first arrival, past the menus, with one short prompt saying so
// (what it returns, for the wait to play first).
func (c *Call) comeBack(p Place) []*prompts.Prompt {
	c.attrs, c.dec, c.restored = p.Attrs, p.Dec, &p
	c.rec.Menus(p.Attrs.Language, p.Attrs.Reason)
	c.rec.Routed("kept_place", p.Queue)
	c.log.Info("the caller called back in time and has their place back", "queue", p.Queue,
		"priority", p.Dec.Priority, "first_queued", c.f.clock.Now().Sub(p.Since).Round(time.Second))
	var then []*prompts.Prompt
	if pr, ok := c.snap.Prompts.Get(p.Attrs.Language, "place_kept"); ok {
		then = append(then, pr)
	}
	return then
}

// attrsOf turns what the menus learned into routing's attributes; demoted is the
// silent-call policy's verdict (demotion).
func attrsOf(line string, res ivr.Result, demoted string) routing.Attrs {
	return routing.Attrs{Line: line, Language: res.Language, Reason: res.Reason, Demoted: demoted}
}

// demotion applies the silent-call policy (routing.Silent, README "Silent calls", issue 14)
// to a call whose menus ended as end: "" or why it is not routed as urgent.
func demotion(screen func() (noRTP, flooding bool), end ivr.End) string {
	if end != ivr.EndNoInput || screen == nil {
		return ""
	}
	noRTP, flooding := screen()
	return routing.Silent{NoInput: true, NoRTP: noRTP, SourceFlooding: flooding}.Demotion()
}

// end sets the call's outcome; the first one counts.
func (c *Call) end(o outcome.Call) {
	c.outcomeMu.Lock()
	if c.outcome == "" {
		c.outcome = o
	}
	c.outcomeMu.Unlock()
	c.rec.Ended(o, c.f.clock.Now())
}

// Outcome is how the call ended so far ("" while it goes on and when the record derives
// it from its times: completed, abandoned).
func (c *Call) Outcome() outcome.Call {
	c.outcomeMu.Lock()
	defer c.outcomeMu.Unlock()
	return c.outcome
}

// settings are the call's queue's settings in the call's snapshot.
func (c *Call) settings() config.QueueSettings { return c.snap.Settings(c.currentQueue()) }

func (c *Call) currentQueue() string {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	return c.queue
}

// play plays a prompt in the call's language and waits for its end; errors end the call
// anyway.
func (c *Call) play(ctx context.Context, name string) {
	p, ok := c.snap.Prompts.Get(c.attrs.Language, name)
	if !ok {
		c.log.Error("prompt missing", "language", c.attrs.Language, "prompt", name)
		return
	}
	if err := c.leg.Play(ctx, p); err != nil && ctx.Err() == nil {
		c.log.Warn("prompt not played", "prompt", name, "err", err)
	}
}

// playAll plays ps in order until one fails or ctx ends.
func playAll(ctx context.Context, l Leg, ps []*prompts.Prompt) {
	for _, p := range ps {
		if l.Play(ctx, p) != nil {
			return
		}
	}
}

// reroute hands the call a new decision made with a new snapshot; the newest wins.
func (c *Call) reroute(snap *Snapshot, dec routing.Decision) {
	for {
		select {
		case c.rerouted <- &reroute{snap, dec}:
			return
		default:
		}
		select {
		case <-c.rerouted: // drop the older one
		default:
		}
	}
}
