package sipagent

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
)

// Loopback is 127.0.0.1, where agents keep their media.
var Loopback = net.IPv4(127, 0, 0, 1)

// Caller is a SIP user agent client for tests: it sends hand-built messages (so a test can
// also send what a well-behaved stack would not) over UDP, or over a TCP or TLS connection,
// and reads what comes back through sipgo's parser. Its dialog state is in exported fields
// for tests that forge requests.
type Caller struct {
	tb testing.TB

	Conn   *net.UDPConn // the SIP socket (nil over a stream)
	Stream net.Conn     // the TCP or TLS connection, when the caller speaks over one
	Server *net.UDPAddr // where requests go
	RTP    *net.UDPConn // the media socket, on 127.0.0.1
	Msgs   chan sipmsg.Message

	// Transport is the Via transport over a stream ("TCP", "TLS"); Scheme the Request-URI's
	// ("sip", "sips").
	Transport, Scheme string

	CallID, FromTag, ToTag, Branch string
	CSeq                           int
	// ViaPort is the port written in Via (without rport): over UDP it differs from the
	// socket's, so that a response only arrives if the server answers to the source.
	ViaPort int
	From    string // the user part of From and Contact: the caller's number
}

// NewCaller is a caller over UDP from 127.0.0.1 to server (host:port).
func NewCaller(tb testing.TB, server string) *Caller {
	tb.Helper()
	return NewCallerAt(tb, Loopback, server)
}

// NewCallerAt is NewCaller with its SIP socket on ip (any of 127.0.0.0/8), so that tests can
// place callers at different source addresses. Its media stays on 127.0.0.1.
func NewCallerAt(tb testing.TB, ip net.IP, server string) *Caller {
	tb.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	c := newCaller(tb, server)
	c.Conn, c.ViaPort, c.From = conn, 5999, RandomNumber()
	go ReadUDP(conn, c.Msgs)
	return c
}

// NewTLSCaller is a caller speaking SIP over TLS to server, trusting roots, with sips: URIs.
func NewTLSCaller(tb testing.TB, server string, roots *x509.CertPool) *Caller {
	tb.Helper()
	conn, err := tls.Dial("tcp", server, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
	if err != nil {
		tb.Fatal(err)
	}
	return NewStreamCaller(tb, server, conn, "TLS", "sips")
}

// NewTCPCaller is a caller speaking SIP over TCP to server.
func NewTCPCaller(tb testing.TB, server string) *Caller {
	tb.Helper()
	conn, err := net.Dial("tcp", server)
	if err != nil {
		tb.Fatal(err)
	}
	return NewStreamCaller(tb, server, conn, "TCP", "sip")
}

// NewStreamCaller is a caller over an open stream connection conn to server, with Via
// transport transport and Request-URI scheme scheme. It closes conn at the test's end.
func NewStreamCaller(tb testing.TB, server string, conn net.Conn, transport, scheme string) *Caller {
	tb.Helper()
	tb.Cleanup(func() { conn.Close() })
	c := newCaller(tb, server)
	c.Stream, c.Transport, c.Scheme = conn, transport, scheme
	c.ViaPort = conn.LocalAddr().(*net.TCPAddr).Port
	c.From = "+15551234567"
	go ReadStream(conn, c.Msgs)
	return c
}

// newCaller is a caller to server with its media socket and a fresh dialog; the caller
// sets the SIP transport.
func newCaller(tb testing.TB, server string) *Caller {
	tb.Helper()
	saddr, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		tb.Fatal(err)
	}
	rtpConn, err := net.ListenUDP("udp", &net.UDPAddr{IP: Loopback})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { rtpConn.Close() })
	return &Caller{tb: tb, Server: saddr, RTP: rtpConn, Msgs: make(chan sipmsg.Message, 64),
		CallID: RandHex(8) + "@test", FromTag: RandHex(4), CSeq: 1}
}

// NewDialog is a caller in a new dialog over another agent's sockets (a phone dialling a
// feature code): same SIP and media sockets and message channel, user from. Its Via names
// the socket's real port.
func NewDialog(tb testing.TB, conn *net.UDPConn, server *net.UDPAddr, rtpConn *net.UDPConn, msgs chan sipmsg.Message, from string) *Caller {
	return &Caller{tb: tb, Conn: conn, Server: server, RTP: rtpConn, Msgs: msgs,
		CallID: RandHex(8) + "@phone", FromTag: RandHex(4), CSeq: 1,
		ViaPort: conn.LocalAddr().(*net.UDPAddr).Port, From: from}
}

