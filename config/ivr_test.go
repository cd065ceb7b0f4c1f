package config

import (
	"reflect"
	"testing"
	"time"
)

// TestIVRErrors checks what hotline check reports about the menus, above all menu trees
// in which a caller who presses nothing, or only wrong keys, would not reach a person.
func TestIVRErrors(t *testing.T) {
	const hint = " (in the default menus, which apply because the file has no ivr.menus:)"
	tests := []struct {
		file string
		want string
	}{
		{"ivr-dead-ends.yaml", `testdata/ivr-dead-ends.yaml:15: ivr.menus[0].no_input.hangup: a caller who presses nothing would be hung up: silence must lead to a person (route, or to: a queue or target)
testdata/ivr-dead-ends.yaml:18: ivr.menus[1].no_input.goto: a caller who presses nothing goes round loop_a -> loop_b -> loop_a and never reaches a person
testdata/ivr-dead-ends.yaml:24: ivr.menus[3].no_input: returns to this menu: a caller who presses nothing would hear it forever; add route, to or goto
testdata/ivr-dead-ends.yaml:25: ivr.menus[4].no_input: required: what happens to a caller who presses nothing (they must reach a person)
testdata/ivr-dead-ends.yaml:34: ivr.menus[6].no_input.goto: a caller who presses nothing goes round self -> self and never reaches a person`},
		{"ivr-refs.yaml", `testdata/ivr-refs.yaml:5: ivr.start: undefined menu "welcom"
testdata/ivr-refs.yaml:6: ivr.invalid: "Invalid" is not a prompt name (lowercase letters, digits and _), or lang/name
testdata/ivr-refs.yaml:7: ivr.operator.to: undefined queue or target "nowhere"
testdata/ivr-refs.yaml:10: ivr.menus[0].prompts[1]: "fr/language_menu": language "fr" is not one of ivr.languages
testdata/ivr-refs.yaml:10: ivr.menus[0].prompts[2]: "language menu" is not a prompt name (lowercase letters, digits and _), or lang/name
testdata/ivr-refs.yaml:10: ivr.menus[0].prompts[3]: required: a prompt name
testdata/ivr-refs.yaml:11: ivr.menus[0].repeat[1]: "en/" is not a prompt name (lowercase letters, digits and _), or lang/name
testdata/ivr-refs.yaml:13: ivr.menus[0].keys.1.set_language: "fr" is not one of ivr.languages
testdata/ivr-refs.yaml:13: ivr.menus[0].keys.1.goto: undefined menu "reasons"
testdata/ivr-refs.yaml:14: ivr.menus[0].keys.2.set_reason: "Help Now" may only have lowercase letters, digits, _ and -
testdata/ivr-refs.yaml:16: ivr.menus[0].keys.4.to: undefined queue or target "missing_queue"
testdata/ivr-refs.yaml:17: ivr.menus[0].keys.5.play[1]: "fr/connecting": language "fr" is not one of ivr.languages`},
		{"ivr-menus.yaml", `testdata/ivr-menus.yaml:10: ivr.menus[0].keys.0: 0 is reserved: it reaches a person from every menu (see ivr.operator)
testdata/ivr-menus.yaml:11: ivr.menus[0].keys.*: * is reserved: it plays the menu again
testdata/ivr-menus.yaml:12: ivr.menus[0].keys.12: "12" is not one key: 1-9 or #
testdata/ivr-menus.yaml:13: ivr.menus[0].keys.A: "A" is not one key: 1-9 or #
testdata/ivr-menus.yaml:14: ivr.menus[0].keys.5: does nothing: give it goto, route, to, hangup, play, set_language or set_reason
testdata/ivr-menus.yaml:15: ivr.menus[0].keys.6: can only do one of goto, route (or to) and hangup
testdata/ivr-menus.yaml:16: ivr.menus[0].keys.7.hangup: needs a message to play first (play)
testdata/ivr-menus.yaml:19: ivr.menus[1].name: duplicate of ivr.menus[0] (main)
testdata/ivr-menus.yaml:20: ivr.menus[1].prompts: at least one prompt is required
testdata/ivr-menus.yaml:22: ivr.menus[2].name: "Main Menu" may only have lowercase letters, digits, _ and -
testdata/ivr-menus.yaml:25: ivr.menus[3].name: required`},
		{"ivr-collect.yaml", `testdata/ivr-collect.yaml:9: ivr.menus[0].keys: a collect menu reads digits, not keys: say what follows in collect.then
testdata/ivr-collect.yaml:11: ivr.menus[0].collect.then: required: what happens once the digits are in
testdata/ivr-collect.yaml:12: ivr.menus[0].collect.variable: "Callback" is not a variable name: a lowercase letter, then lowercase letters, digits and _
testdata/ivr-collect.yaml:13: ivr.menus[0].collect.min_digits: must be at most max_digits (10), got 12
testdata/ivr-collect.yaml:15: ivr.menus[0].collect.inter_digit_timeout: must be greater than 0, got 0s
testdata/ivr-collect.yaml:19: ivr.menus[1].collect.variable: required: the name the digits are stored under
testdata/ivr-collect.yaml:20: ivr.menus[1].collect.min_digits: must be 0 or more, got -1
testdata/ivr-collect.yaml:21: ivr.menus[1].collect.max_digits: must be between 1 and 32, got 40
testdata/ivr-collect.yaml:26: ivr.menus[2].collect.max_digits: "2.5" is not a whole number`},
		{"ivr-settings.yaml", `testdata/ivr-settings.yaml:5: ivr.first_digit_timeout: must be greater than 0, got 0s
testdata/ivr-settings.yaml:6: ivr.inter_digit_timeout: must be greater than 0, got -1s
testdata/ivr-settings.yaml:7: ivr.retries: must be between 0 and 5, got 6
testdata/ivr-settings.yaml:8: ivr.operator: must route the call (route: true, or to: a queue or target), without goto or hangup: 0 reaches a person from every menu
testdata/ivr-settings.yaml:9: ivr.menus: at least one menu is required`},
		{"ivr-numbers.yaml", `testdata/ivr-numbers.yaml:5: ivr.retries: "1.5" is not a whole number
testdata/ivr-numbers.yaml:6: ivr.operator: required: what 0 does in every menu (route: true, or to: a queue or target)
testdata/ivr-numbers.yaml:11: ivr.menus[0].first_digit_timeout: must be greater than 0, got 0s
testdata/ivr-numbers.yaml:12: ivr.menus[0].retries: must be between 0 and 5, got -1
testdata/ivr-numbers.yaml:13: ivr.menus[0].invalid: "Bad" is not a prompt name (lowercase letters, digits and _), or lang/name`},
		{"ivr-default-menus.yaml", `testdata/ivr-default-menus.yaml:4: ivr.menus[0].prompts[2]: "es/language_menu": language "es" is not one of ivr.languages` + hint + `
testdata/ivr-default-menus.yaml:4: ivr.menus[0].repeat[1]: "es/language_menu": language "es" is not one of ivr.languages` + hint + `
testdata/ivr-default-menus.yaml:4: ivr.menus[0].keys.2.set_language: "es" is not one of ivr.languages` + hint},
	}
	checkLoadErrors(t, tests)
}

