package config

import (
	"slices"
	"strings"
	"testing"
)

// TestSafetyErrors: a quick-exit key that a menu also uses, or that is no key, is refused
// with file:line of both the setting and the menu key; so are a safety step in a menu
// that does not exist and a window out of range.
func TestSafetyErrors(t *testing.T) {
	const base = "lines: [{number: \"988\"}]\n"
	tests := []struct {
		name, yaml string
		want       []string // substrings of the error, in order
	}{
		{"menu key", base + `ivr:
  start: m
  menus:
    - name: m
      prompts: [greeting]
      keys:
        "#": {route: true}
      no_input: {route: true}
safety:
  quick_exit_key: "#"
`, []string{`x.yaml:11: safety.quick_exit_key: "#" is also a key of menu "m" (x.yaml:8: ivr.menus[0].keys.#)`}},
		{"default key against a menu key", base + `ivr:
  start: m
  menus:
    - name: m
      prompts: [greeting]
      keys:
        "#": {route: true}
      no_input: {route: true}
`, []string{`safety.quick_exit_key: "#" is also a key of menu "m" (x.yaml:8: ivr.menus[0].keys.#)`}},
		{"collect digit", base + `ivr:
  start: m
  menus:
    - name: m
      prompts: [greeting]
      collect: {variable: n, min_digits: 1, max_digits: 4, then: {route: true}}
      no_input: {route: true}
safety:
  quick_exit_key: "7"
`, []string{`x.yaml:10: safety.quick_exit_key: "7" is also typed in collect menu "m" (x.yaml:7: ivr.menus[0].collect)`}},
		{"reserved key", base + "safety: {quick_exit_key: \"*\"}\n", []string{`x.yaml:2: safety.quick_exit_key: "*" is not one of 1-9, #, A-D`}},
		{"operator key", base + "safety: {quick_exit_key: \"0\"}\n", []string{`safety.quick_exit_key: "0" is not one of`}},
		{"two keys", base + "safety: {quick_exit_key: \"##\"}\n", []string{`safety.quick_exit_key: "##" is not one of`}},
		{"no such menu", base + "safety: {prompts: [safe_to_talk], menu: nope}\n", []string{`x.yaml:2: safety.menu: no menu is named "nope"`}},
		{"after too far", base + "safety: {prompts: [safe_to_talk], after: 9}\n", []string{`safety.after: must be 0..3 (the prompts of menu "welcome"), got 9`}},
		{"bad prompt", base + "safety: {prompts: [\"Safe To Talk\"]}\n", []string{`safety.prompts[0]: "Safe To Talk" is not a prompt name`}},
		{"window", base + "safety: {keep_place: 48h}\n", []string{`safety.keep_place: must be 0 (off) up to 24h, got 48h0m0s`}},
		{"bridge without key", "lines: [{number: \"988\", quick_exit_in_bridge: true}]\nsafety: {quick_exit_key: \"\"}\n",
			[]string{`lines[0].quick_exit_in_bridge: set, but safety.quick_exit_key is ""`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain\n%s", err, w)
				}
			}
		})
	}
}

// TestSafetyMenus: the safety step's prompts join the chosen menu after the configured
// number of its prompts, and the configuration itself is not changed.
func TestSafetyMenus(t *testing.T) {
	tests := []struct {
		yaml string
		menu string
		want []string
	}{
		{"safety: {prompts: [en/safe_to_talk, es/safe_to_talk]}", "welcome",
			[]string{"greeting", "en/safe_to_talk", "es/safe_to_talk", "en/language_menu", "es/language_menu"}},
		{"safety: {prompts: [safe_to_talk], after: 0, menu: reason}", "reason", []string{"safe_to_talk", "reason_menu"}},
		{"safety: {prompts: [safe_to_talk], after: 1, menu: reason}", "reason", []string{"reason_menu", "safe_to_talk"}},
		{"", "welcome", []string{"greeting", "en/language_menu", "es/language_menu"}},
	}
	for _, tt := range tests {
		c, err := Parse("x.yaml", []byte("lines: [{number: \"988\"}]\n"+tt.yaml+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		v := c.SafetyMenus()
		i := slices.IndexFunc(v.Menus, func(m Menu) bool { return m.Name == tt.menu })
		if got := v.Menus[i].Prompts; !slices.Equal(got, tt.want) {
			t.Errorf("%s: prompts %v, want %v", tt.yaml, got, tt.want)
		}
		if got := c.IVR.Menus[i].Prompts; len(got) == len(tt.want) && tt.yaml != "" {
			t.Errorf("%s: the configuration's own menu changed: %v", tt.yaml, got)
		}
	}
	if k, ok := MustDefault().Safety.QuickExit(); !ok || k != '#' {
		t.Errorf("default quick-exit key %q %v, want #", k, ok)
	}
}

// TestInbandDTMFSetting: media.inband_dtmf takes auto, always or off only.
func TestInbandDTMFSetting(t *testing.T) {
	for _, v := range []string{"auto", "always", "off"} {
		if _, err := Parse("x.yaml", []byte("lines: [{number: \"988\"}]\nmedia: {inband_dtmf: "+v+"}\n")); err != nil {
			t.Errorf("%s: %v", v, err)
		}
	}
	_, err := Parse("x.yaml", []byte("lines: [{number: \"988\"}]\nmedia: {inband_dtmf: yes}\n"))
	if err == nil || !strings.Contains(err.Error(), `x.yaml:2: media.inband_dtmf: "yes" is not one of auto, always, off`) {
		t.Errorf("inband_dtmf: yes: %v", err)
	}
}
