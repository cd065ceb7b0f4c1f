package callflow

import (
	"context"
	"errors"
	"time"

	"github.com/hotline-project/hotline/outcome"
	"github.com/hotline-project/hotline/prompts"
	"github.com/hotline-project/hotline/queue"
	"github.com/hotline-project/hotline/routing"
)

// firstAnnounce is the longest a caller waits on hold before the first announcement of
// their place in line: the "connecting you" prompt has just played, and most calls are
// answered before it comes. A shorter announce_every comes first.
const firstAnnounce = 20 * time.Second

// targetRingTimeout is how long a target (a partner center) is rung.
const targetRingTimeout = 60 * time.Second

// waitLoop keeps the caller in the queue the decision chose until an advocate answers and
// the call ends, a target takes it, or the caller hangs up. The caller first hears then
// (the menus' "connecting you"), while the advocates' phones already ring, then hold
// audio with announcements. Overflow steps, announcements, re-routes and answers are
// events of one select loop, each on its own timer, so none waits for a prompt to end.
//
// A caller whose advocate hung up mid-conference (midcall.go, advocateLeft) comes back
// to the queue they were answered in, with their priority and first arrival, and hears
// "back_in_queue" first.
func (c *Call) waitLoop(ctx context.Context, then []*prompts.Prompt) {
	again := false
	for c.waitOnce(ctx, then, again) {
		if ctx.Err() != nil || c.leg.Context().Err() != nil {
			return
		}
		again, then = true, nil
		if p, ok := c.snap.Prompts.Get(c.attrs.Language, "back_in_queue"); ok {
			then = []*prompts.Prompt{p}
		}
	}
}

// waitOnce is one wait in the queue (see waitLoop); again is a wait after the advocate
// hung up. It reports whether the caller goes back to the queue.
func (c *Call) waitOnce(ctx context.Context, then []*prompts.Prompt, again bool) (requeue bool) {
	w := c.startWait(ctx, then, again)
	defer w.end()
	for {
		if done, requeue := w.event(ctx); done {
			if w.connecting {
				// Outside event's frame: the call's goroutine stays below connect
				// for the whole conversation (see Handle).
				return w.answered()
			}
			return requeue
		}
	}
}

// waitState is what one wait in the queue keeps between its events: kept on the heap,
// so that the call's goroutine, parked in event's select for most of the call, keeps a
// small stack (see Handle).
type waitState struct {
	c         *Call
	held      bool // holdWhileWaiting wrote the caller's place
	hold      *holdPlayer
	offerT    Timer
	offer     *offerRun
	next      int // the index in c.dec.Overflow of the next step
	stepT     Timer
	announceT Timer
	target    *targetDial

	// What event received, here rather than on the stack.
	ans        answer
	connecting bool // ans is to be connected
	rr         *reroute
	tr         *targetResult
}

// startWait queues the call and starts the hold audio and the wait's timers.
//
//go:noinline
func (c *Call) startWait(ctx context.Context, then []*prompts.Prompt, again bool) *waitState {
	f := c.f
	c.phase.Store(phaseWaiting)
	c.enqueue(c.waitQueue(again))
	w := &waitState{c: c}
	w.held = c.holdWhileWaiting(ctx)
	w.hold = startHold(ctx, c.leg, then, c.log)
	w.offerT = c.offerTimer(true)
	if again {
		w.next, _ = c.stepsDue(0, f.clock.Now().Sub(c.since))
	}
	w.stepT = c.stepTimer(w.next)
	w.announceT = c.firstAnnounceTimer()
	return w
}

// end stops what the wait started, in the reverse order of startWait.
//
//go:noinline
func (w *waitState) end() {
	c := w.c
	w.target.stop()
	stopTimer(w.announceT)
	stopTimer(w.stepT)
	c.f.forgetCallback(w.offer.stop())
	stopTimer(w.offerT)
	c.f.untrack(c)
	w.hold.stop() // a callback offer replaces it (callback_dialog.go)
	c.releaseWaitingPlace(w.held)
}