// TB returns the test the caller reports to.
func (c *Caller) TB() testing.TB { return c.tb }

// RandomNumber is a North American number in 555, different for each caller.
func RandomNumber() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("+1555%07d", binary.BigEndian.Uint32(b[:])%10000000)
}

// RandHex returns n random bytes in hex.
func RandHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ReadStream parses the SIP messages arriving on a TCP or TLS connection into msgs until
// the connection closes, then closes msgs.
func ReadStream(conn net.Conn, msgs chan<- sipmsg.Message) {
	defer close(msgs)
	buf := make([]byte, 65535)
	par := sipmsg.NewParser().NewSIPStream()
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		_ = par.ParseSIPStream(append([]byte(nil), buf[:n]...), func(m sipmsg.Message) { msgs <- m })
	}
}

// ReadUDP parses the SIP messages arriving on conn into msgs (dropping what does not parse)
// until conn is closed, then closes msgs.
func ReadUDP(conn *net.UDPConn, msgs chan<- sipmsg.Message) {
	defer close(msgs)
	buf := make([]byte, 65535)
	for {
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if m, err := sipmsg.ParseMessage(append([]byte(nil), buf[:n]...)); err == nil {
			msgs <- m
		}
	}
}

// Send sends msg as it is.
func (c *Caller) Send(msg string) {
	c.tb.Helper()
	var err error
	if c.Stream != nil {
		_, err = c.Stream.Write([]byte(msg))
	} else {
		_, err = c.Conn.WriteToUDP([]byte(msg), c.Server)
	}
	if err != nil {
		c.tb.Fatal(err)
	}
}

// RTPPort returns the media socket's port.
func (c *Caller) RTPPort() int { return c.RTP.LocalAddr().(*net.UDPAddr).Port }

