package callflow

import (
	"strings"
	"testing"
	"time"

	"github.com/hotline-project/hotline/ivr"
	"github.com/hotline-project/hotline/prompts"
	"github.com/hotline-project/hotline/queue"
	"github.com/hotline-project/hotline/records"
)

// testYAML: two queues and a backup; help_now overflows to backup after 30 s; a closed
// reason gets a message. Short rings, no wrap-up, no announcements, no whisper (tests
// switch them on).
const testYAML = `
queues:
  - {name: en, languages: [en]}
  - {name: es, languages: [es]}
  - {name: backup, languages: [en]}
queue_defaults:
  ring_timeout: 5s
  wrap_up: 0s
  max_misses: 0
  announce_every: 0s
  whisper: false
targets:
  - {name: partner, uri: "sip:partner@partner.test"}
routes:
  - {name: closed, when: {reasons: [tip]}, message: closed, hangup: true}
  - {name: help_now, when: {reasons: [help_now]}, to: en, priority: 100, overflow: [{after: 30s, to: backup}]}
  - {name: default, to: en, priority: 10}
`

func helpNow() ivr.Result {
	return ivr.Result{Language: "en", Reason: "help_now", End: ivr.EndChoice}
}

func prompt(t *testing.T, lang, name string) *prompts.Prompt {
	t.Helper()
	cat, err := prompts.LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	p, ok := cat.Get(lang, name)
	if !ok {
		t.Fatalf("no prompt %s/%s", lang, name)
	}
	return p
}

// TestRingAnswerBridge: a caller queues, the advocate's phone rings and answers, the two
// legs are bridged on the caller's side; the caller hangs up, the advocate's leg ends,
// the advocate is free again and the record says completed.
func TestRingAnswerBridge(t *testing.T) {
	h := newHarness(t, testYAML+advocatesYAML(t, "ana:en"))
	h.online("ana", "sip:ana@phone", phone{answerAfter: 2 * time.Second})
	c := h.call(helpNow())
	eventually(t, "ana rung", func() bool { return h.net.isRinging("sip:ana@phone") })
	if got := h.advocateState("ana"); got != queue.Ringing {
		t.Fatalf("ana is %v, want ringing", got)
	}
	h.clk.Advance(2 * time.Second)
	eventually(t, "the bridge", func() bool { return c.leg.isBridged() })
	adv := h.net.leg("sip:ana@phone")
	if got := h.advocateState("ana"); got != queue.OnCall {
		t.Fatalf("ana is %v, want on call", got)
	}
	h.clk.Advance(10 * time.Second)
	c.leg.remoteHangup()
	eventually(t, "the advocate's leg hung up", adv.ended)
	r := h.record(c)
	if r.Outcome != "" && r.Outcome != records.OutcomeCompleted {
		t.Errorf("outcome %q, want completed (derived)", r.Outcome)
	}
	if r.Advocate != "ana" || r.Queue != "en" || !r.Connected.Equal(t0.Add(2*time.Second)) {
		t.Errorf("record %+v, want ana in en connected at +2s", r)
	}
	eventually(t, "ana available", func() bool { return h.advocateState("ana") == queue.Available })
}

// TestNoAnswerRingsTheNext: ana's phone never answers; at the ring timeout (the engine's
// NextDeadline, with no polling) her ring is cancelled and bo is rung, who answers.
func TestNoAnswerRingsTheNext(t *testing.T) {
	h := newHarness(t, testYAML+advocatesYAML(t, "ana:en", "bo:en"))
	h.online("ana", "sip:ana@phone", phone{})
	h.clk.Advance(time.Second) // ana has been idle longest
	h.online("bo", "sip:bo@phone", phone{answerAfter: time.Second})
	c := h.call(helpNow())
	eventually(t, "ana rung", func() bool { return h.net.isRinging("sip:ana@phone") })
	h.clk.Advance(4900 * time.Millisecond)
	if !h.net.isRinging("sip:ana@phone") || h.net.dialled("sip:bo@phone") != 0 {
		t.Fatal("the ring ended before its timeout")
	}
	h.clk.Advance(100 * time.Millisecond)
	eventually(t, "ana's ring cancelled", func() bool { return !h.net.isRinging("sip:ana@phone") })
	eventually(t, "bo rung", func() bool { return h.net.dialled("sip:bo@phone") == 1 })
	h.clk.Advance(time.Second)
	eventually(t, "the bridge to bo", func() bool { return c.leg.isBridged() })
	if a := h.eng.Snapshot(h.clk.Now()).Advocates[0]; a.ID != "ana" || a.Misses != 1 {
		t.Errorf("ana = %+v, want one miss", a)
	}
	c.leg.remoteHangup()
	if r := h.record(c); r.Advocate != "bo" {
		t.Errorf("answered by %q, want bo", r.Advocate)
	}
}