// event waits for the wait's next event and handles it. It reports whether the wait is
// over, and then whether the caller goes back to the queue. Overflow steps,
// announcements, re-routes and answers each have their own timer or channel, so none
// waits for a prompt to end.
func (w *waitState) event(ctx context.Context) (done, requeue bool) {
	c := w.c
	select {
	case <-c.leg.Done():
		c.hungUpWaiting(w.offer, w.hold)
		return true, false
	case <-ctx.Done():
		// sip ends the handler's context with the call, so a drop may come this way.
		c.hungUpWaiting(w.offer, w.hold)
		return true, false
	case w.ans = <-c.answered:
		w.connecting = true // waitOnce connects the call
		return true, false
	case <-chanOf(w.offerT):
		w.offerT, w.offer = c.offerTick(ctx, w.offer, w.hold)
	case id := <-w.offer.results():
		return w.offerEnded(ctx, id), false
	case <-chanOf(w.stepT):
		w.stepDue(ctx)
	case <-w.hold.next():
		w.hold.advance()
	case <-chanOf(w.announceT):
		w.announceT = c.announceUnlessOffering(w.hold, w.offer != nil)
	case w.rr = <-c.rerouted:
		w.reroute(ctx)
	case w.tr = <-w.target.results():
		return w.targetEnded(), false
	}
	return false, false
}

// answered is an advocate answering: the caller is connected.
//
//go:noinline
func (w *waitState) answered() (requeue bool) {
	w.target.stop()
	w.c.f.forgetCallback(w.offer.stop()) // an advocate is on the line: no callback needed
	return w.c.connect(w.hold, &w.ans)
}

// offerEnded is the callback offer's end: id is the callback booked, or "". It reports
// whether the caller left the queue for the callback.
//
//go:noinline
func (w *waitState) offerEnded(ctx context.Context, id string) (left bool) {
	w.offer.done = true
	w.offer = nil
	if id != "" && w.c.leaveForCallback(id) {
		return true
	}
	w.hold = w.c.holdAfterOffer(ctx, id)
	return false
}

// stepDue takes every overflow step due by now, in order; the last one is where the
// caller ends up (a step due while a prompt played is not skipped: issue 13, item 4).
//
//go:noinline
func (w *waitState) stepDue(ctx context.Context) {
	c := w.c
	var s routing.Step
	w.next, s = c.stepsDue(w.next, c.f.clock.Now().Sub(c.since))
	w.stepT = c.stepTimer(w.next)
	w.target, w.offer = c.takeStep(ctx, s, w.target, w.offer, w.hold)
}

// reroute takes a new decision after a reload.
//
//go:noinline
func (w *waitState) reroute(ctx context.Context) {
	c := w.c
	r := w.rr
	w.rr = nil
	if !c.takeReroute(*r) {
		return
	}
	waited := c.f.clock.Now().Sub(c.since)
	w.next, _ = c.stepsDue(0, waited)
	stopTimer(w.stepT)
	w.stepT = c.stepTimer(w.next)
	w.target.stop()
	w.target = c.step(ctx, c.dec.At(waited))
}

// targetEnded is the end of the dial of an overflow step's target; it reports whether the
// target took the call (the call is then over here).
//
//go:noinline
func (w *waitState) targetEnded() (taken bool) {
	c := w.c
	r := w.tr
	w.tr = nil
	w.target.done()
	w.target = nil
	if !c.targetAnswered(*r) {
		return false
	}
	c.f.forgetCallback(w.offer.stop())
	w.hold.stop()
	c.bridgeTarget(r.leg, r.step.Target)
	return true
}

// offerTick is the callback offer's timer firing: the offer starts when it is due (once
// per call), or the timer is set again. It returns the timer and the offer running.
func (c *Call) offerTick(ctx context.Context, offer *offerRun, hold *holdPlayer) (Timer, *offerRun) {
	switch {
	case offer != nil || c.offered:
		return nil, offer
	case c.offerDue():
		hold.stop()
		return nil, c.startOffer(ctx, c.currentQueue())
	default:
		return c.offerTimer(false), offer
	}
}

// takeStep takes overflow step s in place of the target the step before dialled; a caller
// overflowing from a queue that offers callbacks is offered one (once per call). It
// returns the target dialled and the offer running.
func (c *Call) takeStep(ctx context.Context, s routing.Step, target *targetDial, offer *offerRun, hold *holdPlayer) (*targetDial, *offerRun) {
	target.stop()
	from := c.callbackQueue("overflowing") // the queue the caller overflows from
	target = c.step(ctx, s)
	if offer == nil && !c.offered && from != "" {
		hold.stop()
		offer = c.startOffer(ctx, from)
	}
	return target, offer
}

