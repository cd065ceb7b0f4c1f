package routing_test

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/routing"
)

// testYAML has one route per kind of condition and of destination.
const testYAML = `
lines:
  - {number: "18883737888", name: main}
  - {number: "18005550100", name: text}
queues:
  - {name: en, languages: [en]}
  - {name: es, languages: [es]}
  - {name: bilingual, languages: [en, es]}
targets:
  - {name: partner_center, uri: "sip:overflow@partner.example.org"}
schedules:
  - name: advocates
    timezone: America/Chicago
    daily: ["08:00-20:00"]
    overrides: [{date: 12-25, closed: true, note: Christmas}]
routes:
  - name: text_line
    when: {lines: [text]}
    to: partner_center
  - name: es_unstaffed
    when: {languages: [es], nobody_in: es}
    to: bilingual
    priority: 20
  - name: help_now_es
    when: {languages: [es], reasons: [help_now], schedule: advocates, open: true}
    to: es
    priority: 100
    overflow:
      - {after: 60s, to: bilingual}
      - {after: 180s, to: partner_center}
  - name: swamped
    when: {reasons: [help_now], longest_wait: {queue: en, over: 5m}}
    to: partner_center
  - name: tips_closed
    when: {reasons: [tip], schedule: advocates, open: false}
    message: tips_closed
    hangup: true
  - name: help_now
    when: {reasons: [help_now]}
    to: en
    priority: 100
  - name: default
    to: en
    priority: 10
`

func compile(t testing.TB, yaml string) *routing.Table {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	tb, err := routing.Compile(cfg.RoutingSpec())
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return tb
}

