package routing_test

import (
	"testing"

	"github.com/hotline-project/hotline/routing"
)

// The silent-call policy (issue 14): who is demoted, and why.
func TestSilentDemotion(t *testing.T) {
	tests := []struct {
		name string
		s    routing.Silent
		want string
	}{
		{"a key pressed", routing.Silent{NoRTP: true, SourceFlooding: true}, ""},
		{"silent caller with rtp: keeps the urgency", routing.Silent{NoInput: true}, ""},
		{"silent, no rtp", routing.Silent{NoInput: true, NoRTP: true}, routing.DemotedNoRTP},
		{"silent with rtp from a flooding source", routing.Silent{NoInput: true, SourceFlooding: true}, routing.DemotedSource},
		{"silent, no rtp, flooding source", routing.Silent{NoInput: true, NoRTP: true, SourceFlooding: true}, routing.DemotedSource},
	}
	for _, tt := range tests {
		if got := tt.s.Demotion(); got != tt.want {
			t.Errorf("%s: Demotion() = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// A demoted call is routed as though its menus set no reason; for its source, behind every
// other caller. It still gets a queue: it reaches a person.
func TestRouteDemoted(t *testing.T) {
	tb := compile(t, testYAML)
	now := at(t, dayJune)
	st := routing.State{}
	tests := []struct {
		name  string
		attrs routing.Attrs
		want  string
		pri   int
	}{
		{"not demoted", routing.Attrs{Line: "main", Language: "en", Reason: "help_now"}, "route help_now: queue en, priority 100", 100},
		{"no rtp", routing.Attrs{Line: "main", Language: "en", Reason: "help_now", Demoted: routing.DemotedNoRTP}, "route default: queue en, priority 10", 10},
		{"source", routing.Attrs{Line: "main", Language: "en", Reason: "help_now", Demoted: routing.DemotedSource}, "route default: queue en, priority -1", routing.DemotedPriority},
		{"language kept", routing.Attrs{Line: "main", Language: "es", Reason: "help_now", Demoted: routing.DemotedNoRTP}, "route default: queue en, priority 10", 10},
		{"line rules still apply", routing.Attrs{Line: "text", Language: "en", Reason: "help_now", Demoted: routing.DemotedSource}, "route text_line: target partner_center (sip:overflow@partner.example.org)", 0},
	}
	for _, tt := range tests {
		d := tb.Route(tt.attrs, now, st)
		if d.String() != tt.want || d.Priority != tt.pri || d.Demoted != tt.attrs.Demoted {
			t.Errorf("%s: got %q (priority %d, demoted %q), want %q (priority %d, demoted %q)",
				tt.name, d.String(), d.Priority, d.Demoted, tt.want, tt.pri, tt.attrs.Demoted)
		}
	}
}
