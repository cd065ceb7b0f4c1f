package ivr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/prompts"
)

// Engine runs callers through a menu tree compiled from the configuration. It never
// changes after New and is safe for concurrent use: one Engine serves every call of a
// configuration snapshot, and a reload builds a new one.
type Engine struct {
	start    *menu
	language string  // the default
	operator *action // what 0 does, and what a call that goes round too long gets
	prompts  Catalogue
	after    func(time.Duration) <-chan time.Time
	maxSteps int
	onSelect func(menu, key string)
}

// Options are what an Engine needs besides the menus.
type Options struct {
	// Prompts finds each prompt by language and name; give it the configured languages'
	// fallbacks (prompts.Catalogue.WithFallbacks). Required.
	Prompts Catalogue
	// After returns a channel that receives once d has passed: the menus' timeouts. Nil
	// means time.After; tests pass a fake clock.
	After func(d time.Duration) <-chan time.Time
	// OnSelect, if set, is told what each caller does in each (non-collect) menu: the key
	// pressed, "none" for no input or "invalid" for a key the menu does not have; for
	// metrics. It must not block. A collect menu's digits are never reported.
	OnSelect func(menu, key string)
	// MaxSteps bounds how many times a call's menus are played (entering a menu or playing
	// it again) before the call is routed as it is, with the operator action: a caller who
	// keeps pressing * or a key that returns to its menu still ends up with a person.
	// Zero means DefaultMaxSteps.
	MaxSteps int
}

// DefaultMaxSteps is Options.MaxSteps's default: several minutes of menus.
const DefaultMaxSteps = 50

// Result is what the menus learned about a call and how they ended. The caller of Run
// routes the call with it (unless Hangup). It holds no digits except in Collected, which
// may hold a phone number: never log it.
type Result struct {
	// Language is the caller's language: the default unless a menu set another.
	Language string
	// Reason is the reason a menu set (help_now, tip, other...), or "" if none did.
	Reason string
	// Route is the queue or target an action sent the call to, or "" for routing to
	// decide.
	Route string
	// Hangup is true when a hangup action ended the call; there is nothing to route.
	Hangup bool
	// Collected holds the digits of each collect menu the caller completed, by variable;
	// nil if none.
	Collected map[string]string
	// Then are the prompts of the action that routed the call ("connecting you..."), in
	// the caller's language, not yet played: play them once the call is queued, so that
	// the advocates' phones ring while the caller hears them.
	Then []*prompts.Prompt
	// Path lists the menus the caller entered, in order, for logs and metrics.
	Path []string
	// End says how the menus ended.
	End End
}

// End is how a call left the menus: a small fixed set, fit for a metric label. It is not a
// call outcome (package outcome): a caller who chose an option goes on to be queued,
// connected or abandoned; the call flow records that.
type End string

// The ways a call leaves the menus.
const (
	EndChoice       End = "choice"        // a key, or a collect menu's digits, chose the last action
	EndOperator     End = "operator"      // the caller pressed 0
	EndNoInput      End = "no_input"      // the caller pressed nothing
	EndInvalid      End = "invalid"       // the caller pressed only wrong keys until the retries ran out
	EndLimit        End = "limit"         // MaxSteps ran out: routed as it is
	EndCallerHangup End = "caller_hangup" // the caller hung up (Run returns ErrHangup)
	EndCancelled    End = "cancelled"     // Run's context ended first
)

// menu is a compiled config.Menu.
type menu struct {
	name            string
	prompts, repeat []prompt
	keys            map[rune]*action
	noInput         *action
	firstDigit      time.Duration
	retries         int
	invalid         []prompt // none or one
	collect         *collect
}

type collect struct {
	variable   string
	min, max   int
	interDigit time.Duration
	then       *action
}

// action is a compiled config.Action. At most one of next, route and hangup is set; with
// none, the caller returns to the menu they are in.
type action struct {
	setLanguage, setReason string
	play                   []prompt
	next                   *menu
	route                  bool
	to                     string
	hangup                 bool
}

// prompt names a prompt; lang is "" for the caller's language.
type prompt struct{ lang, name string }

func (p prompt) String() string {
	if p.lang == "" {
		return p.name
	}
	return p.lang + "/" + p.name
}

// New compiles the menus of a configuration into an Engine. It expects a configuration
// that config.Parse accepted, which has checked much more (among others that a caller who
// presses nothing reaches a person, with the file's line numbers); New still refuses a
// tree it could not run: a missing menu, a menu without a no-input action, an operator
// action that does not route.
func New(cfg *config.IVR, opts Options) (*Engine, error) {
	if opts.Prompts == nil {
		return nil, errors.New("ivr: no prompt catalogue")
	}
	e := &Engine{language: cfg.DefaultLanguage, prompts: opts.Prompts, after: opts.After, maxSteps: opts.MaxSteps,
		onSelect: opts.OnSelect}
	if e.after == nil {
		e.after = time.After
	}
	if e.maxSteps <= 0 {
		e.maxSteps = DefaultMaxSteps
	}
	c := compiler{menus: map[string]*menu{}}
	for i := range cfg.Menus {
		name := cfg.Menus[i].Name
		if c.menus[name] != nil {
			c.errorf("menu %q defined twice", name)
		}
		c.menus[name] = &menu{name: name}
	}
	for i := range cfg.Menus {
		c.menu(cfg, &cfg.Menus[i])
	}
	if e.start = c.menus[cfg.Start]; e.start == nil {
		c.errorf("start: undefined menu %q", cfg.Start)
	}
	if cfg.Operator == nil || !cfg.Operator.Routes() || cfg.Operator.Goto != "" || cfg.Operator.Hangup {
		c.errorf("operator: must route the call")
	} else {
		e.operator = c.action("operator", cfg.Operator)
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	return e, nil
}

type compiler struct {
	menus map[string]*menu
	errs  []error
}

func (c *compiler) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("ivr: "+format, args...))
}

