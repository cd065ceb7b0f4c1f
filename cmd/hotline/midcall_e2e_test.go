package main

import (
	"context"
	"fmt"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hotline-project/hotline/media/g711"
	"github.com/hotline-project/hotline/sip/sdp"
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
	offer, err := sdp.NegotiateOffer(inv.Body())
	if err != nil {
		t.Fatal(err)
	}
	toServer := net.UDPAddrFromAddrPort(offer.Remote)
	keys := func(s string) {
		// The test phone sends keys on a stream of their own (another SSRC): the tone
		// must have stopped, or its packets in between would restart the server's key
		// detection (a real phone sends both in one stream).
		ana.stop()
		time.Sleep(60 * time.Millisecond)
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
	// Looked for packet by packet in all it received, however late the test looks.
	deadline := time.Now().Add(5 * time.Second)
	for !heardKey(interp.stream, 770, 1336) {
		if time.Now().After(deadline) {
			t.Fatal("the interpreter's line got no access code")
		}
		time.Sleep(20 * time.Millisecond)
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

// TestMidCallPartyFailsE2E: the 911 line is busy: the advocate alone hears why, the caller
// hears nothing of it and stays connected to the advocate; then it answers: it is shown the
// caller's number (present_caller), and the three talk.
func TestMidCallPartyFailsE2E(t *testing.T) {
	t.Parallel()
	psap := newPhone(t, "127.0.0.1:9", "psap", "", 0, 1500)
	extra := fmt.Sprintf(`targets:
  - {name: psap, uri: "%s"}
midcall:
  prefix: "*"
  parties: [{key: "9", kind: emergency, target: psap, present_caller: true}]
`, psap.contactURI)
	cfg := strings.Replace(queueTestConfig(t, extra, "ana:en:pw-ana"), "queue_defaults:\n", "queue_defaults:\n  whisper: false\n", 1)
	ts := startServer(t, cfg)
	srv, err := net.ResolveUDPAddr("udp", ts.addrs.SIPUDP)
	if err != nil {
		t.Fatal(err)
	}
	psap.server = srv
	ana := newPhone(t, ts.addrs.SIPUDP, "ana", "pw-ana", 0, 1000)
	ana.register(300)
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="available"}`, 1)
	c := callInFrom(t, ts, "+15551230000", "11", 440)
	inv := ana.expectInvite(20 * time.Second)
	ana.answer(inv)
	waitTone(t, "the caller hears the advocate", c.stream, 0, 1000, 5*time.Second)
	offer, err := sdp.NegotiateOffer(inv.Body())
	if err != nil {
		t.Fatal(err)
	}
	toServer := net.UDPAddrFromAddrPort(offer.Remote)
	seq, rtpTS := uint16(100), uint32(50000)
	press := func(ev byte) {
		ana.stop()
		time.Sleep(60 * time.Millisecond) // see keys in TestMidCallInterpreterE2E
		(&uac{t: t}).sendDigitFrom(ana.rtp, toServer, 101, ev, &seq, &rtpTS)
		time.Sleep(60 * time.Millisecond)
		ctx, cancel := context.WithCancel(context.Background())
		ana.mu.Lock()
		ana.stopTone = cancel
		ana.mu.Unlock()
		go sendTone(ctx, ana.rtp, toServer, 0, 1000)
	}

	press(10) // *
	press(9)
	psap.refuse(psap.expectInvite(10*time.Second), 486, "Busy Here")
	// The message ("That line is busy...") is mixed over the caller's voice for the
	// advocate alone: the advocate's audio is no longer the caller's tone alone, while the
	// caller's stays the advocate's tone throughout.
	// Judged packet by packet (a 20 ms frame holds whole periods of both tones), so that
	// the phase jumps where the media moves between relay and mixer do not count.
	from := time.Now()
	time.Sleep(4 * time.Second)
	if n := framesWithout(ana.stream, 0, 440, 0.9, from); n < 25 {
		t.Errorf("the advocate got %d frames other than the caller's tone: the message was not heard", n)
	}
	if n := busiestSecondWithout(c.stream, 0, 1000, 0.9, from); n > 10 {
		t.Errorf("the caller got %d frames in one second other than the advocate's tone: the caller heard something else", n)
	}
	waitTone(t, "the caller still hears the advocate", c.stream, 0, 1000, 8*time.Second)
	ts.waitMetric(t, `hotline_conference_joins_total{kind="emergency",result="busy"}`, 1)
	ts.waitMetric(t, `hotline_conferences_active`, 0)

	press(10)
	press(9)
	in := psap.expectInvite(10 * time.Second)
	if from := in.From().Address.User; from != "+15551230000" {
		t.Errorf("911 was shown %q, want the caller's number", from)
	}
	psap.answer(in)
	waitLevels(t, "the caller", c.stream, 0, []float64{1000, 1500}, []float64{440})
	waitLevels(t, "911", psap.stream, 0, []float64{440, 1000}, []float64{1500})
	ts.waitMetric(t, `hotline_conference_joins_total{kind="emergency",result="answered"}`, 1)

	// 911 hangs up: caller and advocate talk on.
	psap.hangup()
	waitTone(t, "the caller hears the advocate alone", c.stream, 0, 1000, 5*time.Second)
	ts.waitMetric(t, `hotline_conferences_active`, 0)
	c.hangup()
	ana.expectBye(5 * time.Second)
}

// framesWithout counts the packets of s received since from whose audio is not mostly the
// tone freq (less than share of the frame's power).
func framesWithout(s *rtpStream, pt uint8, freq, share float64, from time.Time) int {
	n := 0
	for _, p := range s.snapshot() {
		if p.at.Before(from) || p.pkt.PayloadType != pt {
			continue
		}
		one := &rtpStream{packets: []recvPacket{p}}
		if toneLevel(one, pt, freq, 1) < share {
			n++
		}
	}
	return n
}

// busiestSecondWithout is the most packets, among any 50 in a row (a second) that s
// received since from, whose audio is loud (RMS over 1000 of 32768) and not mostly the tone
// freq (see framesWithout). A message fills a second with speech; the few frames where the
// media moves between relay and mixer (phase jumps), and the silence or fading concealment
// of a late packet on a loaded machine, do not.
func busiestSecondWithout(s *rtpStream, pt uint8, freq, share float64, from time.Time) int {
	var other []bool
	for _, p := range s.snapshot() {
		if p.at.Before(from) || p.pkt.PayloadType != pt {
			continue
		}
		one := &rtpStream{packets: []recvPacket{p}}
		other = append(other, frameRMS(p.pkt.Payload, pt) > 1000 && toneLevel(one, pt, freq, 1) < share)
	}
	n, most := 0, 0
	for i, o := range other {
		if o {
			n++
		}
		if i >= 50 && other[i-50] {
			n--
		}
		most = max(most, n)
	}
	return most
}

// frameRMS is the root mean square of a G.711 payload (pt 0 or 8), in 16-bit units.
func frameRMS(payload []byte, pt uint8) float64 {
	if len(payload) == 0 {
		return 0
	}
	var sum float64
	for _, b := range payload {
		x := float64(g711.DecodeUlaw(b))
		if pt == 8 {
			x = float64(g711.DecodeAlaw(b))
		}
		sum += x * x
	}
	return math.Sqrt(sum / float64(len(payload)))
}

// heardKey reports whether one of the PCMU packets s received carries both frequencies of
// a DTMF key, each at more than a quarter of the packet's power.
func heardKey(s *rtpStream, low, high float64) bool {
	for _, p := range s.snapshot() {
		one := &rtpStream{packets: []recvPacket{p}}
		if p.pkt.PayloadType == 0 && toneLevel(one, 0, low, 1) > 0.25 && toneLevel(one, 0, high, 1) > 0.25 {
			return true
		}
	}
	return false
}

// TestSupervisorE2E: a supervisor's phone dials *14 and the advocate's extension: it joins
// the call listening (it hears caller and advocate, nobody hears it), 2 whispers (the
// advocate alone hears it), 3 barges in (the caller hears it too); it hangs up and caller
// and advocate talk on.
func TestSupervisorE2E(t *testing.T) {
	t.Parallel()
	cfg := queueTestConfig(t, "midcall:\n  supervise_code: \"*14\"\n", "ana:en:pw-ana", "sue:fr:pw-sue")
	cfg = strings.Replace(cfg, "  - id: ana\n", "  - id: ana\n    extension: \"2041\"\n", 1)
	cfg = strings.Replace(cfg, "  - id: sue\n", "  - id: sue\n    role: supervisor\n", 1)
	cfg = strings.Replace(cfg, "queue_defaults:\n", "queue_defaults:\n  whisper: false\n", 1)
	ts := startServer(t, cfg)
	ana := newPhone(t, ts.addrs.SIPUDP, "ana", "pw-ana", 0, 1000)
	ana.register(300)
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="available"}`, 1)
	c := callIn(t, ts, "11", 440)
	ana.answer(ana.expectInvite(20 * time.Second))
	waitTone(t, "the caller hears the advocate", c.stream, 0, 1000, 5*time.Second)

	// Sue's phone (not registered: she takes no calls) dials *14 2041.
	sue := newPhone(t, ts.addrs.SIPUDP, "sue", "pw-sue", 0, 1500)
	const code = "*142041"
	u := &uac{t: t, conn: sue.conn, server: sue.server, rtp: sue.rtp, msgs: sue.msgs,
		callID: randHex(8) + "@phone", fromTag: randHex(4), cseq: 1, viaPort: sue.conn.LocalAddr().(*net.UDPAddr).Port, from: "sue"}
	offer := sdpOffer(sue.rtp.LocalAddr().(*net.UDPAddr).Port, "0 101", "")
	u.invite(code, offer)
	chal := u.expectResponse("INVITE", 401, 2*time.Second)
	u.send(u.request("ACK", code, "", ""))
	u.cseq++
	u.send(u.request("INVITE", code, offer, "application/sdp", sue.authorization(chal, "INVITE", "sip:"+code+"@"+sue.server.String(), sue.pw)))
	_, toServer := answer(t, u.expectResponse("INVITE", 200, 5*time.Second))
	u.ack(code, "")
	tone := func() context.CancelFunc {
		ctx, cancel := context.WithCancel(context.Background())
		go sendTone(ctx, sue.rtp, toServer, 0, 1500)
		return cancel
	}
	stop := tone()
	t.Cleanup(func() { stop() })

	waitLevels(t, "listening: the supervisor", sue.stream, 0, []float64{440, 1000}, []float64{1500})
	waitLevels(t, "listening: the caller", c.stream, 0, []float64{1000}, []float64{1500, 440})
	waitLevels(t, "listening: the advocate", ana.stream, 0, []float64{440}, []float64{1500, 1000})
	ts.waitMetric(t, `hotline_conference_joins_total{kind="supervisor",result="answered"}`, 1)

	press := func(ev byte) {
		stop()
		time.Sleep(60 * time.Millisecond) // see keys in TestMidCallInterpreterE2E
		seq, rtpTS := uint16(200), uint32(90000)
		u.sendDigitFrom(sue.rtp, toServer, 101, ev, &seq, &rtpTS)
		time.Sleep(60 * time.Millisecond)
		stop = tone()
	}
	press(2)
	waitLevels(t, "whispering: the advocate", ana.stream, 0, []float64{440, 1500}, []float64{1000})
	waitLevels(t, "whispering: the caller", c.stream, 0, []float64{1000}, []float64{1500, 440})
	press(3)
	waitLevels(t, "barged in: the caller", c.stream, 0, []float64{1000, 1500}, []float64{440})

	stop()
	u.nextRequest("BYE", code, "", "")
	u.expectResponse("BYE", 200, 2*time.Second)
	ts.waitMetric(t, `hotline_conferences_active`, 0)
	waitTone(t, "the caller hears the advocate alone", c.stream, 0, 1000, 5*time.Second)
	c.hangup()
	ana.expectBye(5 * time.Second)
}
