package callflow

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotline-project/hotline/queue"
)

// transferYAML adds the warm transfer to midcallYAML: ** 2 1 # to the backup queue, ** 2
// and an advocate's extension to that advocate.
const transferYAML = midcallYAML + `  transfer_key: "2"
  transfer_queues: [{code: "1", queue: backup}]
`

// newTransferHarness connects a caller to ana; bob (extension 2042) serves the same
// queues.
func newTransferHarness(t *testing.T, midcall string) *midHarness {
	t.Helper()
	advocates := strings.Replace(advocatesYAML(t, "ana:en", "bob:en"), "  - id: bob\n", "  - id: bob\n    extension: \"2042\"\n", 1)
	return newMidHarnessWith(t, midcall, advocates)
}

// TestTransferToQueue is issue 18's warm transfer: ana keys ** 2 1 #; the engine rings bob
// (free in the backup queue) while caller and ana talk on; bob answers and joins them; ana
// hangs up, which completes it: caller and bob are bridged, ana is free and bob is on the
// call, which the console now shows as bob's; the caller's hang-up ends bob's leg.
func TestTransferToQueue(t *testing.T) {
	h := newTransferHarness(t, transferYAML)
	h.online("bob", "sip:bob@phone", phone{answerAfter: 2 * time.Second})
	h.keys("**21#")
	eventually(t, "bob rung", func() bool { return h.net.isRinging("sip:bob@phone") })
	if got := h.mixer.members(); !slices.Equal(got, []string{"caller", "sip:ana@phone"}) {
		t.Errorf("while bob rings: conference %q, want caller and ana", got)
	}
	h.clk.Advance(2 * time.Second)
	eventually(t, "bob joined", h.inConference("caller", "sip:ana@phone", "sip:bob@phone"))
	if s := h.advocateState("bob"); s != queue.OnCall {
		t.Errorf("bob is %v, want on_call", s)
	}
	h.adv.remoteHangup()
	eventually(t, "caller and bob bridged", h.c.leg.isBridged)
	eventually(t, "ana free", func() bool { return h.advocateState("ana") == queue.Available })
	if s := h.advocateState("bob"); s != queue.OnCall {
		t.Errorf("after the transfer bob is %v, want on_call", s)
	}
	if err := h.flow.HangUp(t.Context(), "ana"); err == nil {
		t.Error("the console still finds ana on the call")
	}
	// The console finds bob's call by the id the queue engine shows for him.
	var bobCall string
	for _, a := range h.eng.Snapshot(h.clk.Now()).Advocates {
		if a.ID == "bob" {
			bobCall = a.Call
		}
	}
	if card, ok := h.flow.CallCard(bobCall); !ok || card.Language != "en" || CallOf(bobCall) != h.c.id {
		t.Errorf("CallCard(%q) = %+v, %v; want the caller's card", bobCall, card, ok)
	}
	bob := h.net.leg("sip:bob@phone")
	h.c.leg.remoteHangup()
	eventually(t, "bob's leg ended", bob.ended)
	eventually(t, "bob free", func() bool { return h.advocateState("bob") == queue.Available })
	r := h.record(h.c)
	if r.Advocate != "ana" {
		t.Errorf("record's advocate %q, want ana (who took the call)", r.Advocate)
	}
	want := []string{"transfer queue/backup bob answered +3s", "transfer queue/backup bob completed +3s"}
	if got := h.parties.get(); !slices.Equal(got, want) {
		t.Errorf("recorded %q, want %q", got, want)
	}
	if a, p, j := h.metrics.get(); a != 0 || p != 0 || j["transfer/answered"] != 1 || j["transfer/completed"] != 1 {
		t.Errorf("metrics active %d participants %d joins %v", a, p, j)
	}
	h.callerHeardNothing()
}

