package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
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

// uac is a minimal SIP user agent client over UDP, written for tests: it sends hand-built
// messages so that tests can also send what a well-behaved stack would not.
type uac struct {
	t       *testing.T
	conn    *net.UDPConn
	server  *net.UDPAddr
	callID  string
	fromTag string
	toTag   string
	cseq    int
	branch  string
	rtp     *net.UDPConn
	// viaPort is the port written in Via; it differs from the socket's port to check that
	// responses go to the packet's source, never to Via.
	viaPort int
	msgs    chan sipmsg.Message
	from    string
	// stream, when set, is a TCP or TLS connection the UAC speaks over instead of conn;
	// transport is then the Via transport ("TLS") and scheme the Request-URI's ("sips").
	stream    net.Conn
	transport string
	scheme    string
}

func newUAC(t *testing.T, server string) *uac {
	t.Helper()
	return newUACAt(t, net.IPv4(127, 0, 0, 1), server)
}

// newUACAt is newUAC with its SIP socket on local address ip (any of 127.0.0.0/8), so that
// tests can place callers at different source addresses. Its media stays on 127.0.0.1.
func newUACAt(t *testing.T, ip net.IP, server string) *uac {
	t.Helper()
	saddr, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	rtpConn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	u := &uac{
		t: t, conn: conn, server: saddr, rtp: rtpConn,
		callID:  randHex(8) + "@test",
		fromTag: randHex(4),
		cseq:    1,
		viaPort: 5999,
		msgs:    make(chan sipmsg.Message, 64),
		from:    randomNumber(), // each phone its own caller (keeping one's place tells them apart)
	}
	go u.readLoop()
	t.Cleanup(func() { conn.Close(); rtpConn.Close() })
	return u
}

// randomNumber is a North American number in 555, different for each caller.
func randomNumber() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("+1555%07d", binary.BigEndian.Uint32(b[:])%10000000)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (u *uac) readLoop() {
	buf := make([]byte, 65535)
	if u.stream != nil {
		par := sipmsg.NewParser().NewSIPStream()
		for {
			n, err := u.stream.Read(buf)
			if err != nil {
				close(u.msgs)
				return
			}
			_ = par.ParseSIPStream(append([]byte(nil), buf[:n]...), func(m sipmsg.Message) { u.msgs <- m })
		}
	}
	for {
		n, _, err := u.conn.ReadFromUDP(buf)
		if err != nil {
			close(u.msgs)
			return
		}
		m, err := sipmsg.ParseMessage(append([]byte(nil), buf[:n]...))
		if err != nil {
			continue
		}
		u.msgs <- m
	}
}

func (u *uac) send(msg string) {
	u.t.Helper()
	if u.stream != nil {
		if _, err := u.stream.Write([]byte(msg)); err != nil {
			u.t.Fatal(err)
		}
		return
	}
	if _, err := u.conn.WriteToUDP([]byte(msg), u.server); err != nil {
		u.t.Fatal(err)
	}
}

func (u *uac) rtpPort() int { return u.rtp.LocalAddr().(*net.UDPAddr).Port }

func sdpOffer(port int, fmts string, extra string) string {
	s := "v=0\r\no=test 1 1 IN IP4 127.0.0.1\r\ns=test\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio " + strconv.Itoa(port) + " RTP/AVP " + fmts + "\r\n"
	for _, f := range strings.Fields(fmts) {
		switch f {
		case "0":
			s += "a=rtpmap:0 PCMU/8000\r\n"
		case "8":
			s += "a=rtpmap:8 PCMA/8000\r\n"
		case "18":
			s += "a=rtpmap:18 G729/8000\r\n"
		case "101":
			s += "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
		}
	}
	return s + extra
}

