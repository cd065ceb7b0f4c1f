package callflow

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/outcome"
	"github.com/hotline-project/hotline/prompts"
)

// How a callback's try ended, for the admin API's "last" and the logs (never a metric
// label: the metrics count attempted and reached only).
const (
	tryReached       = "reached"
	tryBusy          = "busy"
	tryNoAnswer      = "no_answer"
	tryFailed        = "failed"
	tryNoKey         = "no_key" // answered, nobody pressed 1: a machine, or not the caller
	tryAdvocateLeft  = "advocate_hung_up"
	tryWindowEnded   = "window_ended"
	tryCannotDecrypt = "cannot_decrypt"
)

// try waits for an advocate to answer the callback's ring, then makes the call: the
// whisper, the dial, the gate, the bridge. It ends the try's record and reschedules or
// forgets the request.
func (f *Flow) try(ctx context.Context, p *pendingCallback, c *Call) {
	f.cb.mu.Lock()
	r := p.req
	f.cb.mu.Unlock()
	expT := timerAt(f.clock, r.Expires)
	defer stopTimer(expT)
	var a answer
	select {
	case a = <-c.answered:
	case <-chanOf(expT):
		if a = c.leaveCallbackQueue(); a.leg == nil {
			f.endTry(p, c, tryWindowEnded)
			return
		}
	case <-ctx.Done():
		// Cancelled through the admin API, or the server is stopping: out of the queue.
		if a = c.leaveCallbackQueue(); a.leg == nil {
			f.endTry(p, c, "")
			return
		}
	}
	result := c.callBack(a, r)
	f.mu.Lock()
	c.talking = answer{}
	f.mu.Unlock()
	f.exec(f.callEnded(c.ID))
	f.endTry(p, c, result)
}

// leaveCallbackQueue takes a callback out of its queue; if an advocate answered at that
// very moment, it returns their leg instead.
func (c *Call) leaveCallbackQueue() answer {
	f := c.f
	acts, err := f.eng.Leave(c.ID, f.clock.Now())
	if err == nil {
		f.exec(acts)
		return answer{}
	}
	select {
	case a := <-c.answered:
		return a
	default:
		return answer{}
	}
}

// callBack makes the call to the number, advocate first: the advocate who answered hears
// the whisper, the number is dialled through the trunk with a neutral caller ID, whoever
// answers hears the gate, and only a 1 pressed there bridges them. It returns how the try
// ended.
func (c *Call) callBack(a answer, r CallbackRequest) string {
	f := c.f
	cfg := *f.callbackSettings()
	log := a.log
	f.mu.Lock()
	c.talking = a // for HangUp from the console, and the admin API's state
	f.mu.Unlock()
	c.rec.Connected(a.advocate, a.at)
	f.cbMetrics.Callback(r.Queue, cbAttempted)
	if !f.clock.Now().Before(r.Expires) {
		_ = a.leg.Hangup(context.Background(), "callback window ended")
		return tryWindowEnded
	}
	c.callbackWhisper(a)
	number, err := f.sealer.Open(r.ID, r.KeyID, r.Sealed)
	if err != nil {
		log.Error("callback number cannot be opened (is its key still in callback.key_file?)", "key_id", r.KeyID, "err", err)
		_ = a.leg.Hangup(context.Background(), "callback failed")
		return tryCannotDecrypt
	}
	dest, ok := c.callbackDest(cfg, r, number)
	if !ok {
		log.Error("callback trunk is not a target", "trunk", cfg.Trunk)
		_ = a.leg.Hangup(context.Background(), "callback failed")
		return tryFailed
	}
	// The advocate hears that the number is being called while it rings; their hanging
	// up ends the dial.
	adv := a.leg
	dctx, cancel := withDeadline(adv.Context(), f.clock, f.clock.Now().Add(cfg.RingTimeout))
	defer cancel()
	callee, err := c.dialPlaying(dctx, a, dest)
	if err != nil {
		out := dialTryOutcome(adv, err)
		log.Info("callback not answered", "result", out)
		c.notReached(a)
		return out
	}
	gate := "callback_gate"
	if r.Consent {
		gate = "callback_gate_named"
	}
	if !c.gate(callee, adv, gate, r.Language, cfg.GateTimeout) {
		_ = callee.Hangup(context.Background(), "callback gate: no key")
		if adv.Context().Err() != nil {
			return tryAdvocateLeft
		}
		log.Info("callback answered, but nobody pressed 1; hung up without a word more", "result", tryNoKey)
		c.notReached(a)
		return tryNoKey
	}
	log.Info("callback connected", "queue", r.Queue)
	c.leg = callee
	c.rec.WrapUp(f.live.Load().Settings(r.Queue).WrapUp)
	requeue, err := c.talk(adv, a.advocate, log)
	if err != nil {
		return tryFailed
	}
	if requeue {
		// The advocate left a conference (an interpreter or partner on the line): a live
		// caller would go back to the queue, but a callback's callee has no place in it;
		// they were reached, and the call ends rather than leave them with a stranger.
		_ = callee.Hangup(context.Background(), "advocate left the callback")
	}
	return tryReached
}

