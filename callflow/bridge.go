package callflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hotline-project/hotline/outcome"
	"github.com/hotline-project/hotline/prompts"
	"github.com/hotline-project/hotline/queue"
)

// connect puts the caller through to the advocate who answered, on the caller's side of
// the flow: the whisper to the advocate while the caller still hears the hold audio, then
// the hold audio stops and the legs are bridged until either hangs up; then the engine
// hears the call ended.
//
// The call's wait ends at the advocate's answer (a.at), in the record as in
// hotline_queue_wait_seconds (issue 13, item 7); the whisper counts as talk.
func (c *Call) connect(hold *holdPlayer, a *answer) (requeue bool) {
	c.beforeTalk(hold, a)
	defer c.release()
	requeue, err := c.talk(a.leg, a.advocate, a.log)
	if err != nil {
		c.end(outcome.Failed)
	}
	return requeue
}

// beforeTalk is connect's work before the bridge: the record, the whisper, the hold
// audio's end. (Apart, so that the frames the call's goroutine is parked below while the
// call is bridged stay small: see Handle.)
//
//go:noinline
func (c *Call) beforeTalk(hold *holdPlayer, a *answer) {
	f := c.f
	if !c.connectedOnce {
		// The record's advocate is the one who took the call; one who takes it after a
		// transfer or a requeue is in its steps.
		c.rec.Connected(a.advocate, a.at)
		c.connectedOnce = true
	}
	f.mu.Lock()
	c.talking, c.engineID = *a, c.ID // for HangUp, and the engine's end of the call
	f.mu.Unlock()
	if c.snap.Settings(a.queue).Whisper {
		hold.keepPlaying() // the caller hears it during the whisper
		c.whisper(a.leg, a.advocate, a.log)
	}
	hold.stop()
	a.log.Info("call connected", "queue", a.queue, "waited", a.waited.Round(time.Second))
	// The wrap-up is the engine's, from the configuration in force.
	c.rec.WrapUp(f.live.Load().Settings(a.queue).WrapUp)
}

// release tells the queue engine that the advocate talking to the caller is done with the
// call (they wrap up) and forgets them; it does nothing when no advocate is.
func (c *Call) release() {
	f := c.f
	f.mu.Lock()
	id := c.engineID
	c.talking, c.engineID = answer{}, ""
	f.mu.Unlock()
	if id != "" {
		f.exec(f.callEnded(id))
	}
}

func (f *Flow) callEnded(callID string) []queue.Action {
	acts, err := f.eng.CallEnded(callID, f.clock.Now())
	if err != nil {
		f.log.Warn("call end not taken", "err", err)
	}
	return acts
}

// relay bridges the caller's leg to the other party's until either hangs up, and then
// hangs up the other. A bridge that cannot be made (a leg ended as it was answered) hangs
// up both and is returned.
func (c *Call) relay(other Leg, party string, log *slog.Logger) error {
	c.phase.Store(phaseBridge)
	unbridge, err := c.f.bridge(c.leg, other)
	if err != nil {
		log.Warn("bridge failed", "err", err)
		_ = other.Hangup(context.Background(), "bridge failed")
		_ = c.leg.Hangup(context.Background(), "bridge failed")
		return err
	}
	defer unbridge()
	select {
	case <-c.leg.Done():
		log.Info("caller hung up; ending the " + party + "'s leg")
		_ = other.Hangup(context.Background(), "caller hung up")
	case <-other.Done():
		log.Info(party + " hung up; ending the caller's leg")
		_ = c.leg.Hangup(context.Background(), party+" hung up")
	}
	return nil
}

// whisper tells the advocate who answered the caller's language and reason before the
// caller is put through (the caller still hears the hold audio). A prompt missing for a
// language is left out; a leg that ends meanwhile ends the whisper.
func (c *Call) whisper(adv Leg, advocate string, log *slog.Logger) {
	cat := c.snap.Prompts
	// The advocate is the live configuration's (one a reload added is not in the call's).
	lang := advocateLanguage(c.f.live.Load(), advocate)
	var parts []*prompts.Prompt
	for _, name := range []string{"whisper_lang_" + c.attrs.Language, "whisper_" + c.attrs.Reason} {
		if p, ok := cat.Get(lang, name); ok {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(adv.Context())
	defer cancel()
	defer context.AfterFunc(c.leg.Context(), cancel)()
	if err := adv.Play(ctx, prompts.Join(parts...)); err != nil && ctx.Err() == nil {
		log.Warn("whisper not played", "err", err)
	}
}

// ErrNoCall means the advocate is not talking to a caller (a ring is answered or refused
// on the phone).
var ErrNoCall = errors.New("no call in progress")

// HangUp ends the call an advocate is talking on, as if they had hung up their phone: the
// caller's leg follows, and the call is recorded as for a hang-up on the phone.
func (f *Flow) HangUp(ctx context.Context, advocate string) error {
	var leg Leg
	f.mu.Lock()
	for _, c := range f.calls {
		if c.talking.leg != nil && c.talking.advocate == advocate {
			leg = c.talking.leg
			break
		}
	}
	f.mu.Unlock()
	if leg == nil {
		return fmt.Errorf("%w: %s", ErrNoCall, advocate)
	}
	f.log.Info("advocate hangs up from the console", "advocate", advocate)
	return leg.Hangup(ctx, "advocate hung up from the console")
}