// Request builds a request in the caller's dialog to user, with body of content type ctype
// (none if body is empty) and the extra header lines given. A request other than ACK and
// CANCEL gets a new branch.
func (c *Caller) Request(method, user, body, ctype string, extraHdrs ...string) string {
	if method != "ACK" && method != "CANCEL" {
		c.Branch = "z9hG4bK" + RandHex(6)
	}
	to := "<sip:" + user + "@" + c.Server.String() + ">"
	if c.ToTag != "" {
		to += ";tag=" + c.ToTag
	}
	var b strings.Builder
	scheme, transport, contact := c.Scheme, c.Transport, ""
	if c.Stream != nil {
		contact = fmt.Sprintf("<%s:%s@%s;transport=%s>", scheme, c.From, c.Stream.LocalAddr(), strings.ToLower(transport))
	} else {
		scheme, transport = "sip", "UDP"
		contact = fmt.Sprintf("<sip:%s@127.0.0.1:%d>", c.From, c.Conn.LocalAddr().(*net.UDPAddr).Port)
	}
	fmt.Fprintf(&b, "%s %s:%s@%s SIP/2.0\r\n", method, scheme, user, c.Server.String())
	fmt.Fprintf(&b, "Via: SIP/2.0/%s 127.0.0.1:%d;branch=%s\r\n", transport, c.ViaPort, c.Branch)
	b.WriteString("Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: <sip:%s@127.0.0.1>;tag=%s\r\n", c.From, c.FromTag)
	fmt.Fprintf(&b, "To: %s\r\n", to)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", c.CallID)
	fmt.Fprintf(&b, "CSeq: %d %s\r\n", c.CSeq, method)
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

// Invite sends an INVITE to user with SDP body ("" for none) and returns what it sent.
func (c *Caller) Invite(user, body string, extraHdrs ...string) string {
	c.tb.Helper()
	msg := c.Request("INVITE", user, body, "application/sdp", extraHdrs...)
	c.Send(msg)
	return msg
}

// Dial calls user offering payload types fmts from the caller's media socket, waits for
// the 200 and acknowledges it; it returns the 200.
func (c *Caller) Dial(user, fmts string) *sipmsg.Response {
	c.tb.Helper()
	c.Invite(user, Offer(c.RTPPort(), fmts, ""))
	res := c.ExpectResponse("INVITE", 200, 2*time.Second)
	c.Ack(user, "")
	return res
}

// Hangup sends BYE to user in the dialog and expects 200.
func (c *Caller) Hangup(user string) {
	c.tb.Helper()
	c.NextRequest("BYE", user, "", "")
	c.ExpectResponse("BYE", 200, 2*time.Second)
}

// Ack acknowledges a 2xx (new branch, same CSeq number) with an optional SDP body.
func (c *Caller) Ack(user, body string) {
	c.tb.Helper()
	c.Branch = "z9hG4bK" + RandHex(6)
	c.Send(c.Request("ACK", user, body, "application/sdp"))
}

// NextRequest sends an in-dialog request with the next CSeq.
func (c *Caller) NextRequest(method, user, body, ctype string, hdrs ...string) {
	c.tb.Helper()
	c.CSeq++
	c.Send(c.Request(method, user, body, ctype, hdrs...))
}

// next waits for the next message, failing the test after the deadline or when the
// connection closes; waiting names what is awaited.
func (c *Caller) next(deadline <-chan time.Time, timeout time.Duration, waiting string) sipmsg.Message {
	c.tb.Helper()
	select {
	case m, ok := <-c.Msgs:
		if !ok {
			c.tb.Fatalf("connection closed waiting for %s", waiting)
		}
		return m
	case <-deadline:
		c.tb.Fatalf("no %s within %v", waiting, timeout)
	}
	return nil
}

// ExpectResponse waits for a response with status to method, skipping others (such as
// retransmissions and provisional responses not asked for); another final status fails the
// test. A 2xx to INVITE sets the dialog's to-tag.
func (c *Caller) ExpectResponse(method string, status int, timeout time.Duration) *sipmsg.Response {
	c.tb.Helper()
	deadline := time.After(timeout)
	for {
		res, ok := c.next(deadline, timeout, fmt.Sprintf("%d for %s", status, method)).(*sipmsg.Response)
		if !ok || res.CSeq() == nil || string(res.CSeq().MethodName) != method {
			continue
		}
		if res.StatusCode == status {
			if status >= 200 && status < 300 && method == "INVITE" {
				if tag, ok := res.To().Params.Get("tag"); ok {
					c.ToTag = tag
				}
			}
			return res
		}
		if res.StatusCode >= 200 {
			c.tb.Fatalf("got %d %s for %s, want %d", res.StatusCode, res.Reason, method, status)
		}
	}
}

// FinalResponse waits for the final response to method, whatever its status; a to-tag in
// it becomes the dialog's.
func (c *Caller) FinalResponse(method string, timeout time.Duration) *sipmsg.Response {
	c.tb.Helper()
	deadline := time.After(timeout)
	for {
		res, ok := c.next(deadline, timeout, "final response to "+method).(*sipmsg.Response)
		if !ok || res.CSeq() == nil || string(res.CSeq().MethodName) != method || res.StatusCode < 200 {
			continue
		}
		if tag, ok := res.To().Params.Get("tag"); ok {
			c.ToTag = tag
		}
		return res
	}
}

// NextRequestFrom waits for a request with method from the server, skipping everything
// else, and returns it unanswered.
func (c *Caller) NextRequestFrom(method string, timeout time.Duration) *sipmsg.Request {
	c.tb.Helper()
	deadline := time.After(timeout)
	for {
		req, ok := c.next(deadline, timeout, method).(*sipmsg.Request)
		if ok && string(req.Method) == method {
			return req
		}
	}
}

// ExpectRequest waits for a request with method from the server (a BYE, say) and answers
// it 200.
func (c *Caller) ExpectRequest(method string, timeout time.Duration) *sipmsg.Request {
	c.tb.Helper()
	req := c.NextRequestFrom(method, timeout)
	c.Send(sipmsg.NewResponseFromRequest(req, 200, "OK", nil).String())
	return req
}

// Record starts recording the RTP that reaches the caller's media socket.
func (c *Caller) Record() *Recorder { return Record(c.RTP) }

// StreamTo is an RTP stream from the caller's media socket to to.
func (c *Caller) StreamTo(to *net.UDPAddr) *Stream { return NewStream(c.RTP, to, 0) }
