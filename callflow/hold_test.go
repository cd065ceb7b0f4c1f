package callflow

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/hotline-project/hotline/prompts"
)

// TestHoldPlayer: a waiting caller hears the menus' last prompt, then the hold audio; an
// announcement interrupts the hold audio, which comes back after it; after stop nothing
// plays. The same on a leg that starts prompts without waiting (sip's, played by the call's
// loop through next and advance, with no goroutine of the player's: issue 15) and on one
// that can only Play (the player's own goroutine).
func TestHoldPlayer(t *testing.T) {
	for _, plain := range []bool{false, true} {
		name := "starter"
		if plain {
			name = "plain"
		}
		t.Run(name, func(t *testing.T) {
			clk := newFakeClock()
			leg := newLeg(clk, "caller")
			var l Leg = leg
			if plain {
				l = plainLeg{leg}
			}
			then := []*prompts.Prompt{{Name: "connecting", Samples: make([]int16, 8000)}} // 1 s
			ann := &prompts.Prompt{Name: "announcement", Samples: make([]int16, 16000)}   // 2 s
			h := startHold(context.Background(), l, then, slog.New(slog.DiscardHandler))
			// The call's loop (waitLoop) as far as the hold audio goes.
			quit, looped := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(looped)
				for {
					select {
					case <-h.next():
						h.advance()
					case <-quit:
						return
					}
				}
			}()
			want := func(names ...string) {
				t.Helper()
				eventually(t, "plays "+names[len(names)-1], func() bool {
					return slices.Equal(leg.plays(), names)
				})
			}
			want("connecting")
			clk.Advance(time.Second)
			want("connecting", "hold")
			settle()
			h.announce(ann)
			want("connecting", "hold", "announcement")
			clk.Advance(2 * time.Second)
			want("connecting", "hold", "announcement", "hold")
			h.stop()
			h.stop()
			close(quit)
			<-looped
			clk.Advance(time.Minute)
			settle()
			if got := leg.plays(); len(got) != 4 {
				t.Errorf("played after stop: %v", got[4:])
			}
		})
	}
}
