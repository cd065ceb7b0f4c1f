package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hotline-project/hotline/sip"
)

// waitLevels waits until the last second of s (payload type pt) carries each frequency
// of want at more than a quarter of its power, and each of not at less than 2 %.
func waitLevels(t *testing.T, what string, s *rtpStream, pt uint8, want, not []float64) {
	t.Helper()
	deadline := time.Now().Add(8 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		ok := true
		got = ""
		for _, f := range want {
			l := toneLevel(s, pt, f, 50)
			got += fmt.Sprintf(" %v Hz %.2f", f, l)
			ok = ok && l > 0.25
		}
		for _, f := range not {
			l := toneLevel(s, pt, f, 50)
			got += fmt.Sprintf(" %v Hz %.3f", f, l)
			ok = ok && l < 0.02
		}
		if ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: levels%s; want %v heard, %v not", what, got, want, not)
}

// TestMidCallInterpreterE2E is issue 18's main case on real sockets: a caller talks to an
// advocate; the advocate keys ** 1 34 # on their phone (RFC 4733); the server dials the
// Spanish interpreter's line (a test phone behind the configured target), showing it the
// hotline's number, sends the access code as DTMF once it answers, and the three talk:
// each hears the other two tones and not its own (Goertzel). The caller receives none of
// the advocate's key presses. ** 0 drops the interpreter, and caller and advocate talk on.
func TestMidCallInterpreterE2E(t *testing.T) {
	t.Parallel()
	interp := newPhone(t, "127.0.0.1:9", "interp", "", 0, 1500)
	extra := fmt.Sprintf(`targets:
  - {name: interp_es, uri: "%s"}
midcall:
  prefix: "**"
  interpreters: [{code: "34", language: es, target: interp_es, access_code: "5"}]
`, interp.contactURI)
	cfg := strings.Replace(queueTestConfig(t, extra, "ana:es:pw-ana"), "queue_defaults:\n", "queue_defaults:\n  whisper: false\n", 1)
	ts := startServer(t, cfg)
	srv, err := net.ResolveUDPAddr("udp", ts.addrs.SIPUDP)
	if err != nil {
		t.Fatal(err)
	}
	interp.server = srv
	ana := newPhone(t, ts.addrs.SIPUDP, "ana", "pw-ana", 8, 1000)
	ana.register(300)
	ts.waitMetric(t, `hotline_advocates{language="es",queue="es",state="available"}`, 1)

	c := callInFrom(t, ts, "+15551230000", "21", 440)
	inv := ana.expectInvite(20 * time.Second)
	ana.answer(inv)
	waitTone(t, "the caller hears the advocate", c.stream, 0, 1000, 5*time.Second)
	waitTone(t, "the advocate hears the caller", ana.stream, 8, 440, 5*time.Second)

	// The advocate keys ** 1 34 # (stopping the microphone's tone meanwhile, as the test
	// phone sends keys on a stream of their own).
	offer, err := sip.NegotiateOffer(inv.Body())
	if err != nil {
		t.Fatal(err)
	}
	toServer := net.UDPAddrFromAddrPort(offer.Remote)
	keys := func(s string) {
		ana.stop()
		seq, rtpTS := uint16(100), uint32(50000)
		for _, k := range s {
			ev := map[rune]byte{'*': 10, '#': 11}[k]
			if k >= '0' && k <= '9' {
				ev = byte(k - '0')
			}
			(&uac{t: t}).sendDigitFrom(ana.rtp, toServer, 101, ev, &seq, &rtpTS)
			time.Sleep(60 * time.Millisecond)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ana.mu.Lock()
		ana.stopTone = cancel
		ana.mu.Unlock()
		go sendTone(ctx, ana.rtp, toServer, 8, 1000)
	}
	keys("**134#")

	in := interp.expectInvite(10 * time.Second)
	if from := in.From().Address.User; from != "hotline" || strings.Contains(in.String(), "5551230000") {
		t.Errorf("the interpreter was shown %q (or the caller's number): want the hotline's", from)
	}
	interp.answer(in)
	// The access code, 5 (770 + 1336 Hz), reaches the interpreter's line before it joins.
	deadline := time.Now().Add(5 * time.Second)
	for toneLevel(interp.stream, 0, 1336, 5) < 0.3 || toneLevel(interp.stream, 0, 770, 5) < 0.3 {
		if time.Now().After(deadline) {
			t.Fatal("the interpreter's line got no access code")
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitLevels(t, "the caller", c.stream, 0, []float64{1000, 1500}, []float64{440})
	waitLevels(t, "the advocate", ana.stream, 8, []float64{440, 1500}, []float64{1000})
	waitLevels(t, "the interpreter", interp.stream, 0, []float64{440, 1000}, []float64{1500})
	ts.waitMetric(t, `hotline_conferences_active`, 1)
	ts.waitMetric(t, `hotline_conference_participants`, 3)
	ts.waitMetric(t, `hotline_conference_joins_total{kind="interpreter",result="answered"}`, 1)

	// ** 0: the interpreter is dropped; caller and advocate go on, bridged again.
	keys("**0")
	interp.expectBye(5 * time.Second)
	ts.waitMetric(t, `hotline_conferences_active`, 0)
	ts.waitMetric(t, `hotline_conference_participants`, 0)
	waitTone(t, "the caller hears the advocate alone", c.stream, 0, 1000, 5*time.Second)
	waitTone(t, "the advocate hears the caller alone", ana.stream, 8, 440, 5*time.Second)
	for _, p := range c.stream.snapshot() {
		if p.pkt.PayloadType == 101 {
			t.Fatal("the caller received one of the advocate's key presses")
		}
	}
	c.hangup()
	ana.expectBye(5 * time.Second)
	ts.waitMetric(t, `hotline_calls_active{line="main"}`, 0)
}