// waitQueue returns the queue a wait is in, and sets when the wait counts from.
func (c *Call) waitQueue(again bool) string {
	switch {
	case again:
		// Back in the queue the call was answered in, from the first arrival; the overflow
		// steps already due are not taken again.
		c.restored = nil
		return c.currentQueue()
	case c.restored != nil:
		// The place a dropped call kept: its queue and first arrival. Overflow steps are
		// timed from then too; those due already are taken at once (waitOnce's loop).
		c.since = c.restored.Since
		return c.restored.Queue
	default:
		c.since = c.f.clock.Now()
		return c.dec.Queue
	}
}

// hungUpWaiting ends a wait the caller hung up: a caller who hangs up once the callback is
// booked (as callback_booked plays) has it, and leaves for it rather than drops.
func (c *Call) hungUpWaiting(offer *offerRun, hold *holdPlayer) {
	if id := offer.stop(); id != "" && c.leaveForCallback(id) {
		return
	}
	c.leaveDropped(hold)
}

// holdAfterOffer is the hold audio once a callback offer ends with the caller still in
// the queue, after "callback_declined" if they declined (id is "").
func (c *Call) holdAfterOffer(ctx context.Context, id string) *holdPlayer {
	var ps []*prompts.Prompt
	if p, ok := c.snap.Prompts.Get(c.attrs.Language, "callback_declined"); ok && id == "" {
		ps = append(ps, p)
	}
	return startHold(ctx, c.leg, ps, c.log)
}

// announceUnlessOffering announces the caller's place, unless a callback offer is playing:
// then the next announcement comes as usual. It returns the timer of the next.
func (c *Call) announceUnlessOffering(hold *holdPlayer, offering bool) Timer {
	if offering {
		f := c.f
		return timerAt(f.clock, f.clock.Now().Add(max(c.settings().AnnounceEvery, time.Second)))
	}
	return c.announce(hold)
}

// stepsDue returns the index after the overflow steps from next on that are due after
// waited, and the last of them (the zero Step if none is).
func (c *Call) stepsDue(next int, waited time.Duration) (int, routing.Step) {
	var s routing.Step
	for next < len(c.dec.Overflow) && c.dec.Overflow[next].After <= waited {
		s = c.dec.Overflow[next]
		next++
	}
	return next, s
}

// takeReroute takes the decision of a re-route after a reload and reports whether it did: a
// route that is not a queue leaves the caller where they are.
func (c *Call) takeReroute(r reroute) bool {
	if r.dec.Kind() == "message" {
		c.log.Warn("the call's queue was removed and its new route is not a queue; it stays where it is", "route", r.dec.Route)
		return false
	}
	c.snap, c.dec = r.snap, r.dec
	return true
}

// targetAnswered reports whether the target dialled by an overflow step answered and
// takes the call; one not reached leaves the caller queued.
func (c *Call) targetAnswered(r targetResult) bool {
	if r.err != nil {
		c.log.Warn("target not reached; the caller stays queued", "target", r.step.Target, "err", r.err)
		return false
	}
	return c.takenBy(r)
}

// leaveForCallback takes a caller who booked a callback out of the queue and ends the
// call (recorded as callback). It reports false, and forgets the callback, when an
// advocate answered at that very moment: the caller is then put through instead.
func (c *Call) leaveForCallback(id string) bool {
	f := c.f
	if c.quitted() {
		// The quick-exit key as the callback was booked: someone may be listening. No
		// call back; the caller can call again when it is safe.
		_ = f.cancelCallback(id, "the caller pressed the quick-exit key")
		return false
	}
	acts, err := f.eng.Leave(c.ID, f.clock.Now())
	if errors.Is(err, queue.ErrNotWaiting) {
		f.forgetCallback(id)
		return false
	}
	f.exec(acts)
	c.log.Info("caller left the queue for a callback", "queue", c.currentQueue())
	c.end(outcome.Callback)
	_ = c.leg.Hangup(context.WithoutCancel(c.leg.Context()), "callback booked")
	return true
}

// enqueue puts the call in the queue engine and starts tracking it.
func (c *Call) enqueue(q string) {
	f := c.f
	f.mu.Lock()
	c.queue = q
	f.calls[c.ID] = c
	f.mu.Unlock()
	now := f.clock.Now()
	c.rec.Queued(q, now)
	f.queues.Enqueued(q)
	acts, err := f.eng.Enqueue(queue.Caller{ID: c.ID, Queue: q, Language: c.attrs.Language, Priority: c.dec.Priority, Since: c.since}, now)
	if err != nil {
		// Routing names only configured queues; if the engine still refuses, the caller
		// stays on hold rather than being dropped, and the log says why.
		c.log.Error("cannot queue the call", "queue", q, "err", err)
	}
	c.log.Info("call queued", "queue", q, "priority", c.dec.Priority)
	f.exec(acts)
}