// callbackDest is where a callback to number is dialled: through the trunk target (in the
// live configuration if it is there still), with the hotline's neutral caller ID, and its
// name shown only with the caller's consent. It reports false if the trunk is no target.
func (c *Call) callbackDest(cfg config.Callback, r CallbackRequest, number string) (Dest, bool) {
	trunk, ok := c.snap.Table.TargetURI(cfg.Trunk)
	if live, lok := c.f.live.Load().Table.TargetURI(cfg.Trunk); lok {
		trunk, ok = live, true
	}
	display := ""
	if r.Consent {
		display = cfg.HotlineName
	}
	return Dest{URI: dialURI(trunk, number), Line: r.Line, FromUser: cfg.CallerID, FromDisplay: display, Private: true}, ok
}

// dialPlaying dials dest while the advocate of a hears "calling them now"; an answer cuts
// the prompt short, so that whoever answers hears the gate at once.
func (c *Call) dialPlaying(dctx context.Context, a answer, dest Dest) (Leg, error) {
	f := c.f
	type dialed struct {
		leg Leg
		err error
	}
	res := make(chan dialed, 1)
	go func() {
		leg, err := f.dialer.Dial(dctx, dest)
		res <- dialed{leg, err}
	}()
	pctx, stopPlay := context.WithCancel(dctx)
	played := make(chan struct{})
	go func() {
		defer close(played)
		c.playTo(pctx, a.leg, "callback_dialing", advocateLanguage(f.live.Load(), a.advocate))
	}()
	d := <-res
	stopPlay()
	<-played
	return d.leg, d.err
}

// dialTryOutcome is how a try ended whose dial failed with err, the advocate on adv.
func dialTryOutcome(adv Leg, err error) string {
	switch {
	case adv.Context().Err() != nil:
		return tryAdvocateLeft
	case errors.Is(err, ErrBusy):
		return tryBusy
	case errors.Is(err, ErrNoAnswer), errors.Is(err, ErrRejected):
		return tryNoAnswer
	}
	return tryFailed
}

// callbackWhisper tells the advocate that this is a callback, and its language and
// reason ("callback, Spanish, needs help now"), in the advocate's language.
func (c *Call) callbackWhisper(a answer) {
	lang := advocateLanguage(c.f.live.Load(), a.advocate)
	var parts []*prompts.Prompt
	for _, name := range []string{"callback_whisper", "whisper_lang_" + c.attrs.Language, "whisper_" + c.attrs.Reason} {
		if p, ok := c.snap.Prompts.Get(lang, name); ok {
			parts = append(parts, p)
		}
	}
	if len(parts) > 0 {
		if err := a.leg.Play(a.leg.Context(), prompts.Join(parts...)); err != nil && a.leg.Context().Err() == nil {
			a.log.Warn("callback whisper not played", "err", err)
		}
	}
}

// playTo plays a prompt to a leg in lang and waits for its end (or ctx's).
func (c *Call) playTo(ctx context.Context, leg Leg, name, lang string) {
	if p, ok := c.snap.Prompts.Get(lang, name); ok {
		_ = leg.Play(ctx, p)
	}
}

