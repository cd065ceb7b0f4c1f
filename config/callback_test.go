package config

import (
	"strings"
	"testing"
	"time"
)

// TestCallbackErrors: every callback setting out of range is refused with file:line and
// field; a queue offering callbacks needs a trunk that is a target, and a quick-exit key
// the callback's keys do not use.
func TestCallbackErrors(t *testing.T) {
	const base = "lines: [{number: \"988\"}]\nsafety: {quick_exit_key: \"\"}\n"
	const offering = "queues:\n  - {name: en, languages: [en], callback: {wait_over: 5m}}\n" +
		"routes:\n  - {name: all, to: en}\n"
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"no trunk", base + offering, []string{`x.yaml:1: callback.trunk: queues offer callbacks, but "" is not a target`}},
		{"unknown trunk", base + offering + "callback: {trunk: nope}\n", []string{`x.yaml:7: callback.trunk: queues offer callbacks, but "nope" is not a target`}},
		{"quick exit #", "lines: [{number: \"988\"}]\n" + offering + "callback: {trunk: partner_center}\n" +
			"targets: [{name: partner_center, uri: \"sip:x@y\"}]\n",
			[]string{`safety.quick_exit_key: "#" is also typed in the callback offer`}},
		{"wait_over", base + "queues:\n  - {name: en, languages: [en], callback: {wait_over: 5s}}\n", []string{`x.yaml:4: queues[0].callback.wait_over: must be 0 (never) or 30s..2h, got 5s`}},
		{"caller id", base + "callback: {caller_id: \"Hotline\"}\n", []string{`x.yaml:3: callback.caller_id: "Hotline" is not digits`}},
		{"name", base + "callback: {hotline_name: \"a\\\"b\"}\n", []string{`callback.hotline_name: may not hold quotes`}},
		{"digits", base + "callback: {min_digits: 2}\n", []string{`callback.min_digits: min_digits..max_digits must be within 3..32, got 2..15`}},
		{"attempts", base + "callback: {attempts: 0}\n", []string{`callback.attempts: must be 1..10, got 0`}},
		{"retry", base + "callback: {retry_after: 10s}\n", []string{`callback.retry_after: must be 1m..6h, got 10s`}},
		{"ring", base + "callback: {ring_timeout: 5s}\n", []string{`callback.ring_timeout: must be 10s..2m, got 5s`}},
		{"gate", base + "callback: {gate_timeout: 1m}\n", []string{`callback.gate_timeout: must be 3s..30s, got 1m0s`}},
		{"zone", base + "callback: {timezone: Mars/Olympus}\n", []string{`callback.timezone: "Mars/Olympus" is not a known time zone`}},
		{"no windows", base + "callback: {windows: []}\n", []string{`callback.windows: want 1..9 windows, got 0`}},
		{"window key", base + "callback: {windows: [{key: \"0\", prompt: a, within: 1h}, {key: \"2\", prompt: b, within: 1h}, {key: \"2\", prompt: c, within: 1h}]}\n",
			[]string{`callback.windows[0].key: "0" is not one of 1-9`, `callback.windows[2].key: "2" is the key of another window`}},
		{"window times", base + "callback: {windows: [{key: \"1\", prompt: a, within: 5m}, {key: \"2\", prompt: b}, {key: \"3\", prompt: c, from: \"18:00\", to: \"25:00\"}, {key: \"4\", prompt: d, within: 1h, from: \"01:00\", to: \"02:00\"}, {key: \"5\", prompt: \"E\", within: 1h}]}\n",
			[]string{`callback.windows[0].within: must be 15m..72h, got 5m0s`, `callback.windows[1]: set within, or from and to`,
				`callback.windows[2].from: from and to must be different HH:MM times`, `callback.windows[3]: set within, or from and to, not both`,
				`callback.windows[4].prompt: "E" is not a prompt name`}},
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

// TestCallbackDefaults: off by default (no queue offers), and a queue offering with a
// trunk and a quick-exit key of A-D is accepted.
func TestCallbackDefaults(t *testing.T) {
	c := MustDefault()
	if c.CallbacksEnabled() || c.Callback.CallerID != "anonymous" || len(c.Callback.Windows) != 3 {
		t.Errorf("defaults: enabled %v, %+v", c.CallbacksEnabled(), c.Callback)
	}
	c, err := Parse("x.yaml", []byte(`lines: [{number: "988"}]
safety: {quick_exit_key: "D"}
queues:
  - {name: en, languages: [en], callback: {wait_over: 5m, overflowing: true, closed: true}}
routes:
  - {name: all, to: en}
targets: [{name: trunk, uri: "sip:out@gw.example"}]
callback: {trunk: trunk, timezone: America/New_York}
`))
	if err != nil {
		t.Fatal(err)
	}
	if q := c.Queues[0].Callback; !c.CallbacksEnabled() || q.WaitOver != 5*time.Minute || !q.Overflowing || !q.Closed {
		t.Errorf("queue callback %+v", q)
	}
	if c.CallbackLocation().String() != "America/New_York" {
		t.Errorf("location %v", c.CallbackLocation())
	}
}