func (f *Flow) untrack(c *Call) {
	f.mu.Lock()
	delete(f.calls, c.ID)
	f.mu.Unlock()
}

// stepTimer fires when overflow step i falls due (nil when there is none).
func (c *Call) stepTimer(i int) Timer {
	if i >= len(c.dec.Overflow) {
		return nil
	}
	return timerAt(c.f.clock, c.since.Add(c.dec.Overflow[i].After))
}

// leaveDropped takes a caller whose call ended out of the queue and, when the call
// dropped (rather than the server stopping), keeps their place for a while.
func (c *Call) leaveDropped(hold *holdPlayer) {
	if c.leave(hold) && c.leg.Context().Err() != nil {
		c.keepPlace(context.WithoutCancel(c.leg.Context()))
	}
}

// leave takes a caller who hung up (or whom a stopping server cuts off) out of the queue;
// it reports false when an advocate answered at the same moment instead.
func (c *Call) leave(hold *holdPlayer) bool {
	f := c.f
	now := f.clock.Now()
	acts, err := f.eng.Abandon(c.ID, now)
	if errors.Is(err, queue.ErrNotWaiting) {
		// An advocate answered at the same moment: the ring hands the leg over; the
		// bridge sees the caller gone and ends the call.
		a := <-c.answered
		c.connect(hold, &a)
		return false
	}
	c.log.Info("caller left the queue", "queue", c.currentQueue(), "waited", now.Sub(c.since).Round(time.Second))
	f.exec(acts)
	return true
}

// step moves a waiting caller to an overflow (or re-routed) step: another queue at once,
// or a target, which is dialled while the caller keeps their place in the queue. A zero
// step, or the queue the caller is in, does nothing.
func (c *Call) step(ctx context.Context, s routing.Step) *targetDial {
	if s.Target != "" {
		c.log.Info("calling the overflow target; the caller keeps their place meanwhile", "target", s.Target)
		return c.dialTarget(ctx, s)
	}
	from := c.currentQueue()
	if s.Queue == "" || s.Queue == from {
		return nil
	}
	f := c.f
	now := f.clock.Now()
	acts, err := f.eng.Move(c.ID, s.Queue, now)
	if err != nil {
		c.log.Warn("overflow failed; the caller stays queued", "from", from, "to", s.Queue, "err", err)
		return nil
	}
	f.mu.Lock()
	c.queue = s.Queue
	f.mu.Unlock()
	f.queues.Overflowed(from)
	f.queues.Enqueued(s.Queue)
	c.rec.Overflowed(s.Queue)
	c.rec.Queued(s.Queue, now)
	c.log.Info("call overflowed", "from", from, "to", s.Queue)
	f.exec(acts)
	return nil
}

// takenBy takes the caller out of the queue for a target that answered. It reports false
// (and hangs the target up) when an advocate answered first.
func (c *Call) takenBy(r targetResult) bool {
	f := c.f
	from := c.currentQueue()
	acts, err := f.eng.Leave(c.ID, f.clock.Now())
	if errors.Is(err, queue.ErrNotWaiting) {
		c.log.Info("target answered after an advocate did; hanging up the target", "target", r.step.Target)
		_ = r.leg.Hangup(context.Background(), "answered elsewhere")
		return false
	}
	f.exec(acts) // none when the engine never had the call (see enqueue)
	f.queues.Overflowed(from)
	c.rec.Overflowed(r.step.Target)
	c.log.Info("call overflowed", "from", from, "to", r.step.Target)
	return true
}

// firstAnnounceTimer fires at the first announcement, or is nil when the queue has none.
func (c *Call) firstAnnounceTimer() Timer {
	every := c.settings().AnnounceEvery
	if every <= 0 {
		return nil
	}
	return timerAt(c.f.clock, c.since.Add(min(firstAnnounce, every)))
}

