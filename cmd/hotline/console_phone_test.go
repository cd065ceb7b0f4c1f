package main

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
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
// in the page and the caller gets a BYE; the call is counted answered like any other.
func TestConsolePhoneInBrowser(t *testing.T) {
	const micHz, callerHz = 1000, 440
	alloc := chromiumWith(t,
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-file-for-fake-audio-capture", toneWAV(t, micHz, 10*time.Second)),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	)
	ts := startServer(t, consoleTestConfig(t))
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
	runIn(t, ana, "answer in the page", 20*time.Second,
		chromedp.Click(chromedp.ID("btn-answer")),
		waitText("#my-state", "on call"),
		chromedp.WaitVisible(chromedp.ID("btn-mute")))

	// The caller hears the page's microphone.
	waitTone(t, "the caller hears the browser's tone", c.stream, 0, micHz, 15*time.Second)

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
}
