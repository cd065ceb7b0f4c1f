package main

import (
	"bytes"
	"encoding/json"
	mrand "math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"github.com/hotline-project/hotline/internal/sipagent"
	"github.com/hotline-project/hotline/internal/testtool"
)

// Issue 14, part 1: taking over a caller's audio (the "RTP Bleed" class). Before: media ports
// were handed out in order and a call latched onto the first RTP packet from anywhere, so an
// outsider spraying the port range took 7 of 8 calls: the caller heard nothing, the outsider
// heard the call and its key presses chose the menu. A re-INVITE with the dialog's
// identifiers from a third address restarted the latch.

var (
	rtpCallerIP   = net.IPv4(127, 0, 0, 3)
	rtpAttackerIP = net.IPv4(127, 0, 0, 66)
)

// sprayRange returns a media port range of width ports for a test that sprays it. It lies
// below the kernel's ephemeral ports, where rtpRange places every other test's range, so that
// the spray never reaches another test's calls (a call that sends no RTP of its own would
// learn the sprayer after its grace).
func sprayRange(t *testing.T, width int) (int, int) {
	t.Helper()
	lo := 20000 + 2*mrand.IntN(5000)
	return lo, lo + width
}

// rtpSender is a phone's outgoing RTP: a 20 ms stream of PCMU silence and, on request,
// RFC 4733 key presses in the same stream (one SSRC, consecutive sequence numbers).
type rtpSender struct {
	*sipagent.Stream
	stop func()
}

func startRTPSender(conn *net.UDPConn, to *net.UDPAddr, ssrc uint32) *rtpSender {
	s := sipagent.NewStreamAt(conn, to, ssrc, uint16(ssrc), 0)
	return &rtpSender{s, s.Start(sipagent.PCMU, 0)}
}

// press sends one key press (telephone-event payload type 101) the way phones do: a start,
// updates, then three end packets.
func (s *rtpSender) press(event byte) { s.Press(sipagent.DTMF, event) }

func (s *rtpSender) close() { s.stop() }

// sprayer is the attacker: from rtpAttackerIP it sends, to every even port of [lo, hi], a
// well-formed PCMU stream (one SSRC and consecutive sequence numbers per port, every 10 ms,
// which would pass Asterisk's probation), with the key press 2 among it every quarter
// second, and counts every packet the server sends back.
type sprayer struct {
	conn     *net.UDPConn
	sent     atomic.Int64
	received atomic.Int64
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startSprayer(t *testing.T, lo, hi int) *sprayer {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: rtpAttackerIP})
	if err != nil {
		t.Fatal(err)
	}
	s := &sprayer{conn: conn, stop: make(chan struct{})}
	lo += lo & 1
	type stream struct {
		to      *net.UDPAddr
		seq     uint16
		ts, evt uint32
	}
	var streams []*stream
	for p := lo; p <= hi; p += 2 {
		streams = append(streams, &stream{to: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p}, seq: uint16(p * 7)})
	}
	s.wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		silence := bytes.Repeat([]byte{0xFF}, 160)
		for round := 0; ; round++ {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			phase := round % 25 // 0-5: the key press 2; the rest: audio
			for i, st := range streams {
				h := rtp.Header{Version: 2, SequenceNumber: st.seq, SSRC: 0xA7AC0000 + uint32(i)}
				var payload []byte
				if phase < 6 {
					if phase == 0 {
						st.evt = st.ts
					}
					end := phase >= 3
					dur := uint16(160 * (phase + 1))
					flags := byte(10)
					if end {
						dur, flags = 480, flags|0x80
					}
					h.PayloadType, h.Marker, h.Timestamp = 101, phase == 0, st.evt
					payload = []byte{2, flags, byte(dur >> 8), byte(dur)}
				} else {
					h.PayloadType, h.Timestamp = 0, st.ts
					payload = silence
				}
				b, _ := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
				if _, err := conn.WriteToUDP(b, st.to); err == nil {
					s.sent.Add(1)
				}
				st.seq++
				st.ts += 80
			}
		}
	})
	s.wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := conn.ReadFromUDP(buf); err != nil {
				return
			}
			s.received.Add(1)
		}
	})
	t.Cleanup(s.close)
	return s
}

func (s *sprayer) close() {
	select {
	case <-s.stop:
		return
	default:
	}
	close(s.stop)
	s.conn.Close()
	s.wg.Wait()
}

// menusDone returns the language and reason of each "menus done" log line so far.
func menusDone(t *testing.T, ts *testServer) [][2]string {
	t.Helper()
	var out [][2]string
	for _, line := range strings.Split(strings.TrimSpace(ts.logs.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "menus done" {
			continue
		}
		lang, _ := rec["language"].(string)
		reason, _ := rec["reason"].(string)
		out = append(out, [2]string{lang, reason})
	}
	return out
}

// waitMenusDone waits for the n-th "menus done" line and returns its language and reason.
func waitMenusDone(t *testing.T, ts *testServer, n int) [2]string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if got := menusDone(t, ts); len(got) >= n {
			return got[n-1]
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %d \"menus done\" log lines within 10s", n)
	return [2]string{}
}