// TestEngineClockIsItsNextDeadline: the engine's clock is a timer set to its
// NextDeadline (issue 13, item 6): none at all while nothing is due, and one for a ring.
func TestEngineClockIsItsNextDeadline(t *testing.T) {
	h := newHarness(t, testYAML+advocatesYAML(t, "ana:en"))
	settle()
	if n := h.clk.pending(); n != 0 {
		t.Fatalf("%d timers pending with nothing to do, want 0 (no polling)", n)
	}
	h.online("ana", "sip:ana@phone", phone{})
	c := h.call(ivr.Result{Language: "en", Reason: "other", End: ivr.EndChoice}) // no overflow
	eventually(t, "ana rung", func() bool { return h.net.isRinging("sip:ana@phone") })
	// The engine's ring deadline (5 s) and the ring's own cut-off (10 s): no others.
	eventually(t, "two timers", func() bool { return h.clk.pending() == 2 })
	c.leg.remoteHangup()
	h.record(c)
	eventually(t, "no timers once the call is gone", func() bool { return h.clk.pending() == 0 })
}

// TestAbandonWhileRinging: the caller hangs up while the advocate's phone rings: the ring
// is cancelled, the advocate is free, and the record says abandoned.
func TestAbandonWhileRinging(t *testing.T) {
	h := newHarness(t, testYAML+advocatesYAML(t, "ana:en"))
	h.online("ana", "sip:ana@phone", phone{})
	c := h.call(helpNow())
	eventually(t, "ana rung", func() bool { return h.net.isRinging("sip:ana@phone") })
	h.clk.Advance(3 * time.Second)
	c.leg.remoteHangup()
	r := h.record(c)
	if r.Outcome != "" && r.Outcome != records.OutcomeAbandoned {
		t.Errorf("outcome %q, want abandoned", r.Outcome)
	}
	eventually(t, "the ring cancelled", func() bool { return !h.net.isRinging("sip:ana@phone") })
	eventually(t, "ana available", func() bool { return h.advocateState("ana") == queue.Available })
}

// TestWhisper: the advocate who answers hears the caller's language and reason while the
// caller still hears the hold audio; then the hold audio stops before the bridge, so no
// warning is logged about it (issue 13, item 9).
func TestWhisper(t *testing.T) {
	h := newHarness(t, strings.Replace(testYAML, "whisper: false", "whisper: true", 1)+advocatesYAML(t, "ana:en"))
	h.online("ana", "sip:ana@phone", phone{answerAfter: time.Second})
	c := h.call(helpNow())
	eventually(t, "ana rung", func() bool { return h.net.isRinging("sip:ana@phone") })
	h.clk.Advance(time.Second)
	eventually(t, "the advocate's leg", func() bool { return h.net.leg("sip:ana@phone") != nil })
	adv := h.net.leg("sip:ana@phone")
	eventually(t, "the whisper", func() bool { return adv.hasPlayed("whisper_lang_en+whisper_help_now") })
	if c.leg.isBridged() {
		t.Fatal("the caller was bridged before the whisper ended")
	}
	if !c.leg.hasPlayed("hold") {
		t.Errorf("the caller heard %q, want the hold audio during the whisper", c.leg.plays())
	}
	h.clk.Advance(5 * time.Second)
	eventually(t, "the bridge after the whisper", func() bool { return c.leg.isBridged() })
	adv.remoteHangup()
	eventually(t, "the caller hung up", c.leg.ended)
	h.record(c)
	if strings.Contains(h.logs.String(), "level=WARN") {
		t.Errorf("warnings logged on an ordinary bridge:\n%s", h.logs.String())
	}
}
