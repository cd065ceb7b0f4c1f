package config

import (
	"fmt"
	"regexp"
	"time"
)

// Callback configures safe callbacks (issue 16, part 3): a waiting caller may ask, by key
// press, to be called back instead of waiting. Queues turn the offer on for themselves
// (queues[].callback); with no queue offering it, this section is never used.
//
// The number to call is kept encrypted (AES-256-GCM) with the key in KeyFile, deleted when
// the callback is done, fails for good or expires, and never logged, counted or shown
// (the admin API shows its last two digits at most). When an advocate is free, their
// phone rings first, with a whisper; when they answer, the server dials the number
// through Trunk, presenting CallerID, and the person who answers hears a neutral gate
// ("press 1 to be connected"): nothing is said to an answering machine and no message is
// ever left.
type Callback struct {
	// Trunk is the target (targets[].name) callbacks are dialled through: the number
	// replaces the user part of its URI. Required when a queue offers callbacks.
	Trunk string `yaml:"trunk"`
	// CallerID is the calling number presented to the person called back: neutral, it
	// names nothing; default "anonymous". Digits, +, or "anonymous".
	CallerID string `yaml:"caller_id"`
	// HotlineName is the display name presented, and named in the gate prompt, only when
	// the caller agreed to it (by key press; default no). "" presents none even then.
	HotlineName string `yaml:"hotline_name"`
	// KeyFile holds the keys numbers are encrypted with: lines "id:hex" of 32-byte keys
	// (AES-256), the first one encrypting, every one decrypting (README "Safe callbacks"
	// says how to rotate). "" generates one into the state directory (state.dir +
	// "/callback.key"), or keeps one in memory only when state.dir is none.
	KeyFile string `yaml:"key_file"`
	// MinDigits and MaxDigits bound a number typed by the caller (ending with #); a
	// caller ID with fewer digits is not offered. Defaults 10 and 15; 3..32.
	MinDigits int `yaml:"min_digits"`
	MaxDigits int `yaml:"max_digits"`
	// Priority is the queue priority of a callback against live callers (routes'
	// priority: higher is answered first); default 0, below every default route.
	Priority int `yaml:"priority"`
	// Attempts is how many times a callback is tried before it fails for good; default
	// 3, 1..10. RetryAfter is the wait between tries; default 15m, 1m..6h.
	Attempts   int           `yaml:"attempts"`
	RetryAfter time.Duration `yaml:"retry_after"`
	// RingTimeout is how long the number rings; default 45s, 10s..2m.
	RingTimeout time.Duration `yaml:"ring_timeout"`
	// GateTimeout is how long the person who answers has to press 1; default 8s, 3s..30s.
	// No key (an answering machine's greeting, its beep) hangs up and tries again later.
	GateTimeout time.Duration `yaml:"gate_timeout"`
	// Timezone is the zone of the windows' from/to times (an IANA name); default the
	// first schedule's.
	Timezone string `yaml:"timezone"`
	// Windows are the choices the caller is offered for when to be called, by key; 1..9
	// of them. Default: 1 as soon as possible (within 2h), 2 within 4 hours, 3 this
	// evening (18:00-21:00).
	Windows []CallbackWindow `yaml:"windows"`
}

// CallbackWindow is one choice of when a callback may be made.
type CallbackWindow struct {
	// Key is the key that picks it: 1-9, one per window.
	Key string `yaml:"key"`
	// Prompt names it to the caller ("for as soon as possible, press 1").
	Prompt string `yaml:"prompt"`
	// Within is a window from now until now+Within (15m..72h); or else From and To
	// ("HH:MM") are the next such interval in Timezone (today's, or tomorrow's once
	// today's is over).
	Within time.Duration `yaml:"within"`
	From   string        `yaml:"from"`
	To     string        `yaml:"to"`
}

// QueueCallback is when a queue offers its waiting callers a callback; all off by
// default.
type QueueCallback struct {
	// WaitOver offers it once the caller's expected wait exceeds it; 0 never (30s..2h).
	WaitOver time.Duration `yaml:"wait_over"`
	// Overflowing offers it when the caller's wait reaches an overflow step.
	Overflowing bool `yaml:"overflowing"`
	// Closed offers it to a caller of the queue's languages whom routing sends to a
	// message (the hotline is closed), before the message.
	Closed bool `yaml:"closed"`
}

// Enabled reports whether the queue offers callbacks at all.
func (q *QueueCallback) Enabled() bool {
	return q != nil && (q.WaitOver > 0 || q.Overflowing || q.Closed)
}

// CallbacksEnabled reports whether any queue offers callbacks.
func (c *Config) CallbacksEnabled() bool {
	for i := range c.Queues {
		if c.Queues[i].Callback.Enabled() {
			return true
		}
	}
	return false
}

// CallbackPrompts are the prompts a callback plays (besides the windows' own and the
// digits read back).
var CallbackPrompts = []string{
	"callback_offer", "callback_number_is", "callback_confirm", "callback_enter_number",
	"callback_invalid_number", "callback_window", "callback_consent", "callback_booked",
	"callback_declined", "callback_whisper", "callback_dialing", "callback_gate",
	"callback_gate_named", "callback_not_reached",
}

// Location returns the zone of the windows' from/to times.
func (c *Config) CallbackLocation() *time.Location {
	name := c.Callback.Timezone
	if name == "" && len(c.Schedules) > 0 {
		name = c.Schedules[0].Timezone
	}
	if loc, err := time.LoadLocation(name); err == nil {
		return loc
	}
	return time.UTC
}

