package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hotline-project/hotline/records"
)

// toneWAV writes a WAV file of a sine tone at freq (8 kHz, 16-bit mono), for Chromium's
// fake microphone.
func toneWAV(t *testing.T, freq float64, d time.Duration) string {
	t.Helper()
	n := int(d.Seconds() * 8000)
	b := make([]byte, 44+2*n)
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+2*n))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1) // PCM
	binary.LittleEndian.PutUint16(b[22:], 1) // mono
	binary.LittleEndian.PutUint32(b[24:], 8000)
	binary.LittleEndian.PutUint32(b[28:], 16000)
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(2*n))
	for i := range n {
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(int16(12000*math.Sin(2*math.Pi*freq*float64(i)/8000))))
	}
	path := filepath.Join(t.TempDir(), "tone.wav")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConsolePhoneInBrowser is the phone in the page as an advocate uses it: ana has no SIP
// phone; she turns the phone in the page on (she can then be available), a SIP caller
// queues, the call rings in the page and she answers there over WebRTC. The caller hears
// her microphone's tone (Goertzel), and the page receives the caller's tone (WebRTC stats,
// and the strongest frequency a WebAudio analyser finds); muting silences her; she hangs up
// in the page and the caller gets a BYE; the call is counted answered like any other. A
// forged CSRF token is refused for the phone's signalling; a second tab takes the phone
// over, and the first tab's requests are refused (409).
func TestConsolePhoneInBrowser(t *testing.T) {
	const micHz, callerHz = 1000, 440
	alloc := chromiumWith(t,
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-file-for-fake-audio-capture", toneWAV(t, micHz, 10*time.Second)),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	)
	recordsPath := filepath.Join(t.TempDir(), "records.db")
	ts := startServer(t, strings.Replace(consoleTestConfig(t), "RECORDS_PATH", recordsPath, 1))
	base := "http://" + ts.addrs.HTTP

	ana := browserTab(t, alloc)
	signInPage(t, ana, base, "ana", "ana-pw")
	runIn(t, ana, "no phone yet", 10*time.Second,
		waitText("#my-phone", "No phone registered"),
		chromedp.WaitVisible(chromedp.ID("page-phone")))
	runIn(t, ana, "the phone in the page on", 10*time.Second,
		chromedp.Click(chromedp.ID("phone-toggle")),
		waitText("#phone-state", "on: calls ring here"),
		waitText("#my-phone", "Phone registered"))
	ts.waitMetric(t, `hotline_console_phones`, 1)
	runIn(t, ana, "available", 10*time.Second,
		chromedp.Click(chromedp.ID("btn-available")),
		waitText("#my-state", "available"))
	ts.waitMetric(t, `hotline_advocates{language="es",queue="es",state="available"}`, 1)

	c := callIn(t, ts, "21", callerHz)
	runIn(t, ana, "the call rings in the page", 20*time.Second,
		waitText("#my-state", "ringing"),
		chromedp.WaitVisible(chromedp.ID("btn-answer")))
	page := get(t, ana, "ana's page", chromedp.OuterHTML(chromedp.CSS("html")))
	if strings.Contains(page, strings.TrimPrefix(c.from, "+")) {
		t.Error("the page shows the caller's number")
	}
	if os.Getenv("HOTLINE_SCREENSHOTS") == "1" {
		time.Sleep(2 * time.Second) // a wait that reads more than 0:00
		png := get(t, ana, "screenshot", chromedp.FullScreenshot(100))
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "console-ringing.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	clicked := time.Now()
	runIn(t, ana, "answer in the page", 20*time.Second,
		chromedp.Click(chromedp.ID("btn-answer")),
		waitText("#my-state", "on call"),
		chromedp.WaitVisible(chromedp.ID("btn-mute")))
	onCall := time.Since(clicked)

	// The caller hears the page's microphone.
	waitTone(t, "the caller hears the browser's tone", c.stream, 0, micHz, 15*time.Second)
	t.Logf("answered in the page: on call %v after the click, the caller hears the tone (Goertzel > 0.8 over 1 s) %v after",
		onCall.Round(time.Millisecond), time.Since(clicked).Round(time.Millisecond))

	// The page receives the caller's tone.
	runIn(t, ana, "the page receives audio", 15*time.Second, waitTrue(`(async () => {
		const s = await hotlinePhone.stats();
		return s.bytes > 16000 && s.level > 0.01 && s.codec === "audio/PCMU";
	})()`))
	runIn(t, ana, "the page hears the caller's tone", 15*time.Second,
		waitTrue(`Math.abs(hotlinePhone.peakHz() - `+strconv.Itoa(callerHz)+`) < 15`))
	st := get(t, ana, "stats", chromedp.Evaluate[string](`hotlinePhone.stats().then((s) => JSON.stringify(s))`, chromedp.EvalAwaitPromise))
	t.Logf("the page's inbound audio: %s; strongest frequency %.0f Hz", st,
		get(t, ana, "peak", chromedp.Evaluate[float64](`hotlinePhone.peakHz()`)))

	// Mute: the caller hears silence, not the tone; unmute brings it back.
	runIn(t, ana, "mute", 5*time.Second, chromedp.Click(chromedp.ID("btn-mute")), waitText("#btn-mute", "Unmute"))
	deadline := time.Now().Add(10 * time.Second)
	for toneLevel(c.stream, 0, micHz, 25) > 0.2 {
		if time.Now().After(deadline) {
			t.Fatal("muted, the caller still hears the tone")
		}
		time.Sleep(50 * time.Millisecond)
	}
	runIn(t, ana, "unmute", 5*time.Second, chromedp.Click(chromedp.ID("btn-mute")), waitText("#btn-mute", "Mute"))
	waitTone(t, "unmuted, the caller hears the tone again", c.stream, 0, micHz, 10*time.Second)

	// Ana hangs up in the page: the caller gets a BYE, the page's call ends.
	runIn(t, ana, "hang up", 10*time.Second, chromedp.Click(chromedp.ID("btn-hangup")))
	c.expectRequest("BYE", 5*time.Second)
	c.stopTone()
	runIn(t, ana, "the call is over", 10*time.Second,
		chromedp.WaitVisible(chromedp.ID("no-call")),
		chromedp.WaitNotVisible(chromedp.ID("btn-mute")),
		waitTrue(`hotlinePhone.pc === null`))
	ts.waitMetric(t, `hotline_queue_calls_total{queue="es",result="answered"}`, 1)

	// A forged CSRF token is refused for the phone's signalling.
	forged := get(t, ana, "forged CSRF", chromedp.Evaluate[string](`fetch('/console/api/phone', {method: 'POST',
		headers: {'Content-Type': 'application/json', 'X-CSRF-Token': 'forged', 'X-Console-Tab': tab}, body: '{"on":true}'})
		.then(async (r) => r.status + ' ' + (await r.json()).error)`, chromedp.EvalAwaitPromise))
	if forged != "403 missing or wrong CSRF token" {
		t.Errorf("phone on with a forged CSRF token: %q", forged)
	}

	// A second tab of ana's session takes the live view over: the first tab is told, its
	// phone goes off (ana is no longer registered), and its phone requests are refused.
	firstTab := get(t, ana, "the first tab's name", chromedp.Evaluate[string](`tab`))
	tab2, cancel2 := chromedp.NewContext(ana)
	defer cancel2()
	if err := chromedp.Do(tab2); err != nil {
		t.Fatalf("second tab: %v", err)
	}
	runIn(t, tab2, "the second tab", 15*time.Second,
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(chromedp.ID("desk")),
		waitText("#my-phone", "No phone registered"))
	runIn(t, ana, "the first tab is told", 5*time.Second,
		waitTrue(`document.getElementById('notice').textContent.includes('opened in another tab')`))
	refused := get(t, ana, "the first tab's phone", chromedp.Evaluate[string](`fetch('/console/api/phone', {method: 'POST',
		headers: {'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf, 'X-Console-Tab': `+jsString(firstTab)+`}, body: '{"on":true}'})
		.then(async (r) => r.status + ' ' + (await r.json()).error)`, chromedp.EvalAwaitPromise))
	if !strings.HasPrefix(refused, "409 the console was opened in another tab") {
		t.Errorf("the first tab turns its phone on: %q, want 409", refused)
	}
	runIn(t, tab2, "the second tab can", 10*time.Second,
		chromedp.Click(chromedp.ID("phone-toggle")),
		waitText("#phone-state", "on: calls ring here"),
		waitText("#my-phone", "Phone registered"))

	// The call's record is a call answered by ana, as on a SIP phone.
	ts.stop(t)
	db, err := records.OpenSQLite(context.Background(), recordsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs, err := db.Records(context.Background(), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Advocate != "ana" || recs[0].Queue != "es" || recs[0].Connected.IsZero() || recs[0].Talk <= 0 {
		t.Errorf("records %+v, want one call ana answered", recs)
	}
}

// TestConsoleCallButtonsInBrowser is the console's call buttons in Chromium: ana takes a
// caller in the page and adds the Spanish interpreter with a button (the caller hears
// both), then drops it; sam, a supervisor, listens to her call from the wallboard on his
// SIP phone (nobody hears him), whispers (the caller still does not), barges in (the
// caller hears him) and stops; then listens again on the phone in his page, and hangs up
// there. Ana's page has no such buttons, and the server refuses her
// if she tries. Last, ana warm-transfers the caller to sam with the transfer button.
func TestConsoleCallButtonsInBrowser(t *testing.T) {
	const micHz, callerHz, interpHz, samHz = 1000, 440, 1800, 1500
	alloc := chromiumWith(t,
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-file-for-fake-audio-capture", toneWAV(t, micHz, 10*time.Second)),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	)
	interp := newPhone(t, "127.0.0.1:9", "interp", "", 0, interpHz)
	cfg := consoleTestConfig(t) + fmt.Sprintf(`targets:
  - {name: interp_es, uri: "%s"}
midcall:
  prefix: "**"
  supervise_code: "*5"
  interpreters: [{code: "34", language: es, target: interp_es}]
  transfer_key: "5"
  transfer_queues: [{code: "1", queue: en}]
`, interp.contactURI)
	cfg = strings.Replace(cfg, "    name: Ana\n", "    name: Ana\n    extension: \"201\"\n", 1)
	cfg = strings.Replace(cfg, "queue_defaults:\n", "queue_defaults:\n  whisper: false\n", 1)
	ts := startServer(t, cfg)
	srv, err := net.ResolveUDPAddr("udp", ts.addrs.SIPUDP)
	if err != nil {
		t.Fatal(err)
	}
	interp.server = srv
	base := "http://" + ts.addrs.HTTP
	samPhone := newPhone(t, ts.addrs.SIPUDP, "sam", "sam-pw", 0, samHz)
	samPhone.register(300)

	ana := browserTab(t, alloc)
	signInPage(t, ana, base, "ana", "ana-pw")
	runIn(t, ana, "the phone in the page on", 10*time.Second,
		chromedp.Click(chromedp.ID("phone-toggle")),
		waitText("#phone-state", "on: calls ring here"))
	ts.waitMetric(t, `hotline_advocates{language="es",queue="es",state="available"}`, 1)
	c := callIn(t, ts, "21", callerHz)
	runIn(t, ana, "answer in the page", 20*time.Second,
		chromedp.WaitVisible(chromedp.ID("btn-answer")),
		chromedp.Click(chromedp.ID("btn-answer")),
		waitText("#my-state", "on call"),
		chromedp.WaitVisible(chromedp.CSS(`#midcall-buttons button[data-feature="interpreter:34"]`)))
	waitTone(t, "the caller hears ana", c.stream, 0, micHz, 15*time.Second)

	// The interpreter button: the server dials the interpreter, and the three talk.
	runIn(t, ana, "add the interpreter", 5*time.Second, chromedp.Click(chromedp.CSS(`#midcall-buttons button[data-feature="interpreter:34"]`)))
	interp.answer(interp.expectInvite(10 * time.Second))
	waitLevels(t, "the caller hears ana and the interpreter", c.stream, 0, []float64{micHz, interpHz}, nil)
	runIn(t, ana, "drop the interpreter", 5*time.Second, chromedp.Click(chromedp.CSS(`#midcall-buttons button[data-feature="drop"]`)))
	interp.expectBye(5 * time.Second)
	ts.waitMetric(t, `hotline_conference_joins_total{kind="interpreter",result="answered"}`, 1)

	// Ana is no supervisor: no wallboard, and the server refuses her.
	if vis := get(t, ana, "wallboard", chromedp.Evaluate[bool](`!document.getElementById('wallboard').hidden`)); vis {
		t.Error("ana's page shows the wallboard")
	}
	refused := get(t, ana, "ana supervises", chromedp.Evaluate[string](`fetch('/console/api/supervise', {method: 'POST',
		headers: {'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf}, body: JSON.stringify({advocate: 'sam', mode: 'listen'})})
		.then((r) => r.status + ' ' + r.statusText)`, chromedp.EvalAwaitPromise))
	if !strings.HasPrefix(refused, "403") {
		t.Errorf("ana's supervise request: %s, want 403", refused)
	}

	// Sam listens from the wallboard: his phone rings, he answers; nobody hears him.
	sam := browserTab(t, alloc)
	signInPage(t, sam, base, "sam", "sam-pw")
	runIn(t, sam, "listen", 10*time.Second,
		chromedp.WaitVisible(chromedp.CSS(`#a-ana button[data-mode="listen"]`)),
		chromedp.Click(chromedp.CSS(`#a-ana button[data-mode="listen"]`)),
		waitTrue(`document.getElementById('supervising').textContent.includes('Ringing your phone')`))
	samPhone.answer(samPhone.expectInvite(10 * time.Second))
	runIn(t, sam, "listening", 10*time.Second, waitTrue(`document.getElementById('supervising').textContent.includes('listening')`))
	waitLevels(t, "sam hears the caller and ana", samPhone.stream, 0, []float64{callerHz, micHz}, nil)
	waitLevels(t, "listening: the caller does not hear sam", c.stream, 0, []float64{micHz}, []float64{samHz})

	runIn(t, sam, "whisper", 10*time.Second,
		chromedp.Click(chromedp.CSS(`#a-ana button[data-mode="whisper"]`)),
		waitTrue(`document.getElementById('supervising').textContent.includes('whispering')`))
	runIn(t, ana, "ana hears sam's whisper", 10*time.Second, waitTrue(`hotlinePhone.levelAt(`+strconv.Itoa(samHz)+`) > -70`))
	waitLevels(t, "whispering: the caller does not hear sam", c.stream, 0, []float64{micHz}, []float64{samHz})

	runIn(t, sam, "barge", 10*time.Second,
		chromedp.Click(chromedp.CSS(`#a-ana button[data-mode="barge"]`)),
		waitTrue(`document.getElementById('supervising').textContent.includes('barged in')`))
	waitLevels(t, "barged in: the caller hears sam and ana", c.stream, 0, []float64{micHz, samHz}, nil)

	if os.Getenv("HOTLINE_SCREENSHOTS") == "1" {
		for _, s := range []struct {
			tab  context.Context
			file string
		}{{ana, "console-phone.png"}, {sam, "console-supervise.png"}} {
			png := get(t, s.tab, "screenshot", chromedp.FullScreenshot(100))
			if err := os.WriteFile(filepath.Join("..", "..", "docs", s.file), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	runIn(t, sam, "stop", 10*time.Second,
		chromedp.Click(chromedp.CSS(`#a-ana button[data-mode="stop"]`)),
		chromedp.WaitNotVisible(chromedp.ID("supervising")))
	samPhone.expectBye(5 * time.Second)
	waitLevels(t, "sam gone: the caller hears ana alone", c.stream, 0, []float64{micHz}, []float64{samHz})

	// Sam listens again on the phone in his page (his SIP phone unregistered): the call
	// rings there, labelled; he hears the caller; he hangs up in the page.
	samPhone.register(0)
	runIn(t, sam, "sam's phone in the page", 15*time.Second,
		chromedp.Click(chromedp.ID("phone-toggle")),
		waitText("#phone-state", "on: calls ring here"),
		chromedp.Click(chromedp.CSS(`#a-ana button[data-mode="listen"]`)),
		waitText("#ring-label", "Supervision: ana's call"),
		chromedp.Click(chromedp.ID("btn-answer")),
		waitTrue(`document.getElementById('supervising').textContent.includes('listening')`),
		chromedp.WaitVisible(chromedp.ID("btn-phone-hangup")),
		waitTrue(`hotlinePhone.levelAt(`+strconv.Itoa(callerHz)+`) > -70`))
	runIn(t, sam, "hang up in the page", 10*time.Second,
		chromedp.Click(chromedp.ID("btn-phone-hangup")),
		chromedp.WaitNotVisible(chromedp.ID("supervising")),
		chromedp.WaitNotVisible(chromedp.ID("btn-phone-hangup")))

	// Ana warm-transfers the caller to the English queue with a button: sam (who speaks
	// English) is rung in his page, answers and hears the caller; ana's hang-up completes
	// the transfer, and the caller stays, now with sam.
	runIn(t, ana, "transfer to the English queue", 5*time.Second,
		chromedp.Click(chromedp.CSS(`#midcall-buttons button[data-feature="transfer:1"]`)))
	runIn(t, sam, "sam answers the transfer in the page", 20*time.Second,
		chromedp.WaitVisible(chromedp.ID("btn-answer")),
		chromedp.Click(chromedp.ID("btn-answer")),
		waitText("#my-state", "on call"),
		waitTrue(`hotlinePhone.levelAt(`+strconv.Itoa(callerHz)+`) > -70`))
	runIn(t, ana, "hang up", 10*time.Second, chromedp.Click(chromedp.ID("btn-hangup")))
	ts.waitMetric(t, `hotline_conference_joins_total{kind="transfer",result="completed"}`, 1)
	waitTone(t, "the caller hears sam after the transfer", c.stream, 0, micHz, 15*time.Second)
	runIn(t, sam, "sam still hears the caller", 10*time.Second, waitTrue(`hotlinePhone.levelAt(`+strconv.Itoa(callerHz)+`) > -70`))
	runIn(t, sam, "sam hangs up", 10*time.Second, chromedp.Click(chromedp.ID("btn-hangup")))
	c.expectRequest("BYE", 5*time.Second)
	c.stopTone()
}
