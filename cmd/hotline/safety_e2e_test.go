package main

import (
	"context"
	"math"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/hotline-project/hotline/media/g711"
	"github.com/hotline-project/hotline/records"
)

// dtmfPound is the RFC 4733 event of the # key.
const dtmfPound = 11

// pressPound sends # from the caller's phone (RFC 4733, payload type 101).
func (c *caller) pressPound(seq *uint16, ts *uint32) {
	c.sendDigit(c.media, 101, dtmfPound, seq, ts)
}

// expectSilenceAfter checks that nothing more reaches the caller's media socket once
// their call has ended: no prompt or hold audio plays after the quick exit.
func expectSilenceAfter(t *testing.T, what string, s *rtpStream) {
	t.Helper()
	time.Sleep(300 * time.Millisecond) // packets already on the wire
	n := len(s.snapshot())
	time.Sleep(700 * time.Millisecond)
	if m := len(s.snapshot()); m != n {
		t.Errorf("%s: %d RTP packets reached the caller after the call ended", what, m-n)
	}
}

// TestQuickExitE2E: a caller on a real SIP phone presses # (the default quick-exit key)
// in the menus, on hold, while an advocate's phone rings and in the bridge (the line
// allows it there): each time the server hangs up at once (BYE), the advocate's phone
// stops ringing (CANCEL) or is hung up (BYE), no audio reaches the caller after it, the
// records say quick_exit and hotline_quick_exits_total counts where. The caller's number
// is in no log.
func TestQuickExitE2E(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "records.db")
	cfg := strings.Replace(queueTestConfig(t, "", "ana:en:pw-ana"), "    name: main\n", "    name: main\n    quick_exit_in_bridge: true\n", 1)
	ts := startServer(t, strings.Replace(cfg, "RECORDS_PATH", path, 1))
	var froms []string

	// In the menus: the greeting is playing.
	seq, rtpTS := uint16(5000), uint32(900000)
	c := callIn(t, ts, "", 440)
	froms = append(froms, c.from)
	c.pressPound(&seq, &rtpTS)
	c.expectRequest("BYE", 3*time.Second)
	c.stopTone()
	expectSilenceAfter(t, "menus", c.stream)
	ts.waitMetric(t, `hotline_quick_exits_total{phase="menus"}`, 1)

	// On hold: nobody is available, the caller waits in queue en.
	c = callIn(t, ts, "11", 440)
	froms = append(froms, c.from)
	ts.waitMetric(t, `hotline_queue_waiting{queue="en"}`, 1)
	c.pressPound(&seq, &rtpTS)
	c.expectRequest("BYE", 3*time.Second)
	c.stopTone()
	ts.waitMetric(t, `hotline_queue_waiting{queue="en"}`, 0)
	expectSilenceAfter(t, "hold", c.stream)
	ts.waitMetric(t, `hotline_quick_exits_total{phase="waiting"}`, 1)

	// While ana's phone rings: the ring is cancelled.
	ana := newPhone(t, ts.addrs.SIPUDP, "ana", "pw-ana", 0, 1000)
	ana.register(300)
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="available"}`, 1)
	c = callIn(t, ts, "11", 440)
	froms = append(froms, c.from)
	inv := ana.expectInvite(20 * time.Second)
	c.pressPound(&seq, &rtpTS)
	c.expectRequest("BYE", 3*time.Second)
	c.stopTone()
	ana.expectCancel(inv, 5*time.Second)
	expectSilenceAfter(t, "ringing", c.stream)
	ts.waitMetric(t, `hotline_quick_exits_total{phase="ringing"}`, 1)
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="available"}`, 1)

	// In the bridge: both legs end.
	c = callIn(t, ts, "11", 440)
	froms = append(froms, c.from)
	inv = ana.expectInvite(20 * time.Second)
	ana.answer(inv)
	waitTone(t, "the caller hears ana", c.stream, 0, 1000, 5*time.Second)
	waitTone(t, "ana hears the caller", ana.stream, 0, 440, 5*time.Second)
	c.pressPound(&seq, &rtpTS)
	c.expectRequest("BYE", 3*time.Second)
	c.stopTone()
	ana.expectBye(5 * time.Second)
	expectSilenceAfter(t, "bridge", c.stream)
	ts.waitMetric(t, `hotline_quick_exits_total{phase="bridge"}`, 1)
	ts.waitMetric(t, `hotline_calls_active{line="main"}`, 0)

	logs := ts.logs.String()
	for _, f := range froms {
		if strings.Contains(logs, f) || strings.Contains(logs, strings.TrimPrefix(f, "+")) {
			t.Fatal("a caller's number appears in the logs")
		}
	}
	ts.stop(t)
	db, err := records.OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs, err := db.Records(context.Background(), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Outcome == records.OutcomeQuickExit {
			n++
		}
	}
	if n != 4 || len(recs) != 4 {
		t.Errorf("%d records, %d of them quick_exit; want 4 and 4", len(recs), n)
	}
}