// request builds a request in this UAC's dialog.
func (u *uac) request(method, user, body, ctype string, extraHdrs ...string) string {
	if method != "ACK" && method != "CANCEL" {
		u.branch = "z9hG4bK" + randHex(6)
	}
	to := "<sip:" + user + "@" + u.server.String() + ">"
	if u.toTag != "" {
		to += ";tag=" + u.toTag
	}
	cseq := u.cseq
	var b strings.Builder
	scheme, transport, contact := u.scheme, u.transport, ""
	if u.stream != nil {
		contact = fmt.Sprintf("<%s:%s@%s;transport=%s>", scheme, u.from, u.stream.LocalAddr(), strings.ToLower(transport))
	} else {
		scheme, transport = "sip", "UDP"
		contact = fmt.Sprintf("<sip:%s@127.0.0.1:%d>", u.from, u.conn.LocalAddr().(*net.UDPAddr).Port)
	}
	fmt.Fprintf(&b, "%s %s:%s@%s SIP/2.0\r\n", method, scheme, user, u.server.String())
	fmt.Fprintf(&b, "Via: SIP/2.0/%s 127.0.0.1:%d;branch=%s\r\n", transport, u.viaPort, u.branch)
	b.WriteString("Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: <sip:%s@127.0.0.1>;tag=%s\r\n", u.from, u.fromTag)
	fmt.Fprintf(&b, "To: %s\r\n", to)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", u.callID)
	fmt.Fprintf(&b, "CSeq: %d %s\r\n", cseq, method)
	fmt.Fprintf(&b, "Contact: %s\r\n", contact)
	for _, h := range extraHdrs {
		b.WriteString(h + "\r\n")
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", ctype)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

// invite sends an INVITE with the given SDP body ("" for none) to user.
func (u *uac) invite(user, body string) string {
	msg := u.request("INVITE", user, body, "application/sdp")
	u.send(msg)
	return msg
}

// dial places a call to the hotline offering fmts and acknowledges the 200; it returns the 200.
func (u *uac) dial(fmts string) *sipmsg.Response {
	u.t.Helper()
	u.invite(hotlineNumber, sdpOffer(u.rtpPort(), fmts, ""))
	res := u.expectResponse("INVITE", 200, 2*time.Second)
	u.ack(hotlineNumber, "")
	return res
}

// hangup sends BYE and expects 200.
func (u *uac) hangup() {
	u.t.Helper()
	u.nextRequest("BYE", hotlineNumber, "", "")
	u.expectResponse("BYE", 200, 2*time.Second)
}

// ack acknowledges a 2xx (new branch, same CSeq number) with an optional SDP body.
func (u *uac) ack(user, body string) {
	u.branch = "z9hG4bK" + randHex(6)
	u.send(u.request("ACK", user, body, "application/sdp"))
}

// nextRequest sends an in-dialog request with the next CSeq.
func (u *uac) nextRequest(method, user, body, ctype string, hdrs ...string) {
	u.cseq++
	u.send(u.request(method, user, body, ctype, hdrs...))
}

// expectResponse waits for a response with the given status for method (skipping others,
// such as retransmissions and provisional responses not asked for).
func (u *uac) expectResponse(method string, status int, timeout time.Duration) *sipmsg.Response {
	u.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-u.msgs:
			if !ok {
				u.t.Fatalf("connection closed waiting for %d", status)
			}
			res, isRes := m.(*sipmsg.Response)
			if !isRes {
				continue
			}
			if res.CSeq() == nil || string(res.CSeq().MethodName) != method {
				continue
			}
			if res.StatusCode == status {
				if status >= 200 && status < 300 && method == "INVITE" {
					if tag, ok := res.To().Params.Get("tag"); ok {
						u.toTag = tag
					}
				}
				return res
			}
			if res.StatusCode >= 200 {
				u.t.Fatalf("got %d %s for %s, want %d", res.StatusCode, res.Reason, method, status)
			}
		case <-deadline:
			u.t.Fatalf("no %d for %s within %v", status, method, timeout)
			return nil
		}
	}
}

