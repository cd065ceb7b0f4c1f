package main

// The console in a real browser: headless Chromium (Debian's chromium, which .ci/run
// installs) driven over the DevTools protocol by chromedp. Skipped when Chromium is not
// installed, unless HOTLINE_REQUIRE_TOOLS=1 (as .ci/run sets).

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium starts a headless Chromium with a fresh profile and returns its context.
func chromium(t *testing.T) context.Context {
	t.Helper()
	return chromiumWith(t)
}

// chromiumWith is chromium with more command-line flags.
func chromiumWith(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("HOTLINE_REQUIRE_TOOLS") != "" {
			t.Fatal("chromium is not installed (HOTLINE_REQUIRE_TOOLS is set)")
		}
		t.Skip("chromium is not installed")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.WindowSize(1200, 800),
	}
	opts = append(opts, extra...)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	// The first run starts the browser, which lives as long as ctx: no timeout here.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	return ctx
}

// browserTab opens a tab in a browser context of its own (its own cookies: one person).
func browserTab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	tab, cancelTab := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancelTab)
	// The first run opens the tab, and lives as long as its context: no timeout here.
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("chromium tab: %v", err)
	}
	return tab
}

// run runs actions with a timeout, failing the test with what.
func runIn(t *testing.T, ctx context.Context, what string, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs one action that returns a value.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// waitText waits until the element sel's text is want.
func waitText(sel, want string) chromedp.Action[chromedp.Void] {
	return waitTrue(`(() => { const e = document.querySelector(` + jsString(sel) + `); return !!e && e.textContent.trim() === ` + jsString(want) + `; })()`)
}

// waitTrue waits until the expression is true in the page.
func waitTrue(expr string) chromedp.Action[chromedp.Void] {
	p := chromedp.Poll[bool](expr, chromedp.WithPollingInterval(20*time.Millisecond))
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := p(ctx, t)
		return chromedp.Void{}, err
	}
}