// TestTransferFails: a named advocate busy, nobody free, and a queue whose advocates do
// not answer within midcall.ring_timeout: each is told to ana alone, the caller hears
// nothing and stays with ana; the record and the metrics say why.
func TestTransferFails(t *testing.T) {
	for _, tc := range []struct {
		name, keys string
		bob        *phone
		advance    time.Duration
		prompt     string
		result     string
	}{
		{"named advocate busy", "**22042#", &phone{fail: ErrBusy}, 0, "party_busy", "transfer advocate/bob  busy"},
		{"nobody free", "**21#", nil, 0, "transfer_none_available", "transfer queue/backup  none_available"},
		{"no answer", "**21#", &phone{}, 30 * time.Second, "party_no_answer", "transfer queue/backup  no_answer"},
		{"unknown code", "**29#", nil, 0, "party_unknown", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newTransferHarness(t, transferYAML)
			if tc.bob != nil {
				h.online("bob", "sip:bob@phone", *tc.bob)
			}
			h.keys(tc.keys)
			if tc.bob != nil {
				eventually(t, "bob rung", func() bool { return h.net.dialled("sip:bob@phone") > 0 })
			}
			h.clk.Advance(tc.advance)
			eventually(t, "ana told "+tc.prompt, func() bool { return h.adv.hasPlayed(tc.prompt) })
			h.clk.Advance(10 * time.Second) // the message ends
			eventually(t, "caller and ana bridged again", h.c.leg.isBridged)
			h.callerHeardNothing()
			if h.c.leg.ended() || h.adv.ended() {
				t.Fatal("a failed transfer ended the call")
			}
			if s := h.advocateState("ana"); s != queue.OnCall {
				t.Errorf("ana is %v, want on_call", s)
			}
			if tc.bob != nil && h.advocateState("bob") == queue.Ringing {
				t.Error("bob still ringing")
			}
			h.c.leg.remoteHangup()
			h.record(h.c)
			got := h.parties.get()
			if tc.result != "" && (len(got) != 1 || !strings.HasPrefix(got[0], tc.result)) {
				t.Errorf("recorded %q, want %q", got, tc.result)
			}
		})
	}
}

// TestTransferDroppedAndNamedFromConsole: the console's Transfer names bob; bob answers and
// joins; ana's drop key (** 0) hangs bob up and caller and ana talk on; bob is free again.
func TestTransferDroppedAndNamedFromConsole(t *testing.T) {
	h := newTransferHarness(t, transferYAML)
	h.online("bob", "sip:bob@phone", phone{answerAfter: time.Second})
	if err := h.flow.Transfer("nope", "bob"); err == nil {
		t.Error("Transfer of an unknown call: no error")
	}
	if err := h.flow.Transfer(h.c.id, "nobody"); err == nil {
		t.Error("Transfer to nobody: no error")
	}
	if err := h.flow.Transfer(h.c.id, "bob"); err != nil {
		t.Fatalf("Transfer: %v", err)
	}
	eventually(t, "bob rung", func() bool { return h.net.isRinging("sip:bob@phone") })
	h.clk.Advance(time.Second)
	eventually(t, "bob joined", h.inConference("caller", "sip:ana@phone", "sip:bob@phone"))
	h.keys("**0")
	bob := h.net.leg("sip:bob@phone")
	eventually(t, "bob hung up", bob.ended)
	eventually(t, "caller and ana bridged again", h.c.leg.isBridged)
	eventually(t, "bob free", func() bool { return h.advocateState("bob") == queue.Available })
	h.c.leg.remoteHangup()
	h.record(h.c)
	want := []string{"transfer advocate/bob bob answered +2s", "transfer advocate/bob  cancelled +2s"}
	if got := h.parties.get(); !slices.Equal(got, want) {
		t.Errorf("recorded %q, want %q", got, want)
	}
}