func at(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

const (
	dayJune   = "2026-06-01T10:00:00-05:00" // a Monday, open
	nightJune = "2026-06-01T22:00:00-05:00" // closed
	christmas = "2026-12-25T10:00:00-06:00" // closed all day
)

func TestRoute(t *testing.T) {
	tb := compile(t, testYAML)
	staffed := map[string]routing.QueueState{"es": {LoggedIn: 2}, "en": {LoggedIn: 5, LongestWait: time.Minute}}
	since := at(t, "2026-06-01T09:00:00-05:00")
	tests := []struct {
		name    string
		attrs   routing.Attrs
		at      string
		state   routing.State
		want    string // Decision.String()
		explain []string
	}{
		{
			name:    "line",
			attrs:   routing.Attrs{Line: "text", Language: "es", Reason: "help_now"},
			at:      dayJune,
			want:    "route text_line: target partner_center (sip:overflow@partner.example.org)",
			explain: []string{"route text_line: matched: line is text"},
		},
		{
			name:  "language, reason and open schedule; queue state unknown",
			attrs: routing.Attrs{Line: "main", Language: "es", Reason: "help_now"},
			at:    dayJune,
			want:  "route help_now_es: queue es, priority 100",
			explain: []string{
				"route text_line: skipped: line is main, not text",
				"route es_unstaffed: skipped: state of queue es is unknown (route wants nobody logged in)",
				"route help_now_es: matched: language is es; reason is help_now; schedule advocates is open: 10:00 CDT Mon 2026-06-01 (America/Chicago) is within 08:00-20:00 of Mon 2026-06-01 (daily)",
			},
		},
		{
			name:    "nobody logged in",
			attrs:   routing.Attrs{Line: "main", Language: "es", Reason: "help_now"},
			at:      dayJune,
			state:   routing.State{Queues: map[string]routing.QueueState{"es": {}}},
			want:    "route es_unstaffed: queue bilingual, priority 20",
			explain: []string{"route es_unstaffed: matched: language is es; nobody logged in to queue es"},
		},
		{
			name:  "schedule closed at night",
			attrs: routing.Attrs{Line: "main", Language: "es", Reason: "help_now"},
			at:    nightJune,
			state: routing.State{Queues: staffed},
			want:  "route help_now: queue en, priority 100",
			explain: []string{
				"route es_unstaffed: skipped: 2 logged in to queue es (route wants nobody)",
				"route help_now_es: skipped: schedule advocates is closed: 22:00 CDT Mon 2026-06-01 (America/Chicago) is outside 08:00-20:00 of Mon 2026-06-01 (daily); opens 08:00 CDT Tue 2026-06-02 (route wants open: true)",
				"route swamped: skipped: longest wait in queue en is 1m0s, not over 5m0s",
				"route tips_closed: skipped: reason is help_now, not tip",
				"route help_now: matched: reason is help_now",
			},
		},
		{
			name:    "longest wait over the limit",
			attrs:   routing.Attrs{Line: "main", Language: "en", Reason: "help_now"},
			at:      dayJune,
			state:   routing.State{Queues: map[string]routing.QueueState{"en": {LoggedIn: 1, LongestWait: 5*time.Minute + time.Second}}},
			want:    "route swamped: target partner_center (sip:overflow@partner.example.org)",
			explain: []string{"route swamped: matched: reason is help_now; longest wait in queue en is 5m1s, over 5m0s"},
		},
		{
			name:  "longest wait at the limit",
			attrs: routing.Attrs{Line: "main", Language: "en", Reason: "help_now"},
			at:    dayJune,
			state: routing.State{Queues: map[string]routing.QueueState{"en": {LoggedIn: 1, LongestWait: 5 * time.Minute}}},
			want:  "route help_now: queue en, priority 100",
		},
		{
			name:  "message and hang-up while closed",
			attrs: routing.Attrs{Line: "main", Language: "en", Reason: "tip"},
			at:    nightJune,
			want:  "route tips_closed: play tips_closed and hang up",
		},
		{
			name:    "holiday",
			attrs:   routing.Attrs{Line: "main", Language: "en", Reason: "tip"},
			at:      christmas,
			want:    "route tips_closed: play tips_closed and hang up",
			explain: []string{"route tips_closed: matched: reason is tip; schedule advocates is closed: 10:00 CST Fri 2026-12-25 (America/Chicago); no hours on Fri 2026-12-25 (override 12-25 closed: Christmas); opens 08:00 CST Sat 2026-12-26"},
		},
		{
			name:    "catch-all",
			attrs:   routing.Attrs{Line: "main", Language: "en", Reason: "tip"},
			at:      dayJune,
			want:    "route default: queue en, priority 10",
			explain: []string{"route default: matched: no conditions"},
		},
		{
			name:  "nothing known of the call",
			attrs: routing.Attrs{},
			at:    dayJune,
			want:  "route default: queue en, priority 10",
			explain: []string{
				`route text_line: skipped: line is "", not text`,
				`route es_unstaffed: skipped: language is "", not es`,
			},
		},
		{
			name:    "forced route",
			attrs:   routing.Attrs{Line: "main", Language: "es", Reason: "help_now"},
			at:      dayJune,
			state:   routing.State{Overrides: []routing.Override{{Kind: routing.ForceRoute, Route: "text_line", Reason: "evacuation", Since: since}}},
			want:    "route text_line: target partner_center (sip:overflow@partner.example.org)",
			explain: []string{`emergency override: all calls forced to route text_line since 2026-06-01T09:00:00-05:00 ("evacuation"); routes are not tried`},
		},
		{
			name:  "forced route expired",
			attrs: routing.Attrs{Line: "main", Language: "en", Reason: "tip"},
			at:    dayJune,
			state: routing.State{Overrides: []routing.Override{{Kind: routing.ForceRoute, Route: "text_line", Since: since, Until: since.Add(time.Hour)}}},
			want:  "route default: queue en, priority 10",
		},
		{
			name:    "forced route unknown after a reload",
			attrs:   routing.Attrs{Line: "main", Language: "en", Reason: "tip"},
			at:      dayJune,
			state:   routing.State{Overrides: []routing.Override{{Kind: routing.ForceRoute, Route: "gone", Since: since}}},
			want:    "route default: queue en, priority 10",
			explain: []string{`emergency override all calls forced to route gone since 2026-06-01T09:00:00-05:00 ignored: no route "gone" in this configuration`},
		},
		{
			name:    "forced closed",
			attrs:   routing.Attrs{Line: "main", Language: "en", Reason: "tip"},
			at:      dayJune,
			state:   routing.State{Overrides: []routing.Override{{Kind: routing.ForceClosed, Schedule: "advocates", Reason: "storm", Since: since}}},
			want:    "route tips_closed: play tips_closed and hang up",
			explain: []string{`route tips_closed: matched: reason is tip; schedule advocates is closed by emergency override: schedule advocates forced closed since 2026-06-01T09:00:00-05:00 ("storm")`},
		},
		{
			name:  "forced closed, other schedule",
			attrs: routing.Attrs{Line: "main", Language: "en", Reason: "tip"},
			at:    dayJune,
			state: routing.State{Overrides: []routing.Override{{Kind: routing.ForceClosed, Schedule: "other", Since: since}}},
			want:  "route default: queue en, priority 10",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tb.Route(tt.attrs, at(t, tt.at), tt.state)
			if got := d.String(); got != tt.want {
				t.Errorf("Route = %s\nwant %s\nexplain:\n%s", got, tt.want, strings.Join(d.Explain, "\n"))
			}
			for _, line := range tt.explain {
				if !slices.Contains(d.Explain, line) {
					t.Errorf("explanation lacks %q:\n%s", line, strings.Join(d.Explain, "\n"))
				}
			}
		})
	}
}