func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// signInPage opens the console at base (unless "": the page is open) and signs in.
func signInPage(t *testing.T, tab context.Context, base, id, pw string) {
	t.Helper()
	if base != "" {
		runIn(t, tab, "open the console", 15*time.Second, chromedp.Navigate(base+"/console/"))
	}
	runIn(t, tab, "the sign-in form", 15*time.Second, chromedp.WaitVisible(chromedp.ID("signin-id")))
	runIn(t, tab, "fill in", 15*time.Second,
		chromedp.SetValue(chromedp.ID("signin-id"), id),
		chromedp.SetValue(chromedp.ID("signin-password"), pw))
	runIn(t, tab, "submit", 15*time.Second, chromedp.Click(chromedp.ID("signin-submit")))
	c, cancel := context.WithTimeout(tab, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(c, chromedp.WaitVisible(chromedp.ID("desk")), chromedp.WaitNotVisible(chromedp.ID("signin"))); err != nil {
		t.Fatalf("sign in as %s: %v; the page says %q", id, err, get(t, tab, "page text", chromedp.Evaluate[string]("document.body.innerText")))
	}
}

// TestConsoleInBrowser is the console as people use it: a wrong password is refused (and
// counted), ana signs in and presses buttons, and the state shows in /metrics; a caller
// queues over SIP and the supervisor's wallboard shows them within a second; ana's page
// shows the ringing call's card and never the caller's number; she answers on her phone
// and hangs up from the page; the supervisor pauses her. Screenshots of both views
// are written to docs/ when HOTLINE_SCREENSHOTS=1.
func TestConsoleInBrowser(t *testing.T) {
	alloc := chromium(t)
	ts := startServer(t, consoleTestConfig(t))
	base := "http://" + ts.addrs.HTTP

	phone := newPhone(t, ts.addrs.SIPUDP, "ana", "ana-pw", 0, 1000)
	phone.register(300)
	ts.waitMetric(t, `hotline_advocates{language="es",queue="es",state="available"}`, 1)

	ana := browserTab(t, alloc)
	runIn(t, ana, "wrong password", 15*time.Second,
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(chromedp.ID("signin-id")),
		chromedp.SetValue(chromedp.ID("signin-id"), "ana"),
		chromedp.SetValue(chromedp.ID("signin-password"), "not-her-password"),
		chromedp.Click(chromedp.ID("signin-submit")),
		waitText("#notice", "wrong id or password"),
	)
	ts.waitMetric(t, `hotline_console_sign_ins_total{result="refused"}`, 1)

	signInPage(t, ana, "", "ana", "ana-pw") // on the same page
	runIn(t, ana, "ana's state", 10*time.Second, waitText("#my-state", "available"))
	runIn(t, ana, "pause for a meal", 10*time.Second,
		chromedp.SetValue(chromedp.ID("pause-reason"), "meal"),
		chromedp.Click(chromedp.ID("btn-pause")),
		waitText("#my-state", "paused (meal)"),
	)
	ts.waitMetric(t, `hotline_advocates{language="es",queue="es",state="paused"}`, 1)
	runIn(t, ana, "press available", 10*time.Second,
		chromedp.Click(chromedp.ID("btn-available")),
		waitText("#my-state", "available"),
	)
	ts.waitMetric(t, `hotline_advocates{language="es",queue="es",state="available"}`, 1)

	sam := browserTab(t, alloc)
	signInPage(t, sam, base, "sam", "sam-pw")
	runIn(t, sam, "the wallboard", 10*time.Second,
		chromedp.WaitVisible(chromedp.ID("wallboard")),
		waitText("#q-es .waiting", "0"),
		waitText("#a-ana td:nth-child(3)", "available"),
	)

	// A caller chooses Spanish and "help now" and queues: the wallboard shows them within a
	// second of the server counting them.
	c := callIn(t, ts, "21", 440)
	deadline := time.Now().Add(20 * time.Second)
	for metricValue(ts.scrape(t), `hotline_queue_waiting{queue="es"}`) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the caller never queued")
		}
		time.Sleep(10 * time.Millisecond)
	}
	queued := time.Now()
	runIn(t, sam, "the wallboard shows the caller within a second", time.Second, waitText("#q-es .waiting", "1"))
	t.Logf("wallboard updated %v after the caller queued", time.Since(queued).Round(time.Millisecond))

	inv := phone.expectInvite(10 * time.Second) // ringing, not answered: the card shows the ringing call
	runIn(t, ana, "the ringing call's card", 10*time.Second,
		waitText("#my-state", "ringing"),
		chromedp.WaitVisible(chromedp.ID("call-card")),
		waitText("#call-title", "Ringing call"),
		waitText("#call-queue", "es"),
		waitText("#call-language", "es"),
		waitText("#call-reason", "help_now"),
	)
	runIn(t, sam, "ana ringing on the wallboard", 5*time.Second, waitText("#a-ana td:nth-child(3)", "ringing"))
	anaPage := get(t, ana, "ana's page", chromedp.OuterHTML(chromedp.CSS("html")))
	samPage := get(t, sam, "sam's page", chromedp.OuterHTML(chromedp.CSS("html")))
	number := strings.TrimPrefix(c.from, "+")
	for who, page := range map[string]string{"advocate": anaPage, "supervisor": samPage} {
		if strings.Contains(page, number) {
			t.Errorf("the %s's page shows the caller's number", who)
		}
	}

	if os.Getenv("HOTLINE_SCREENSHOTS") == "1" {
		time.Sleep(3 * time.Second) // waits that read more than 0:00
		for _, s := range []struct {
			tab  context.Context
			file string
		}{{ana, "console-advocate.png"}, {sam, "console-supervisor.png"}} {
			png := get(t, s.tab, "screenshot", chromedp.FullScreenshot(100))
			if err := os.WriteFile(filepath.Join("..", "..", "docs", s.file), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Ana answers on her phone, then hangs up from the page: both legs end.
	phone.answer(inv)
	runIn(t, ana, "on the call", 10*time.Second,
		waitText("#my-state", "on call"),
		waitText("#call-title", "Current call"),
		chromedp.WaitVisible(chromedp.ID("btn-hangup")),
	)
	runIn(t, ana, "hang up", 10*time.Second, chromedp.Click(chromedp.ID("btn-hangup")))
	phone.expectBye(5 * time.Second)
	c.expectRequest("BYE", 5*time.Second)
	c.stopTone()
	runIn(t, ana, "the call is over", 10*time.Second, chromedp.WaitVisible(chromedp.ID("no-call")))
	ts.waitMetric(t, `hotline_queue_calls_total{queue="es",result="answered"}`, 1)
	runIn(t, sam, "answered today", 5*time.Second, waitText("#q-es .answered", "1"), waitText("#q-es .sl", "100% (≤ 60s)"))

	// The supervisor pauses ana from the wallboard; her page follows.
	runIn(t, sam, "the supervisor pauses ana", 10*time.Second,
		chromedp.Evaluate[chromedp.Void](`(() => { document.querySelector('#a-ana select').value = 'paused:supervision'; })()`),
		chromedp.Click(chromedp.CSS("#a-ana button")),
	)
	runIn(t, ana, "ana paused by the supervisor", 10*time.Second, waitText("#my-state", "paused (supervision)"))
	ts.waitMetric(t, `hotline_advocates{language="es",queue="es",state="paused"}`, 1)

	// A second tab of sam's session takes the live view over; the first says so clearly.
	tab2, cancel2 := chromedp.NewContext(sam) // the same browser context: sam's cookie
	defer cancel2()
	if err := chromedp.Do(tab2); err != nil {
		t.Fatalf("second tab: %v", err)
	}
	runIn(t, tab2, "the second tab", 15*time.Second,
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(chromedp.ID("wallboard")),
		waitText("#q-es .answered", "1"),
	)
	runIn(t, sam, "the first tab is told", 5*time.Second,
		waitTrue(`document.getElementById('notice').textContent.includes('opened in another tab')`))

	// Signing out ends the session: the page asks to sign in again.
	runIn(t, ana, "sign out", 10*time.Second,
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("signin")),
	)
	ts.waitMetric(t, `hotline_console_sessions`, 1)
}