// TestAdvocateHangsUpRequeues: ana hangs up while the interpreter is on the call: the
// interpreter is hung up (a caller is never left with a stranger), the caller goes back
// to the queue with their priority and first arrival and hears that they are, and bob
// takes the call.
func TestAdvocateHangsUpRequeues(t *testing.T) {
	h := newTransferHarness(t, transferYAML)
	h.net.set("sip:es@lang.test", phone{answerAfter: time.Second})
	h.keys("**134#")
	eventually(t, "dialled", func() bool { return h.net.isRinging("sip:es@lang.test") })
	h.clk.Advance(2 * time.Second)
	eventually(t, "three talk", h.inConference("caller", "sip:ana@phone", "sip:es@lang.test"))
	interp := h.net.leg("sip:es@lang.test")
	h.clk.Advance(time.Minute)
	h.online("bob", "sip:bob@phone", phone{answerAfter: time.Second}) // free longer than ana will be
	h.clk.Advance(time.Second)
	h.adv.remoteHangup()
	eventually(t, "the interpreter hung up", interp.ended)
	eventually(t, "the caller back in the queue", func() bool { return h.waiting(h.c, "en") })
	if h.c.leg.ended() {
		t.Fatal("the caller was hung up")
	}
	if w, ok := h.eng.Waited(h.c.id, h.clk.Now()); !ok || w < time.Minute {
		t.Errorf("waited %v since the first arrival, want over a minute", w)
	}
	eventually(t, "the caller told", func() bool { return h.c.leg.hasPlayed("back_in_queue") })
	eventually(t, "bob rung", func() bool { return h.net.isRinging("sip:bob@phone") })
	h.clk.Advance(time.Second)
	eventually(t, "caller and bob bridged", h.c.leg.isBridged)
	h.c.leg.remoteHangup()
	r := h.record(h.c)
	if r.Advocate != "ana" || r.Connected.IsZero() {
		t.Errorf("record's advocate %q connected %v, want ana's first answer", r.Advocate, r.Connected)
	}
	want := []string{"interpreter es hotline answered +2.6s", "advocate ana  requeued +1m4s"}
	if got := h.parties.get(); !slices.Equal(got, want) {
		t.Errorf("recorded %q, want %q", got, want)
	}
	if a, p, _ := h.metrics.get(); a != 0 || p != 0 {
		t.Errorf("metrics active %d participants %d", a, p)
	}
}

// TestAdvocateHangsUpWith911: ana hangs up with 911 and the interpreter on the call: the
// caller stays with both (911 may need the interpreter) and ana is free; when 911 hangs up,
// the interpreter (who may not stay alone with the caller) is hung up and the caller goes
// back to the queue.
func TestAdvocateHangsUpWith911(t *testing.T) {
	h := newTransferHarness(t, transferYAML)
	h.net.set("sip:es@lang.test", phone{answerAfter: time.Second})
	h.net.set("sip:911@psap.test", phone{answerAfter: time.Second})
	h.keys("**134#")
	h.clk.Advance(2 * time.Second)
	eventually(t, "interpreter in", h.inConference("caller", "sip:ana@phone", "sip:es@lang.test"))
	h.keys("**9")
	h.clk.Advance(time.Second)
	eventually(t, "911 in", h.inConference("caller", "sip:ana@phone", "sip:es@lang.test", "sip:911@psap.test"))
	h.adv.remoteHangup()
	eventually(t, "caller, interpreter and 911 go on", h.inConference("caller", "sip:es@lang.test", "sip:911@psap.test"))
	eventually(t, "ana free", func() bool { return h.advocateState("ana") == queue.Available })
	interp := h.net.leg("sip:es@lang.test")
	if interp.ended() || h.c.leg.ended() {
		t.Fatal("a leg ended with the advocate")
	}
	h.net.leg("sip:911@psap.test").remoteHangup()
	eventually(t, "the interpreter hung up", interp.ended)
	eventually(t, "the caller back in the queue", func() bool { return h.waiting(h.c, "en") })
	h.c.leg.remoteHangup()
	h.record(h.c)
	if got := h.parties.get(); !slices.Contains(got, "advocate ana  with_emergency +4s") {
		t.Errorf("recorded %q", got)
	}
	if a, p, _ := h.metrics.get(); a != 0 || p != 0 {
		t.Errorf("metrics active %d participants %d", a, p)
	}
}

// TestAdvocateHangsUpStaysWithInterpreter: on a line listed in
// midcall.stay_with_interpreter_lines the caller stays with the interpreter alone (the
// partner is hung up); when the interpreter hangs up, the caller goes back to the queue.
func TestAdvocateHangsUpStaysWithInterpreter(t *testing.T) {
	h := newTransferHarness(t, transferYAML+"  stay_with_interpreter_lines: [main]\n")
	h.net.set("sip:es@lang.test", phone{answerAfter: time.Second})
	h.net.set("sip:partner@partner.test", phone{answerAfter: time.Second})
	h.keys("**134#")
	h.clk.Advance(2 * time.Second)
	eventually(t, "interpreter in", h.inConference("caller", "sip:ana@phone", "sip:es@lang.test"))
	h.keys("**7")
	h.clk.Advance(time.Second)
	eventually(t, "partner in", h.inConference("caller", "sip:ana@phone", "sip:es@lang.test", "sip:partner@partner.test"))
	h.adv.remoteHangup()
	eventually(t, "caller and interpreter alone", h.inConference("caller", "sip:es@lang.test"))
	eventually(t, "the partner hung up", h.net.leg("sip:partner@partner.test").ended)
	h.net.leg("sip:es@lang.test").remoteHangup()
	eventually(t, "the caller back in the queue", func() bool { return h.waiting(h.c, "en") })
	h.c.leg.remoteHangup()
	h.record(h.c)
	if got := h.parties.get(); !slices.Contains(got, "advocate ana  with_interpreter +4s") {
		t.Errorf("recorded %q", got)
	}
}

