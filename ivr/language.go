package ivr

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Prompt names the language menu uses; every language must have them.
const (
	PromptGreeting         = "greeting"
	PromptLanguageMenu     = "language_menu"
	PromptLanguageSelected = "language_selected"
)

// Choice is one entry of the language menu: press Digit for Language.
type Choice struct {
	Digit    rune
	Language string
}

// LanguageMenu is the first menu a caller hears: the greeting (with the safety line), then
// "For English press 1, para español oprima 2". A digit during any prompt stops it at once
// (barge-in); a caller who presses nothing gets the default language, never a dead end.
//
// Deprecated: the language menu is an ordinary menu of the configured tree now; use New and
// Engine.Run. LanguageMenu stays until cmd/hotline switches.
type LanguageMenu struct {
	Prompts           Catalogue
	Choices           []Choice
	DefaultLanguage   string
	FirstDigitTimeout time.Duration
	Logger            *slog.Logger
}

// LanguageResult is what LanguageMenu learned about the call.
type LanguageResult struct {
	// Language is the caller's language (the default when they chose nothing).
	Language string
	// Chosen is true when the caller pressed a key for it.
	Chosen bool
}

// Run plays the menu on call and returns the caller's language. It returns ErrHangup (or
// ctx's error) if the call ended first.
func (m *LanguageMenu) Run(ctx context.Context, call Call) (LanguageResult, error) {
	log := m.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	res := LanguageResult{Language: m.DefaultLanguage}

	steps := []struct{ lang, name string }{{m.DefaultLanguage, PromptGreeting}}
	for _, c := range m.Choices {
		steps = append(steps, struct{ lang, name string }{c.Language, PromptLanguageMenu})
	}
	var (
		digit rune
		got   bool
	)
	for _, st := range steps {
		p, ok := m.Prompts.Get(st.lang, st.name)
		if !ok {
			return res, fmt.Errorf("ivr: missing prompt %s/%s", st.lang, st.name)
		}
		d, ok, err := playInterruptible(ctx, call, p)
		if err != nil {
			return res, err
		}
		if ok {
			if _, valid := m.choice(d); valid {
				digit, got = d, true
				break
			}
			// A wrong key stops the prompt too; the caller hears the rest of the menu.
			log.Debug("invalid key during menu")
		}
	}
	if !got {
		d, ok, err := waitDigit(ctx, call, m.FirstDigitTimeout, func(d rune) bool {
			_, valid := m.choice(d)
			return valid
		})
		if err != nil {
			return res, err
		}
		digit, got = d, ok
	}
	if got {
		lang, _ := m.choice(digit)
		res = LanguageResult{Language: lang, Chosen: true}
	}
	log.Info("language selected", "language", res.Language, "chosen", res.Chosen)
	if p, ok := m.Prompts.Get(res.Language, PromptLanguageSelected); ok {
		if _, _, err := playInterruptible(ctx, call, p); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (m *LanguageMenu) choice(d rune) (string, bool) {
	for _, c := range m.Choices {
		if c.Digit == d {
			return c.Language, true
		}
	}
	return "", false
}
