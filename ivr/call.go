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

// Catalogue looks prompts up by language and name (prompts.Catalogue implements it).
type Catalogue interface {
	Get(lang, name string) (*prompts.Prompt, bool)
}