func TestOverflow(t *testing.T) {
	tb := compile(t, testYAML)
	d := tb.Route(routing.Attrs{Line: "main", Language: "es", Reason: "help_now"}, at(t, dayJune), routing.State{})
	if d.Route != "help_now_es" || len(d.Overflow) != 2 {
		t.Fatalf("Route = %s with overflow %v; want help_now_es with 2 steps", d, d.Overflow)
	}
	tests := []struct {
		waited time.Duration
		at     string
		next   string // "" for none
	}{
		{0, "queue es", "queue bilingual"},
		{59 * time.Second, "queue es", "queue bilingual"},
		{60 * time.Second, "queue bilingual", "target partner_center (sip:overflow@partner.example.org)"},
		{179 * time.Second, "queue bilingual", "target partner_center (sip:overflow@partner.example.org)"},
		{180 * time.Second, "target partner_center (sip:overflow@partner.example.org)", ""},
		{time.Hour, "target partner_center (sip:overflow@partner.example.org)", ""},
	}
	for _, tt := range tests {
		if got := d.At(tt.waited).String(); got != tt.at {
			t.Errorf("At(%v) = %s, want %s", tt.waited, got, tt.at)
		}
		next, ok := d.Next(tt.waited)
		if got := next.String(); ok != (tt.next != "") || ok && got != tt.next {
			t.Errorf("Next(%v) = %s, %v; want %q", tt.waited, got, ok, tt.next)
		}
	}
	// A Decision's overflow is its own: changing it leaves the Table alone.
	d.Overflow[0].Queue = "changed"
	if d2 := tb.Route(routing.Attrs{Line: "main", Language: "es", Reason: "help_now"}, at(t, dayJune), routing.State{}); d2.Overflow[0].Queue != "bilingual" {
		t.Errorf("changing a Decision changed the Table: %v", d2.Overflow)
	}
}

