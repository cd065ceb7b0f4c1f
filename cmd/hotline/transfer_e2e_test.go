package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/hotline-project/hotline/sip/sdp"
)

// pressKeys has the advocate's test phone p, in the call of inv, key s as RFC 4733 events
// (its tone stopped meanwhile: the test phone sends keys on a stream of their own, see
// TestMidCallInterpreterE2E), then go on sending its tone.
func pressKeys(t *testing.T, p *phone, inv *sipmsg.Request, s string) {
	t.Helper()
	offer, err := sdp.NegotiateOffer(inv.Body())
	if err != nil {
		t.Fatal(err)
	}
	toServer := net.UDPAddrFromAddrPort(offer.Remote)
	p.stop()
	time.Sleep(60 * time.Millisecond)
	seq, rtpTS := uint16(100+len(s)*37), uint32(50000+len(s)*9000)
	for _, k := range s {
		ev := map[rune]byte{'*': 10, '#': 11}[k]
		if k >= '0' && k <= '9' {
			ev = byte(k - '0')
		}
		(&uac{t: t}).sendDigitFrom(p.rtp, toServer, 101, ev, &seq, &rtpTS)
		time.Sleep(60 * time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.mu.Lock()
	p.stopTone = cancel
	p.mu.Unlock()
	go sendTone(ctx, p.rtp, toServer, p.pt, p.freq)
}

// TestWarmTransferE2E is issue 18's warm transfer on real sockets: the caller talks to ana;
// ana keys ** 2 1 # (the code of the "en" queue) on her phone; the server
// rings bob (registered after ana took the call), who hears the usual whisper and joins:
// the three hear each other's tones and not their own; ana hangs up, which completes the
// transfer: caller and bob talk on, and the caller hangs up, which hangs bob up.
func TestWarmTransferE2E(t *testing.T) {
	t.Parallel()
	extra := `midcall:
  prefix: "**"
  transfer_key: "2"
  transfer_queues: [{code: "1", queue: en}]
`
	ts := startServer(t, queueTestConfig(t, extra, "ana:en:pw-ana", "bob:en:pw-bob"))
	ana := newPhone(t, ts.addrs.SIPUDP, "ana", "pw-ana", 0, 1000)
	ana.register(300)
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="available"}`, 1)
	c := callIn(t, ts, "11", 440)
	inv := ana.expectInvite(20 * time.Second)
	ana.answer(inv)
	waitTone(t, "the caller hears ana", c.stream, 0, 1000, 10*time.Second)

	bob := newPhone(t, ts.addrs.SIPUDP, "bob", "pw-bob", 8, 1500)
	bob.register(300)
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="available"}`, 1)
	pressKeys(t, ana, inv, "**21#")
	bob.answer(bob.expectInvite(10 * time.Second))
	// The usual whisper (the caller's language first) before bob joins.
	whisper := mustPrompt(t, "en", "whisper_lang_en")
	bob.stream.waitFor(t, "bob's whisper", whisper.PCMA[800:1600], 10*time.Second)
	waitLevels(t, "the caller", c.stream, 0, []float64{1000, 1500}, []float64{440})
	waitLevels(t, "ana", ana.stream, 0, []float64{440, 1500}, []float64{1000})
	waitLevels(t, "bob", bob.stream, 8, []float64{440, 1000}, []float64{1500})
	ts.waitMetric(t, `hotline_conference_joins_total{kind="transfer",result="answered"}`, 1)
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="on_call"}`, 2)

	ana.hangup()
	ts.waitMetric(t, `hotline_conference_joins_total{kind="transfer",result="completed"}`, 1)
	waitLevels(t, "the caller, with bob", c.stream, 0, []float64{1500}, []float64{440, 1000})
	waitLevels(t, "bob, with the caller", bob.stream, 8, []float64{440}, []float64{1000, 1500})
	ts.waitMetric(t, `hotline_conferences_active`, 0)
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="on_call"}`, 1)
	for _, p := range c.stream.snapshot() {
		if p.pkt.PayloadType == 101 {
			t.Fatal("the caller received one of ana's key presses")
		}
	}
	c.hangup()
	bob.expectBye(5 * time.Second)
	ts.waitMetric(t, `hotline_calls_active{line="main"}`, 0)
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="available"}`, 2)
}

// TestAdvocateHangsUpE2E: ana brings 911 onto the call and hangs up: the caller stays with
// 911 (each hears the other) and is not hung up; when 911 hangs up, the caller goes back to
// the queue (hearing back_in_queue) and bob, who comes online, takes the call.
func TestAdvocateHangsUpE2E(t *testing.T) {
	t.Parallel()
	psap := newPhone(t, "127.0.0.1:9", "psap", "", 0, 1500)
	extra := fmt.Sprintf(`targets:
  - {name: psap, uri: "%s"}
midcall:
  prefix: "*"
  parties: [{key: "9", kind: emergency, target: psap, present_caller: true}]
