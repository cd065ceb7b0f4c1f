package callflow

import (
	"context"
	"log/slog"
	"sync"

	"github.com/hotline-project/hotline/ivr"
	"github.com/hotline-project/hotline/prompts"
)

// holdPlayer plays to a waiting caller: first the menus' last prompts, then the hold audio
// in a loop, interrupted for announcements. The call's loop stops it before the caller's
// leg is bridged, so the hold audio never races the bridge.
//
// On a leg that can start a prompt without waiting for it (ivr.Starter, as sip's calls
// can) it takes no goroutine: the call's loop waits for next() with its other events and
// calls advance(), and keepPlaying() lends it a goroutine only while the loop is busy
// elsewhere (the whisper to an advocate). On any other leg it plays on a goroutine of its
// own. A goroutine per waiting call is a share of the memory a call costs (issue 15).
type holdPlayer struct {
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}        // closed when nothing plays any more (goroutine, keepPlaying)
	pending chan *prompts.Prompt // an announcement to play next
	log     *slog.Logger

	mu  sync.Mutex
	cur context.CancelFunc // stops the hold audio now playing (goroutine mode)

	// Starter mode; guarded by mu.
	st          ivr.Starter
	then        []*prompts.Prompt // the menus' last prompts, not yet played
	playing     ivr.Playing       // the prompt now playing, or nil
	kind        int               // what playing is: playThen, playAnnouncement or playHold
	interrupted bool              // playing was stopped for an announcement
	failed      bool              // the hold audio failed: nothing more is played
	background  bool              // keepPlaying's goroutine runs (it closes done)
}

// startHold starts playing then, and the hold audio after it, to leg.
func startHold(ctx context.Context, leg Leg, then []*prompts.Prompt, log *slog.Logger) *holdPlayer {
	ctx, cancel := context.WithCancel(ctx)
	h := &holdPlayer{ctx: ctx, cancel: cancel, done: make(chan struct{}), pending: make(chan *prompts.Prompt, 1), log: log}
	if st, ok := leg.(ivr.Starter); ok {
		h.st, h.then = st, then
		h.mu.Lock()
		h.playNextLocked()
		h.mu.Unlock()
		return h
	}
	go func() {
		defer close(h.done)
		h.run(leg, then)
	}()
	return h
}

// run plays on the player's own goroutine (a leg that is no ivr.Starter).
func (h *holdPlayer) run(leg Leg, then []*prompts.Prompt) {
	ctx, log := h.ctx, h.log
	playAll(ctx, leg, then)
	hold := prompts.Hold()
	for ctx.Err() == nil {
		select {
		case p := <-h.pending:
			if err := leg.Play(ctx, p); err != nil && ctx.Err() == nil {
				log.Warn("announcement not played", "err", err)
			}
			continue
		default:
		}
		pctx, cancel := context.WithCancel(ctx)
		h.mu.Lock()
		waiting := len(h.pending) > 0
		if !waiting {
			h.cur = cancel
		}
		h.mu.Unlock()
		if waiting {
			cancel()
			continue
		}
		err := leg.Play(pctx, hold)
		h.mu.Lock()
		h.cur = nil
		h.mu.Unlock()
		interrupted := pctx.Err() != nil
		cancel()
		if err != nil && !interrupted && ctx.Err() == nil {
			log.Warn("hold audio stopped", "err", err)
			<-ctx.Done()
		}
	}
}

// next is closed when the prompt now playing has ended and advance should be called; nil
// (never ready) when the player runs on a goroutine or plays nothing.
func (h *holdPlayer) next() <-chan struct{} {
	if h == nil || h.st == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.playing == nil || h.background {
		return nil
	}
	return h.playing.Done()
}

// advance plays what comes next once the prompt playing has ended (Starter mode).
func (h *holdPlayer) advance() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.advanceLocked()
}

func (h *holdPlayer) advanceLocked() {
	if p := h.playing; p != nil {
		select {
		case <-p.Done():
		default:
			return // still playing
		}
		err, interrupted := p.Err(), h.interrupted
		h.playing, h.interrupted = nil, false
		if err != nil && !interrupted && h.ctx.Err() == nil {
			h.failedLocked(h.kind, err)
		}
	}
	h.playNextLocked()
}

// Kinds of prompt the player plays.
const (
	playThen         = iota // the menus' last prompts
	playAnnouncement        // the caller's place in line
	playHold                // the hold audio
)

// failedLocked handles a prompt of kind that could not be played, as the goroutine does:
// the menus' last prompts stop at the first that fails (playAll), an announcement is
// skipped, and hold audio that fails stops the playing.
func (h *holdPlayer) failedLocked(kind int, err error) {
	switch kind {
	case playThen:
		h.then = nil
	case playAnnouncement:
		h.log.Warn("announcement not played", "err", err)
	default:
		h.log.Warn("hold audio stopped", "err", err)
		h.failed = true
	}
}

// playNextLocked starts the next prompt: the menus' last ones, then an announcement
// waiting, else the hold audio.
func (h *holdPlayer) playNextLocked() {
	for h.ctx.Err() == nil && !h.failed && h.playing == nil {
		var p *prompts.Prompt
		kind := playThen
		if len(h.then) > 0 {
			p, h.then = h.then[0], h.then[1:]
		} else {
			select {
			case p = <-h.pending:
				kind = playAnnouncement
			default:
				p, kind = prompts.Hold(), playHold
			}
		}
		pb, err := h.st.StartPlay(p)
		if err != nil {
			h.failedLocked(kind, err)
			continue
		}
		h.playing, h.kind = pb, kind
	}
}

// keepPlaying lends the player a goroutine until stop, for when the call's loop no longer
// waits for next (Starter mode; on a goroutine already, nothing to do).
func (h *holdPlayer) keepPlaying() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.st == nil || h.background || h.ctx.Err() != nil {
		return
	}
	h.background = true
	go func() {
		defer close(h.done)
		for {
			h.mu.Lock()
			var ended <-chan struct{}
			if h.playing != nil {
				ended = h.playing.Done()
			}
			h.mu.Unlock()
			select {
			case <-ended:
				h.advance()
			case <-h.ctx.Done():
				return
			}
		}
	}()
}

// announce plays p as soon as the hold audio can be interrupted; an announcement still
// waiting to be played is replaced.
func (h *holdPlayer) announce(p *prompts.Prompt) {
	select {
	case <-h.pending:
	default:
	}
	select {
	case h.pending <- p:
	default:
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cur != nil {
		h.cur()
	}
	if h.playing != nil && h.kind == playHold {
		h.interrupted = true
		h.playing.Stop()
		h.advanceLocked()
	}
}

// stop stops the playing and waits until nothing plays to the leg any more.
func (h *holdPlayer) stop() {
	h.cancel()
	h.mu.Lock()
	if h.playing != nil {
		h.playing.Stop()
		h.playing = nil
	}
	wait := h.st == nil || h.background
	h.mu.Unlock()
	if wait {
		<-h.done
	}
}
