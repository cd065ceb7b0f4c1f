package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"github.com/hotline-project/hotline/internal/sipagent"
)

// testServer is the real hotline server, run in-process on loopback ports chosen at run time.
type testServer struct {
	addrs    Addrs
	logs     *syncBuffer
	cancel   context.CancelFunc
	done     chan int
	stopOnce sync.Once
	path     string // the configuration file
	cfg      string // its text, with the run-time port range filled in
}

// rewrite replaces the configuration file's text (for reload tests); PORT_MIN and
// PORT_MAX are not filled in again, so keep the media section of ts.cfg.
func (ts *testServer) rewrite(t *testing.T, cfg string) {
	t.Helper()
	if err := os.WriteFile(ts.path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testConfig is the embedded default with overrides suited to tests.
const testConfig = `
sip:
  listen: 127.0.0.1:0
  ack_timeout: 2s
http:
  listen: 127.0.0.1:0
media:
  bind_address: 127.0.0.1
  port_min: PORT_MIN
  port_max: PORT_MAX
  inactivity_timeout: 30s
ivr:
  first_digit_timeout: 3s
lines:
  - number: "18883737888"
    name: main
records:
  path: RECORDS_PATH
`

// rtpRange picks an RTP port range of width ports at run time: it starts at a port the kernel
// just handed out as free, so tests do not depend on a fixed range being unused.
func rtpRange(t *testing.T, width int) (int, int) {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := c.LocalAddr().(*net.UDPAddr).Port &^ 1
	c.Close()
	if p < 1024 {
		p = 1024
	}
	if p+width > 65534 {
		p = 65534 - width
	}
	return p, p + width
}

func startServer(t *testing.T, cfg string, extraArgs ...string) *testServer {
	t.Helper()
	return startServerLogging(t, cfg, "debug", extraArgs...)
}

// startServerLogging starts the server logging at level (debug, info, warn or error).
func startServerLogging(t *testing.T, cfg, level string, extraArgs ...string) *testServer {
	t.Helper()
	if strings.Contains(cfg, "RECORDS_PATH") {
		cfg = strings.ReplaceAll(cfg, "RECORDS_PATH", filepath.Join(t.TempDir(), "records.db"))
	}
	if !strings.Contains(cfg, "\nstate:") {
		// Each server its own state (the default is next to the records, or in the
		// working directory with none).
		cfg = strings.TrimRight(cfg, "\n") + "\nstate:\n  dir: " + filepath.Join(t.TempDir(), "state") + "\n"
	}
	cfg = quietOverload(cfg)
	if strings.Contains(cfg, "PORT_MIN") {
		lo, hi := rtpRange(t, 400)
		cfg = strings.NewReplacer("PORT_MIN", strconv.Itoa(lo), "PORT_MAX", strconv.Itoa(hi)).Replace(cfg)
	}
	path := filepath.Join(t.TempDir(), "hotline.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{logs: &syncBuffer{}, cancel: cancel, done: make(chan int, 1), path: path, cfg: cfg}
	ready := make(chan Addrs, 1)
	go func() {
		args := append([]string{"serve", "-config", path, "-log-level", level}, extraArgs...)
		ts.done <- run(ctx, args, io.Discard, ts.logs, func(a Addrs) { ready <- a })
	}()
	select {
	case ts.addrs = <-ready:
	case code := <-ts.done:
		t.Fatalf("server exited with %d before it was ready:\n%s", code, ts.logs.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("server not ready:\n%s", ts.logs.String())
	}
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

// stop stops the server and checks it exits cleanly; it is safe to call twice.
func (ts *testServer) stop(t *testing.T) {
	t.Helper()
	ts.cancel()
	ts.stopOnce.Do(func() {
		select {
		case code := <-ts.done:
			if code != 0 {
				t.Errorf("server exit code %d", code)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("server did not stop")
		}
		if t.Failed() {
			t.Logf("server log:\n%s", ts.logs.String())
		}
	})
}

// scrape returns the server's /metrics text.
func (ts *testServer) scrape(t *testing.T) string {
	t.Helper()
	res, err := http.Get("http://" + ts.addrs.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// metricValue returns the value of the sample whose line starts with series, or -1.
func metricValue(text, series string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, series+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(line[len(series):]), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// waitMetric polls /metrics until series has value want.
func (ts *testServer) waitMetric(t *testing.T, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var text string
	for time.Now().Before(deadline) {
		text = ts.scrape(t)
		if metricValue(text, series) == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("metric %s = %v, want %v", series, metricValue(text, series), want)
}

// uac is the test caller, sipagent.Caller, under the names this package's tests have long
// used: the dialog's state is in the fields below, which tests read and set, and each
// method hands them to the agent and takes them back. A uac may also be built as a
// literal over another agent's sockets (t, conn, server, rtp, msgs and the dialog).
type uac struct {
	t *testing.T
	a *sipagent.Caller

	conn    *net.UDPConn
	server  *net.UDPAddr
	rtp     *net.UDPConn
	msgs    chan sipmsg.Message
	stream  net.Conn // a TCP or TLS connection it speaks over instead of conn
	callID  string
	fromTag string
	toTag   string
	cseq    int
	branch  string
	viaPort int // written in Via: over UDP not the socket's, so responses must go to the source
	from    string
	// transport is the Via transport over a stream ("TLS"), scheme the Request-URI's ("sips").
	transport string
	scheme    string
}

// wrapCaller is the uac of agent a.
func wrapCaller(t *testing.T, a *sipagent.Caller) *uac {
	u := &uac{t: t, a: a}
	u.pull()
	return u
}

// agent hands the fields to the agent (made over the uac's sockets for a literal).
func (u *uac) agent() *sipagent.Caller {
	if u.a == nil {
		u.a = sipagent.NewDialog(u.t, u.conn, u.server, u.rtp, u.msgs, u.from)
	}
	a := u.a
	copyField(&a.Conn, u.conn)
	copyField(&a.Server, u.server)
	copyField(&a.RTP, u.rtp)
	copyField(&a.Msgs, u.msgs)
	copyField(&a.Stream, u.stream)
	copyField(&a.CallID, u.callID)
	copyField(&a.FromTag, u.fromTag)
	copyField(&a.ToTag, u.toTag)
	copyField(&a.CSeq, u.cseq)
	copyField(&a.Branch, u.branch)
	copyField(&a.ViaPort, u.viaPort)
	copyField(&a.From, u.from)
	copyField(&a.Transport, u.transport)
	copyField(&a.Scheme, u.scheme)
	return a
}

// pull takes the dialog's state back from the agent.
func (u *uac) pull() {
	a := u.a
	copyField(&u.conn, a.Conn)
	copyField(&u.server, a.Server)
	copyField(&u.rtp, a.RTP)
	copyField(&u.msgs, a.Msgs)
	copyField(&u.stream, a.Stream)
	copyField(&u.callID, a.CallID)
	copyField(&u.fromTag, a.FromTag)
	copyField(&u.toTag, a.ToTag)
	copyField(&u.cseq, a.CSeq)
	copyField(&u.branch, a.Branch)
	copyField(&u.viaPort, a.ViaPort)
	copyField(&u.from, a.From)
	copyField(&u.transport, a.Transport)
	copyField(&u.scheme, a.Scheme)
}

// copyField sets *dst to v only if it differs, so that goroutines of the test that read a
// field (a reader of msgs) meet no write when nothing changed.
func copyField[T comparable](dst *T, v T) {
	if *dst != v {
		*dst = v
	}
}

// readLoop reads what arrives on the uac's stream or SIP socket into msgs, for a uac built
// as a literal.
func (u *uac) readLoop() {
	if u.stream != nil {
		sipagent.ReadStream(u.stream, u.msgs)
		return
	}
	sipagent.ReadUDP(u.conn, u.msgs)
}

func newUAC(t *testing.T, server string) *uac {
	t.Helper()
	return wrapCaller(t, sipagent.NewCaller(t, server))
}

// newUACAt is newUAC with its SIP socket on local address ip (any of 127.0.0.0/8), so that
// tests can place callers at different source addresses. Its media stays on 127.0.0.1.
func newUACAt(t *testing.T, ip net.IP, server string) *uac {
	t.Helper()
	return wrapCaller(t, sipagent.NewCallerAt(t, ip, server))
}

// randomNumber is a North American number in 555, different for each caller.
func randomNumber() string { return sipagent.RandomNumber() }

func randHex(n int) string { return sipagent.RandHex(n) }

func (u *uac) send(msg string) {
	u.t.Helper()
	u.agent().Send(msg)
}

func (u *uac) rtpPort() int { return u.rtp.LocalAddr().(*net.UDPAddr).Port }

func sdpOffer(port int, fmts string, extra string) string { return sipagent.Offer(port, fmts, extra) }

// request builds a request in this UAC's dialog.
func (u *uac) request(method, user, body, ctype string, extraHdrs ...string) string {
	defer u.pull()
	return u.agent().Request(method, user, body, ctype, extraHdrs...)
}

// invite sends an INVITE with the given SDP body ("" for none) to user.
func (u *uac) invite(user, body string) string {
	u.t.Helper()
	defer u.pull()
	return u.agent().Invite(user, body)
}

// dial places a call to the hotline offering fmts and acknowledges the 200; it returns the 200.
func (u *uac) dial(fmts string) *sipmsg.Response {
	u.t.Helper()
	defer u.pull()
	return u.agent().Dial(hotlineNumber, fmts)
}

// hangup sends BYE and expects 200.
func (u *uac) hangup() {
	u.t.Helper()
	defer u.pull()
	u.agent().Hangup(hotlineNumber)
}

// ack acknowledges a 2xx (new branch, same CSeq number) with an optional SDP body.
func (u *uac) ack(user, body string) {
	u.t.Helper()
	defer u.pull()
	u.agent().Ack(user, body)
}

// nextRequest sends an in-dialog request with the next CSeq.
func (u *uac) nextRequest(method, user, body, ctype string, hdrs ...string) {
	u.t.Helper()
	defer u.pull()
	u.agent().NextRequest(method, user, body, ctype, hdrs...)
}

// expectResponse waits for a response with the given status for method (skipping others,
// such as retransmissions and provisional responses not asked for).
func (u *uac) expectResponse(method string, status int, timeout time.Duration) *sipmsg.Response {
	u.t.Helper()
	defer u.pull()
	return u.agent().ExpectResponse(method, status, timeout)
}

// finalResponse waits for the final response to method, whatever its status; a 2xx sets
// the dialog's to-tag.
func (u *uac) finalResponse(method string, timeout time.Duration) *sipmsg.Response {
	u.t.Helper()
	defer u.pull()
	return u.agent().FinalResponse(method, timeout)
}

// expectRequest waits for a request from the server (e.g. BYE) and answers it 200.
func (u *uac) expectRequest(method string, timeout time.Duration) *sipmsg.Request {
	u.t.Helper()
	defer u.pull()
	return u.agent().ExpectRequest(method, timeout)
}

// rtpStream is the RTP a test agent receives (sipagent.Recorder), under this package's
// older names; a literal with packets is a fixed recording.
type rtpStream struct {
	*sipagent.Recorder
	packets []recvPacket
}

// recvPacket is one packet received, and when.
type recvPacket struct {
	at  time.Time
	pkt rtp.Packet
}

// rec is the recorder, or one holding the literal's packets.
func (s *rtpStream) rec() *sipagent.Recorder {
	if s.Recorder != nil {
		return s.Recorder
	}
	ps := make([]sipagent.Packet, len(s.packets))
	for i, p := range s.packets {
		ps[i] = sipagent.Packet{At: p.at, Pkt: p.pkt}
	}
	return sipagent.RecorderOf(ps...)
}

func (u *uac) receiveRTP() *rtpStream { return &rtpStream{Recorder: sipagent.Record(u.rtp)} }

func (s *rtpStream) snapshot() []recvPacket {
	got := s.rec().Snapshot()
	out := make([]recvPacket, len(got))
	for i, p := range got {
		out[i] = recvPacket{p.At, p.Pkt}
	}
	return out
}

// payload returns the concatenated payload of all packets received so far.
func (s *rtpStream) payload() []byte { return s.rec().Payload() }

// waitFor waits until the caller has heard want (sipagent.Recorder.Heard), or fails.
func (s *rtpStream) waitFor(t *testing.T, what string, want []byte, timeout time.Duration) {
	t.Helper()
	s.rec().WaitFor(t, what, want, timeout)
}

// sendSilence sends n silence packets from the UAC's media socket (so the server latches
// onto it) in the stream whose next sequence number and timestamp are *seq and *ts. New
// tests keep a sipagent.Stream instead, which counts for itself.
func (u *uac) sendSilence(to *net.UDPAddr, n int, seq *uint16, ts *uint32) {
	s := sipagent.NewStreamAt(u.rtp, to, 0x1234, *seq, *ts)
	s.Silence(n)
	*seq, *ts = s.Next()
}

// sendDigit sends one RFC 4733 event the way phones do: start, updates, three end packets.
func (u *uac) sendDigit(to *net.UDPAddr, pt uint8, event byte, seq *uint16, ts *uint32) {
	sendDigitFrom(u.rtp, to, pt, event, seq, ts)
}

// sendDigitFrom sends an RFC 4733 event from conn.
func (u *uac) sendDigitFrom(conn *net.UDPConn, to *net.UDPAddr, pt uint8, event byte, seq *uint16, ts *uint32) {
	sendDigitFrom(conn, to, pt, event, seq, ts)
}

func sendDigitFrom(conn *net.UDPConn, to *net.UDPAddr, pt uint8, event byte, seq *uint16, ts *uint32) {
	s := sipagent.NewStreamAt(conn, to, 0x1234, *seq, *ts)
	s.Press(pt, event)
	*seq, *ts = s.Next()
}