// callBack dials the hotline from the number from as a caller whose dropped call kept its
// place: no menus, the place_kept prompt first, then the caller's microphone tone at freq.
func callBack(t *testing.T, ts *testServer, from string, freq float64) *caller {
	t.Helper()
	u := newUAC(t, ts.addrs.SIPUDP)
	u.from = from
	stream := u.receiveRTP()
	_, media := answer(t, u.dial("0 101"))
	var seq uint16 = 1
	var rtpTS uint32 = 1000
	u.sendSilence(media, 3, &seq, &rtpTS)
	kept := mustPrompt(t, "en", "place_kept")
	stream.waitFor(t, "place_kept", kept.PCMU[:1600], 5*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	go sendTone(ctx, u.rtp, media, 0, freq)
	t.Cleanup(cancel)
	return &caller{uac: u, stream: stream, media: media, stopTone: cancel}
}

// TestKeepPlaceE2E: three callers wait (nobody is available); the first one's call drops
// and they dial again with the same caller ID: they hear that they kept their place, skip
// the menus, and when an advocate comes they are answered first, ahead of the callers who
// arrived after them. The number appears in no log.
func TestKeepPlaceE2E(t *testing.T) {
	t.Parallel()
	ts := startServer(t, queueTestConfig(t, "", "ana:en:pw-ana"))
	const from = "+15557770101"
	first := callInFrom(t, ts, from, "11", 600)
	ts.waitMetric(t, `hotline_queue_waiting{queue="en"}`, 1)
	second := callIn(t, ts, "11", 700)
	ts.waitMetric(t, `hotline_queue_waiting{queue="en"}`, 2)
	first.hangup() // the line drops
	ts.waitMetric(t, `hotline_kept_places_total{result="held"}`, 1)
	third := callIn(t, ts, "11", 800)
	ts.waitMetric(t, `hotline_queue_waiting{queue="en"}`, 2)

	back := callBack(t, ts, from, 600)
	ts.waitMetric(t, `hotline_kept_places_total{result="restored"}`, 1)
	ts.waitMetric(t, `hotline_queue_waiting{queue="en"}`, 3)

	ana := newPhone(t, ts.addrs.SIPUDP, "ana", "pw-ana", 0, 1000)
	ana.register(300)
	for _, c := range []struct {
		who  *caller
		freq float64
		what string
	}{{back, 600, "the caller who kept their place"}, {second, 700, "then the second"}, {third, 800, "then the third"}} {
		inv := ana.expectInvite(20 * time.Second)
		ana.answer(inv)
		waitTone(t, "ana hears "+c.what, ana.stream, 0, c.freq, 5*time.Second)
		ana.hangup()
		c.who.expectRequest("BYE", 5*time.Second)
		c.who.stopTone()
	}
	ts.waitMetric(t, `hotline_calls_active{line="main"}`, 0)
	if logs := ts.logs.String(); strings.Contains(logs, "5557770101") {
		t.Fatal("the caller's number appears in the logs")
	}
}

// TestCheckQuickExitClash: `hotline check` refuses a quick-exit key that a menu also uses,
// naming both places by file and line, and accepts the same menus with another key.
func TestCheckQuickExitClash(t *testing.T) {
	t.Parallel()
	cfg := `lines: [{number: "18883737888"}]
ivr:
  start: m
  menus:
    - name: m
      prompts: [greeting]
      keys:
        "#": {set_reason: tip, play: [connecting], route: true}
      no_input: {play: [connecting], route: true}
safety:
  quick_exit_key: "#"
`
	p := writeFile(t, t.TempDir(), "hotline.yaml", cfg)
	code, out, errOut := runCmd(t, "check", "-config", p)
	want := p + `:11: safety.quick_exit_key: "#" is also a key of menu "m" (` + p + `:8: ivr.menus[0].keys.#)`
	if code == 0 || !strings.Contains(out+errOut, want) {
		t.Fatalf("check: exit %d\n%s%s\nwant a refusal:\n%s", code, out, errOut, want)
	}
	p = writeFile(t, t.TempDir(), "hotline.yaml", strings.Replace(cfg, `quick_exit_key: "#"`, `quick_exit_key: "9"`, 1))
	if code, out, errOut := runCmd(t, "check", "-config", p); code != 0 {
		t.Fatalf("check with key 9: exit %d\n%s%s", code, out, errOut)
	}
}

// TestSafetyStepE2E: with the safety step configured, the caller hears the greeting, then
// "if you need to end this call quickly, press the pound key", then the language menu;
// pressing # as told ends the call at once.
func TestSafetyStepE2E(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig+"safety:\n  prompts: [safe_to_talk]\n")
	c := callIn(t, ts, "", 440)
	step := mustPrompt(t, "en", "safe_to_talk")
	c.stream.waitFor(t, "the safety step after the greeting", step.PCMU[:1600], 15*time.Second)
	seq, rtpTS := uint16(5000), uint32(900000)
	c.pressPound(&seq, &rtpTS)
	c.expectRequest("BYE", 3*time.Second)
	c.stopTone()
	ts.waitMetric(t, `hotline_quick_exits_total{phase="menus"}`, 1)
}