// defaultCallback is the callback section's defaults.
func defaultCallback() Callback {
	return Callback{CallerID: "anonymous", MinDigits: 10, MaxDigits: 15, Attempts: 3,
		RetryAfter: 15 * time.Minute, RingTimeout: 45 * time.Second, GateTimeout: 8 * time.Second,
		Windows: []CallbackWindow{
			{Key: "1", Prompt: "callback_window_asap", Within: 2 * time.Hour},
			{Key: "2", Prompt: "callback_window_4h", Within: 4 * time.Hour},
			{Key: "3", Prompt: "callback_window_evening", From: "18:00", To: "21:00"},
		}}
}

var (
	reCallerID = regexp.MustCompile(`^(\+?[0-9]{1,20}|anonymous)$`)
	reHHMM     = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
)

// validateCallback records problems with the callback section and the queues' offers.
func (p *parser) validateCallback(c *Config) {
	cb := &c.Callback
	for i := range c.Queues {
		q := c.Queues[i].Callback
		if q != nil && q.WaitOver != 0 && (q.WaitOver < 30*time.Second || q.WaitOver > 2*time.Hour) {
			p.errorf(fmt.Sprintf("queues[%d].callback.wait_over", i), "must be 0 (never) or 30s..2h, got %v", q.WaitOver)
		}
	}
	if !reCallerID.MatchString(cb.CallerID) {
		p.errorf("callback.caller_id", "%q is not digits (with an optional +) or anonymous", cb.CallerID)
	}
	for _, r := range cb.HotlineName {
		if r == '"' || r == '\\' || r < ' ' {
			p.errorf("callback.hotline_name", "may not hold quotes, backslashes or control characters")
			break
		}
	}
	if cb.MinDigits < 3 || cb.MaxDigits > 32 || cb.MinDigits > cb.MaxDigits {
		p.errorf("callback.min_digits", "min_digits..max_digits must be within 3..32, got %d..%d", cb.MinDigits, cb.MaxDigits)
	}
	if cb.Attempts < 1 || cb.Attempts > 10 {
		p.errorf("callback.attempts", "must be 1..10, got %d", cb.Attempts)
	}
	if cb.RetryAfter < time.Minute || cb.RetryAfter > 6*time.Hour {
		p.errorf("callback.retry_after", "must be 1m..6h, got %v", cb.RetryAfter)
	}
	if cb.RingTimeout < 10*time.Second || cb.RingTimeout > 2*time.Minute {
		p.errorf("callback.ring_timeout", "must be 10s..2m, got %v", cb.RingTimeout)
	}
	if cb.GateTimeout < 3*time.Second || cb.GateTimeout > 30*time.Second {
		p.errorf("callback.gate_timeout", "must be 3s..30s, got %v", cb.GateTimeout)
	}
	if cb.Timezone != "" {
		if _, err := time.LoadLocation(cb.Timezone); err != nil {
			p.errorf("callback.timezone", "%q is not a known time zone", cb.Timezone)
		}
	}
	if len(cb.Windows) == 0 || len(cb.Windows) > 9 {
		p.errorf("callback.windows", "want 1..9 windows, got %d", len(cb.Windows))
	}
	keys := map[string]bool{}
	for i, w := range cb.Windows {
		path := fmt.Sprintf("callback.windows[%d]", i)
		switch {
		case len(w.Key) != 1 || w.Key[0] < '1' || w.Key[0] > '9':
			p.errorf(path+".key", "%q is not one of 1-9", w.Key)
		case keys[w.Key]:
			p.errorf(path+".key", "%q is the key of another window", w.Key)
		}
		keys[w.Key] = true
		if !rePrompt.MatchString(w.Prompt) {
			p.errorf(path+".prompt", "%q is not a prompt name", w.Prompt)
		}
		hasRange := w.From != "" || w.To != ""
		switch {
		case w.Within != 0 && hasRange:
			p.errorf(path, "set within, or from and to, not both")
		case w.Within != 0 && (w.Within < 15*time.Minute || w.Within > 72*time.Hour):
			p.errorf(path+".within", "must be 15m..72h, got %v", w.Within)
		case w.Within == 0 && !hasRange:
			p.errorf(path, "set within, or from and to")
		case hasRange && (!reHHMM.MatchString(w.From) || !reHHMM.MatchString(w.To) || w.From == w.To):
			p.errorf(path+".from", "from and to must be different HH:MM times, got %q and %q", w.From, w.To)
		}
	}
	if !c.CallbacksEnabled() {
		return
	}
	trunk := false
	for _, t := range c.Targets {
		trunk = trunk || t.Name == cb.Trunk
	}
	if !trunk {
		p.errorf("callback.trunk", "queues offer callbacks, but %q is not a target (targets[].name) to dial them through", cb.Trunk)
	}
	// The callback's keys: 1 and 2 in its menus, the windows' keys, and the digits and #
	// of a typed number. The quick-exit key must be none of them.
	if k := c.Safety.QuickExitKey; k != "" && (k == "#" || ('1' <= k[0] && k[0] <= '9')) {
		p.errorf("safety.quick_exit_key", "%q is also typed in the callback offer (queues offer callbacks), as a choice, a digit or the # that ends the number; choose another key (A-D) or \"\"", k)
	}
}
