package ivr

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotline-project/hotline/prompts"
)

// fakeCatalogue has every prompt in every language.
type fakeCatalogue struct{ missing string }

func (f fakeCatalogue) Get(lang, name string) (*prompts.Prompt, bool) {
	if lang+"/"+name == f.missing {
		return nil, false
	}
	return &prompts.Prompt{Name: name, Lang: lang}, true
}

// scriptedCall plays prompts instantly, except that a prompt during which the script presses a
// key keeps "playing" until the IVR stops it, as a real barge-in would.
type scriptedCall struct {
	mu         sync.Mutex
	digits     chan rune
	press      map[string][]rune // prompt "lang/name" -> keys pressed while it plays
	hangupAt   string            // prompt during which the caller hangs up
	transcript []string
}

func newScriptedCall(press map[string][]rune) *scriptedCall {
	return &scriptedCall{digits: make(chan rune, 16), press: press}
}

func (c *scriptedCall) log(s string) {
	c.mu.Lock()
	c.transcript = append(c.transcript, s)
	c.mu.Unlock()
}

func (c *scriptedCall) Play(ctx context.Context, p *prompts.Prompt) error {
	key := p.Lang + "/" + p.Name
	if ctx.Err() != nil { // barge-in by a digit typed ahead
		c.log(key + " (skipped)")
		return ctx.Err()
	}
	c.log(key)
	if key == c.hangupAt {
		close(c.digits)
		<-ctx.Done()
		return ctx.Err()
	}
	keys := c.press[key]
	if len(keys) == 0 {
		return nil
	}
	for _, k := range keys {
		c.digits <- k
	}
	<-ctx.Done()
	c.log("stopped")
	return ctx.Err()
}

func (c *scriptedCall) Digits() <-chan rune { return c.digits }

func (c *scriptedCall) Hangup(context.Context, string) error { return nil }

func TestLanguageMenu(t *testing.T) {
	tests := []struct {
		name      string
		press     map[string][]rune
		typeAhead []rune
		hangupAt  string
		want      LanguageResult
		wantErr   error
		script    []string
	}{
		{
			name:   "no input chooses the default language",
			want:   LanguageResult{Language: "en"},
			script: []string{"en/greeting", "en/language_menu", "es/language_menu", "en/language_selected"},
		},
		{
			name:   "2 during the Spanish menu stops it and chooses Spanish",
			press:  map[string][]rune{"es/language_menu": {'2'}},
			want:   LanguageResult{Language: "es", Chosen: true},
			script: []string{"en/greeting", "en/language_menu", "es/language_menu", "stopped", "es/language_selected"},
		},
		{
			name:   "1 during the greeting stops it and skips the menu",
			press:  map[string][]rune{"en/greeting": {'1'}},
			want:   LanguageResult{Language: "en", Chosen: true},
			script: []string{"en/greeting", "stopped", "en/language_selected"},
		},
		{
			name:      "a digit typed ahead is kept",
			typeAhead: []rune{'2'},
			want:      LanguageResult{Language: "es", Chosen: true},
			script:    []string{"en/greeting", "es/language_selected"},
		},
		{
			name:   "a wrong key stops a prompt but the menu goes on",
			press:  map[string][]rune{"en/greeting": {'9'}},
			want:   LanguageResult{Language: "en"},
			script: []string{"en/greeting", "stopped", "en/language_menu", "es/language_menu", "en/language_selected"},
		},
		{
			name:     "hang-up during the menu",
			hangupAt: "en/language_menu",
			wantErr:  ErrHangup,
			want:     LanguageResult{Language: "en"},
			script:   []string{"en/greeting", "en/language_menu"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			call := newScriptedCall(tt.press)
			call.hangupAt = tt.hangupAt
			for _, d := range tt.typeAhead {
				call.digits <- d
			}
			m := &LanguageMenu{
				Prompts:           fakeCatalogue{},
				Choices:           []Choice{{'1', "en"}, {'2', "es"}},
				DefaultLanguage:   "en",
				FirstDigitTimeout: 50 * time.Millisecond,
			}
			got, err := m.Run(context.Background(), call)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("result = %+v, want %+v", got, tt.want)
			}
			gotScript := strings.Join(call.transcript, "\n")
			wantScript := strings.Join(tt.script, "\n")
			if len(tt.typeAhead) > 0 {
				// A prompt barged in by type-ahead may be stopped before or after it started.
				gotScript = strings.ReplaceAll(gotScript, "en/greeting\nstopped", "en/greeting")
				gotScript = strings.ReplaceAll(gotScript, "en/greeting (skipped)", "en/greeting")
			}
			if gotScript != wantScript {
				t.Errorf("transcript:\n%s\nwant:\n%s", gotScript, wantScript)
			}
		})
	}
}

func TestLanguageMenuMissingPrompt(t *testing.T) {
	m := &LanguageMenu{
		Prompts:           fakeCatalogue{missing: "es/language_menu"},
		Choices:           []Choice{{'1', "en"}, {'2', "es"}},
		DefaultLanguage:   "en",
		FirstDigitTimeout: time.Millisecond,
	}
	_, err := m.Run(context.Background(), newScriptedCall(nil))
	if err == nil || !strings.Contains(err.Error(), "es/language_menu") {
		t.Fatalf("err = %v, want one naming es/language_menu", err)
	}
}

func TestLanguageMenuContextCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := &LanguageMenu{Prompts: fakeCatalogue{}, Choices: []Choice{{'1', "en"}}, DefaultLanguage: "en", FirstDigitTimeout: time.Second}
	if _, err := m.Run(ctx, newScriptedCall(nil)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