// TestRTPSprayCannotTakeOverCalls reproduces the spray attack: while an attacker on
// 127.0.0.66 sprays well-formed PCMU (and the key press 2) at every port of the media range,
// a caller on 127.0.0.3 dials, the call rings for 1.5 s (sip.answer_delay: the port is open
// and sprayed all that time), the caller starts its media 100 ms after the answer (as over a
// real network) and presses 1 (English) then 2 (a tip). Each call must hear the greeting from
// its first frame, the caller's keys must choose the menu, and the attacker must receive
// nothing.
// https://github.com/hotline-project/hotline/issues/14
func TestRTPSprayCannotTakeOverCalls(t *testing.T) {
	// Not parallel, and Heavy: the spray (100 packets every 10 ms) would disturb timing checks.
	testtool.Heavy(t)
	lo, hi := sprayRange(t, 64) // 32 ports, all sprayed
	cfg := strings.NewReplacer("PORT_MIN", strconv.Itoa(lo), "PORT_MAX", strconv.Itoa(hi),
		"ack_timeout: 2s", "ack_timeout: 2s\n  answer_delay: 1500ms").Replace(testConfig)
	ts := startServerLogging(t, cfg, "info", "-log-format", "json")
	spray := startSprayer(t, lo, hi)
	time.Sleep(100 * time.Millisecond)

	greeting := mustPrompt(t, "en", "greeting").PCMU[:3200]
	const calls = 3
	for i := 1; i <= calls; i++ {
		u := newUACAt(t, rtpCallerIP, ts.addrs.SIPUDP)
		stream := u.receiveRTP()
		res := u.dial("0 101")
		_, media := answer(t, res)
		time.Sleep(100 * time.Millisecond)
		phone := startRTPSender(u.rtp, media, 0x5000+uint32(i))
		stream.waitFor(t, "the greeting, call "+strconv.Itoa(i), greeting, 5*time.Second)
		phone.press(1)
		phone.press(2)
		if got := waitMenusDone(t, ts, i); got != [2]string{"en", "tip"} {
			t.Errorf("call %d: the menus ended with language %q reason %q, want en and tip (the caller's keys 1 and 2)", i, got[0], got[1])
		}
		src := stream.Source()
		if src == nil || src.Port != media.Port {
			t.Errorf("call %d: the caller's audio came from %v, want the answer's media port %d", i, src, media.Port)
		}
		phone.close()
		u.hangup()
	}
	spray.close()
	if n := spray.received.Load(); n != 0 {
		t.Errorf("the attacker received %d packets (it sent %d)", n, spray.sent.Load())
	}
	text := ts.scrape(t)
	for _, series := range []string{
		`hotline_rtp_packets_dropped_total{reason="learning"}`,
		`hotline_rtp_learning_resets_total`,
	} {
		if v := metricValue(text, series); v < 1 {
			t.Errorf("%s = %v, want > 0", series, v)
		}
	}
	t.Logf("attacker sent %d packets, received %d; dropped: learning %v, foreign %v; learning resets %v",
		spray.sent.Load(), spray.received.Load(),
		metricValue(text, `hotline_rtp_packets_dropped_total{reason="learning"}`),
		metricValue(text, `hotline_rtp_packets_dropped_total{reason="foreign_source"}`),
		metricValue(text, `hotline_rtp_learning_resets_total`))
}

