package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// consoleTestConfig has a Spanish queue, ana (an advocate who speaks Spanish) and sam (a
// supervisor), a long ring so that a ringing call can be looked at, and a ban after three
// failed authentications.
func consoleTestConfig(t *testing.T) string {
	return testConfig + `
queue_defaults:
  ring_timeout: 30s
  wrap_up: 0s
  max_misses: 2
  announce_every: 0s
security:
  auth_failures: 3
` + advocateYAML(t, "ana:es:ana-pw", "sam:en:sam-pw") + "    role: supervisor\n"
}

// consoleClient is a browser's HTTP side: cookies, and the CSRF token of its session.
type consoleClient struct {
	t    *testing.T
	base string
	http *http.Client
	csrf string
}

func newConsoleClient(t *testing.T, ts *testServer) *consoleClient {
	jar, _ := cookiejar.New(nil)
	return &consoleClient{t: t, base: "http://" + ts.addrs.HTTP, http: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

func (c *consoleClient) post(path, body string) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (c *consoleClient) signIn(id, pw string) int {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.base+"/console/api/signin", strings.NewReader(`{"id":"`+id+`","password":"`+pw+`"}`))
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var me struct {
		CSRF string `json:"csrf"`
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&me); err != nil {
			c.t.Fatal(err)
		}
		c.csrf = me.CSRF
	}
	return resp.StatusCode
}

// TestConsoleOverHTTP signs in to the console of a running server the way the page does:
// a wrong password is refused and counted, a state change shows in /metrics, a forged CSRF
// token and another origin are refused, and failed sign-ins ban the source for SIP too.
func TestConsoleOverHTTP(t *testing.T) {
	t.Parallel()
	ts := startServer(t, consoleTestConfig(t))
	ana := newConsoleClient(t, ts)
	if code := ana.signIn("ana", "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d, want 401", code)
	}
	ts.waitMetric(t, `hotline_console_sign_ins_total{result="refused"}`, 1)
	if code := ana.signIn("ana", "ana-pw"); code != http.StatusOK {
		t.Fatalf("sign-in: %d", code)
	}
	ts.waitMetric(t, `hotline_console_sign_ins_total{result="ok"}`, 1)
	ts.waitMetric(t, `hotline_console_sessions`, 1)
	ts.waitMetric(t, `hotline_advocates{language="es",queue="es",state="offline"}`, 1)
	// Without a phone there is nothing to ring: the queue engine refuses, and says why.
	if code, body := ana.post("/console/api/state", `{"state":"available"}`); code != http.StatusConflict || !strings.Contains(body, "not registered") {
		t.Fatalf("available without a phone: %d %s, want 409", code, body)
	}
	phone := newPhone(t, ts.addrs.SIPUDP, "ana", "ana-pw", 0, 1000)
	phone.register(300)
	ts.waitMetric(t, `hotline_advocates{language="es",queue="es",state="available"}`, 1)
	if code, _ := ana.post("/console/api/state", `{"state":"paused","reason":"meal"}`); code != http.StatusNoContent {
		t.Fatalf("pause: %d", code)
	}
	ts.waitMetric(t, `hotline_advocates{language="es",queue="es",state="paused"}`, 1)
	if code, body := ana.post("/console/api/state", `{"state":"available"}`); code != http.StatusNoContent {
		t.Fatalf("available: %d %s", code, body)
	}
	ts.waitMetric(t, `hotline_advocates{language="es",queue="es",state="available"}`, 1)
	if code, _ := ana.post("/console/api/state", `{"state":"paused","reason":"meal"}`); code != http.StatusNoContent {
		t.Fatalf("pause: %d", code)
	}
	ts.waitMetric(t, `hotline_advocates{language="es",queue="es",state="paused"}`, 1)

	good := ana.csrf
	ana.csrf = "forged"
	if code, _ := ana.post("/console/api/state", `{"state":"available"}`); code != http.StatusForbidden {
		t.Errorf("forged CSRF token: %d, want 403", code)
	}
	ana.csrf = good
	req, _ := http.NewRequest("POST", ana.base+"/console/api/state", strings.NewReader(`{"state":"available"}`))
	req.Header.Set("X-CSRF-Token", good)
	req.Header.Set("Origin", "http://evil.example")
	resp, err := ana.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin change: %d, want 403", resp.StatusCode)
	}
	ts.waitMetric(t, `hotline_advocates{language="es",queue="es",state="paused"}`, 1)

	// Two more failures (three in all) ban 127.0.0.1: the console refuses even the right
	// password, and the ban is the SIP server's one.
	bad := newConsoleClient(t, ts)
	bad.signIn("sam", "guess")
	bad.signIn("nobody", "guess")
	if code := bad.signIn("sam", "sam-pw"); code != http.StatusTooManyRequests {
		t.Fatalf("after three failures: %d, want 429", code)
	}
	ts.waitMetric(t, `hotline_console_sign_ins_total{result="banned"}`, 1)
	ts.waitMetric(t, `hotline_sip_banned_sources`, 1)

	// console.enabled: false takes effect on reload: the page and its API answer 404, and
	// the session's next change is refused.
	ts.rewrite(t, ts.cfg+"console:\n  enabled: false\n")
	if err := ts.addrs.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	for _, p := range []string{"/console/", "/console/api/me"} {
		resp, err := http.Get(ana.base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s with the console off: %d, want 404", p, resp.StatusCode)
		}
	}
	if code, _ := ana.post("/console/api/state", `{"state":"available"}`); code != http.StatusNotFound {
		t.Errorf("a change with the console off: %d, want 404", code)
	}
}

// Sign-ins with wrong passwords sent together, each on a connection of its own, as a
// brute-forcer would: no more passwords are checked than auth_failures (3), the rest are
// refused 429 unchecked, and the source is banned. (Over HTTP the checks rarely overlap
// on this machine; console.TestSignInsInFlightCountAgainstTheLimit holds one in flight.)
func TestConsoleSignInsAtOnceStayWithinTheLimit(t *testing.T) {
	t.Parallel()
	const guesses = 24
	ts := startServer(t, consoleTestConfig(t))
	start := make(chan struct{})
	codes := make(chan int, guesses)
	var wg sync.WaitGroup
	for i := range guesses {
		c := newConsoleClient(t, ts)
		c.http.Transport = &http.Transport{DisableKeepAlives: true} // a connection each
		wg.Go(func() {
			<-start
			codes <- c.signIn("ana", "guess"+strconv.Itoa(i))
		})
	}
	close(start)
	wg.Wait()
	close(codes)
	n := map[int]int{}
	for code := range codes {
		n[code]++
	}
	t.Logf("%d sign-ins at once: %v", guesses, n)
	if n[http.StatusUnauthorized] != 3 || n[http.StatusTooManyRequests] != guesses-3 {
		t.Errorf("answers %v; want 3 × 401 (checked) and %d × 429", n, guesses-3)
	}
	ts.waitMetric(t, `hotline_console_sign_ins_total{result="refused"}`, 3)
	// Banned: even the right password is refused now.
	if code := newConsoleClient(t, ts).signIn("ana", "ana-pw"); code != http.StatusTooManyRequests {
		t.Errorf("the right password after the ban: %d, want 429", code)
	}
}
