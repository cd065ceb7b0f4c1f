package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotline-project/hotline/admin"
	"github.com/hotline-project/hotline/prompts"
)

// queueConfig is testConfig with short ring and wrap-up times and the given advocates.
func queueTestConfig(t *testing.T, extra string, advocates ...string) string {
	return testConfig + `
queue_defaults:
  ring_timeout: 5s
  wrap_up: 0s
  max_misses: 2
  announce_every: 0s
` + extra + advocateYAML(t, advocates...)
}

// caller is a caller's phone placed through the menus into a queue.
type caller struct {
	*uac
	stream   *rtpStream
	media    *net.UDPAddr
	stopTone context.CancelFunc
}

// callIn dials the hotline, presses digits (RFC 4733) as the greeting starts, then sends a
// tone at freq, as a phone's microphone would, for the rest of the call.
func callIn(t *testing.T, ts *testServer, digits string, freq float64) *caller {
	t.Helper()
	return callInFrom(t, ts, "+1555"+randHex(3), digits, freq)
}

// callInFrom is callIn from the number from.
func callInFrom(t *testing.T, ts *testServer, from, digits string, freq float64) *caller {
	t.Helper()
	u := newUAC(t, ts.addrs.SIPUDP)
	u.from = from
	stream := u.receiveRTP()
	_, media := answer(t, u.dial("0 101"))
	var seq uint16 = 1
	var rtpTS uint32 = 1000
	u.sendSilence(media, 3, &seq, &rtpTS)
	greeting := mustPrompt(t, "en", "greeting")
	stream.waitFor(t, "the greeting's first frames", greeting.PCMU[:1600], 5*time.Second)
	for _, d := range digits {
		u.sendDigit(media, 101, byte(d-'0'), &seq, &rtpTS)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go sendTone(ctx, u.rtp, media, 0, freq)
	t.Cleanup(cancel)
	return &caller{uac: u, stream: stream, media: media, stopTone: cancel}
}

func (c *caller) hangup() {
	c.stopTone()
	c.uac.hangup()
}

// TestAdvocateAnswers is the main case: an advocate registers with digest, a caller
// goes through the menu (Spanish, help now) and queues, the advocate's phone rings and
// answers, each side's tone arrives at the other (PCMU caller, PCMA advocate: transcoded),
// and a hang-up on one side ends both legs.
func TestAdvocateAnswers(t *testing.T) {
	t.Parallel()
	ts := startServer(t, queueTestConfig(t, "", "ana:es:pw-ana"))
	ana := newPhone(t, ts.addrs.SIPUDP, "ana", "pw-ana", 8, 1000)
	ana.register(300)
	ts.waitMetric(t, `hotline_advocates{language="es",queue="es",state="available"}`, 1)

	c := callIn(t, ts, "21", 440)
	inv := ana.expectInvite(20 * time.Second)
	if strings.Contains(inv.String(), c.from) {
		t.Fatal("the advocate's INVITE carries the caller's number")
	}
	ana.answer(inv)
	// Before the caller is put through, ana (a Spanish speaker: the whisper is in her first
	// language) hears who is calling: "Español. Necesita ayuda ahora."
	whisper := prompts.Join(mustPrompt(t, "es", "whisper_lang_es"), mustPrompt(t, "es", "whisper_help_now"))
	ana.stream.waitFor(t, "the whisper", whisper.PCMA[800:len(whisper.PCMA)-800], 5*time.Second)
	waitTone(t, "the caller hears the advocate", c.stream, 0, 1000, 5*time.Second)
	waitTone(t, "the advocate hears the caller", ana.stream, 8, 440, 5*time.Second)
	ts.waitMetric(t, `hotline_queue_calls_total{queue="es",result="answered"}`, 1)
	ts.waitMetric(t, `hotline_advocates{language="es",queue="es",state="on_call"}`, 1)

	// A key the caller presses reaches the advocate as an RFC 4733 event (payload type 101
	// both sides), never as audio, and is not echoed back to the caller.
	seq, rtpTS := uint16(5000), uint32(900000)
	c.sendDigit(c.media, 101, 5, &seq, &rtpTS)
	waitEvent(t, "the advocate receives the caller's 5", ana.stream, 101, 5)
	for _, p := range c.stream.snapshot() {
		if p.pkt.PayloadType == 101 {
			t.Fatal("the caller's key press was echoed back to the caller")
		}
	}

	// The advocate hangs up: the caller's leg ends too.
	ana.hangup()
	c.expectRequest("BYE", 5*time.Second)
	c.stopTone()
	ts.waitMetric(t, `hotline_advocates{language="es",queue="es",state="available"}`, 1)
	ts.waitMetric(t, `hotline_talk_seconds_count{queue="es"}`, 1)

	// A second call; this time the caller hangs up and the advocate's leg ends.
	c2 := callIn(t, ts, "21", 440)
	inv = ana.expectInvite(20 * time.Second)
	ana.answer(inv)
	waitTone(t, "the second caller hears the advocate", c2.stream, 0, 1000, 5*time.Second)
	c2.hangup()
	ana.expectBye(5 * time.Second)
	ts.waitMetric(t, `hotline_queue_calls_total{queue="es",result="answered"}`, 2)
	ts.waitMetric(t, `hotline_calls_active{line="main"}`, 0)
	if strings.Contains(ts.logs.String(), c.from) || strings.Contains(ts.logs.String(), c2.from) {
		t.Fatal("a caller's number appears in the logs")
	}
	// The hold audio stops before the bridge is made: no warning about it (issue 13, item 9).
	if strings.Contains(ts.logs.String(), "hold audio stopped") {
		t.Error("an ordinary bridge logged that the hold audio stopped")
	}
}

// TestRingNoAnswerAndAbandon: the first advocate does not answer, so the next is rung; after
// max_misses misses the first is paused; a caller who hangs up while an advocate is ringing
// leaves the queue and the advocate's phone stops ringing.
func TestRingNoAnswerAndAbandon(t *testing.T) {
	t.Parallel()
	ts := startServer(t, queueTestConfig(t, "", "ana:en:pw-ana", "bo:en:pw-bo"))
	ana := newPhone(t, ts.addrs.SIPUDP, "ana", "pw-ana", 0, 1000)
	ana.register(300)
	time.Sleep(50 * time.Millisecond) // ana registers first: she has been idle longest
	bo := newPhone(t, ts.addrs.SIPUDP, "bo", "pw-bo", 0, 1200)
	bo.register(300)
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="available"}`, 2)

	// Busy: ana refuses (486), bo is rung and answers.
	c := callIn(t, ts, "11", 440)
	inv := ana.expectInvite(20 * time.Second)
	ana.refuse(inv, 486, "Busy Here")
	inv = bo.expectInvite(10 * time.Second)
	bo.answer(inv)
	waitTone(t, "the caller hears bo", c.stream, 0, 1200, 5*time.Second)
	c.hangup()
	bo.expectBye(5 * time.Second)

	// No answer: ana rings out (the ring timeout is 5 s); that is her second miss in a row,
	// so she is paused. The caller hangs up while bo's phone rings: bo's INVITE is cancelled.
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="available"}`, 2)
	c2 := callIn(t, ts, "11", 440)
	inv = ana.expectInvite(20 * time.Second)
	ana.expectCancel(inv, 10*time.Second)
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="paused"}`, 1)
	inv = bo.expectInvite(10 * time.Second)
	c2.hangup()
	bo.expectCancel(inv, 5*time.Second)
	ts.waitMetric(t, `hotline_queue_calls_total{queue="en",result="abandoned"}`, 1)
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="available"}`, 1)
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="ringing"}`, 0)
	ts.waitMetric(t, `hotline_advocate_ring_no_answer_total{queue="en"}`, 2)
}

// TestPriorityThenArrival: with one advocate busy, a caller who needs help now (priority
// 100) is answered before one who queued earlier with a tip (priority 10).
func TestPriorityThenArrival(t *testing.T) {
	t.Parallel()
	ts := startServer(t, queueTestConfig(t, "", "ana:en:pw-ana"))
	ana := newPhone(t, ts.addrs.SIPUDP, "ana", "pw-ana", 0, 1000)
	ana.register(300)
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="available"}`, 1)

	first := callIn(t, ts, "11", 440)
	inv := ana.expectInvite(20 * time.Second)
	ana.answer(inv)
	waitTone(t, "the first caller hears ana", first.stream, 0, 1000, 5*time.Second)

	tip := callIn(t, ts, "12", 500) // a tip: priority 10
	ts.waitMetric(t, `hotline_queue_waiting{queue="en"}`, 1)
	urgent := callIn(t, ts, "11", 600) // help now: priority 100, queued later
	ts.waitMetric(t, `hotline_queue_waiting{queue="en"}`, 2)

	ana.hangup()
	first.expectRequest("BYE", 5*time.Second)
	first.stopTone()
	inv = ana.expectInvite(10 * time.Second)
	ana.answer(inv)
	waitTone(t, "ana hears the urgent caller first", ana.stream, 0, 600, 5*time.Second)
	ana.hangup()
	urgent.expectRequest("BYE", 5*time.Second)
	urgent.stopTone()
	inv = ana.expectInvite(10 * time.Second)
	ana.answer(inv)
	waitTone(t, "then the tip", ana.stream, 0, 500, 5*time.Second)
	tip.hangup()
	ana.expectBye(5 * time.Second)
}

