package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/hotline-project/hotline/internal/sipagent"
	"github.com/hotline-project/hotline/internal/testtool"
)

// Sources on loopback (all of 127.0.0.0/8 is local): the flooder or attacker, and the others.
var (
	attackerIP = net.IPv4(127, 0, 0, 2)
	goodIP     = net.IPv4(127, 0, 0, 3)
)

// flooder sends requests from one source as fast as it can and counts the answers
// (sipagent.Flooder under this package's older names).
type flooder struct {
	*sipagent.Flooder
	t *testing.T
}

func newFlooder(t *testing.T, ip net.IP, server string) *flooder {
	t.Helper()
	return &flooder{sipagent.NewFlooder(t, ip, server), t}
}

// send sends one out-of-dialog request with a fresh Call-ID and branch.
func (f *flooder) send(method, user string) {
	if !f.Send(method, user) {
		f.t.Errorf("sending %s failed", method)
	}
}

// count returns how many requests got a response with key ("METHOD status"); each
// request has its own Call-ID, so retransmitted responses count once.
func (f *flooder) count(key string) int { return f.Count(key) }

// readAllWithin waits until the sum of the samples of family in /metrics stops growing
// (unchanged over 300 ms) and returns how long after start it last grew. It may run on a
// goroutine other than the test's: it reports no errors (a failed scrape counts as no
// change).
func (ts *testServer) readAllWithin(start time.Time, family string) time.Duration {
	sum := func() float64 {
		var n float64
		res, err := http.Get("http://" + ts.addrs.HTTP + "/metrics")
		if err != nil {
			return -1
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, family+"{") || strings.HasPrefix(line, family+" ") {
				if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
					n += v
				}
			}
		}
		return n
	}
	last, grew := sum(), time.Since(start)
	for still := time.Now(); time.Since(still) < 300*time.Millisecond; {
		time.Sleep(50 * time.Millisecond)
		if n := sum(); n > last {
			last, grew, still = n, time.Since(start), time.Now()
		}
	}
	return grew
}

