package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/media"
	"github.com/hotline-project/hotline/metrics"
	"github.com/hotline-project/hotline/prompts"
	"github.com/hotline-project/hotline/queue"
	"github.com/hotline-project/hotline/records"
	"github.com/hotline-project/hotline/routing"
	"github.com/hotline-project/hotline/sip"
)

// firstAnnounce is how long a caller waits on hold before the first announcement of their
// place in line: the "connecting you" prompt has just played, and most calls are answered
// before it comes.
const firstAnnounce = 20 * time.Second

// dispatcher connects the queue engine to the phones: it rings advocates' phones, bridges
// the answered ones to their callers, plays hold audio and announcements to waiting callers
// and moves them along their overflow steps. The engine decides; the dispatcher acts.
type dispatcher struct {
	eng      *queue.Engine
	srv      *sip.Server
	live     *atomic.Pointer[snapshot]               // prompts and queue settings in force
	contacts func(advocate string) []sip.DialRequest // the advocate's registered phones
	metrics  *metrics.Queues
	now      func() time.Time
	log      *slog.Logger

	mu    sync.Mutex
	calls map[string]*waiter // by call id: callers in a queue or talking to an advocate
}

// callAttrs are what the menus learned of a queued call: what the whisper tells the
// advocate, and what routes it again after a reload removed its queue.
type callAttrs struct{ lang, reason string }

// waiter is a caller in the queues.
type waiter struct {
	c     *sip.Call
	rec   *records.Call
	attrs callAttrs
	log   *slog.Logger
	queue string // guarded by dispatcher.mu

	rings map[string]context.CancelFunc // advocate -> cancels its ringing; guarded by dispatcher.mu

	connectOnce sync.Once
	connected   chan struct{} // closed when an advocate answered: the hold audio stops
	ended       chan struct{} // closed when the bridge has ended and the engine knows
}

func newDispatcher(eng *queue.Engine, live *atomic.Pointer[snapshot], m *metrics.Queues,
	contacts func(string) []sip.DialRequest, log *slog.Logger) *dispatcher {
	return &dispatcher{
		eng: eng, live: live, contacts: contacts, metrics: m,
		now: time.Now, log: log, calls: map[string]*waiter{},
	}
}

func (d *dispatcher) prompts() *prompts.Catalogue { return d.live.Load().prompts }

func (d *dispatcher) settings(queue string) config.QueueSettings {
	return d.live.Load().settings(queue)
}

// run drives the engine's clock (ring timeouts, wrap-up ends) until ctx ends.
func (d *dispatcher) run(ctx context.Context) error {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			d.exec(d.eng.Tick(d.now()))
		}
	}
}

// exec carries out the engine's actions, in order. Connect is carried out by the ring that
// was answered (see ring), so it is skipped here.
func (d *dispatcher) exec(acts []queue.Action) {
	for _, a := range acts {
		switch a := a.(type) {
		case queue.Ring:
			d.startRing(a)
		case queue.CancelRing:
			d.cancelRing(a.Call, a.Advocate)
		}
	}
}

// queueCall keeps the caller in the queue dec chose until an advocate answers and the call
// ends, or the caller hangs up. It returns when the call is over. The caller first hears
// then (the menus' "connecting you"), while the advocates' phones already ring.
func (d *dispatcher) queueCall(ctx context.Context, c *sip.Call, rec *records.Call, attrs callAttrs, dec routing.Decision,
	then []*prompts.Prompt, log *slog.Logger) {
	w := &waiter{
		c: c, rec: rec, attrs: attrs, log: log, queue: dec.Queue,
		rings: map[string]context.CancelFunc{}, connected: make(chan struct{}), ended: make(chan struct{}),
	}
	d.mu.Lock()
	d.calls[c.ID] = w
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.calls, c.ID)
		d.mu.Unlock()
	}()
	since := d.now()
	rec.Queued(dec.Queue, since)
	d.metrics.Enqueued(dec.Queue)
	acts, err := d.eng.Enqueue(queue.Caller{ID: c.ID, Queue: dec.Queue, Language: attrs.lang, Priority: dec.Priority}, since)
	if err != nil {
		// Routing names only configured queues; if the engine still refuses, the caller stays
		// on hold rather than being dropped, and the log says why.
		log.Error("cannot queue the call", "queue", dec.Queue, "err", err)
	}
	log.Info("call queued", "queue", dec.Queue, "priority", dec.Priority)
	d.exec(acts)

	d.hold(ctx, w, dec, since, then)
	if w.bridged() {
		return
	}
	// The caller hung up (or the server is stopping) while waiting.
	acts, err = d.eng.Abandon(c.ID, d.now())
	if err != nil {
		// An advocate answered at the same moment: the bridge sees the caller gone and
		// ends the call.
		w.bridged()
		return
	}
	log.Info("caller left the queue", "queue", w.currentQueue(d), "waited", d.now().Sub(since).Round(time.Second))
	d.exec(acts)
}

