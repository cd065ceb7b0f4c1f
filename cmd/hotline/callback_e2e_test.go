package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotline-project/hotline/callback"
	"github.com/hotline-project/hotline/callflow"
	"github.com/hotline-project/hotline/prompts"
	"github.com/hotline-project/hotline/sip/sdp"
)

// The number the callback tests' callers type, and their own caller ID.
const (
	callbackTyped  = "5550009999"
	callbackCaller = "+15551230000"
)

// callbackServer is a server whose Spanish queue offers a callback when a caller's wait
// reaches its overflow step (after 1 s), dialling callbacks through the trunk target: a
// test phone ("callee") on loopback.
type callbackServer struct {
	*testServer
	callee   *phone
	token    string
	stateDir string
	records  string
}

func startCallbackServer(t *testing.T, attempts int) *callbackServer {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("callback-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The callee's phone sends silence when it answers (a tone would be a machine's beep);
	// the tests send its tone once it pressed 1.
	callee := newPhone(t, "127.0.0.1:9", "callee", "", 0, 0)
	cs := &callbackServer{callee: callee, token: "callback-secret", stateDir: filepath.Join(dir, "state"),
		records: filepath.Join(dir, "records.db")}
	extra := fmt.Sprintf(`admin:
  token_file: %s
state:
  dir: %s
safety:
  quick_exit_key: ""
queues:
  - {name: en, languages: [en]}
  - {name: es, languages: [es], callback: {overflowing: true}}
routes:
  - {name: help_now_es, when: {languages: [es], reasons: [help_now]}, to: es, priority: 100, overflow: [{after: 1s, to: en}]}
  - {name: default, to: en, priority: 10}
targets:
  - {name: trunk, uri: "sip:trunk@%s"}
callback:
  trunk: trunk
  hotline_name: Hotline
  attempts: %d
  gate_timeout: 3s
  ring_timeout: 10s
`, tokenFile, cs.stateDir, callee.conn.LocalAddr(), attempts)
	cfg := strings.Replace(queueTestConfig(t, extra, "ana:es:pw-ana"), "RECORDS_PATH", cs.records, 1)
	cs.testServer = startServerLogging(t, cfg, "debug", "-log-format", "json")
	srv, err := net.ResolveUDPAddr("udp", cs.addrs.SIPUDP)
	if err != nil {
		t.Fatal(err)
	}
	callee.server = srv
	return cs
}

// callbackCall is a caller taking the callback offer by key press (RFC 4733).
type callbackCall struct {
	*caller
	t     *testing.T
	seq   uint16
	rtpTS uint32
	lang  string
}

// keys presses keys, each once the caller's microphone tone has stopped (the test's
// keys go on a stream of their own).
func (c *callbackCall) keys(s string) {
	c.stopTone()
	time.Sleep(60 * time.Millisecond)
	for _, k := range s {
		ev := map[rune]byte{'*': 10, '#': 11}[k]
		if k >= '0' && k <= '9' {
			ev = byte(k - '0')
		}
		c.sendDigit(c.media, 101, ev, &c.seq, &c.rtpTS)
		time.Sleep(60 * time.Millisecond)
	}
}

// hears waits until the caller has heard the start of prompt name n times.
func (c *callbackCall) hears(name string, n int) {
	c.t.Helper()
	hearsOn(c.t, c.stream, mustPrompt(c.t, c.lang, name).PCMU, n)
}

// hearsOn waits until s holds the first 200 ms of audio n times.
func hearsOn(t *testing.T, s *rtpStream, audio []byte, n int) {
	t.Helper()
	want := audio[:min(1600, len(audio))]
	deadline := time.Now().Add(20 * time.Second)
	for bytes.Count(s.payload(), want) < n {
		if time.Now().After(deadline) {
			t.Fatalf("did not hear a prompt %d times (%d packets)", n, len(s.snapshot()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// offered places a Spanish "help now" caller who waits in es, overflows after a second
// and hears the callback offer.
func (cs *callbackServer) offered(t *testing.T) *callbackCall {
	t.Helper()
	c := &callbackCall{caller: callInFrom(t, cs.testServer, callbackCaller, "21", 440), t: t, seq: 1000, rtpTS: 200000, lang: "es"}
	c.hears("callback_offer", 1)
	return c
}

// book takes the offer: 1; then either the caller ID (1 at the read-back) or, with
// typed, 2 and the number typed with #, read back and confirmed; window 1; consent 2.
func (c *callbackCall) book(typed string) {
	c.t.Helper()
	c.keys("1")
	c.hears("callback_number_is", 1)
	c.hears("callback_confirm", 1)
	if typed != "" {
		c.keys("2")
		c.hears("callback_enter_number", 1)
		c.keys(typed + "#")
		c.hears("callback_number_is", 2)
		c.hears("callback_confirm", 2)
	}
	c.keys("1")
	c.hears("callback_window", 1)
	c.keys("1")
	c.hears("callback_consent", 1)
	c.keys("2")
	c.hears("callback_booked", 1)
}

// pending lists the pending callbacks through the admin API.
func (cs *callbackServer) pending(t *testing.T) []callflow.CallbackInfo {
	t.Helper()
	code, body := httpDo(t, "GET", "http://"+cs.addrs.HTTP+"/admin/v1/callbacks", cs.token, "")
	if code != 200 {
		t.Fatalf("GET callbacks: %d %s", code, body)
	}
	var res struct {
		Callbacks []callflow.CallbackInfo `json:"callbacks"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatalf("callbacks list: %v: %s", err, body)
	}
	return res.Callbacks
}

// advocateAnswers registers ana, answers her phone's ring for the callback and checks the
// whisper: "Devolución de llamada. Español. Necesita ayuda ahora."
func (cs *callbackServer) advocateAnswers(t *testing.T) *phone {
	t.Helper()
	ana := newPhone(t, cs.addrs.SIPUDP, "ana", "pw-ana", 8, 1000)
	ana.register(300)
	inv := ana.expectInvite(20 * time.Second)
	ana.answer(inv)
	whisper := prompts.Join(mustPrompt(t, "es", "callback_whisper"), mustPrompt(t, "es", "whisper_lang_es"),
		mustPrompt(t, "es", "whisper_help_now"))
	ana.stream.waitFor(t, "the callback whisper", whisper.PCMA[800:len(whisper.PCMA)-800], 10*time.Second)
	return ana
}

// runCallbackHappyPath is issue 16's full callback on real sockets: the caller accepts
// the offer, types another number, picks a window and hangs up; an advocate comes online
// and answers the whisper; the server dials the test phone behind the trunk with the
// neutral caller ID; the gate is pressed; both hear each other (Goertzel).
func runCallbackHappyPath(t *testing.T) *callbackServer {
	cs := startCallbackServer(t, 3)
	c := cs.offered(t)
	c.book(callbackTyped)
	c.hangup()
	cs.waitMetric(t, `hotline_callbacks_total{event="accepted",queue="es"}`, 1)
	cs.waitMetric(t, `hotline_callbacks_pending`, 1)
	list := cs.pending(t)
	if len(list) != 1 || list[0].Number != "••••••••99" || list[0].Queue != "es" || list[0].Consent {
		t.Fatalf("pending callbacks %+v", list)
	}

	ana := cs.advocateAnswers(t)
	inv := cs.callee.expectInvite(20 * time.Second)
	if u := inv.Recipient.User; u != callbackTyped {
		t.Errorf("dialled user %q, want the typed number", u)
	}
	if from := inv.From(); from.Address.User != "anonymous" || from.DisplayName != "" || strings.Contains(inv.String(), "5551230000") {
		t.Errorf("the callee was shown %q %q (or the caller ID): want anonymous, no name", from.DisplayName, from.Address.User)
	}
	cs.callee.answer(inv)
	hearsOn(t, cs.callee.stream, mustPrompt(t, "es", "callback_gate").PCMU, 1)
	offer, err := sdp.NegotiateOffer(inv.Body())
	if err != nil {
		t.Fatal(err)
	}
	toServer := net.UDPAddrFromAddrPort(offer.Remote)
	cs.callee.stop()
	time.Sleep(60 * time.Millisecond)
	seq, rtpTS := uint16(100), uint32(50000)
	(&uac{t: t}).sendDigitFrom(cs.callee.rtp, toServer, 101, 1, &seq, &rtpTS)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go sendTone(ctx, cs.callee.rtp, toServer, 0, 1500)
	waitTone(t, "the callee hears the advocate", cs.callee.stream, 0, 1000, 10*time.Second)
	waitTone(t, "the advocate hears the callee", ana.stream, 8, 1500, 10*time.Second)
	cancel()
	cs.callee.hangup()
	ana.expectBye(5 * time.Second)
	cs.waitMetric(t, `hotline_callbacks_total{event="reached",queue="es"}`, 1)
	cs.waitMetric(t, `hotline_callbacks_total{event="attempted",queue="es"}`, 1)
	cs.waitMetric(t, `hotline_callbacks_pending`, 0)
	if l := cs.pending(t); len(l) != 0 {
		t.Errorf("still pending: %+v", l)
	}
	return cs
}

// TestCallbackUnhappyE2E: a callback whose callee answers and presses nothing (an
// answering machine) is hung up after the gate alone; one whose callee beeps during the
// gate (a machine that answers at once) is hung up at the beep, before the gate ends; one
// whose callee is busy, or rings out, likewise. The advocate is told; with one attempt configured, each fails for good.
// (Retries within the window, expiry and a window not yet open: callflow's fake-clock
// tests.)
func TestCallbackUnhappyE2E(t *testing.T) {
	t.Parallel()
	// The four cases run at once, each with its own server, from this test's start: as
	// parallel subtests they would queue behind every other parallel test and, 20-30 s of
	// prompts each, be the last to end.
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, tc := range []string{"no key", "machine beep", "busy", "no answer"} {
		wg.Go(func() {
			t.Run(tc, func(t *testing.T) {
				cs := startCallbackServer(t, 1)
				c := cs.offered(t)
				c.book("") // the caller ID, confirmed
				c.hangup()
				ana := cs.advocateAnswers(t)
				inv := cs.callee.expectInvite(20 * time.Second)
				if u := inv.Recipient.User; u != "15551230000" {
					t.Errorf("dialled %q, want the caller ID", u)
				}
				switch tc {
				case "busy":
					cs.callee.refuse(inv, 486, "Busy Here")
				case "no answer":
					// Rings for callback.ring_timeout (10 s), then CANCEL.
					cs.callee.expectCancel(inv, 15*time.Second)
				case "machine beep":
					cs.callee.answer(inv)
					offer, err := sdp.NegotiateOffer(inv.Body())
					if err != nil {
						t.Fatal(err)
					}
					time.Sleep(500 * time.Millisecond) // the gate (4 s) starts playing
					cs.callee.stop()
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					go sendTone(ctx, cs.callee.rtp, net.UDPAddrFromAddrPort(offer.Remote), 0, 1000) // the beep
					cs.callee.expectBye(3 * time.Second)
					cancel()
					if gate := mustPrompt(t, "es", "callback_gate"); bytes.Contains(cs.callee.stream.payload(), gate.PCMU) {
						t.Error("the machine recorded the whole gate: the beep did not hang up")
					}
				default:
					cs.callee.answer(inv)
					hearsOn(t, cs.callee.stream, mustPrompt(t, "es", "callback_gate").PCMU, 1)
					cs.callee.expectBye(10 * time.Second)
					// Nothing but the gate was played: no message left.
					gate := mustPrompt(t, "es", "callback_gate")
					rest := bytes.Replace(cs.callee.stream.payload(), gate.PCMU, nil, 1)
					sound := 0
					for _, b := range rest {
						if b != 0xFF && b != 0x7F && b != 0xFE && b != 0x7E {
							sound++
						}
					}
					if len(rest) == len(cs.callee.stream.payload()) || sound > 0 {
						t.Errorf("the callee heard %d bytes of sound besides the gate (gate heard: %v)", sound, len(rest) != len(cs.callee.stream.payload()))
					}
				}
				hearsOn(t, ana.stream, mustPrompt(t, "es", "callback_not_reached").PCMA, 1)
				ana.expectBye(10 * time.Second)
				cs.waitMetric(t, `hotline_callbacks_total{event="attempted",queue="es"}`, 1)
				cs.waitMetric(t, `hotline_callbacks_total{event="failed",queue="es"}`, 1)
				cs.waitMetric(t, `hotline_callbacks_total{event="reached",queue="es"}`, 0)
				cs.waitMetric(t, `hotline_callbacks_pending`, 0)
			})
		})
	}
}

// TestCallbackCancelAndRestart: a pending callback survives a restart (sealed in the
// state log, opened with the key file), and the admin API cancels it.
func TestCallbackCancelAndRestart(t *testing.T) {
	t.Parallel()
	cs := startCallbackServer(t, 3)
	c := cs.offered(t)
	c.book("")
	c.hangup()
	cs.waitMetric(t, `hotline_callbacks_pending`, 1)
	id := cs.pending(t)[0].ID
	cs.stop(t)

	again := &callbackServer{testServer: startServerLogging(t, cs.cfg, "debug"), callee: cs.callee, token: cs.token}
	list := again.pending(t)
	if len(list) != 1 || list[0].ID != id || list[0].Number != "•••••••••00" {
		t.Fatalf("after the restart: %+v", list)
	}
	if code, body := httpDo(t, "DELETE", "http://"+again.addrs.HTTP+"/admin/v1/callbacks/nope", again.token, ""); code != 404 {
		t.Errorf("cancel unknown: %d %s", code, body)
	}
	if code, body := httpDo(t, "DELETE", "http://"+again.addrs.HTTP+"/admin/v1/callbacks/"+id, again.token, ""); code != 200 {
		t.Fatalf("cancel: %d %s", code, body)
	}
	again.waitMetric(t, `hotline_callbacks_total{event="cancelled",queue="es"}`, 1)
	if l := again.pending(t); len(l) != 0 {
		t.Errorf("after cancel: %+v", l)
	}
}

// TestCheckCallbacks: `hotline check` refuses a queue offering callbacks with no trunk or
// with the quick-exit key #, and a key file it cannot read; with a trunk, key D and a
// good key file it passes.
func TestCheckCallbacks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile := writeFile(t, dir, "callback.key", callback.NewKeyLine("k1")+"\n")
	cfg := `lines: [{number: "18883737888"}]
queues:
  - {name: en, languages: [en], callback: {wait_over: 5m}}
  - {name: es, languages: [es]}
callback:
  trunk: nope
`
	p := writeFile(t, dir, "bad.yaml", cfg)
	code, out, errOut := runCmd(t, "check", "-config", p)
	for _, want := range []string{p + `:6: callback.trunk: queues offer callbacks, but "nope" is not a target`,
		`safety.quick_exit_key: "#" is also typed in the callback offer`} {
		if code == 0 || !strings.Contains(out+errOut, want) {
			t.Errorf("check: exit %d\n%s%s\nwant:\n%s", code, out, errOut, want)
		}
	}
	good := strings.Replace(cfg, "trunk: nope", "trunk: partner_center\n  key_file: "+keyFile, 1) + "safety: {quick_exit_key: \"D\"}\n"
	p = writeFile(t, dir, "good.yaml", good)
	if code, out, errOut := runCmd(t, "check", "-config", p); code != 0 {
		t.Fatalf("check: exit %d\n%s%s", code, out, errOut)
	}
	p = writeFile(t, dir, "nokey.yaml", strings.Replace(good, keyFile, filepath.Join(dir, "missing.key"), 1))
	if code, out, errOut := runCmd(t, "check", "-config", p); code == 0 || !strings.Contains(out+errOut, "callback.key_file") {
		t.Fatalf("check with a missing key file: exit %d\n%s%s", code, out, errOut)
	}
}