`, psap.contactURI)
	cfg := strings.Replace(queueTestConfig(t, extra, "ana:en:pw-ana", "bob:en:pw-bob"), "queue_defaults:\n", "queue_defaults:\n  whisper: false\n", 1)
	ts := startServer(t, cfg)
	srv, err := net.ResolveUDPAddr("udp", ts.addrs.SIPUDP)
	if err != nil {
		t.Fatal(err)
	}
	psap.server = srv
	ana := newPhone(t, ts.addrs.SIPUDP, "ana", "pw-ana", 0, 1000)
	ana.register(300)
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="available"}`, 1)
	c := callIn(t, ts, "11", 440)
	inv := ana.expectInvite(20 * time.Second)
	ana.answer(inv)
	waitTone(t, "the caller hears ana", c.stream, 0, 1000, 5*time.Second)
	pressKeys(t, ana, inv, "*9")
	psap.answer(psap.expectInvite(10 * time.Second))
	waitLevels(t, "the caller", c.stream, 0, []float64{1000, 1500}, []float64{440})

	ana.hangup()
	waitLevels(t, "the caller, with 911", c.stream, 0, []float64{1500}, []float64{440, 1000})
	waitLevels(t, "911, with the caller", psap.stream, 0, []float64{440}, []float64{1000, 1500})
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="available"}`, 1)

	psap.hangup()
	back := mustPrompt(t, "en", "back_in_queue")
	c.stream.waitFor(t, "back_in_queue", back.PCMU[800:2400], 10*time.Second)
	ts.waitMetric(t, `hotline_conferences_active`, 0)
	bob := newPhone(t, ts.addrs.SIPUDP, "bob", "pw-bob", 0, 2000)
	bob.register(300)
	// ana, who hung up, is free too: whoever is rung answers.
	waitAnyInvite(t, c, []*phone{ana, bob})
	c.hangup()
	ts.waitMetric(t, `hotline_calls_active{line="main"}`, 0)
}

// waitAnyInvite answers the first of phones the server rings for the caller c and checks
// that the caller hears it.
func waitAnyInvite(t *testing.T, c *caller, phones []*phone) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range phones {
			select {
			case m := <-p.msgs:
				if req, ok := m.(*sipmsg.Request); ok && req.Method == sipmsg.INVITE {
					p.reply(req, 180, "Ringing", "", "ph"+randHex(3))
					p.answer(req)
					waitTone(t, "the caller hears "+p.id, c.stream, 0, p.freq, 10*time.Second)
					return
				} else if ok {
					p.handleStray(req)
				}
			default:
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("nobody was rung for the caller back in the queue")
}

// TestMidCallFailuresE2E: the failure paths on one call, end to end: the interpreter's line
// rings out (ring_timeout), 911's target is down (nothing listens at its address), and a
// warm transfer to bob finds him busy. Each time ana alone hears why (a message mixed over
// the caller's voice for her), the caller hears nothing but ana throughout, and nobody is
// hung up.
func TestMidCallFailuresE2E(t *testing.T) {
	t.Parallel()
	interp := newPhone(t, "127.0.0.1:9", "interp", "", 0, 1500)
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.LocalAddr().String()
	dead.Close() // 911's address: nothing listens there
	extra := fmt.Sprintf(`targets:
  - {name: interp_es, uri: "%s"}
  - {name: psap, uri: "sip:911@%s"}
midcall:
  prefix: "*"
  ring_timeout: 5s
  transfer_key: "2"
  interpreters: [{code: "34", language: es, target: interp_es}]
  parties: [{key: "9", kind: emergency, target: psap, present_caller: true}]
