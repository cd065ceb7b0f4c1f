package ivr_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/internal/golden"
	"github.com/hotline-project/hotline/ivr"
	"github.com/hotline-project/hotline/prompts"
)

// catalogue has every prompt in every language, but for those in missing ("lang/name").
type catalogue struct{ missing map[string]bool }

func (c catalogue) Get(lang, name string) (*prompts.Prompt, bool) {
	if c.missing[lang+"/"+name] {
		return nil, false
	}
	return &prompts.Prompt{Name: name, Lang: lang}, true
}

// scriptedCall is a caller following a script, one step at a time, and the clock of the
// menus' timeouts. A step is one of:
//
//	digits  press these keys, all at once: during the prompt playing now (which stops it:
//	        barge-in), or, if none is, while the menu waits for a key
//	-       let the prompt playing now play to the end
//	.       press nothing until the menu's wait times out
//	hangup  hang up, during a prompt or a wait
//
// Prompts play to the end unless the next step presses keys or hangs up; a script that has
// run out is silence. The transcript records what the caller hears and does, and the waits.
type scriptedCall struct {
	t        *testing.T
	digits   chan rune
	failPlay map[string]string // "lang/name" -> "error" or "panic"

	mu         sync.Mutex
	script     []string
	transcript []string
	waits      int
}

func newScriptedCall(t *testing.T, ahead string, script []string) *scriptedCall {
	c := &scriptedCall{t: t, digits: make(chan rune, 32), script: script}
	for _, d := range ahead {
		c.digits <- d
	}
	return c
}

func (c *scriptedCall) logf(format string, args ...any) {
	c.transcript = append(c.transcript, fmt.Sprintf(format, args...))
}

// step returns the next step, and takes it off the script if take says to.
func (c *scriptedCall) step(take func(string) bool) string {
	s := "."
	if len(c.script) > 0 {
		s = c.script[0]
		if take(s) {
			c.script = c.script[1:]
		}
	}
	return s
}

func (c *scriptedCall) press(keys string) {
	c.logf("    caller presses %s", keys)
	for _, d := range keys {
		c.digits <- d
	}
}

func (c *scriptedCall) hangup() {
	c.logf("    caller hangs up")
	close(c.digits)
}

func (c *scriptedCall) Play(ctx context.Context, p *prompts.Prompt) error {
	c.mu.Lock()
	key := p.Lang + "/" + p.Name
	c.logf("play %s", key)
	switch c.failPlay[key] {
	case "error":
		c.logf("    (fails to play)")
		c.mu.Unlock()
		return errors.New("no audio for the codec")
	case "panic":
		c.logf("    (panics)")
		c.mu.Unlock()
		panic("prompt " + key)
	}
	step := c.step(func(s string) bool { return s != "." })
	switch step {
	case ".", "-":
		c.mu.Unlock()
		return nil
	case "hangup":
		c.hangup()
	default:
		c.press(step)
	}
	c.mu.Unlock()
	<-ctx.Done() // the IVR stops the prompt
	if step != "hangup" {
		c.mu.Lock()
		c.logf("    stopped")
		c.mu.Unlock()
	}
	return ctx.Err()
}

func (c *scriptedCall) Digits() <-chan rune { return c.digits }

func (c *scriptedCall) Hangup(_ context.Context, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.logf("IVR hangs up (%s)", reason)
	return nil
}

// after is the menus' clock: a wait ends when the script says so.
func (c *scriptedCall) after(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.logf("wait %v", d)
	if c.waits++; c.waits > 100 {
		c.t.Errorf("more than 100 waits: the menus go round forever")
		return nil
	}
	switch step := c.step(func(string) bool { return true }); step {
	case "-":
		c.t.Errorf("script step %q (let the prompt play) while the menu waits for a key", step)
		fallthrough
	case ".":
		c.logf("    timeout")
		fired := make(chan time.Time, 1)
		fired <- time.Time{}
		return fired
	case "hangup":
		c.hangup()
	default:
		c.press(step)
	}
	return nil // never fires
}