// A flood of INVITE, OPTIONS and REGISTER from one source is held to that source's rate,
// and its concurrent calls to their cap, while a caller at another address goes through
// the menu (issue 7). Not parallel: the flood's burst of CPU would disturb the pacing
// checks of the other calls' tests.
func TestFloodFromOneSourceSparesOtherCallers(t *testing.T) {
	testtool.Heavy(t) // 1,200 requests in a burst
	const (
		rate, burst, maxCalls = 20, 40, 3
		rounds                = 400 // of INVITE, OPTIONS and REGISTER each
	)
	cfg := testConfig + fmt.Sprintf("security:\n  request_rate: %d\n  request_burst: %d\n  max_calls_per_source: %d\n", rate, burst, maxCalls)
	ts := startServer(t, cfg)
	f := newFlooder(t, attackerIP, ts.addrs.SIPUDP)

	u := newUACAt(t, goodIP, ts.addrs.SIPUDP)
	stream := u.receiveRTP()
	flooding := make(chan time.Duration)
	go func() {
		start := time.Now()
		for i := range rounds {
			f.send("INVITE", hotlineNumber)
			f.send("OPTIONS", hotlineNumber)
			f.send("REGISTER", "maria")
			if i%50 == 49 {
				time.Sleep(10 * time.Millisecond) // let the kernel's socket buffer drain
			}
		}
		// The server's buckets refill while it reads, and a loaded machine reads the
		// flood later than it was sent: the window is until the server has read all it
		// will (its request count stands still), not until the last was sent.
		flooding <- ts.readAllWithin(start, "hotline_sip_requests_total")
	}()

	// The good caller, during the flood, hears the menu and chooses Spanish.
	res := u.dial("0 101")
	_, media := answer(t, res)
	// The greeting plays; the caller barges in with 2 and hears the Spanish reason menu.
	stream.waitFor(t, "the greeting", mustPrompt(t, "en", "greeting").PCMU[:8000], 30*time.Second)
	var seq uint16 = 1
	var rtpTS uint32 = 1000
	u.sendSilence(media, 3, &seq, &rtpTS)
	u.sendDigit(media, 101, 2, &seq, &rtpTS)
	stream.waitFor(t, "the Spanish reason menu", mustPrompt(t, "es", "reason_menu").PCMU[:8000], 30*time.Second)
	u.hangup()
	elapsed := <-flooding

	text := ts.scrape(t)
	limited := func(method, reason string) float64 {
		v := metricValue(text, fmt.Sprintf(`hotline_sip_rate_limited_total{method="%s",reason="%s"}`, method, reason))
		return max(v, 0)
	}
	received := 0.0
	for _, m := range []string{"INVITE", "OPTIONS", "REGISTER"} {
		received += max(metricValue(text, fmt.Sprintf(`hotline_sip_requests_total{method="%s"}`, m)), 0)
	}
	// The good caller's INVITE is among those received, and was let through.
	refused := limited("INVITE", "rate") + limited("OPTIONS", "rate") + limited("REGISTER", "rate")
	let := received - refused - 1
	// What the flooder's source was let through cannot exceed the bucket: its burst plus
	// the rate over the time the server took to read the flood (measured after the fact,
	// so a slow machine only loosens the bound).
	allowance := burst + rate*(elapsed.Seconds()+1)
	t.Logf("flood: %d requests in %v (%.0f/s) from one source; %.0f let through (allowance %.0f), %.0f refused for rate, %.0f INVITEs refused at the call cap; the other caller completed the menu",
		3*rounds, elapsed.Round(time.Millisecond), 3*rounds/elapsed.Seconds(), let, allowance, refused, limited("INVITE", "calls"))
	if let > allowance {
		t.Errorf("%.0f of the flood let through, want at most %.0f", let, allowance)
	}
	if limited("INVITE", "rate") == 0 || limited("OPTIONS", "rate") == 0 || limited("REGISTER", "rate") == 0 {
		t.Errorf("not every method was rate limited:\n%s", grepLines(text, "rate_limited"))
	}
	// Over the rate, INVITEs are answered 503 (busy at once, not silence); OPTIONS and
	// REGISTER are dropped.
	if n := f.count("INVITE 503"); n == 0 {
		t.Error("no 503 for the flood's INVITEs")
	}
	if n, ok := f.count("OPTIONS 200"), int(limited("OPTIONS", "rate")); n > rounds-ok {
		t.Errorf("%d OPTIONS answered, but %d of %d were refused", n, ok, rounds)
	}
	// At most maxCalls of the flood's INVITEs became calls at once.
	if got := f.count("INVITE 200"); got > maxCalls {
		t.Errorf("%d of the flood's INVITEs answered 200, want at most the cap of %d", got, maxCalls)
	}
	if limited("INVITE", "calls") == 0 {
		t.Error("the per-source call cap refused nothing")
	}
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Failed authentication bans the source, not the account: after auth_failures failures the
// attacker's requests go unanswered, while the advocate's own phone registers and a caller
// at the attacker's address still reaches the hotline (issue 7).
func TestAuthFailuresBanTheSource(t *testing.T) {
	t.Parallel()
	cfg := testConfig + "security:\n  auth_failures: 3\n" + advocateYAML(t, "maria:en:s3cret")
	ts := startServer(t, cfg)

	attacker := newPhoneAt(t, attackerIP, ts.addrs.SIPUDP, "maria", "wrong", 0, 440)
	ghost := newPhoneAt(t, attackerIP, ts.addrs.SIPUDP, "nobody", "wrong", 0, 440)
	// An unknown user and a known one with a wrong password get the same answers.
	a := attacker.doRegister(60, "guess1", 401)
	g := ghost.doRegister(60, "guess1", 401)
	if sa, sg := answerShape(a), answerShape(g); sa != sg {
		t.Errorf("a known and an unknown user are told apart:\n%s\n%s", sa, sg)
	}
	attacker.doRegister(60, "guess2", 401) // the third failure: banned

	// Banned: the next REGISTER (even with the right password) is dropped, as is OPTIONS.
	attacker.regCSeq++
	attacker.send(attacker.registerMsg(60, ""))
	expectSilence(t, attacker, 500*time.Millisecond)
	ts.waitMetric(t, "hotline_sip_bans_total", 1)
	ts.waitMetric(t, "hotline_sip_banned_sources", 1)
	ts.waitMetric(t, `hotline_sip_rate_limited_total{method="REGISTER",reason="banned"}`, 1)

	// The advocate's own phone, elsewhere, is not locked out.
	own := newPhoneAt(t, goodIP, ts.addrs.SIPUDP, "maria", "s3cret", 0, 440)
	own.register(60)
	ts.waitMetric(t, "hotline_sip_registrations", 1)

	// A caller at the banned address still gets through to the hotline.
	u := newUACAt(t, attackerIP, ts.addrs.SIPUDP)
	u.dial("0")
	u.hangup()
	if !strings.Contains(ts.logs.String(), "source banned after failed authentications") {
		t.Error("the ban was not logged")
	}
}

// answerShape is what a response tells a client, without its random values: the status and
// the header names, and the challenges' parameters apart from the nonce.
func answerShape(res *sipmsg.Response) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s\n", res.StatusCode, res.Reason)
	for _, h := range res.Headers() {
		v := h.Value()
		if h.Name() == "WWW-Authenticate" {
			var kept []string
			for _, p := range strings.Split(v, ",") {
				if !strings.Contains(p, "nonce=") {
					kept = append(kept, strings.TrimSpace(p))
				}
			}
			fmt.Fprintf(&b, "%s: %s\n", h.Name(), strings.Join(kept, ", "))
			continue
		}
		fmt.Fprintf(&b, "%s\n", h.Name())
	}
	return b.String()
}

