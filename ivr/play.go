package ivr

import (
	"context"
	"fmt"
	"time"

	"github.com/hotline-project/hotline/prompts"
)

// playInterruptible plays p until it ends or a digit arrives. A digit typed before the prompt
// began (type-ahead) is in the channel already and stops the prompt before its first frame.
func playInterruptible(ctx context.Context, call Call, p *prompts.Prompt) (rune, bool, error) {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("ivr: playing %s/%s: panic: %v", p.Lang, p.Name, r)
			}
		}()
		done <- call.Play(pctx, p)
	}()
	select {
	case d, ok := <-call.Digits():
		cancel()
		<-done
		if !ok {
			return 0, false, ErrHangup
		}
		return d, true, nil
	case err := <-done:
		if err != nil {
			if ctx.Err() != nil {
				return 0, false, ctx.Err()
			}
			return 0, false, err
		}
		return 0, false, nil
	case <-ctx.Done():
		cancel()
		<-done
		return 0, false, ctx.Err()
	}
}

// waitDigit waits up to timeout for a digit that accept takes; others are ignored. It returns
// ok=false on timeout.
func waitDigit(ctx context.Context, call Call, timeout time.Duration, accept func(rune) bool) (rune, bool, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case d, ok := <-call.Digits():
			if !ok {
				return 0, false, ErrHangup
			}
			if accept(d) {
				return d, true, nil
			}
		case <-t.C:
			return 0, false, nil
		case <-ctx.Done():
			return 0, false, ctx.Err()
		}
	}
}