func TestIVRGood(t *testing.T) {
	c, err := Load("testdata/ivr-good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	v := &c.IVR
	if got, want := c.PromptNames(), []string{"callback_number", "closed", "connecting", "greeting", "hours", "invalid", "language_menu", "main_menu"}; !reflect.DeepEqual(got, want) {
		t.Errorf("PromptNames = %q, want %q", got, want)
	}
	if got, want := v.Fallbacks(), map[string]string{"es": "en", "es-mx": "es"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Fallbacks = %v, want %v", got, want)
	}
	if got, want := v.LanguageTags(), []string{"en", "es", "es-mx"}; !reflect.DeepEqual(got, want) {
		t.Errorf("LanguageTags = %q, want %q", got, want)
	}
	// An action in the file replaces the default one; it is not merged into it.
	if got, want := v.Operator, (&Action{Route: true}); !reflect.DeepEqual(got, want) {
		t.Errorf("Operator = %+v, want %+v", got, want)
	}
	// A merge key copies a menu; the copy's own settings override the IVR's.
	main, cp := v.Menus[0], v.Menus[1]
	if main.FirstDigitTimeout != nil || main.Retries != nil || main.Invalid != nil {
		t.Errorf("main has settings of its own: %+v", main)
	}
	ten, zero, none := 10*time.Second, 0, ""
	if cp.Name != "copy" || !reflect.DeepEqual(cp.Keys, main.Keys) ||
		!reflect.DeepEqual(cp.FirstDigitTimeout, &ten) || !reflect.DeepEqual(cp.Retries, &zero) || !reflect.DeepEqual(cp.Invalid, &none) {
		t.Errorf("copy = %+v", cp)
	}
	want := &Collect{Variable: "callback_number", MaxDigits: 11, InterDigitTimeout: &[]time.Duration{4 * time.Second}[0], Then: &Action{Goto: "main"}}
	if got := v.Menus[2].Collect; !reflect.DeepEqual(got, want) {
		t.Errorf("collect = %+v, want %+v", got, want)
	}
}

func TestDefaultMenus(t *testing.T) {
	c := MustDefault()
	want := []string{"connecting", "greeting", "invalid", "language_menu", "reason_menu"}
	if got := c.PromptNames(); !reflect.DeepEqual(got, want) {
		t.Errorf("PromptNames = %q, want %q", got, want)
	}
	// Silence at every menu routes the call, as urgent: a caller who cannot press a key
	// may be unable to speak freely.
	for _, m := range c.IVR.Menus {
		if a := m.NoInput; !a.Route || a.SetReason != "help_now" {
			t.Errorf("menu %s: no_input = %+v, want help_now and route", m.Name, a)
		}
	}
}

func TestSplitPrompt(t *testing.T) {
	for _, tt := range []struct{ ref, lang, name string }{
		{"greeting", "", "greeting"},
		{"es/language_menu", "es", "language_menu"},
		{"fr-CA/x", "fr-CA", "x"},
		{"", "", ""},
	} {
		if lang, name := SplitPrompt(tt.ref); lang != tt.lang || name != tt.name {
			t.Errorf("SplitPrompt(%q) = %q, %q; want %q, %q", tt.ref, lang, name, tt.lang, tt.name)
		}
	}
}