// finalResponse waits for the final response to method, whatever its status; a 2xx sets
// the dialog's to-tag.
func (u *uac) finalResponse(method string, timeout time.Duration) *sipmsg.Response {
	u.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-u.msgs:
			if !ok {
				u.t.Fatalf("connection closed waiting for the final response to %s", method)
			}
			res, isRes := m.(*sipmsg.Response)
			if !isRes || res.CSeq() == nil || string(res.CSeq().MethodName) != method || res.StatusCode < 200 {
				continue
			}
			if tag, ok := res.To().Params.Get("tag"); ok {
				u.toTag = tag
			}
			return res
		case <-deadline:
			u.t.Fatalf("no final response to %s within %v", method, timeout)
			return nil
		}
	}
}

// expectRequest waits for a request from the server (e.g. BYE) and answers it 200.
func (u *uac) expectRequest(method string, timeout time.Duration) *sipmsg.Request {
	u.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-u.msgs:
			if !ok {
				u.t.Fatalf("connection closed waiting for %s", method)
			}
			req, isReq := m.(*sipmsg.Request)
			if !isReq || string(req.Method) != method {
				continue
			}
			res := sipmsg.NewResponseFromRequest(req, 200, "OK", nil)
			u.send(res.String())
			return req
		case <-deadline:
			u.t.Fatalf("no %s within %v", method, timeout)
			return nil
		}
	}
}

// rtpStream collects RTP packets sent to the UAC's media socket.
type rtpStream struct {
	mu      sync.Mutex
	packets []recvPacket
	source  *net.UDPAddr
}

type recvPacket struct {
	at  time.Time
	pkt rtp.Packet
}

func (u *uac) receiveRTP() *rtpStream {
	s := &rtpStream{}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := u.rtp.ReadFromUDP(buf)
			if err != nil {
				return
			}
			var p rtp.Packet
			if err := p.Unmarshal(append([]byte(nil), buf[:n]...)); err != nil {
				continue
			}
			s.mu.Lock()
			s.packets = append(s.packets, recvPacket{time.Now(), p})
			s.source = from
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *rtpStream) snapshot() []recvPacket {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recvPacket(nil), s.packets...)
}

// payload returns the concatenated payload of all packets received so far.
func (s *rtpStream) payload() []byte {
	var b []byte
	for _, p := range s.snapshot() {
		b = append(b, p.pkt.Payload...)
	}
	return b
}

// waitFor polls until the received audio contains want, or fails.
func (s *rtpStream) waitFor(t *testing.T, what string, want []byte, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if bytes.Contains(s.payload(), want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("did not hear %s within %v (%d packets received)", what, timeout, len(s.snapshot()))
}

// sendRTP sends a few silence packets from the UAC's media socket so the server latches onto it.
func (u *uac) sendSilence(to *net.UDPAddr, n int, seq *uint16, ts *uint32) {
	for i := 0; i < n; i++ {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: *seq, Timestamp: *ts, SSRC: 0x1234},
			Payload: bytes.Repeat([]byte{0xFF}, 160)}
		b, _ := p.Marshal()
		u.rtp.WriteToUDP(b, to)
		*seq++
		*ts += 160
	}
}

// sendDigit sends one RFC 4733 event the way phones do: start, updates, three end packets.
func (u *uac) sendDigit(to *net.UDPAddr, pt uint8, event byte, seq *uint16, ts *uint32) {
	u.sendDigitFrom(u.rtp, to, pt, event, seq, ts)
}

// sendDigitFrom sends an RFC 4733 event from conn.
func (u *uac) sendDigitFrom(conn *net.UDPConn, to *net.UDPAddr, pt uint8, event byte, seq *uint16, ts *uint32) {
	start := *ts
	for i := 0; i < 6; i++ {
		end := i >= 3
		dur := uint16(160 * (i + 1))
		if end {
			dur = 160 * 3
		}
		flags := byte(10) // volume
		if end {
			flags |= 0x80
		}
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: *seq, Timestamp: start, SSRC: 0x1234, Marker: i == 0},
			Payload: []byte{event, flags, byte(dur >> 8), byte(dur)}}
		b, _ := p.Marshal()
		conn.WriteToUDP(b, to)
		*seq++
		time.Sleep(5 * time.Millisecond)
	}
	*ts += 160 * 4
}