func loadTree(t *testing.T, name string) *config.IVR {
	t.Helper()
	if name == "default" {
		return &config.MustDefault().IVR
	}
	cfg, err := config.Load(filepath.Join("testdata", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return &cfg.IVR
}

// TestScriptedCalls runs scripted calls through the default menus and through
// testdata/tree.yaml, and compares what the callers heard, and the results, with the
// transcripts in testdata/<name>.golden. Run with -update to rewrite them.
func TestScriptedCalls(t *testing.T) {
	tests := []struct {
		name     string // of the golden file: <tree>-<case>
		about    string
		ahead    string   // digits typed before the menus start
		script   []string // see scriptedCall
		missing  []string
		failPlay map[string]string
		maxSteps int
	}{
		// The default menus.
		{name: "default-silence", about: "a caller who presses nothing reaches a person, as urgent, in the default language"},
		{name: "default-spanish-help-now", about: "2 during the Spanish language menu, then 1 after the reason menu",
			script: []string{"-", "-", "2", "-", "1"}},
		{name: "default-type-ahead", about: "21 typed before the greeting: Spanish, help now, without hearing a menu",
			ahead: "21"},
		{name: "default-barge-in", about: "21 during the greeting stops it and lands in Spanish help now",
			script: []string{"21"}},
		{name: "default-tip", about: "1 during the language menu, 2 during the reason menu",
			script: []string{"-", "1", "2"}},
		{name: "default-reason-silence", about: "English, then silence at the reason menu: urgent",
			script: []string{"1", "."}},
		{name: "default-invalid-then-valid", about: "a wrong key plays invalid and the short language menu again",
			script: []string{"9", "-", "-", "2", "3"}},
		{name: "default-invalid-twice", about: "wrong keys until the retries run out: the no-input action",
			script: []string{"9", "7"}},
		{name: "default-operator", about: "0 reaches a person from any menu, with what is known so far",
			script: []string{"2", "0"}},
		{name: "default-operator-first", about: "0 during the greeting", script: []string{"0"}},
		{name: "default-star", about: "* plays the menu again, without using a retry",
			script: []string{"1", "*", "*", "3"}},
		{name: "default-hangup-in-prompt", about: "the caller hangs up during the reason menu",
			script: []string{"2", "hangup"}},
		{name: "default-hangup-in-wait", about: "the caller hangs up while the language menu waits",
			script: []string{"-", "-", "-", "hangup"}},
		{name: "default-missing-prompt", about: "a prompt missing from the catalogue is skipped, not fatal",
			missing: []string{"en/greeting", "es/connecting"}, script: []string{"2", "1"}},
		{name: "default-play-fails", about: "a prompt that cannot play, or panics, is skipped",
			failPlay: map[string]string{"en/greeting": "error", "en/language_menu": "panic"}, script: []string{"-", "1"}},

		// testdata/tree.yaml.
		{name: "tree-collect-terminator", about: "a number ended with #", script: []string{"1", "555#"}},
		{name: "tree-collect-max", about: "max_digits ends the number; a # after it is swallowed",
			script: []string{"1", "12345#"}},
		{name: "tree-collect-max-type-ahead", about: "a digit after max_digits is kept for what follows",
			script: []string{"1", "123456"}},
		{name: "tree-collect-zero", about: "0 is a digit in a collect menu, not the operator",
			script: []string{"1", "-", "100", "."}},
		{name: "tree-collect-pause", about: "a pause after enough digits ends the number",
			script: []string{"1", "1234", "."}},
		{name: "tree-collect-too-short", about: "fewer than min_digits before #: invalid, and the repeat prompt",
			script: []string{"1", "12#", "98765"}},
		{name: "tree-collect-pause-short", about: "a pause before min_digits is a wrong entry; then silence",
			script: []string{"1", "12", ".", "1", ".", "4", "."}},
		{name: "tree-collect-star", about: "* starts the number over", script: []string{"1", "12*", "999#"}},
		{name: "tree-collect-silence", about: "nothing typed: the collect menu's no-input action",
			script: []string{"1"}},
		{name: "tree-collect-letter", about: "a key that is no digit is a wrong entry",
			script: []string{"1", "12A", "-", "321#"}},
		{name: "tree-play-return", about: "an action without goto or route plays and returns to the menu",
			script: []string{"2", "-", "#"}},
		{name: "tree-play-return-barge-in", about: "a digit during the message stops it and counts in the menu",
			script: []string{"2", "#"}},
		{name: "tree-hangup", about: "a hangup action plays its messages, even over digits typed ahead",
			ahead: "39"},
		{name: "tree-several-effects", about: "one key sets the language and reason and sends the call to a queue",
			script: []string{"4"}},
		{name: "tree-set-language-return", about: "a key that only sets the language plays the menu again in it",
			script: []string{"6", "-", "#"}},
		{name: "tree-no-invalid-prompt", about: "a menu with no retries and no invalid prompt",
			script: []string{"5", "7", "-", "-"}},
		{name: "tree-own-timeout", about: "a menu's own first-digit timeout; its no-input goes to another menu",
			script: []string{"5", "-", ".", "-", "-", "."}},
		{name: "tree-limit", about: "a caller who keeps pressing * is routed, as the operator would",
			script: []string{"*", "*", "*", "*"}, maxSteps: 3},
	}
	for _, tt := range tests {
		for _, starter := range []bool{false, true} {
			name := tt.name
			if starter {
				name += "/starter" // the same menus through StartPlay, as sip's calls go
			}
			t.Run(name, func(t *testing.T) {
				tree, _, _ := strings.Cut(tt.name, "-")
				cfg := loadTree(t, tree)
				call := newScriptedCall(t, tt.ahead, tt.script)
				call.failPlay = tt.failPlay
				var asCall ivr.Call = call
				if starter {
					asCall = startingCall{call}
				}
				cat := catalogue{missing: map[string]bool{}}
				for _, m := range tt.missing {
					cat.missing[m] = true
				}
				eng, err := ivr.New(cfg, ivr.Options{Prompts: cat, After: call.after, MaxSteps: tt.maxSteps})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				res, err := eng.Run(ctx, asCall, nil)

				var b strings.Builder
				fmt.Fprintf(&b, "# %s\n", tt.about)
				fmt.Fprintf(&b, "typed ahead: %q\nscript: %q\n", tt.ahead, tt.script)
				if len(tt.missing) > 0 || len(tt.failPlay) > 0 || tt.maxSteps > 0 {
					fmt.Fprintf(&b, "missing prompts: %q\nfailing prompts: %v\nmax steps: %d\n", tt.missing, tt.failPlay, tt.maxSteps)
				}
				b.WriteString("\n")
				call.mu.Lock()
				for _, l := range call.transcript {
					b.WriteString(l + "\n")
				}
				if len(call.script) > 0 {
					fmt.Fprintf(&b, "(script left over: %q)\n", call.script)
				}
				call.mu.Unlock()
				var then []string
				for _, p := range res.Then {
					then = append(then, p.Lang+"/"+p.Name)
				}
				fmt.Fprintf(&b, "\nlanguage: %q\nreason: %q\nroute: %q\nthen (played after routing): %s\nhangup: %v\ncollected: %v\npath: %s\nend: %s\nerror: %v\n",
					res.Language, res.Reason, res.Route, strings.Join(then, " "), res.Hangup, res.Collected, strings.Join(res.Path, " "), res.End, err)
				golden.Check(t, filepath.Join("testdata", tt.name+".golden"), b.String())
			})
		}
	}
}

// startingCall is a scriptedCall that is an ivr.Starter: StartPlay plays as Play would, on
// a goroutine of the test's, and Stop cancels it and waits.
type startingCall struct{ *scriptedCall }

type startedPrompt struct {
	done   chan struct{}
	err    error
	cancel context.CancelFunc
}

func (p *startedPrompt) Done() <-chan struct{} { return p.done }
func (p *startedPrompt) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}
func (p *startedPrompt) Stop() { p.cancel(); <-p.done }

func (c startingCall) StartPlay(pr *prompts.Prompt) (ivr.Playing, error) {
	ctx, cancel := context.WithCancel(context.Background())
	p := &startedPrompt{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(p.done)
		defer func() {
			if r := recover(); r != nil {
				p.err = fmt.Errorf("panic: %v", r)
			}
		}()
		p.err = c.Play(ctx, pr)
	}()
	return p, nil
}

func TestRunContextCancelled(t *testing.T) {
	eng, err := ivr.New(loadTree(t, "default"), ivr.Options{Prompts: catalogue{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := eng.Run(ctx, newScriptedCall(t, "", nil), nil)
	if !errors.Is(err, context.Canceled) || res.End != ivr.EndCancelled {
		t.Fatalf("Run = %+v, %v; want end cancelled and context.Canceled", res, err)
	}
}

// silentCall plays every prompt at once and never presses a key, on the real clock.
type silentCall struct{ digits chan rune }

func (c silentCall) Play(context.Context, *prompts.Prompt) error { return nil }
func (c silentCall) Digits() <-chan rune                         { return c.digits }
func (c silentCall) Hangup(context.Context, string) error        { return nil }

// TestRunRealClock runs the default menus on the real clock, shortened, many calls at once
// on one Engine (run with -race).
func TestRunRealClock(t *testing.T) {
	cfg := loadTree(t, "default")
	cfg.FirstDigitTimeout = time.Millisecond
	eng, err := ivr.New(cfg, ivr.Options{Prompts: catalogue{}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			res, err := eng.Run(context.Background(), silentCall{make(chan rune)}, nil)
			if err != nil || res.Reason != "help_now" || res.End != ivr.EndNoInput || res.Route != "" {
				t.Errorf("Run = %+v, %v; want help_now by no input", res, err)
			}
		})
	}
	wg.Wait()
}

func TestNewErrors(t *testing.T) {
	d := time.Second
	good := func() *config.IVR {
		return &config.IVR{
			DefaultLanguage: "en", Start: "a", FirstDigitTimeout: d, InterDigitTimeout: d,
			Operator: &config.Action{Route: true},
			Menus: []config.Menu{{
				Name: "a", Prompts: []string{"p"}, NoInput: &config.Action{Route: true},
				Keys: map[string]config.Action{"1": {Goto: "a"}},
			}},
		}
	}
	if _, err := ivr.New(good(), ivr.Options{Prompts: catalogue{}}); err != nil {
		t.Fatalf("New of a good tree: %v", err)
	}
	if _, err := ivr.New(good(), ivr.Options{}); err == nil {
		t.Errorf("New without a catalogue succeeded")
	}
	tests := []struct {
		change func(*config.IVR)
		want   string
	}{
		{func(c *config.IVR) { c.Start = "b" }, `ivr: start: undefined menu "b"`},
		{func(c *config.IVR) { c.Operator = nil }, `ivr: operator: must route the call`},
		{func(c *config.IVR) { c.Operator = &config.Action{Goto: "a", Route: true} }, `ivr: operator: must route the call`},
		{func(c *config.IVR) { c.Menus[0].NoInput = nil }, `ivr: menu a: no no-input action`},
		{func(c *config.IVR) { c.Menus[0].Keys["1"] = config.Action{Goto: "b"} }, `ivr: menu a key 1: undefined menu "b"`},
		{func(c *config.IVR) { c.Menus[0].Keys["0"] = config.Action{Route: true} }, `ivr: menu a: key "0"`},
		{func(c *config.IVR) { c.Menus[0].Keys["12"] = config.Action{Route: true} }, `ivr: menu a: key "12"`},
		{func(c *config.IVR) { c.Menus[0].NoInput = &config.Action{Goto: "a", Hangup: true} },
			`ivr: menu a no_input: more than one of goto, route and hangup`},
		{func(c *config.IVR) { c.Menus = append(c.Menus, c.Menus[0]) }, `ivr: menu "a" defined twice`},
		{func(c *config.IVR) { c.FirstDigitTimeout = 0 }, `ivr: menu a: first-digit timeout 0s`},
		{func(c *config.IVR) { c.Menus[0].Collect = &config.Collect{Variable: "n", MaxDigits: 3} },
			`ivr: menu a: collect: no then action`},
		{func(c *config.IVR) {
			c.Menus[0].Collect = &config.Collect{Variable: "n", MinDigits: 4, MaxDigits: 3, Then: &config.Action{Route: true}}
		}, `ivr: menu a: collect: digits 4..3, inter-digit timeout 1s`},
	}
	for _, tt := range tests {
		c := good()
		tt.change(c)
		_, err := ivr.New(c, ivr.Options{Prompts: catalogue{}})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New: %v, want an error with %q", err, tt.want)
		}
	}
}
