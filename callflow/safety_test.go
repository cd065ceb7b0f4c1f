package callflow

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hotline-project/hotline/ivr"
	"github.com/hotline-project/hotline/records"
)

// fakeSafety records the safety metrics.
type fakeSafety struct {
	mu     sync.Mutex
	events []string
}

func (f *fakeSafety) QuickExit(phase string)  { f.add("quick_exit:" + phase) }
func (f *fakeSafety) PlaceKept(result string) { f.add("place:" + result) }
func (f *fakeSafety) add(e string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, e)
}
func (f *fakeSafety) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.events)
}
func (f *fakeSafety) has(e string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.events, e)
}

// keyMenus are menus that read the caller's digits until the call ends: they report each
// digit they see, so a test can tell which keys reached the menus.
type keyMenus struct {
	mu   sync.Mutex
	seen []rune
	res  ivr.Result
	wait bool // keep reading until the digits close; otherwise return res after one digit
}

func (m *keyMenus) Run(ctx context.Context, c ivr.Call, _ *slog.Logger) (*ivr.Result, error) {
	var done <-chan struct{}
	if l, ok := c.(interface{ Done() <-chan struct{} }); ok {
		done = l.Done() // fake legs do not close their digits
	}
	for {
		select {
		case <-done:
			return &ivr.Result{End: ivr.EndCallerHangup}, ivr.ErrHangup
		case d, ok := <-c.Digits():
			if !ok {
				return &ivr.Result{End: ivr.EndCallerHangup}, ivr.ErrHangup
			}
			m.mu.Lock()
			m.seen = append(m.seen, d)
			m.mu.Unlock()
			if !m.wait {
				res := m.res
				return &res, nil
			}
		case <-ctx.Done():
			return &ivr.Result{}, ctx.Err()
		}
	}
}

func (m *keyMenus) digits() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return string(m.seen)
}

// press sends a key on the caller's leg as sip would.
func press(t *testing.T, l *fakeLeg, d rune) {
	t.Helper()
	l.mu.Lock()
	f := l.filter
	l.mu.Unlock()
	if f != nil && f(d) {
		return
	}
	select {
	case l.digits <- d:
	case <-time.After(3 * time.Second):
		t.Fatalf("key %c not taken", d)
	}
}

// TestQuickExit: the quick-exit key ends the call at once from the menus, on hold, while
// an advocate's phone rings and (where the line allows it) in the bridge, hanging up the
// advocate too; the record says quick_exit, the metric says where, nothing is played
// after it and the caller's place is not kept. Elsewhere the key is an ordinary digit.
func TestQuickExit(t *testing.T) {
	tests := []struct {
		name     string
		phase    string
		advocate *phone // nil: no advocate online
		inBridge bool   // lines[].quick_exit_in_bridge
	}{
		{name: "menus", phase: "menus"},
		{name: "hold", phase: "waiting"},
		{name: "ringing", phase: "ringing", advocate: &phone{}},
		{name: "bridge", phase: "bridge", advocate: &phone{answerAfter: time.Second}, inBridge: true},
	}
	for _, tt := range tests {
		for _, filtered := range []bool{true, false} {
			name := tt.name
			if !filtered {
				name += "/goroutine" // a leg without FilterDigits
			}
			t.Run(name, func(t *testing.T) {
				h := newHarness(t, testYAML+advocatesYAML(t, "ana:en"))
				h.filterKeys = filtered
				snap := h.live.Load()
				snap.Config.Lines[0].QuickExitInBridge = tt.inBridge
				km := &keyMenus{wait: tt.phase == "menus", res: helpNow()}
				snap.Menus = km
				if tt.advocate != nil {
					h.online("ana", "sip:ana@phone", *tt.advocate)
				}
				c := h.call(ivr.Result{})
				if tt.phase != "menus" {
					press(t, c.leg, '1') // leaves the menus: routed, queued
					eventually(t, "queued", func() bool { return h.waiting(c, "en") || c.leg.isBridged() || h.net.isRinging("sip:ana@phone") })
				}
				switch tt.phase {
				case "ringing":
					eventually(t, "ana rung", func() bool { return h.net.isRinging("sip:ana@phone") })
				case "bridge":
					eventually(t, "ana rung", func() bool { return h.net.isRinging("sip:ana@phone") })
					h.clk.Advance(time.Second)
					eventually(t, "the bridge", c.leg.isBridged)
				case "waiting":
					h.clk.Advance(2 * time.Second) // the hold audio plays
				}
				before := len(c.leg.plays())
				press(t, c.leg, '#')
				r := h.record(c)
				if r.Outcome != records.OutcomeQuickExit {
					t.Errorf("outcome %q, want quick_exit", r.Outcome)
				}
				if !c.leg.ended() {
					t.Error("the caller's leg is still up")
				}
				if !h.safety.has("quick_exit:" + tt.phase) {
					t.Errorf("metrics %v, want quick_exit:%s", h.safety.list(), tt.phase)
				}
				h.clk.Advance(time.Minute)
				settle()
				if got := c.leg.plays(); len(got) != before {
					t.Errorf("played after the quick exit: %v", got[before:])
				}
				if d := km.digits(); slices.Contains([]rune(d), '#') {
					t.Errorf("the menus saw the quick-exit key: %q", d)
				}
				if _, ok := h.eng.Position(c.id); ok {
					t.Error("the caller is still queued")
				}
				if tt.advocate != nil {
					eventually(t, "ana's phone stops", func() bool {
						l := h.net.leg("sip:ana@phone")
						return !h.net.isRinging("sip:ana@phone") && (l == nil || l.ended())
					})
				}
			})
		}
	}
}

// TestQuickExitKeyElsewhere: in the bridge of a line that does not allow it, and with no
// quick-exit key configured, # is an ordinary key: the call goes on.
func TestQuickExitKeyElsewhere(t *testing.T) {
	t.Run("bridge not allowed", func(t *testing.T) {
		h := newHarness(t, testYAML+advocatesYAML(t, "ana:en"))
		h.online("ana", "sip:ana@phone", phone{answerAfter: time.Second})
		c := h.call(helpNow())
		eventually(t, "ana rung", func() bool { return h.net.isRinging("sip:ana@phone") })
		h.clk.Advance(time.Second)
		eventually(t, "the bridge", c.leg.isBridged)
		press(t, c.leg, '#')
		settle()
		if c.leg.ended() || h.net.leg("sip:ana@phone").ended() {
			t.Fatal("# ended a bridge on a line without quick_exit_in_bridge")
		}
		c.leg.remoteHangup()
		if r := h.record(c); r.Outcome == records.OutcomeQuickExit {
			t.Errorf("outcome %q", r.Outcome)
		}
	})
	t.Run("no key", func(t *testing.T) {
		h := newHarness(t, testYAML+"safety: {quick_exit_key: \"\"}\n")
		km := &keyMenus{wait: true}
		h.live.Load().Menus = km
		c := h.call(ivr.Result{})
		press(t, c.leg, '#')
		eventually(t, "the menus see #", func() bool { return km.digits() == "#" })
		if c.leg.ended() {
			t.Fatal("# ended the call with no quick-exit key")
		}
		c.leg.remoteHangup()
		_ = h.record(c)
		if len(h.safety.list()) != 0 {
			t.Errorf("metrics %v", h.safety.list())
		}
	})
}