func TestResolveLine(t *testing.T) {
	tb := compile(t, testYAML)
	for in, want := range map[string]string{
		"main": "main", "text": "text", "18883737888": "main", "8883737888": "main",
		"+1 (800) 555-0100": "text", "18005550199": "", "": "", "line-18883737888": "",
	} {
		got, ok := tb.ResolveLine(in)
		if got != want || ok != (want != "") {
			t.Errorf("ResolveLine(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// TestRouteAlwaysDecides is the property that no caller gets nothing: any line, language,
// reason, time, queue state and overrides give a decision that sends the call somewhere,
// or plays a message and hangs up only by a route that says so.
func TestRouteAlwaysDecides(t *testing.T) {
	tables := map[string]*routing.Table{"default": compile(t, string(config.Default())), "test": compile(t, testYAML)}
	rng := rand.New(rand.NewPCG(4, 2026))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	start := at(t, "2020-01-01T00:00:00Z").Unix()
	end := at(t, "2036-01-01T00:00:00Z").Unix()
	for name, tb := range tables {
		messages := map[string]bool{"tips_closed": true}
		for range 20000 {
			a := routing.Attrs{
				Line:     pick("main", "text", "", "unknown"),
				Language: pick("en", "es", "fr", "", "EN"),
				Reason:   pick("help_now", "tip", "other", "", "zzz"),
			}
			now := time.Unix(start+rng.Int64N(end-start), 0)
			var st routing.State
			if rng.IntN(2) == 0 {
				st.Queues = map[string]routing.QueueState{}
				for _, q := range []string{"en", "es", "bilingual"} {
					if rng.IntN(3) > 0 {
						st.Queues[q] = routing.QueueState{LoggedIn: rng.IntN(3), LongestWait: time.Duration(rng.Int64N(int64(10 * time.Minute)))}
					}
				}
			}
			if rng.IntN(4) == 0 {
				st.Overrides = append(st.Overrides, routing.Override{Kind: routing.ForceClosed, Schedule: "advocates", Since: now})
			}
			if rng.IntN(8) == 0 {
				st.Overrides = append(st.Overrides, routing.Override{Kind: routing.ForceRoute, Route: pick(tb.Routes()...), Since: now})
			}
			d := tb.Route(a, now, st)
			switch {
			case d.Route == "" || len(d.Explain) == 0:
				t.Fatalf("%s: Route(%+v, %v, %+v) = %+v: no route or explanation", name, a, now, st, d)
			case d.Message != "":
				if !d.Hangup || !messages[d.Route] || d.Queue != "" || d.Target != "" {
					t.Fatalf("%s: Route(%+v, %v) = %+v: a message from a route without one", name, a, now, d)
				}
			case (d.Queue == "") == (d.Target == ""), d.Hangup:
				t.Fatalf("%s: Route(%+v, %v) = %+v: not exactly one destination", name, a, now, d)
			}
		}
	}
}

func FuzzRoute(f *testing.F) {
	tb := compile(f, testYAML)
	f.Add("main", "es", "help_now", int64(1780326000), 0, int64(0))
	f.Add("", "", "", int64(0), -1, int64(-1))
	f.Fuzz(func(t *testing.T, line, lang, reason string, unix int64, loggedIn int, wait int64) {
		st := routing.State{Queues: map[string]routing.QueueState{
			"en": {LoggedIn: loggedIn, LongestWait: time.Duration(wait)},
			"es": {LoggedIn: -loggedIn, LongestWait: time.Duration(-wait)},
		}}
		d := tb.Route(routing.Attrs{Line: line, Language: lang, Reason: reason}, time.Unix(unix, 0), st)
		if d.Route == "" || d.Message == "" && (d.Queue == "") == (d.Target == "") {
			t.Fatalf("no decision: %+v", d)
		}
	})
}

func BenchmarkRoute(b *testing.B) {
	tb := compile(b, testYAML)
	now := at(b, nightJune)
	a := routing.Attrs{Line: "main", Language: "es", Reason: "help_now"}
	st := routing.State{Queues: map[string]routing.QueueState{"es": {LoggedIn: 2}, "en": {LoggedIn: 5}}}
	b.ReportAllocs()
	for b.Loop() {
		tb.Route(a, now, st)
	}
}

func TestQueueOpen(t *testing.T) {
	tb := compile(t, `
lines: [{number: "18883737888", name: main}]
queues:
  - {name: en, languages: [en]}
  - {name: es, languages: [es]}
  - {name: night, languages: [en]}
  - {name: spare, languages: [en]}
schedules:
  - {name: day, timezone: America/Chicago, daily: ["08:00-20:00"]}
routes:
  - name: es_day
    when: {languages: [es], schedule: day, open: true}
    to: es
  - name: closed
    when: {schedule: day, open: false}
    to: night
  - name: default
    to: en
`)
	forced := routing.Override{Kind: routing.ForceClosed, Schedule: "day", Since: at(t, "2026-11-27T00:00:00-06:00")}
	tests := []struct {
		queue, at string
		overrides []routing.Override
		want      bool
	}{
		{"en", "2026-11-27T03:00:00-06:00", nil, true}, // a route without schedule
		{"es", "2026-11-27T10:00:00-06:00", nil, true},
		{"es", "2026-11-27T22:00:00-06:00", nil, false},
		{"es", "2026-11-27T10:00:00-06:00", []routing.Override{forced}, false},
		{"night", "2026-11-27T22:00:00-06:00", nil, false}, // reached only while closed
		{"spare", "2026-11-27T10:00:00-06:00", nil, false}, // no route reaches it
	}
	for _, tt := range tests {
		if got := tb.QueueOpen(tt.queue, at(t, tt.at), tt.overrides); got != tt.want {
			t.Errorf("QueueOpen(%s, %s, %v) = %v, want %v", tt.queue, tt.at, tt.overrides, got, tt.want)
		}
	}
}