// expectSilence checks that the phone gets no response for d.
func expectSilence(t *testing.T, p *phone, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-p.msgs:
			if res, ok := m.(*sipmsg.Response); ok {
				t.Fatalf("banned source got %d %s", res.StatusCode, res.Reason)
			}
		case <-deadline:
			return
		}
	}
}

// A brute-forcer's guesses sent together: every phone has its challenge first, then all
// answer it with a wrong password at once. No more passwords are checked than
// auth_failures (the checks in flight count against the limit, not only the failures
// already counted); the guesses not checked get the same 401, or no answer once the source
// is banned; the source is banned once.
func TestAuthGuessesAtOnceStayWithinTheLimit(t *testing.T) {
	t.Parallel()
	const limit, guesses = 3, 16
	// The guesses are judged by the ban, not the request rate (32 REGISTERs in all).
	cfg := testConfig + "security:\n  auth_failures: 3\n  request_burst: 200\n" + advocateYAML(t, "maria:en:s3cret")
	ts := startServer(t, cfg)
	phones := make([]*phone, guesses)
	creds := make([]string, guesses)
	for i := range phones {
		p := newPhoneAt(t, attackerIP, ts.addrs.SIPUDP, "maria", "wrong", 0, 440)
		p.regCSeq++
		p.send(p.registerMsg(60, ""))
		chal := p.expectResponse("REGISTER", 401, 2*time.Second)
		creds[i] = p.authorization(chal, "REGISTER", "sip:"+ts.addrs.SIPUDP, "guess"+strconv.Itoa(i))
		phones[i] = p
	}
	for i, p := range phones { // all at once
		p.regCSeq++
		p.send(p.registerMsg(60, creds[i]))
	}
	answered := 0
	for _, p := range phones {
		deadline := time.After(time.Second)
	wait:
		for {
			select {
			case m := <-p.msgs:
				if res, ok := m.(*sipmsg.Response); ok {
					if res.StatusCode != 401 {
						t.Fatalf("a wrong password got %d %s", res.StatusCode, res.Reason)
					}
					answered++
					break wait
				}
			case <-deadline:
				break wait // banned: dropped
			}
		}
	}
	ts.waitMetric(t, "hotline_sip_bans_total", 1)
	text := ts.scrape(t)
	checked := metricValue(text, `hotline_sip_auth_failures_total{reason="bad_credentials"}`)
	atLimit := metricValue(text, `hotline_sip_auth_failures_total{reason="at_limit"}`)
	t.Logf("%d guesses at once: %.0f checked, %.0f not (at the limit), %d dropped (banned)", guesses, checked, atLimit, guesses-answered)
	if checked != limit {
		t.Errorf("%.0f passwords checked, want %d (auth_failures)", checked, limit)
	}
	if float64(answered) != checked+atLimit {
		t.Errorf("%d guesses answered, want %.0f (checked) + %.0f (at the limit)", answered, checked, atLimit)
	}
}