// TestAdvocateHangsUpAloneEndsCall: alone with the caller, the advocate's hang-up ends the
// call as it always did.
func TestAdvocateHangsUpAloneEndsCall(t *testing.T) {
	h := newTransferHarness(t, transferYAML)
	h.adv.remoteHangup()
	eventually(t, "the caller hung up", h.c.leg.ended)
	h.record(h.c)
}

// TestTransferFirstLeavesDuringWhisper: the backup queue whispers to bob; ana hangs up
// while bob hears it: the caller is not sent anywhere, bob joins when the whisper ends, and
// the transfer completes then (caller and bob bridged).
func TestTransferFirstLeavesDuringWhisper(t *testing.T) {
	advocates := strings.Replace(advocatesYAML(t, "ana:en", "bob:en"), "  - id: bob\n", "  - id: bob\n    extension: \"2042\"\n", 1)
	h := newMidHarnessOn(t, strings.Replace(testYAML, "{name: backup, languages: [en]}", "{name: backup, languages: [en], whisper: true}", 1), transferYAML, advocates)
	h.online("bob", "sip:bob@phone", phone{answerAfter: time.Second})
	h.keys("**21#")
	eventually(t, "bob rung", func() bool { return h.net.isRinging("sip:bob@phone") })
	h.clk.Advance(time.Second)
	eventually(t, "bob hears the whisper", func() bool {
		l := h.net.leg("sip:bob@phone")
		return l != nil && l.hasPlayed("whisper")
	})
	h.adv.remoteHangup()
	eventually(t, "ana free", func() bool { return h.advocateState("ana") == queue.Available })
	if h.c.leg.ended() || h.waiting(h.c, "en") {
		t.Fatal("the caller was hung up or queued while bob heard the whisper")
	}
	h.clk.Advance(10 * time.Second)
	eventually(t, "caller and bob bridged", h.c.leg.isBridged)
	bob := h.net.leg("sip:bob@phone")
	h.c.leg.remoteHangup()
	eventually(t, "bob's leg ended", bob.ended)
	h.record(h.c)
	if got := h.parties.get(); len(got) != 2 || !strings.Contains(got[1], "completed") {
		t.Errorf("recorded %q", got)
	}
	if a, p, _ := h.metrics.get(); a != 0 || p != 0 {
		t.Errorf("metrics active %d participants %d", a, p)
	}
}

// TestSuperviseFromConsole: the console's entry points by call id: Supervise joins sue's
// leg listening, SuperviseMode makes her whisper to ana; an advocate who is not a
// supervisor, or an unknown call, is refused.
func TestSuperviseFromConsole(t *testing.T) {
	advocates := strings.Replace(advocatesYAML(t, "ana:en", "sue:fr"), "  - id: sue\n", "  - id: sue\n    role: supervisor\n", 1)
	h := newMidHarnessWith(t, transferYAML, advocates)
	ctx := t.Context()
	if err := h.flow.Supervise(ctx, newLeg(h.clk, "x"), "ana", h.c.id); !errors.Is(err, ErrUnknownAdvocate) {
		t.Errorf("Supervise by ana = %v, want ErrUnknownAdvocate", err)
	}
	if err := h.flow.Supervise(ctx, newLeg(h.clk, "x"), "sue", "nope"); !errors.Is(err, ErrNoCall) {
		t.Errorf("Supervise of no call = %v, want ErrNoCall", err)
	}
	sue := newLeg(h.clk, "sue")
	done := make(chan error, 1)
	go func() { done <- h.flow.Supervise(ctx, sue, "sue", h.c.id) }()
	eventually(t, "sue in the call", h.inConference("caller", "sip:ana@phone", "sue"))
	if err := h.flow.SuperviseMode(h.c.id, "sue", ModeWhisper); err != nil {
		t.Fatal(err)
	}
	eventually(t, "sue whispering to ana", func() bool { return h.mixer.modeOf("sue") == "whisper>sip:ana@phone" })
	if err := h.flow.SuperviseMode(h.c.id, "bob", ModeWhisper); !errors.Is(err, ErrNoCall) {
		t.Errorf("SuperviseMode of someone not supervising = %v, want ErrNoCall", err)
	}
	if err := h.flow.AddParty(h.c.id, "5"); !errors.Is(err, ErrUnknownFeature) {
		t.Errorf("AddParty(5) = %v, want ErrUnknownFeature", err)
	}
	if err := h.flow.DropParty(h.c.id); !errors.Is(err, ErrNoParty) {
		t.Errorf("DropParty with none = %v, want ErrNoParty", err)
	}
	h.c.leg.remoteHangup()
	if err := <-done; err != nil {
		t.Errorf("Supervise returned %v", err)
	}
	eventually(t, "sue's leg hung up", sue.ended)
	h.record(h.c)
}