// sendInbandKey sends key as DTMF tones in the audio (60 ms of tone, 60 ms of silence, -10
// dBm0 per tone) in real time, as a gateway without telephone-event does.
func sendInbandKey(u *uac, to *net.UDPAddr, pt uint8, key rune, seq *uint16, ts *uint32) {
	rows, cols := []float64{697, 770, 852, 941}, []float64{1209, 1336, 1477, 1633}
	keys := []string{"123A", "456B", "789C", "*0#D"}
	var lo, hi float64
	for r, row := range keys {
		if c := strings.IndexRune(row, key); c >= 0 {
			lo, hi = rows[r], cols[c]
		}
	}
	amp := 32767 * math.Pow(10, (-10-3.17)/20)
	for f := range 6 {
		payload := make([]byte, 160)
		for i := range payload {
			var v float64
			if f < 3 {
				n := float64(f*160 + i)
				v = amp * (math.Sin(2*math.Pi*lo*n/8000) + math.Sin(2*math.Pi*hi*n/8000))
			}
			if pt == 8 {
				payload[i] = g711.EncodeAlaw(int16(v))
			} else {
				payload[i] = g711.EncodeUlaw(int16(v))
			}
		}
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: *seq, Timestamp: *ts, SSRC: 0x1234}, Payload: payload}
		b, _ := p.Marshal()
		_, _ = u.rtp.WriteToUDP(b, to)
		*seq++
		*ts += 160
		time.Sleep(20 * time.Millisecond)
	}
}

// TestInbandDTMFE2E: callers whose phones negotiate no telephone-event and send keys as
// tones in the audio, in PCMU and in PCMA: "21" in the menus queues the call in Spanish,
// and # (the quick-exit key) on hold ends it at once.
func TestInbandDTMFE2E(t *testing.T) {
	t.Parallel()
	ts := startServer(t, queueTestConfig(t, ""))
	for i, pt := range []uint8{0, 8} {
		u := newUAC(t, ts.addrs.SIPUDP)
		stream := u.receiveRTP()
		m, media := answer(t, u.dial(strconv.Itoa(int(pt))))
		if m.DTMFPayloadType != 0 || m.PayloadType != pt {
			t.Fatalf("answer: payload type %d, telephone-event %d; want %d and none", m.PayloadType, m.DTMFPayloadType, pt)
		}
		seq, rtpTS := uint16(1), uint32(1000)
		u.sendSilence(media, 3, &seq, &rtpTS) // the phone starts sending
		greeting := mustPrompt(t, "en", "greeting")
		stream.waitFor(t, "the greeting", greeting.Payload(pt)[:1600], 5*time.Second)
		sendInbandKey(u, media, pt, '2', &seq, &rtpTS)
		sendInbandKey(u, media, pt, '1', &seq, &rtpTS)
		ts.waitMetric(t, `hotline_queue_waiting{queue="es"}`, 1)
		sendInbandKey(u, media, pt, '#', &seq, &rtpTS)
		u.expectRequest("BYE", 3*time.Second)
		ts.waitMetric(t, `hotline_queue_waiting{queue="es"}`, 0)
		ts.waitMetric(t, `hotline_quick_exits_total{phase="waiting"}`, float64(i+1))
	}
}

// TestCallerHashNumbersOnly: keeping one's place recognises callers by number only.
func TestCallerHashNumbersOnly(t *testing.T) {
	hash := callerHash(nil)
	for _, tt := range []struct {
		caller string
		same   string // another form of the same caller; "" when none is recognised
	}{
		{"sip:+15557770101@carrier.test", "tel:5557770101"},
		{"<sip:15557770101@10.0.0.1;user=phone>", "+1 555 777 0101"},
		{"sip:anonymous@anonymous.invalid", ""},
		{"sip:sipp@127.0.0.1", ""},
		{"sip:reception@pbx.example.org", ""},
		{"sip:211@carrier.test", ""},
		{"", ""},
	} {
		h := hash(tt.caller)
		switch {
		case tt.same == "" && h != "":
			t.Errorf("%q is recognised", tt.caller)
		case tt.same != "" && (h == "" || hash(tt.same) != h):
			t.Errorf("%q and %q: hashes %q and %q", tt.caller, tt.same, h, hash(tt.same))
		}
	}
}
