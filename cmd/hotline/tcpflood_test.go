package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Attacks on the server's resources from outside (issue 14, parts 2 and 4), against the real
// binary in a process of its own, so that its file-descriptor limit and its memory are its own.

// lookPrlimit returns the path of prlimit (util-linux), or skips the test.
func lookPrlimit(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit (util-linux) not installed")
	}
	return p
}

// startLimitedBinary writes cfg (with RECORDS_PATH, PORT_MIN and PORT_MAX filled in, the
// port range ports wide) into a temporary directory and runs bin serve on it there, under
// prlimit --nofile=nofile when nofile > 0.
func startLimitedBinary(t *testing.T, bin, cfg string, ports int, nofile int) *sippServer {
	t.Helper()
	dir := t.TempDir()
	lo, _ := rtpRange(t, ports)
	cfg = strings.NewReplacer("RECORDS_PATH", filepath.Join(dir, "records.db"),
		"PORT_MIN", strconv.Itoa(lo), "PORT_MAX", strconv.Itoa(lo+ports-1)).Replace(cfg)
	path := filepath.Join(dir, "hotline.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{bin, "serve", "-config", path, "-log-format", "json"}
	if nofile > 0 {
		args = append([]string{lookPrlimit(t), fmt.Sprintf("--nofile=%d", nofile), "--"}, args...)
	}
	return startCommand(t, exec.Command(args[0], args[1:]...), dir)
}

// scrapeAt returns the /metrics text of the server whose HTTP address is addr; it waits
// for up to timeout (a server out of descriptors accepts the scrape late).
func scrapeAt(t *testing.T, addr string, timeout time.Duration) string {
	t.Helper()
	c := http.Client{Timeout: timeout}
	res, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitScrape scrapes until ok accepts the text, or fails after timeout.
func waitScrape(t *testing.T, srv *sippServer, timeout time.Duration, what string, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var text string
	for time.Now().Before(deadline) {
		text = scrapeAt(t, srv.http, timeout)
		if ok(text) {
			return text
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not seen within %v:\n%s", what, timeout, grepLines(text, "hotline_sip_conn")+"\n"+grepLines(text, "accept_errors"))
	return ""
}

func metricOr0(text, series string) float64 { return max(metricValue(text, series), 0) }

// idleConns opens n TCP connections to addr from local address ip and sends nothing on them.
func idleConns(t *testing.T, ip, addr string, n int) []net.Conn {
	t.Helper()
	var cs []net.Conn
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	for range n {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial from %s: %v", ip, err)
		}
		cs = append(cs, c)
	}
	t.Cleanup(func() {
		for _, c := range cs {
			c.Close()
		}
	})
	return cs
}

// alive fails the test if the server process has exited.
func alive(t *testing.T, srv *sippServer) {
	t.Helper()
	select {
	case <-srv.done:
		t.Fatalf("the server exited: %v", srv.err)
	default:
	}
}

// callGetsThrough places a UDP call from ip and checks the caller hears the greeting.
func callGetsThrough(t *testing.T, ip net.IP, sipAddr string) {
	t.Helper()
	u := newUACAt(t, ip, sipAddr)
	stream := u.receiveRTP()
	_, media := answer(t, u.dial("0 101"))
	var seq uint16 = 1
	var ts uint32 = 1000
	u.sendSilence(media, 3, &seq, &ts)
	stream.waitFor(t, "the greeting", mustPrompt(t, "en", "greeting").PCMU[:1600], 10*time.Second)
	u.hangup()
}

const fdTestConfig = `
sip:
  listen: 127.0.0.1:0
  ack_timeout: 2s
http:
  listen: 127.0.0.1:0
media:
  bind_address: 127.0.0.1
  port_min: PORT_MIN
  port_max: PORT_MAX
lines:
  - number: "18883737888"
    name: main
records:
  path: RECORDS_PATH
`

// 300 idle TCP connections from ten addresses against a server allowed 256 descriptors
// (issue 14: about 1,000 under --nofile=1024 made accept fail with EMFILE and the whole
// process exit, "sip: listener stopped: accept4: too many open files"). The cap derived from
// the limit (256 - 10 RTP ports - 128 = 118) and the per-source cap refuse the rest at once,
// counted in a real scrape; the server stays up and a caller over UDP gets through.
func TestIdleTCPConnectionsUnderLowFDLimit(t *testing.T) {
	t.Parallel() // a few hundred idle connections, then waits
	bin := buildBinary(t)
	const (
		ports, nofile, perSource = 20, 256, 16
		sources, each            = 10, 30
	)
	cfg := fdTestConfig + fmt.Sprintf("security:\n  max_connections_per_source: %d\n  first_request_timeout: 1m\n", perSource)
	srv := startLimitedBinary(t, bin, cfg, ports, nofile)
	wantCap := nofile - ports/2 - 128 // RTP uses the even ports of the range
	if !srv.logged(func(r map[string]any) bool {
		return r["msg"] == "hotline listening" && r["max_connections"] == float64(wantCap)
	}) {
		t.Fatalf("max_connections not derived as %d from the limit:\n%s", wantCap, srv.stderr.String())
	}

	for i := range sources {
		idleConns(t, fmt.Sprintf("127.0.0.%d", 20+i), srv.sip, each)
	}
	text := waitScrape(t, srv, 20*time.Second, "every connection over the caps refused", func(text string) bool {
		refused := metricOr0(text, `hotline_sip_connections_refused_total{reason="per_source",transport="tcp"}`) +
			metricOr0(text, `hotline_sip_connections_refused_total{reason="total",transport="tcp"}`)
		return refused == float64(sources*each-wantCap)
	})
	if open := metricValue(text, `hotline_sip_connections_open{transport="tcp"}`); open != float64(wantCap) {
		t.Errorf("%v connections open, want the cap, %d", open, wantCap)
	}
	if n := metricOr0(text, `hotline_sip_accept_errors_total{transport="tcp"}`); n != 0 {
		t.Errorf("%v accept errors: the cap should keep the server within its descriptors", n)
	}
	t.Logf("%d idle connections from %d addresses under --nofile=%d: %v open, refused %v per source and %v over the total",
		sources*each, sources, nofile, metricValue(text, `hotline_sip_connections_open{transport="tcp"}`),
		metricValue(text, `hotline_sip_connections_refused_total{reason="per_source",transport="tcp"}`),
		metricValue(text, `hotline_sip_connections_refused_total{reason="total",transport="tcp"}`))

	// While the connections are held, a caller gets through, and the server is up.
	callGetsThrough(t, net.IPv4(127, 0, 0, 3), srv.sip)
	alive(t, srv)
}

// The same flood against a cap set higher than the descriptors allow: accept fails with
// EMFILE, and the listener backs off and retries instead of stopping the server. Connections
// that send no request are closed after first_request_timeout, which frees descriptors, and a
// caller gets through again.
func TestAcceptErrorsDoNotStopTheServer(t *testing.T) {
	t.Parallel() // a few hundred idle connections, then waits
	bin := buildBinary(t)
	const (
		ports, nofile     = 20, 256
		sources, each     = 5, 60
		firstRequestAfter = 2 * time.Second
	)
	cfg := fdTestConfig + fmt.Sprintf("security:\n  max_connections: 1000\n  max_connections_per_source: 100\n  first_request_timeout: %v\n", firstRequestAfter)
	srv := startLimitedBinary(t, bin, cfg, ports, nofile)
	if !srv.logged(func(r map[string]any) bool {
		return r["msg"] != nil && r["level"] == "WARN" && r["max_connections"] == float64(1000)
	}) {
		t.Errorf("no warning that the open-file limit is too low for max_connections:\n%s", srv.stderr.String())
	}
	start := time.Now()
	for i := range sources {
		idleConns(t, fmt.Sprintf("127.0.0.%d", 30+i), srv.sip, each)
	}
	text := waitScrape(t, srv, 30*time.Second, "accept errors counted and idle connections closed", func(text string) bool {
		return metricOr0(text, `hotline_sip_accept_errors_total{transport="tcp"}`) > 0 &&
			metricOr0(text, `hotline_sip_connections_closed_total{reason="first_request_timeout",transport="tcp"}`) > 0
	})
	alive(t, srv)
	if !srv.logged(func(r map[string]any) bool { return r["msg"] == "sip accept failed; retrying" }) {
		t.Error("the accept errors were not logged")
	}
	t.Logf("%d idle connections under --nofile=%d with max_connections 1000: %v accept errors, %v closed without a request after %v; up after %v",
		sources*each, nofile, metricValue(text, `hotline_sip_accept_errors_total{transport="tcp"}`),
		metricValue(text, `hotline_sip_connections_closed_total{reason="first_request_timeout",transport="tcp"}`),
		firstRequestAfter, time.Since(start).Round(time.Millisecond))
	// Every idle connection is closed in time, the backlog included; then a caller gets through.
	waitScrape(t, srv, 30*time.Second, "every idle connection closed", func(text string) bool {
		return metricOr0(text, `hotline_sip_connections_closed_total{reason="first_request_timeout",transport="tcp"}`) == sources*each
	})
	callGetsThrough(t, net.IPv4(127, 0, 0, 3), srv.sip)
	alive(t, srv)
}