// TestConsoleAddsInterpreter: AddInterpreter by call id dials the interpreter as the keys do.
func TestConsoleAddsInterpreter(t *testing.T) {
	h := newMidHarness(t)
	h.net.set("sip:es@lang.test", phone{answerAfter: time.Second})
	if err := h.flow.AddInterpreter(h.c.id, "99"); !errors.Is(err, ErrUnknownFeature) {
		t.Errorf("AddInterpreter(99) = %v, want ErrUnknownFeature", err)
	}
	if err := h.flow.AddInterpreter(h.c.id, "34"); err != nil {
		t.Fatal(err)
	}
	if err := h.flow.AddParty(h.c.id, "9"); !errors.Is(err, ErrFeatureBusy) {
		t.Errorf("AddParty while dialling = %v, want ErrFeatureBusy", err)
	}
	eventually(t, "the interpreter rung", func() bool { return h.net.isRinging("sip:es@lang.test") })
	h.clk.Advance(time.Second)
	eventually(t, "the access code sent", func() bool {
		l := h.net.leg("sip:es@lang.test")
		return l != nil && l.hasPlayed("dtmf")
	})
	h.clk.Advance(time.Second)
	eventually(t, "three talk", h.inConference("caller", "sip:ana@phone", "sip:es@lang.test"))
	if err := h.flow.DropParty(h.c.id); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bridged again", h.c.leg.isBridged)
	h.c.leg.remoteHangup()
	h.record(h.c)
}

// TestAdvocateHangsUpWhile911Rings: ana keys ** 9 and hangs up while 911 rings: the call to
// 911 goes on (the caller waits for it, not sent to the queue), and 911 joins the caller
// when it answers. Were 911 not to answer, the caller would go back to the queue.
func TestAdvocateHangsUpWhile911Rings(t *testing.T) {
	for _, answers := range []bool{true, false} {
		t.Run(fmt.Sprint("answers=", answers), func(t *testing.T) {
			h := newTransferHarness(t, transferYAML)
			p := phone{answerAfter: 5 * time.Second}
			if !answers {
				p = phone{fail: ErrBusy, failAfter: 5 * time.Second}
			}
			h.net.set("sip:911@psap.test", p)
			h.keys("**9")
			eventually(t, "911 rung", func() bool { return h.net.isRinging("sip:911@psap.test") })
			h.adv.remoteHangup()
			eventually(t, "ana free", func() bool { return h.advocateState("ana") == queue.Available })
			if h.c.leg.ended() || h.waiting(h.c, "en") {
				t.Fatal("the caller was hung up or queued while 911 rang")
			}
			h.clk.Advance(5 * time.Second)
			if answers {
				eventually(t, "caller and 911", h.inConference("caller", "sip:911@psap.test"))
			} else {
				eventually(t, "the caller back in the queue", func() bool { return h.waiting(h.c, "en") })
			}
			h.c.leg.remoteHangup()
			h.record(h.c)
			want := "advocate ana  with_emergency +1s"
			if got := h.parties.get(); !slices.Contains(got, want) {
				t.Errorf("recorded %q, want %q among them", got, want)
			}
		})
	}
}