// TestFeatureCodesAndAdminAPI: an advocate pauses with *12 from the phone and is not rung;
// *11 makes them available; the admin API lists advocates and pauses one; without the token
// the API says nothing.
func TestFeatureCodesAndAdminAPI(t *testing.T) {
	t.Parallel()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("admin-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, queueTestConfig(t, "admin:\n  token_file: "+tokenFile+"\n", "ana:en:pw-ana"))
	ana := newPhone(t, ts.addrs.SIPUDP, "ana", "pw-ana", 0, 1000)
	ana.register(300)
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="available"}`, 1)

	ana.feature(t, "*12")
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="paused"}`, 1)
	c := callIn(t, ts, "11", 440)
	ts.waitMetric(t, `hotline_queue_waiting{queue="en"}`, 1)
	ana.expectNoInvite(2 * time.Second)
	ana.feature(t, "*11")
	inv := ana.expectInvite(10 * time.Second)
	ana.answer(inv)
	waitTone(t, "the caller hears ana", c.stream, 0, 1000, 5*time.Second)
	c.hangup()
	ana.expectBye(5 * time.Second)
	// The BYE to ana goes out as the bridge ends, just before the engine hears the call
	// ended: wait for her to be free before listing.
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="available"}`, 1)

	api := "http://" + ts.addrs.HTTP + "/admin/v1/advocates"
	if code, body := httpDo(t, "GET", api, "", ""); code != http.StatusUnauthorized || strings.Contains(body, "ana") {
		t.Fatalf("without a token: %d %s", code, body)
	}
	code, body := httpDo(t, "GET", api, "admin-secret", "")
	if code != 200 {
		t.Fatalf("GET advocates: %d %s", code, body)
	}
	var list admin.AdvocatesResponse
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list.Advocates) != 1 || list.Advocates[0].ID != "ana" {
		t.Fatalf("advocates list %v: %s", err, body)
	}
	// Issue 13: snake_case JSON names, as /overrides has them.
	if !strings.Contains(body, `"id": "ana"`) || !strings.Contains(body, `"state": "available"`) || strings.Contains(body, `"ID"`) {
		t.Errorf("advocates list not in snake_case: %s", body)
	}
	if code, body := httpDo(t, "PUT", api+"/ana/state", "admin-secret", `{"state":"paused","reason":"break"}`); code != 200 || !strings.Contains(body, `"pause_reason": "break"`) {
		t.Fatalf("pause over the API: %d %s", code, body)
	}
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="paused"}`, 1)
	if code, _ := httpDo(t, "PUT", api+"/nobody/state", "admin-secret", `{"state":"available"}`); code != 404 {
		t.Fatalf("unknown advocate: %d", code)
	}
	if code, _ := httpDo(t, "PUT", api+"/ana/state", "admin-secret", `{"state":"dancing"}`); code != 400 {
		t.Fatalf("bad state: %d", code)
	}
	if code, body := httpDo(t, "PUT", api+"/ana/state", "admin-secret", `{"state":"available"}`); code != 200 {
		t.Fatalf("available over the API: %d %s", code, body)
	}
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="available"}`, 1)
}

// feature dials a feature code from the phone: challenged, authenticated, answered with a
// confirmation prompt, then hung up by the server.
func (p *phone) feature(t *testing.T, code string) {
	t.Helper()
	u, _ := p.dialAuth(code, 200)
	u.expectRequest("BYE", 15*time.Second)
}

func httpDo(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// waitEvent waits for an RFC 4733 packet of event ev with payload type pt in s.
func waitEvent(t *testing.T, what string, s *rtpStream, pt uint8, ev byte) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range s.snapshot() {
			if p.pkt.PayloadType == pt && len(p.pkt.Payload) == 4 && p.pkt.Payload[0] == ev {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: no telephone-event %d with payload type %d", what, ev, pt)
}

// TestHoldAnnouncesPosition: a caller waiting with nobody staffed hears the hold audio and,
// every announce_every, their place in line; the expected wait is withheld, since with
// nobody at work it cannot be estimated honestly.
func TestHoldAnnouncesPosition(t *testing.T) {
	t.Parallel()
	cfg := strings.Replace(queueTestConfig(t, "", "ana:en:pw-ana"), "announce_every: 0s", "announce_every: 15s", 1)
	ts := startServer(t, cfg)
	c := callIn(t, ts, "11", 440)
	ts.waitMetric(t, `hotline_queue_waiting{queue="en"}`, 1)
	hold := prompts.Hold()
	c.stream.waitFor(t, "the hold audio", hold.PCMU[8000:16000], 15*time.Second)
	youAre := mustPrompt(t, "en", "you_are_caller_number")
	c.stream.waitFor(t, "you are caller number", youAre.PCMU[1600:4000], 40*time.Second)
	one := mustPrompt(t, "en", "num_1")
	c.stream.waitFor(t, "one", one.PCMU[800:1600], 5*time.Second)
	if bytes.Contains(c.stream.payload(), mustPrompt(t, "en", "expected_wait").PCMU[1600:3200]) {
		t.Error("an expected wait was announced with nobody staffed")
	}
	c.hangup()
	ts.waitMetric(t, `hotline_queue_calls_total{queue="en",result="abandoned"}`, 1)
}