// bridged reports whether an advocate answered the caller, and then waits for the bridge
// to end.
func (w *waiter) bridged() bool {
	select {
	case <-w.connected:
		<-w.ended
		return true
	default:
		return false
	}
}

func (w *waiter) currentQueue(d *dispatcher) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return w.queue
}

// hold plays hold audio to a waiting caller, with announcements of their place in line, and
// moves them along dec's overflow steps, until an advocate answers or the call ends.
func (d *dispatcher) hold(ctx context.Context, w *waiter, dec routing.Decision, since time.Time, then []*prompts.Prompt) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-w.connected:
			cancel()
		case <-ctx.Done():
		}
	}()
	playAll(ctx, w.c, then)
	nextAnnounce := since.Add(firstAnnounce)
	for ctx.Err() == nil {
		now := d.now()
		wake := nextAnnounce
		every := d.settings(w.currentQueue(d)).AnnounceEvery
		if every == 0 {
			wake = time.Time{}
		}
		next, overflow := dec.Next(now.Sub(since))
		if overflow && (wake.IsZero() || since.Add(next.After).Before(wake)) {
			wake = since.Add(next.After)
		}
		playHold(ctx, w.c, w.log, wake)
		if ctx.Err() != nil {
			return
		}
		now = d.now()
		if overflow && !now.Before(since.Add(next.After)) {
			d.overflow(w, next, now)
			continue
		}
		if every != 0 && !now.Before(nextAnnounce) {
			d.announce(ctx, w)
			nextAnnounce = d.now().Add(every)
		}
	}
}

// playAll plays ps in order until one fails or ctx ends.
func playAll(ctx context.Context, c *sip.Call, ps []*prompts.Prompt) {
	for _, p := range ps {
		if c.Play(ctx, p) != nil {
			return
		}
	}
}

// playHold loops the hold audio to c until until (zero: forever) or ctx ends.
func playHold(ctx context.Context, c *sip.Call, log *slog.Logger, until time.Time) {
	if !until.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, until)
		defer cancel()
	}
	hold := prompts.Hold()
	for ctx.Err() == nil {
		if err := c.Play(ctx, hold); err != nil && ctx.Err() == nil {
			log.Warn("hold audio stopped", "err", err)
			<-ctx.Done()
		}
	}
}

// announce tells the caller their place in line and, when it can be estimated honestly, the
// expected wait.
func (d *dispatcher) announce(ctx context.Context, w *waiter) {
	pos, ok := d.eng.Position(w.c.ID)
	if !ok {
		return
	}
	cat, lang := d.prompts(), w.attrs.lang
	var parts []*prompts.Prompt
	if p, ok := cat.Get(lang, "you_are_caller_number"); ok {
		if n, err := cat.Number(lang, pos); err == nil {
			parts = append(append(parts, p), n...)
		}
	}
	if ewt, ok := d.eng.EstimatedWait(w.c.ID); ok {
		if p, ok := cat.Get(lang, "expected_wait"); ok {
			if dur, err := cat.Duration(lang, ewt); err == nil {
				parts = append(append(parts, p), dur...)
			}
		}
	}
	if len(parts) == 0 {
		return
	}
	w.log.Debug("announcing place in line", "position", pos)
	if err := w.c.Play(ctx, prompts.Join(parts...)); err != nil && ctx.Err() == nil {
		w.log.Warn("announcement not played", "err", err)
	}
}

// overflow moves a waiting caller to the next step of their route.
func (d *dispatcher) overflow(w *waiter, step routing.Step, now time.Time) {
	from := w.currentQueue(d)
	if step.Queue == "" || step.Queue == from {
		if step.Target != "" {
			w.log.Warn("overflow to a target is not supported yet; the caller stays queued", "target", step.Target)
		}
		return
	}
	acts, err := d.eng.Move(w.c.ID, step.Queue, now)
	if err != nil {
		w.log.Warn("overflow failed; the caller stays queued", "from", from, "to", step.Queue, "err", err)
		return
	}
	d.mu.Lock()
	w.queue = step.Queue
	d.mu.Unlock()
	d.metrics.Overflowed(from)
	d.metrics.Enqueued(step.Queue)
	w.rec.Overflowed(step.Queue)
	w.rec.Queued(step.Queue, now)
	w.log.Info("call overflowed", "from", from, "to", step.Queue)
	d.exec(acts)
}

