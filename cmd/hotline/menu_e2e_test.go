package main

import (
	"bytes"
	"testing"
	"time"
)

// TestSpanishHelpNow is the end-to-end case: a caller presses 2 (Spanish) during the
// greeting, then 1 ("I need help now") during the reason menu; the call ends up in the
// Spanish help-now route, and everything the caller heard after choosing Spanish is the
// Spanish recordings.
func TestSpanishHelpNow(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig)
	u := newUAC(t, ts.addrs.SIPUDP)
	stream := u.receiveRTP()
	_, media := answer(t, u.dial("0 101"))

	var seq uint16 = 1
	var rtpTS uint32 = 1000
	u.sendSilence(media, 3, &seq, &rtpTS)
	greeting := mustPrompt(t, "en", "greeting")
	stream.waitFor(t, "the greeting's first second", greeting.PCMU[:8000], 5*time.Second)
	u.sendDigit(media, 101, 2, &seq, &rtpTS)
	reason := mustPrompt(t, "es", "reason_menu")
	stream.waitFor(t, "the Spanish reason menu's first second", reason.PCMU[:8000], 5*time.Second)
	u.sendDigit(media, 101, 1, &seq, &rtpTS)
	connecting := mustPrompt(t, "es", "connecting")
	stream.waitFor(t, "the Spanish connecting prompt", connecting.PCMU, connecting.Duration()+5*time.Second)

	ts.waitMetric(t, `hotline_route_decisions_total{kind="queue",route="help_now_es"}`, 1)
	ts.waitMetric(t, `hotline_ivr_menu_selections_total{key="2",menu="welcome"}`, 1)
	ts.waitMetric(t, `hotline_ivr_menu_selections_total{key="1",menu="reason"}`, 1)
	ts.waitMetric(t, `hotline_ivr_language_chosen_total{language="es"}`, 1)
	ts.waitMetric(t, `hotline_ivr_ends_total{end="choice"}`, 1)
	heard := stream.payload()
	for _, name := range []string{"reason_menu", "connecting"} {
		if en := mustPrompt(t, "en", name); bytes.Contains(heard, en.PCMU[:1600]) {
			t.Errorf("heard the English %s", name)
		}
	}
	if bytes.Contains(heard, greeting.PCMU) {
		t.Error("the greeting played to the end despite the digit 2")
	}
	if bytes.Contains(heard, reason.PCMU) {
		t.Error("the reason menu played to the end despite the digit 1")
	}
	u.hangup()
	ts.waitMetric(t, `hotline_calls_total{line="main",outcome="caller_hangup"}`, 1)
}

// TestSilentCallerReachesRoute: a caller who presses nothing is routed as urgent (help now)
// in the default language without waiting through the whole tree.
func TestSilentCallerReachesRoute(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig)
	u := newUAC(t, ts.addrs.SIPUDP)
	stream := u.receiveRTP()
	_, media := answer(t, u.dial("0 101"))
	var seq uint16 = 1
	var rtpTS uint32 = 1000
	u.sendSilence(media, 3, &seq, &rtpTS)
	connecting := mustPrompt(t, "en", "connecting")
	stream.waitFor(t, "the English connecting prompt", connecting.PCMU, 60*time.Second)
	ts.waitMetric(t, `hotline_route_decisions_total{kind="queue",route="help_now"}`, 1)
	ts.waitMetric(t, `hotline_ivr_menu_selections_total{key="none",menu="welcome"}`, 1)
	ts.waitMetric(t, `hotline_ivr_ends_total{end="no_input"}`, 1)
	u.hangup()
}
