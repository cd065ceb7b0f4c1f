package ivr

import (
	"context"

	"github.com/hotline-project/hotline/prompts"
)

// Call is what the IVR needs of a phone call. The SIP layer implements it.
type Call interface {
	// Play sends a prompt and blocks until it has been played, ctx is cancelled (barge-in:
	// playback stops within one frame) or the call ends.
	Play(ctx context.Context, p *prompts.Prompt) error
	// Digits delivers the caller's DTMF digits in order; it is closed when the call ends.
	Digits() <-chan rune
	// Hangup ends the call from our side.
	Hangup(ctx context.Context, reason string) error
}

// DropTypedAhead drops the digits call has delivered and nobody has read yet (keys typed
// ahead of a prompt that must be heard); it returns at once, also when Digits is closed.
func DropTypedAhead(call Call) {
	for {
		select {
		case _, ok := <-call.Digits():
			if !ok {
				return
			}
		default:
			return
		}
	}
}

// Playing is a prompt a Starter started.
type Playing interface {
	// Done is closed when the prompt has ended.
	Done() <-chan struct{}
	// Err is why it ended (nil: played to the end); valid once Done is closed.
	Err() error
	// Stop ends it at once; no frame of it is sent after Stop returns.
	Stop()
}

// Starter is a Call that can start a prompt without waiting for it (sip's calls can): the
// menus then wait for the prompt and the caller's keys on the call's own goroutine, not on
// one more per call.
type Starter interface {
	StartPlay(p *prompts.Prompt) (Playing, error)
}

// Catalogue looks prompts up by language and name (prompts.Catalogue implements it).
type Catalogue interface {
	Get(lang, name string) (*prompts.Prompt, bool)
}
