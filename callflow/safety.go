package callflow

import (
	"context"
	"sync/atomic"

	"github.com/hotline-project/hotline/outcome"
)

// SafetyMetrics counts what the caller-safety features do (metrics.Safety implements it).
// Labels carry nothing of the caller.
type SafetyMetrics interface {
	// QuickExit counts a call ended by the quick-exit key, by where the caller was:
	// menus, waiting, ringing or bridge.
	QuickExit(phase string)
	// PlaceKept counts keep-one's-place slots by what happened to them: held (a call
	// dropped while waiting), restored (the caller called back in time), expired.
	PlaceKept(result string)
}

// Where a call is, for the quick-exit key and its metric.
const (
	phaseMenus   int32 = iota // in the menus (or routed and not yet queued)
	phaseWaiting              // waiting on hold for an advocate or a target
	phaseBridge               // connected to an advocate or a target
)

// menuLeg is the caller's leg as the menus see it: its digits without the quick-exit
// key.
type menuLeg struct {
	Leg
	keys <-chan rune
}

func (m menuLeg) Digits() <-chan rune { return m.keys }

// digitFilterer is a Leg that may let a filter see its digits as they are delivered
// (sip.Call's FilterDigits), and reports whether it does: the quick-exit key is then
// watched without a goroutine.
type digitFilterer interface {
	FilterDigits(f func(rune) bool) bool
}

// keyBuffer is how many digits the menus may have typed ahead (as sip buffers them).
const keyBuffer = 32

// guardKeys starts watching the caller's digits for the quick-exit key (safety.
// quick_exit_key) and returns the leg the menus use, which sees every other digit. The
// key ends the call at once from the menus, on hold and while phones ring, and in the
// bridge when the line allows it (lines[].quick_exit_in_bridge); nothing plays after it.
func (c *Call) guardKeys() Leg {
	safety := c.snap.Config.Safety
	key, ok := safety.QuickExit()
	if !ok {
		return c.leg
	}
	inBridge := false
	for _, l := range c.snap.Config.Lines {
		if l.Name == c.attrs.Line {
			inBridge = l.QuickExitInBridge
		}
	}
	quick := func(d rune) bool { return d == key && (inBridge || c.phase.Load() != phaseBridge) }
	var exited atomic.Bool // after the key, the menus get no digit
	filter := func(d rune) bool {
		if exited.Load() {
			return true
		}
		if !quick(d) {
			return false
		}
		if exited.CompareAndSwap(false, true) {
			go c.quickExit() // it hangs up: not on the goroutine delivering digits
		}
		return true
	}
	if f, ok := c.leg.(digitFilterer); ok && f.FilterDigits(filter) {
		// Seen as each digit is delivered: no goroutine per call (memory per call, issue 15).
		return c.leg
	}
	keys := make(chan rune, keyBuffer)
	go func() {
		defer close(keys)
		for {
			var d rune
			var ok bool
			select {
			case d, ok = <-c.leg.Digits():
			case <-c.leg.Done():
				return
			}
			switch {
			case !ok:
				return
			case quick(d):
				c.quickExit()
				return
			}
			select {
			case keys <- d:
			default: // typed too far ahead: dropped, as sip drops them
			}
		}
	}()
	return menuLeg{Leg: c.leg, keys: keys}
}

// quickExit ends the call at once: the caller's leg is hung up (its media stops there
// and then), which ends the menus, takes the caller out of the queue (cancelling any
// ring) or, in the bridge, hangs up the other leg too. The call is recorded as
// quick_exit and its place is not kept.
func (c *Call) quickExit() {
	phase := "menus"
	switch c.phase.Load() {
	case phaseWaiting:
		phase = "waiting"
		c.f.mu.Lock()
		if len(c.rings) > 0 {
			phase = "ringing"
		}
		c.f.mu.Unlock()
	case phaseBridge:
		phase = "bridge"
	}
	// Counted before the hang-up, which lets the call finish (and its record be written).
	c.f.safety.QuickExit(phase)
	c.log.Info("quick exit: the caller ended the call with the quick-exit key", "phase", phase)
	c.end(outcome.QuickExit)
	_ = c.leg.Hangup(context.WithoutCancel(c.leg.Context()), "quick exit")
}

// quitted reports whether the call ended by the quick-exit key.
func (c *Call) quitted() bool { return c.Outcome() == outcome.QuickExit }