func (c *compiler) menu(cfg *config.IVR, cm *config.Menu) {
	m := c.menus[cm.Name]
	m.prompts = toPrompts(cm.Prompts)
	m.repeat = toPrompts(cm.Repeat)
	if m.repeat == nil {
		m.repeat = m.prompts
	}
	m.firstDigit = cfg.FirstDigitTimeout
	if cm.FirstDigitTimeout != nil {
		m.firstDigit = *cm.FirstDigitTimeout
	}
	m.retries = cfg.Retries
	if cm.Retries != nil {
		m.retries = *cm.Retries
	}
	invalid := cfg.Invalid
	if cm.Invalid != nil {
		invalid = *cm.Invalid
	}
	if invalid != "" {
		m.invalid = toPrompts([]string{invalid})
	}
	if m.firstDigit <= 0 {
		c.errorf("menu %s: first-digit timeout %v", m.name, m.firstDigit)
	}
	if cm.NoInput == nil {
		c.errorf("menu %s: no no-input action", m.name)
	} else {
		m.noInput = c.action("menu "+m.name+" no_input", cm.NoInput)
	}
	if cc := cm.Collect; cc != nil {
		m.collect = &collect{variable: cc.Variable, min: cc.MinDigits, max: cc.MaxDigits, interDigit: cfg.InterDigitTimeout}
		if cc.InterDigitTimeout != nil {
			m.collect.interDigit = *cc.InterDigitTimeout
		}
		if cc.Then == nil {
			c.errorf("menu %s: collect: no then action", m.name)
		} else {
			m.collect.then = c.action("menu "+m.name+" collect.then", cc.Then)
		}
		if cc.MaxDigits < 1 || cc.MinDigits < 0 || cc.MinDigits > cc.MaxDigits || m.collect.interDigit <= 0 {
			c.errorf("menu %s: collect: digits %d..%d, inter-digit timeout %v", m.name, cc.MinDigits, cc.MaxDigits, m.collect.interDigit)
		}
		return
	}
	m.keys = make(map[rune]*action, len(cm.Keys))
	for _, k := range slices.Sorted(maps.Keys(cm.Keys)) {
		if len(k) != 1 || k == "0" || k == "*" {
			c.errorf("menu %s: key %q", m.name, k)
			continue
		}
		a := cm.Keys[k]
		m.keys[rune(k[0])] = c.action("menu "+m.name+" key "+k, &a)
	}
}

func (c *compiler) action(where string, ca *config.Action) *action {
	a := &action{
		setLanguage: ca.SetLanguage,
		setReason:   ca.SetReason,
		play:        toPrompts(ca.Play),
		route:       ca.Routes(),
		to:          ca.To,
		hangup:      ca.Hangup,
	}
	if ca.Goto != "" {
		if a.next = c.menus[ca.Goto]; a.next == nil {
			c.errorf("%s: undefined menu %q", where, ca.Goto)
		}
	}
	if n := btoi(a.next != nil) + btoi(a.route) + btoi(a.hangup); n > 1 {
		c.errorf("%s: more than one of goto, route and hangup", where)
	}
	return a
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func toPrompts(refs []string) []prompt {
	if len(refs) == 0 {
		return nil
	}
	ps := make([]prompt, len(refs))
	for i, r := range refs {
		ps[i].lang, ps[i].name = config.SplitPrompt(r)
	}
	return ps
}

// Run takes a caller through the menus, from the start menu until an action routes the
// call or hangs up, and returns what it learned. It returns ErrHangup if the caller hung
// up first, or ctx's error if ctx ended; the Result then says how far the caller got.
// log (nil for none) should carry the call's ID; Run logs neither digits nor Collected.
func (e *Engine) Run(ctx context.Context, call Call, log *slog.Logger) (*Result, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &session{e: e, call: call, log: log, res: Result{Language: e.language}}
	err := s.run(ctx)
	switch {
	case errors.Is(err, ErrHangup):
		s.res.End = EndCallerHangup
	case err != nil && ctx.Err() != nil:
		s.res.End = EndCancelled
	}
	logDone(log, &s.res)
	return &s.res, err
}

// logDone logs how the menus ended. Not inlined: Run's frame stays small for the call's
// goroutine, which waits in the menus below it (see callflow.Flow.Handle).
//
//go:noinline
func logDone(log *slog.Logger, r *Result) {
	log.Info("menus done", "end", r.End, "language", r.Language, "reason", r.Reason, "route", r.Route,
		"hangup", r.Hangup, "path", r.Path, "collected", slices.Sorted(maps.Keys(r.Collected)))
}
