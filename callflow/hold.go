package callflow

import (
	"context"
	"log/slog"
	"sync"

	"github.com/hotline-project/hotline/prompts"
)

// holdPlayer plays to a waiting caller on its own goroutine: first the menus' last
// prompts, then the hold audio in a loop, interrupted for announcements. The call's loop
// stops it before the caller's leg is bridged, so the hold audio never races the bridge.
type holdPlayer struct {
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	pending chan *prompts.Prompt // an announcement to play next

	mu  sync.Mutex
	cur context.CancelFunc // stops the hold audio now playing
}

// startHold starts playing then, and the hold audio after it, to leg.
func startHold(ctx context.Context, leg Leg, then []*prompts.Prompt, log *slog.Logger) *holdPlayer {
	ctx, cancel := context.WithCancel(ctx)
	h := &holdPlayer{ctx: ctx, cancel: cancel, done: make(chan struct{}), pending: make(chan *prompts.Prompt, 1)}
	go func() {
		defer close(h.done)
		h.run(leg, then, log)
	}()
	return h
}

func (h *holdPlayer) run(leg Leg, then []*prompts.Prompt, log *slog.Logger) {
	ctx := h.ctx
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
	if h.cur != nil {
		h.cur()
	}
	h.mu.Unlock()
}

// stop stops the playing and waits until nothing plays to the leg any more.
func (h *holdPlayer) stop() {
	h.cancel()
	<-h.done
}