`, interp.contactURI, deadAddr)
	cfg := strings.Replace(queueTestConfig(t, extra, "ana:en:pw-ana", "bob:en:pw-bob"), "queue_defaults:\n", "queue_defaults:\n  whisper: false\n", 1)
	cfg = strings.Replace(cfg, "  - id: bob\n", "  - id: bob\n    extension: \"2042\"\n", 1)
	ts := startServer(t, cfg)
	srv, err := net.ResolveUDPAddr("udp", ts.addrs.SIPUDP)
	if err != nil {
		t.Fatal(err)
	}
	interp.server = srv
	ana := newPhone(t, ts.addrs.SIPUDP, "ana", "pw-ana", 0, 1000)
	ana.register(300)
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="available"}`, 1)
	c := callIn(t, ts, "11", 440)
	inv := ana.expectInvite(20 * time.Second)
	ana.answer(inv)
	waitTone(t, "the caller hears ana", c.stream, 0, 1000, 5*time.Second)
	bob := newPhone(t, ts.addrs.SIPUDP, "bob", "pw-bob", 0, 1500)
	bob.register(300)
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="available"}`, 1)

	told := func(what string, from time.Time) {
		t.Helper()
		time.Sleep(4 * time.Second)
		if n := busiestSecondWithout(ana.stream, 0, 440, 0.9, from); n < 18 {
			t.Errorf("%s: ana got at most %d frames in a second other than the caller's tone: no message", what, n)
		}
		t.Logf("%s: in the busiest second, ana got %d frames other than the caller's tone, the caller %d other than ana's",
			what, busiestSecondWithout(ana.stream, 0, 440, 0.9, from), busiestSecondWithout(c.stream, 0, 1000, 0.9, from))
		if n := busiestSecondWithout(c.stream, 0, 1000, 0.9, from); n > 10 {
			t.Errorf("%s: the caller got %d frames in one second other than ana's tone", what, n)
		}
		waitTone(t, what+": the caller still hears ana", c.stream, 0, 1000, 8*time.Second)
	}

	// The interpreter rings out.
	pressKeys(t, ana, inv, "*134#")
	in := interp.expectInvite(5 * time.Second)
	interp.expectCancel(in, 10*time.Second)
	told("interpreter no answer", time.Now())
	ts.waitMetric(t, `hotline_conference_joins_total{kind="interpreter",result="no_answer"}`, 1)

	// 911's target is down.
	pressKeys(t, ana, inv, "*9")
	from := time.Now().Add(200 * time.Millisecond) // ana's tone is back
	// No answer within ring_timeout, or failed at once when the loopback's ICMP error
	// reaches the SIP transaction: either way not answered.
	deadline := time.Now().Add(20 * time.Second)
	for {
		text := ts.scrape(t)
		n := max(metricValue(text, `hotline_conference_joins_total{kind="emergency",result="no_answer"}`), 0) +
			max(metricValue(text, `hotline_conference_joins_total{kind="emergency",result="failed"}`), 0)
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("911 down: %v attempts counted as no_answer or failed, want 1", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	told("911 down", from)

	// bob is busy.
	pressKeys(t, ana, inv, "*22042#")
	bob.refuse(bob.expectInvite(5*time.Second), 486, "Busy Here")
	told("transfer busy", time.Now())
	ts.waitMetric(t, `hotline_conference_joins_total{kind="transfer",result="busy"}`, 1)
	ts.waitMetric(t, `hotline_conferences_active`, 0)
	for _, p := range c.stream.snapshot() {
		if p.pkt.PayloadType == 101 {
			t.Fatal("the caller received one of ana's key presses")
		}
	}
	c.hangup()
	ana.expectBye(5 * time.Second)
}

// TestStayWithInterpreterE2E: the interpreter is configured stay_with_caller: ana hangs up
// while it is on the call, and caller and interpreter go on hearing each other (nobody is
// hung up); when the interpreter hangs up, the caller goes back to the queue.
func TestStayWithInterpreterE2E(t *testing.T) {
	t.Parallel()
	interp := newPhone(t, "127.0.0.1:9", "interp", "", 0, 1500)
	extra := fmt.Sprintf(`targets:
  - {name: interp_es, uri: "%s"}
midcall:
  prefix: "**"
  interpreters: [{code: "34", language: es, target: interp_es, stay_with_caller: true}]
`, interp.contactURI)
	cfg := strings.Replace(queueTestConfig(t, extra, "ana:en:pw-ana"), "queue_defaults:\n", "queue_defaults:\n  whisper: false\n  wrap_up: 60s\n", 1)
	cfg = strings.Replace(cfg, "  wrap_up: 0s\n", "", 1)
	ts := startServer(t, cfg)
	srv, err := net.ResolveUDPAddr("udp", ts.addrs.SIPUDP)
	if err != nil {
		t.Fatal(err)
	}
	interp.server = srv
	ana := newPhone(t, ts.addrs.SIPUDP, "ana", "pw-ana", 0, 1000)
	ana.register(300)
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="available"}`, 1)
	c := callIn(t, ts, "11", 440)
	inv := ana.expectInvite(20 * time.Second)
	ana.answer(inv)
	waitTone(t, "the caller hears ana", c.stream, 0, 1000, 5*time.Second)
	pressKeys(t, ana, inv, "**134#")
	interp.answer(interp.expectInvite(10 * time.Second))
	waitLevels(t, "the caller", c.stream, 0, []float64{1000, 1500}, []float64{440})

	ana.hangup()
	waitLevels(t, "the caller, with the interpreter", c.stream, 0, []float64{1500}, []float64{440, 1000})
	waitLevels(t, "the interpreter, with the caller", interp.stream, 0, []float64{440}, []float64{1000, 1500})
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="wrap_up"}`, 1)

	interp.hangup()
	back := mustPrompt(t, "en", "back_in_queue")
	c.stream.waitFor(t, "back_in_queue", back.PCMU[800:2400], 10*time.Second)
	ts.waitMetric(t, `hotline_queue_waiting{queue="en"}`, 1)
	c.hangup()
	ts.waitMetric(t, `hotline_calls_active{line="main"}`, 0)
}
