package outcome

import "testing"

func TestLegUnanswered(t *testing.T) {
	tests := []struct {
		leg  Leg
		want Call
	}{
		{LegCancelled, Cancelled},
		{LegCallerHangup, Cancelled},
		{LegNoAck, NoAck},
		{LegEvicted, NoAck},
		{LegShutdown, Shutdown},
		{LegFailed, SetupFailed},
		{LegMediaFailed, SetupFailed},
		{Leg("unknown"), SetupFailed},
	}
	for _, tt := range tests {
		if got := tt.leg.Unanswered(); got != tt.want {
			t.Errorf("%s.Unanswered() = %s, want %s", tt.leg, got, tt.want)
		}
	}
}

func TestRing(t *testing.T) {
	names := map[Ring]string{RingAnswered: "answered", RingNoAnswer: "no_answer", RingBusy: "busy",
		RingRejected: "rejected", RingFailed: "failed"}
	for o, name := range names {
		if o.String() != name || !o.Valid() {
			t.Errorf("%d: String %q Valid %v, want %q true", o, o.String(), o.Valid(), name)
		}
	}
	for _, o := range []Ring{0, RingFailed + 1} {
		if o.Valid() {
			t.Errorf("Ring(%d).Valid() = true", o)
		}
	}
}

// Every outcome is listed once, and the Call and Leg names are the labels and CSV values
// operators already know: a rename here would break their dashboards and exports.
func TestListed(t *testing.T) {
	seen := map[Call]bool{}
	for _, c := range Calls {
		if seen[c] || c == "" {
			t.Errorf("call outcome %q listed twice or empty", c)
		}
		seen[c] = true
	}
	if len(seen) != 17 || !seen["menu_hangup"] || !seen["callback"] || !seen["in_progress"] {
		t.Errorf("call outcomes %v", Calls)
	}
	legs := map[Leg]bool{}
	for _, l := range Legs {
		if legs[l] {
			t.Errorf("leg outcome %q listed twice", l)
		}
		legs[l] = true
	}
	if len(legs) != 10 || !legs["caller_hangup"] || !legs["evicted"] {
		t.Errorf("leg outcomes %v", Legs)
	}
}