// startRing starts ringing an advocate for a call, on its own goroutine.
func (d *dispatcher) startRing(r queue.Ring) {
	d.mu.Lock()
	w := d.calls[r.Call]
	if w == nil {
		d.mu.Unlock()
		// The call is gone; tell the engine the ring failed so the advocate is freed.
		d.exec(d.result(r, queue.Failed))
		return
	}
	// The engine times the ring out on its own (Tick, then CancelRing); the deadline here
	// only guarantees that a lost CancelRing cannot leave a phone ringing.
	ctx, cancel := context.WithDeadline(context.Background(), r.Deadline.Add(5*time.Second))
	w.rings[r.Advocate] = cancel
	d.mu.Unlock()
	go d.ring(ctx, w, r)
}

// cancelRing stops ringing an advocate for a call. The ring reports nothing after this.
func (d *dispatcher) cancelRing(callID, advocate string) {
	d.mu.Lock()
	var cancel context.CancelFunc
	if w := d.calls[callID]; w != nil {
		cancel = w.rings[advocate]
		delete(w.rings, advocate)
	}
	d.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// result reports a ring's outcome to the engine and returns its actions; a stale result
// (the ring was cancelled) gives none.
func (d *dispatcher) result(r queue.Ring, out queue.Outcome) []queue.Action {
	acts, err := d.eng.RingResult(r.Call, r.Advocate, out, d.now())
	if err != nil {
		d.log.Debug("ring result not taken", "advocate", r.Advocate, "outcome", out.String(), "err", err)
		return nil
	}
	return acts
}

// ring calls the advocate's phones (all their registered contacts at once; the first to
// answer takes the call) and reports the outcome; an answered ring is bridged.
func (d *dispatcher) ring(ctx context.Context, w *waiter, r queue.Ring) {
	log := w.log.With("advocate", r.Advocate)
	adv, out := d.dialAdvocate(ctx, w, r)
	d.mu.Lock()
	cancel, live := w.rings[r.Advocate]
	delete(w.rings, r.Advocate)
	d.mu.Unlock()
	if live {
		defer cancel()
	}
	if !live {
		// The engine cancelled the ring (caller gone, timeout, another advocate answered):
		// it reports nothing; a phone answered too late is hung up.
		if adv != nil {
			log.Info("advocate answered after the ring was cancelled; hanging up")
			_ = adv.Hangup(context.Background(), "ring cancelled")
		}
		return
	}
	log.Info("ring ended", "outcome", out.String())
	var conn *queue.Connect
	var rest []queue.Action
	for _, a := range d.result(r, out) {
		if c, ok := a.(queue.Connect); ok && c.Call == r.Call && c.Advocate == r.Advocate {
			conn = &c
			continue
		}
		rest = append(rest, a)
	}
	d.exec(rest)
	if adv == nil {
		return
	}
	if conn == nil {
		log.Warn("the engine did not connect an answered ring; hanging up the advocate")
		_ = adv.Hangup(context.Background(), "not connected")
		return
	}
	d.bridge(w, adv, *conn, log)
}

// dialAdvocate rings every registered phone of the advocate and returns the first that
// answers, hanging up any other that answers too.
func (d *dispatcher) dialAdvocate(ctx context.Context, w *waiter, r queue.Ring) (*sip.Call, queue.Outcome) {
	targets := d.contacts(r.Advocate)
	if len(targets) == 0 {
		return nil, queue.Failed
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		c   *sip.Call
		err error
	}
	answers := make(chan answer, len(targets))
	for _, t := range targets {
		t.Line = w.c.Line
		go func() {
			c, err := d.srv.Dial(ctx, t)
			answers <- answer{c, err}
		}()
	}
	var won *sip.Call
	out := queue.NoAnswer
	for range targets {
		a := <-answers
		switch {
		case a.err == nil && won == nil:
			won, out = a.c, queue.Answered
			cancel() // stop ringing the other phones
		case a.err == nil:
			_ = a.c.Hangup(context.Background(), "answered elsewhere")
		case won == nil:
			out = worse(out, outcomeOf(a.err))
		}
	}
	return won, out
}

// outcomeOf classifies a failed dial for the engine.
func outcomeOf(err error) queue.Outcome {
	switch {
	case errors.Is(err, sip.ErrBusy):
		return queue.Busy
	case errors.Is(err, sip.ErrRejected):
		return queue.Rejected
	case errors.Is(err, sip.ErrNoAnswer):
		return queue.NoAnswer
	}
	return queue.Failed
}

// worse picks the outcome to report when several phones failed: a decline by the advocate
// says the most, then busy, then no answer; failure only when every phone failed.
func worse(a, b queue.Outcome) queue.Outcome {
	rank := func(o queue.Outcome) int {
		switch o {
		case queue.Rejected:
			return 3
		case queue.Busy:
			return 2
		case queue.NoAnswer:
			return 1
		}
		return 0
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// bridge connects the caller to the advocate's answered leg until either hangs up, then
// tells the engine the call ended.
func (d *dispatcher) bridge(w *waiter, adv *sip.Call, conn queue.Connect, log *slog.Logger) {
	defer close(w.ended)
	if d.settings(conn.Queue).Whisper {
		d.whisper(w, adv, conn.Advocate, log)
	}
	w.connectOnce.Do(func() { close(w.connected) })
	log.Info("call connected", "queue", conn.Queue, "waited", conn.Waited.Round(time.Second))
	w.rec.Connected(conn.Advocate, d.now())
	w.rec.WrapUp(d.settings(conn.Queue).WrapUp)
	defer func() {
		d.exec(d.callEnded(w.c.ID))
	}()
	if err := relay(w.c, adv, "advocate", log); err != nil {
		w.rec.Ended(records.OutcomeFailed, d.now())
	}
}

// relay bridges the caller's leg to the other party's until either hangs up, and then
// hangs up the other. A bridge that cannot be made (a leg ended as it was answered) hangs
// up both and is returned.
func relay(caller, other *sip.Call, party string, log *slog.Logger) error {
	br, err := media.NewBridge(caller.Leg(), other.Leg())
	if err != nil {
		log.Warn("bridge failed", "err", err)
		_ = other.Hangup(context.Background(), "bridge failed")
		_ = caller.Hangup(context.Background(), "bridge failed")
		return err
	}
	defer br.Unbridge()
	select {
	case <-caller.Done():
		log.Info("caller hung up; ending the " + party + "'s leg")
		_ = other.Hangup(context.Background(), "caller hung up")
	case <-other.Done():
		log.Info(party + " hung up; ending the caller's leg")
		_ = caller.Hangup(context.Background(), party+" hung up")
	}
	return nil
}

func (d *dispatcher) callEnded(callID string) []queue.Action {
	acts, err := d.eng.CallEnded(callID, d.now())
	if err != nil {
		d.log.Warn("call end not taken", "err", err)
	}
	return acts
}

// connectTarget sends a call to a destination outside this server (a partner center): it
// calls the target's URI and bridges the caller to it until either hangs up. A target that
// cannot be reached leaves the caller hearing that the hotline cannot take the call (with
// the safety line) and hung up: the route chose a place outside our queues.
func (d *dispatcher) connectTarget(ctx context.Context, c *sip.Call, rec *records.Call, lang string, step routing.Step,
	then []*prompts.Prompt, log *slog.Logger) {
	log = log.With("target", step.Target)
	hold, cancelHold := context.WithCancel(ctx)
	holdDone := make(chan struct{})
	go func() {
		defer close(holdDone)
		playAll(hold, c, then)
		playHold(hold, c, log, time.Time{})
	}()
	ring, cancel := context.WithTimeout(ctx, 60*time.Second)
	out, err := d.srv.Dial(ring, sip.DialRequest{Target: step.URI, Line: c.Line, FromUser: "hotline", FromDisplay: "Hotline"})
	cancel()
	cancelHold()
	<-holdDone
	if err != nil {
		log.Warn("target not reached", "err", err)
		rec.Ended(records.OutcomeFailed, d.now())
		if p, ok := d.prompts().Get(lang, "closed"); ok && ctx.Err() == nil {
			_ = c.Play(ctx, p)
		}
		_ = c.Hangup(ctx, "target not reached")
		return
	}
	log.Info("call connected to target")
	rec.Connected("", d.now())
	if err := relay(c, out, "target", log); err != nil {
		rec.Ended(records.OutcomeFailed, d.now())
		return
	}
	rec.Ended(records.OutcomeTransferred, d.now())
}

// whisper tells the advocate who answered the caller's language and reason before the
// caller is put through (the caller still hears the hold audio). A prompt missing for a
// language is left out; a leg that ends meanwhile ends the whisper.
func (d *dispatcher) whisper(w *waiter, adv *sip.Call, advocate string, log *slog.Logger) {
	cat := d.prompts()
	lang := d.advocateLanguage(advocate)
	var parts []*prompts.Prompt
	for _, name := range []string{"whisper_lang_" + w.attrs.lang, "whisper_" + w.attrs.reason} {
		if p, ok := cat.Get(lang, name); ok {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(adv.Context())
	defer cancel()
	defer context.AfterFunc(w.c.Context(), cancel)()
	if err := adv.Play(ctx, prompts.Join(parts...)); err != nil && ctx.Err() == nil {
		log.Warn("whisper not played", "err", err)
	}
}