// announce has the hold player tell the caller their place in line and, when it can be
// estimated honestly, the expected wait; it returns the timer of the next announcement.
func (c *Call) announce(hold *holdPlayer) Timer {
	f := c.f
	var played time.Duration
	if p := c.announcement(); p != nil {
		c.log.Debug("announcing place in line")
		hold.announce(p)
		played = p.Duration()
	}
	every := c.settings().AnnounceEvery
	if every <= 0 {
		return nil
	}
	return timerAt(f.clock, f.clock.Now().Add(played+every))
}

// announcement is the caller's place in line and, when it can be estimated honestly,
// the expected wait, in the call's language; nil when there is nothing to say.
func (c *Call) announcement() *prompts.Prompt {
	f := c.f
	pos, ok := f.eng.Position(c.ID)
	if !ok {
		return nil
	}
	cat, lang := c.snap.Prompts, c.attrs.Language
	var parts []*prompts.Prompt
	if p, ok := cat.Get(lang, "you_are_caller_number"); ok {
		if n, err := cat.Number(lang, pos); err == nil {
			parts = append(append(parts, p), n...)
		}
	}
	if ewt, ok := f.eng.EstimatedWait(c.ID); ok {
		if p, ok := cat.Get(lang, "expected_wait"); ok {
			if dur, err := cat.Duration(lang, ewt); err == nil {
				parts = append(append(parts, p), dur...)
			}
		}
	}
	if len(parts) == 0 {
		return nil
	}
	return prompts.Join(parts...)
}

// sendToTarget sends a call whose route's destination is a target (a partner center):
// it calls the target and bridges the caller to it until either hangs up. A target that
// cannot be reached leaves the caller hearing that the hotline cannot take the call (with
// the safety line) and hung up: the route chose a place outside our queues.
func (c *Call) sendToTarget(ctx context.Context, s routing.Step, then []*prompts.Prompt) {
	c.phase.Store(phaseWaiting)
	hold := startHold(ctx, c.leg, then, c.log)
	hold.keepPlaying()
	t := c.dialTarget(ctx, s)
	var r *targetResult
	select {
	case r = <-t.results():
		t.done()
	case <-c.leg.Done():
		// The caller hung up before the target answered: they gave up waiting.
		t.stop()
		hold.stop()
		c.end(outcome.Abandoned)
		return
	}
	hold.stop()
	if r.err != nil {
		c.log.Warn("target not reached", "target", s.Target, "err", r.err)
		c.end(outcome.Failed)
		if ctx.Err() == nil {
			c.play(ctx, "closed")
		}
		_ = c.leg.Hangup(ctx, "target not reached")
		return
	}
	c.bridgeTarget(r.leg, s.Target)
}

// bridgeTarget bridges the caller to a target's answered leg until either hangs up.
func (c *Call) bridgeTarget(leg Leg, target string) {
	log := c.log.With("target", target)
	log.Info("call connected to target")
	c.rec.Connected("", c.f.clock.Now())
	if err := c.relay(leg, "target", log); err != nil {
		c.end(outcome.Failed)
		return
	}
	c.end(outcome.Transferred)
}

// targetDial is a target being called on its own goroutine.
type targetDial struct {
	cancel context.CancelFunc
	res    chan *targetResult
	taken  bool
}

type targetResult struct {
	step routing.Step
	leg  Leg
	err  error
}

// dialTarget calls a target for at most targetRingTimeout.
func (c *Call) dialTarget(ctx context.Context, s routing.Step) *targetDial {
	ctx, cancel := withDeadline(ctx, c.f.clock, c.f.clock.Now().Add(targetRingTimeout))
	t := &targetDial{cancel: cancel, res: make(chan *targetResult, 1)}
	go func() {
		leg, err := c.f.dialer.Dial(ctx, Dest{URI: s.URI, Line: c.attrs.Line})
		t.res <- &targetResult{step: s, leg: leg, err: err}
	}()
	return t
}

// results delivers the dial's one result (never, for a nil dial).
func (t *targetDial) results() <-chan *targetResult {
	if t == nil {
		return nil
	}
	return t.res
}

// done marks the result as received, so stop does not wait for it.
func (t *targetDial) done() {
	t.taken = true
	t.cancel()
}

// stop ends a dial in progress without waiting for it (a SIP CANCEL can take a while;
// an advocate who answered meanwhile must not wait), and hangs up a target that answered
// meanwhile.
func (t *targetDial) stop() {
	if t == nil || t.taken {
		return
	}
	t.taken = true
	t.cancel()
	go func() {
		if r := <-t.res; r.err == nil {
			_ = r.leg.Hangup(context.Background(), "no longer needed")
		}
	}()
}