// notReached tells the advocate the callback was not answered, and hangs them up.
func (c *Call) notReached(a answer) {
	if a.leg.Context().Err() == nil {
		c.playTo(a.leg.Context(), a.leg, "callback_not_reached", advocateLanguage(c.f.live.Load(), a.advocate))
	}
	_ = a.leg.Hangup(context.Background(), "callback not reached")
}

// gate plays the neutral gate prompt to whoever answered and waits, from its start to
// timeout after its end, for a 1. Any other key is ignored; nothing else is played, so an
// answering machine records nothing but the gate, and no message is left.
func (c *Call) gate(callee, adv Leg, name, lang string, timeout time.Duration) bool {
	pressed := make(chan struct{})
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case d, ok := <-callee.Digits():
				if !ok {
					return
				}
				if d == '1' {
					close(pressed)
					return
				}
			case <-stop:
				return
			}
		}
	}()
	// An answering machine's beep hangs up at once, even mid-gate: nothing of the hotline
	// is left as a message (a person presses 1; a machine records what follows its beep).
	beeped := make(chan struct{})
	if w, ok := callee.(BeepWatcher); ok {
		var once sync.Once
		w.WatchBeep(func() { once.Do(func() { close(beeped) }) })
		defer w.WatchBeep(nil)
	}
	pctx, cancel := context.WithCancel(callee.Context())
	defer cancel()
	go func() {
		select {
		case <-pressed:
			cancel()
		case <-beeped:
			cancel()
		case <-adv.Done():
			cancel()
		case <-pctx.Done():
		}
	}()
	c.playTo(pctx, callee, name, lang)
	t := c.f.clock.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-pressed:
		return adv.Context().Err() == nil
	case <-beeped:
		c.log.Info("callback answered by a machine (a beep): hung up, no message left")
	case <-t.C():
	case <-callee.Done():
	case <-adv.Done():
	}
	return false
}

// endTry ends a try's record, and forgets the request (reached, or no try left in its
// window) or schedules the next try. An empty result (cancelled, or the server stopping
// before any advocate answered) is no try.
func (f *Flow) endTry(p *pendingCallback, c *Call, result string) {
	f.untrack(c)
	now := f.clock.Now()
	cfg := f.callbackSettings()
	f.cb.mu.Lock()
	_, live := f.cb.pending[p.req.ID]
	r := p.req
	p.active, p.cancel = nil, nil
	gone := ""
	switch {
	case !live: // cancelled meanwhile: already forgotten
	case result == "":
	case result == tryReached:
		gone = cbReached
	case result == tryWindowEnded:
		gone = cbExpired
	default:
		r.Attempts++
		r.Last = result
		r.Next = now.Add(cfg.RetryAfter)
		switch {
		case r.Attempts >= cfg.Attempts || result == tryCannotDecrypt:
			gone = cbFailed
		case !r.Next.Before(r.Expires):
			gone = cbExpired
		}
		p.req = r
	}
	if gone != "" {
		delete(f.cb.pending, r.ID)
	}
	f.cb.mu.Unlock()
	switch {
	case result == tryReached:
		c.rec.Ended(outcome.Completed, now)
	case result != "":
		c.rec.Ended(outcome.CallbackMissed, now)
	}
	_ = c.rec.Finish(context.Background())
	switch {
	case gone != "":
		f.callbackGone(r, gone, "try ended "+result)
	case live && result != "":
		f.cbStore.Put(r)
		f.log.Info("callback not reached; tried again later", "callback", r.ID, "result", result, "attempts", r.Attempts,
			"next", r.Next.Sub(now).Round(time.Second))
	}
	f.pokeCallbacks()
}

// dialURI is the trunk's URI with the number as its user part.
func dialURI(trunk, number string) string {
	scheme, rest, ok := strings.Cut(trunk, ":")
	if !ok {
		return trunk
	}
	if _, host, ok := strings.Cut(rest, "@"); ok {
		rest = host
	}
	return scheme + ":" + number + "@" + rest
}