// TestReInviteFromThirdAddressRefused reproduces the re-INVITE variant: an attacker on
// 127.0.0.66 who knows the dialog's identifiers (Call-ID, tags, CSeq) sends a re-INVITE that
// points the media at itself, and an INFO with the key 2. Both get 403, the call's media
// stays with the caller, and the caller's own keys choose the menu.
// https://github.com/hotline-project/hotline/issues/14
func TestReInviteFromThirdAddressRefused(t *testing.T) {
	t.Parallel()
	ts := startServerLogging(t, testConfig, "info", "-log-format", "json")
	u := newUACAt(t, rtpCallerIP, ts.addrs.SIPUDP)
	stream := u.receiveRTP()
	res := u.dial("0 101")
	_, media := answer(t, res)
	phone := startRTPSender(u.rtp, media, 0x6000)
	defer phone.close()
	stream.waitFor(t, "the greeting", mustPrompt(t, "en", "greeting").PCMU[:1600], 5*time.Second)

	// The attacker, with the dialog's identifiers and its own media socket.
	evil := newUACAt(t, rtpAttackerIP, ts.addrs.SIPUDP)
	evil.callID, evil.fromTag, evil.toTag, evil.from, evil.cseq = u.callID, u.fromTag, u.toTag, u.from, u.cseq+1
	evilMedia, err := net.ListenUDP("udp", &net.UDPAddr{IP: rtpAttackerIP})
	if err != nil {
		t.Fatal(err)
	}
	defer evilMedia.Close()
	var evilGot atomic.Int64
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := evilMedia.ReadFromUDP(buf); err != nil {
				return
			}
			evilGot.Add(1)
		}
	}()
	offer := strings.ReplaceAll(sdpOffer(evilMedia.LocalAddr().(*net.UDPAddr).Port, "0 101", ""), "127.0.0.1", "127.0.0.66")
	evil.nextRequest("INVITE", hotlineNumber, offer, "application/sdp")
	evil.expectResponse("INVITE", 403, 2*time.Second)
	evil.nextRequest("INFO", hotlineNumber, "Signal=2\r\nDuration=160\r\n", "application/dtmf-relay")
	evil.expectResponse("INFO", 403, 2*time.Second)
	// Nor may it hang the caller up.
	evil.nextRequest("BYE", hotlineNumber, "", "")
	evil.expectResponse("BYE", 403, 2*time.Second)

	// Its RTP, in sequence, with the key 2: dropped as foreign.
	attacker := startRTPSender(evilMedia, media, 0x6666)
	time.Sleep(200 * time.Millisecond)
	attacker.press(2)
	before := len(stream.snapshot())
	time.Sleep(300 * time.Millisecond)
	if after := len(stream.snapshot()); after-before < 5 {
		t.Errorf("the caller received %d packets in 300 ms after the attack, want about 15", after-before)
	}
	phone.press(1)
	phone.press(2)
	if got := waitMenusDone(t, ts, 1); got != [2]string{"en", "tip"} {
		t.Errorf("the menus ended with language %q reason %q, want en and tip (the caller's keys 1 and 2)", got[0], got[1])
	}
	attacker.close()
	if n := evilGot.Load(); n != 0 {
		t.Errorf("the attacker's media socket received %d packets", n)
	}
	if v := metricValue(ts.scrape(t), `hotline_rtp_packets_dropped_total{reason="foreign_source"}`); v < 10 {
		t.Errorf("foreign_source drops = %v, want the attacker's packets counted", v)
	}
	// The caller's own re-INVITE (hold, then resume at the same address) is still served.
	u.nextRequest("INVITE", hotlineNumber, sdpOffer(u.rtpPort(), "0 101", "a=sendonly\r\n"), "application/sdp")
	u.expectResponse("INVITE", 200, 2*time.Second)
	u.ack(hotlineNumber, "")
	u.hangup()
}

// TestRTPSprayCannotTakeOverAdvocateLeg: the same spray while a caller is put through to an
// advocate. The advocate's leg (an outbound call to her phone) learns its source the same
// way: caller and advocate hear each other, and the attacker receives nothing.
// https://github.com/hotline-project/hotline/issues/14
func TestRTPSprayCannotTakeOverAdvocateLeg(t *testing.T) {
	// Not parallel, and Heavy: the spray (100 packets every 10 ms) would disturb timing checks.
	testtool.Heavy(t)
	lo, hi := sprayRange(t, 64)
	cfg := strings.NewReplacer("PORT_MIN", strconv.Itoa(lo), "PORT_MAX", strconv.Itoa(hi)).
		Replace(queueTestConfig(t, "", "ana:en:pw-ana"))
	ts := startServerLogging(t, cfg, "info")
	ana := newPhone(t, ts.addrs.SIPUDP, "ana", "pw-ana", 0, 1000)
	ana.register(300)
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="available"}`, 1)
	spray := startSprayer(t, lo, hi)
	time.Sleep(100 * time.Millisecond)

	c := callIn(t, ts, "11", 440)
	inv := ana.expectInvite(20 * time.Second)
	time.Sleep(300 * time.Millisecond) // ringing, while the attacker sprays the new leg's port
	answerLate(ana, inv, 100*time.Millisecond)
	waitTone(t, "the caller hears the advocate", c.stream, 0, 1000, 5*time.Second)
	waitTone(t, "the advocate hears the caller", ana.stream, 0, 440, 5*time.Second)
	c.hangup()
	ana.expectBye(5 * time.Second)
	spray.close()
	if n := spray.received.Load(); n != 0 {
		t.Errorf("the attacker received %d packets (it sent %d)", n, spray.sent.Load())
	}
}

// answerLate is phone.answer with the phone's media starting delay after the ACK, as over a
// real network, where an attacker's packets can arrive first.
func answerLate(p *phone, inv *sipmsg.Request, delay time.Duration) {
	p.t.Helper()
	defer p.pull()
	p.agent().AnswerAfter(inv, delay)
}
