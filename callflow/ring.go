package callflow

import (
	"context"
	"time"

	"github.com/hotline-project/hotline/queue"
)

// ringGrace is how long after the engine's own ring deadline a ring is cut off anyway, so
// that a lost CancelRing cannot leave a phone ringing.
const ringGrace = 5 * time.Second

// ringHandle is one ring of an advocate for a call: the engine may cancel a ring and ring
// the same advocate for the same call again at once (the only one left, after a timeout),
// so a ring ending late must find its own handle, not the next ring's, to report.
type ringHandle struct{ cancel context.CancelFunc }

// startRing starts ringing an advocate for a call, on its own goroutine.
func (f *Flow) startRing(r queue.Ring) {
	f.mu.Lock()
	c := f.calls[r.Call]
	if c == nil {
		f.mu.Unlock()
		// The call is gone; tell the engine the ring failed so the advocate is freed.
		f.exec(f.result(r, queue.Failed, f.clock.Now()))
		return
	}
	ctx, cancel := withDeadline(context.Background(), f.clock, r.Deadline.Add(ringGrace))
	h := &ringHandle{cancel: cancel}
	c.rings[r.Advocate] = h
	f.mu.Unlock()
	go f.ring(ctx, c, r, h)
}

// cancelRing stops ringing an advocate for a call. The ring reports nothing after this.
func (f *Flow) cancelRing(callID, advocate string) {
	f.mu.Lock()
	var h *ringHandle
	if c := f.calls[callID]; c != nil {
		h = c.rings[advocate]
		delete(c.rings, advocate)
	}
	f.mu.Unlock()
	if h != nil {
		h.cancel()
	}
}

// result reports a ring's outcome to the engine and returns its actions; a stale result
// (the ring was cancelled) gives none.
func (f *Flow) result(r queue.Ring, out queue.Outcome, now time.Time) []queue.Action {
	acts, err := f.eng.RingResult(r.Call, r.Advocate, out, now)
	if err != nil {
		f.log.Debug("ring result not taken", "advocate", r.Advocate, "outcome", out.String(), "err", err)
		return nil
	}
	return acts
}

// takeRing takes ring h of advocate out of c's rings, and reports whether it was still
// there: false when the engine cancelled it (cancelRing), and the ring reports nothing.
func (f *Flow) takeRing(c *Call, advocate string, h *ringHandle) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	live := c.rings[advocate] == h
	if live {
		delete(c.rings, advocate)
	}
	return live
}

// ring calls the advocate's phones (all their registered contacts at once; the first to
// answer takes the call) and reports the outcome. An answered ring that the engine
// connects is handed to the caller's side of the flow, which bridges it.
func (f *Flow) ring(ctx context.Context, c *Call, r queue.Ring, h *ringHandle) {
	log := c.log.With("advocate", r.Advocate)
	f.pace(ctx, c, r.Advocate)
	if f.claim != nil && ctx.Err() == nil {
		if err := f.claim(ctx, r.Call, r.Advocate, r.Deadline); err != nil {
			if !f.takeRing(c, r.Advocate, h) {
				return
			}
			h.cancel()
			log.Info("advocate not rung: not claimed", "err", err)
			acts, uerr := f.eng.Unrung(r.Call, r.Advocate, f.clock.Now())
			if uerr != nil {
				log.Debug("unrung ring not taken", "err", uerr)
			}
			f.exec(acts)
			return
		}
	}
	adv, out := f.dialAdvocate(ctx, c, r)
	if !f.takeRing(c, r.Advocate, h) {
		// The engine cancelled the ring (caller gone, timeout, another advocate answered):
		// it reports nothing; a phone answered too late is hung up.
		if adv != nil {
			log.Info("advocate answered after the ring was cancelled; hanging up")
			_ = adv.Hangup(context.Background(), "ring cancelled")
		}
		return
	}
	defer h.cancel()
	log.Info("ring ended", "outcome", out.String())
	if c.ringEnded != nil && out != queue.Answered {
		c.ringEnded(r.Advocate, out)
	}
	now := f.clock.Now()
	var conn *queue.Connect
	var rest []queue.Action
	for _, a := range f.result(r, out, now) {
		if cn, ok := a.(queue.Connect); ok && cn.Call == r.Call && cn.Advocate == r.Advocate {
			conn = &cn
			continue
		}
		rest = append(rest, a)
	}
	f.exec(rest)
	if adv == nil {
		return
	}
	if conn == nil {
		log.Warn("the engine did not connect an answered ring; hanging up the advocate")
		_ = adv.Hangup(context.Background(), "not connected")
		return
	}
	// One Connect per call: the channel's one slot is free.
	c.answered <- answer{leg: adv, advocate: conn.Advocate, queue: conn.Queue, at: now, waited: conn.Waited, log: log}
}

// ringPace is the least time between two rings of one advocate's phone for one call.
// When everyone who could take a call has missed it, the engine starts the round over at
// once; a phone that refuses at once (busy, 480) would otherwise be sent INVITEs in a
// tight loop while the caller waits and nobody else can take the call.
const ringPace = 2 * time.Second

// pace waits, if need be, so that the advocate's phone is not rung for the call again
// within ringPace of the last time; ctx ending (the ring cancelled) ends the wait.
func (f *Flow) pace(ctx context.Context, c *Call, advocate string) {
	now := f.clock.Now()
	f.mu.Lock()
	at := c.lastRing[advocate].Add(ringPace)
	if at.Before(now) {
		at = now
	}
	c.lastRing[advocate] = at
	f.mu.Unlock()
	if !at.After(now) {
		return
	}
	t := timerAt(f.clock, at)
	defer t.Stop()
	select {
	case <-t.C():
	case <-ctx.Done():
	}
}

// dialAdvocate rings every registered phone of the advocate and returns the first that
// answers, hanging up any other that answers too.
func (f *Flow) dialAdvocate(ctx context.Context, c *Call, r queue.Ring) (Leg, queue.Outcome) {
	targets := f.contacts.Contacts(r.Advocate)
	if len(targets) == 0 {
		return nil, queue.Failed
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		leg Leg
		err error
	}
	results := make(chan result, len(targets))
	for _, t := range targets {
		t.Line = c.attrs.Line
		go func() {
			leg, err := f.dialer.Dial(ctx, t)
			results <- result{leg, err}
		}()
	}
	var won Leg
	out := queue.NoAnswer
	for range targets {
		a := <-results
		switch {
		case a.err == nil && won == nil:
			won, out = a.leg, queue.Answered
			cancel() // stop ringing the other phones
		case a.err == nil:
			_ = a.leg.Hangup(context.Background(), "answered elsewhere")
		case won == nil:
			out = worse(out, ringOutcome(a.err))
		}
	}
	return won, out
}
