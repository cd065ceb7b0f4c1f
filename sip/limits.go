package sip

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
)

// This file puts a gate in front of sipgo's UDP and TCP transports: every datagram, and every
// message framed from a TCP stream, goes through checkMessage before sipgo parses it. Wrapping
// the net.PacketConn and net.Listener given to sipgo is the least invasive hook that sees every
// message: sipgo v1.7.3 has no way to see a message between parsing and the transaction layer,
// and its TransportReadFilter sees TCP reads, not messages, and has no connection to answer on.
//
// TCP needs more than checks. sipgo's stream parser waits for as long as a peer keeps the
// connection open and has no deadline by default, so a peer that sends a message a byte at a
// time, or connects and sends nothing, holds a goroutine and a buffer for ever. The gate frames
// messages itself (Content-Length is mandatory on streams, RFC 3261 18.3), bounds each message
// in size and in the time it may take to arrive, and closes idle connections.

// Limits bound what one peer can make the server hold. Zero fields take the defaults.
type Limits struct {
	// MaxMessageBytes is the largest SIP message accepted (default 65535). Over UDP, sipgo's
	// 32 KiB read buffer lowers it further.
	MaxMessageBytes int
	// TCPMessageTimeout is how long a message may take to arrive on TCP, from its first byte
	// (or from the connection being accepted) to its last; a slower sender is disconnected.
	// Default 32 s (64*T1, the life of a transaction).
	TCPMessageTimeout time.Duration
	// TCPIdleTimeout closes a TCP connection that has been silent between messages this long.
	// Default 2 h: long enough that a call's in-dialog requests (BYE) still find the caller's
	// connection open, as phones behind NAT cannot be reached any other way.
	TCPIdleTimeout time.Duration
	// TLSHandshakeTimeout is how long a TLS client has to complete its handshake after
	// connecting; a slower one is disconnected. Default 10 s.
	TLSHandshakeTimeout time.Duration
}

// DefaultLimits are the limits used for zero fields of Limits.
var DefaultLimits = Limits{
	MaxMessageBytes:   65535,
	TCPMessageTimeout: 64 * sipmsg.T1,
	TCPIdleTimeout:    2 * time.Hour,

	TLSHandshakeTimeout: 10 * time.Second,
}

func (l Limits) withDefaults() Limits {
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = DefaultLimits.MaxMessageBytes
	}
	if l.TCPMessageTimeout <= 0 {
		l.TCPMessageTimeout = DefaultLimits.TCPMessageTimeout
	}
	if l.TCPIdleTimeout <= 0 {
		l.TCPIdleTimeout = DefaultLimits.TCPIdleTimeout
	}
	if l.TLSHandshakeTimeout <= 0 {
		l.TLSHandshakeTimeout = DefaultLimits.TLSHandshakeTimeout
	}
	return l
}

func init() {
	// sipgo refuses to send any UDP message larger than UDPMTUSize-200 bytes (1300). A response
	// goes back over the transport its request came on (RFC 3261 18.2.2), and a request with
	// 31 Via values (RFC 4475 3.1.1.7) has a response bigger than that: refusing to send it leaves
	// the caller retransmitting into silence. Let the IP layer fragment instead, up to the
	// largest UDP payload. Set once here, before any transport runs, as sipgo reads it unlocked.
	sipmsg.UDPMTUSize = 65507 + 200
}

// gate checks received messages; it is shared by the UDP and TCP wrappers of one Server.
type gate struct {
	parser   *sipmsg.Parser
	limits   Limits
	log      *slog.Logger
	observer Observer
	now      func() time.Time
	// shed, if set, answers a UDP datagram that passed the checks itself: overload control's
	// early 503 (overload.go); nil passes it on.
	shed func(b []byte) []byte
}

// check runs checkMessage and records the outcome.
func (g *gate) check(b []byte, transport string) verdict {
	v := checkMessage(g.parser, b, g.limits.MaxMessageBytes)
	g.record(v, transport)
	return v
}

func (g *gate) record(v verdict, transport string) {
	switch v.act {
	case actReply:
		g.observer.Request(v.method)
		g.observer.Response(v.method, v.status)
		g.log.Debug("rejected sip message", "transport", transport, "status", v.status, "reason", v.reason)
	case actDrop:
		g.log.Debug("dropped sip message", "transport", transport, "reason", v.reason)
	}
}

// tooLarge answers a message over the size limit with 513 when it is a request with a Via.
func (g *gate) tooLarge(b []byte, transport string) verdict {
	v := verdict{act: actDrop, reason: "message too large"}
	m, _ := splitMessage(b)
	if method, _, _, _ := splitRequestLine(m.startLine); method != "" && method != "ACK" && len(m.values("via")) > 0 {
		v = verdict{act: actReply, method: method, status: 513, reason: v.reason,
			reply: m.reply(513, reasonPhrase(513), nil)}
	}
	g.record(v, transport)
	return v
}

// gatedPacketConn is the UDP socket sipgo reads: it delivers only datagrams that pass the gate
// and answers or drops the rest itself.
type gatedPacketConn struct {
	net.PacketConn
	g   *gate
	buf []byte
}

func (g *gate) packetConn(c net.PacketConn) net.PacketConn {
	return &gatedPacketConn{PacketConn: c, g: g, buf: make([]byte, 65536)}
}

// ReadFrom returns the next datagram that passes the gate. sipgo calls it from one goroutine.
func (c *gatedPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(c.buf)
		if err != nil {
			return 0, addr, err
		}
		data := c.buf[:n]
		var v verdict
		if n > c.g.limits.MaxMessageBytes || n > len(p) {
			v = c.g.tooLarge(data, "udp")
		} else {
			v = c.g.check(data, "udp")
		}
		if v.act == actPass && c.g.shed != nil {
			if reply := c.g.shed(data); reply != nil {
				v = verdict{act: actReply, status: 503, reply: reply}
			}
		}
		switch v.act {
		case actPass:
			if v.msg != nil {
				data = v.msg
			}
			if len(data) > len(p) {
				c.g.log.Debug("dropped sip message", "transport", "udp", "reason", "rewritten message too large")
				continue
			}
			return copy(p, data), addr, nil
		case actReply:
			// Responses go to the packet's source, as sipgo's do with our forced rport.
			if _, err := c.PacketConn.WriteTo(v.reply, addr); err != nil {
				c.g.log.Debug("stateless reply failed", "status", v.status, "error", err)
			}
		}
	}
}

// gatedListener hands sipgo connections whose reads are framed and checked by the gate.
type gatedListener struct {
	net.Listener
	g         *gate
	transport string // "tcp" or "tls", for logs
}

func (g *gate) listener(l net.Listener) net.Listener {
	return &gatedListener{Listener: l, g: g, transport: "tcp"}
}

// tlsListener gates the plaintext streams of l, a listener of TLS connections.
func (g *gate) tlsListener(l net.Listener) net.Listener {
	return &gatedListener{Listener: l, g: g, transport: "tls"}
}

// Accept wraps the next connection.
func (l *gatedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &gatedConn{Conn: c, g: l.g, transport: l.transport, buf: make([]byte, 16384), msgStart: l.g.now(), last: l.g.now()}, nil
}

// gatedConn frames SIP messages out of a TCP stream, checks each, and serves sipgo only those
// that pass. Read is called by sipgo's one reader goroutine; writes go straight to the Conn
// (net.Conn writes are safe to interleave with our stateless replies, each a single Write).
type gatedConn struct {
	net.Conn
	g         *gate
	transport string
	buf       []byte
	in        []byte    // received, not yet framed
	out       []byte    // checked, not yet read by sipgo
	err       error     // sticky: the connection is finished
	msgStart  time.Time // when the message being received started; zero between messages
	last      time.Time // when the last byte arrived
}

// errGateClosed ends a connection the gate gave up on. Read returns io.EOF instead so that
// sipgo closes it quietly: the gate has logged why.
var errGateClosed = errors.New("connection closed by the sip gate")

// Read returns checked message bytes.
func (c *gatedConn) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.err != nil {
			if errors.Is(c.err, errGateClosed) {
				return 0, io.EOF
			}
			return 0, c.err
		}
		if c.frame() {
			continue
		}
		if err := c.Conn.SetReadDeadline(c.deadline()); err != nil {
			return 0, err
		}
		n, err := c.Conn.Read(c.buf)
		if n > 0 {
			c.last = c.g.now()
			if c.msgStart.IsZero() && len(bytes.TrimLeft(c.in, "\r\n")) == 0 && len(bytes.TrimLeft(c.buf[:n], "\r\n")) > 0 {
				c.msgStart = c.last
			}
			c.in = append(c.in, c.buf[:n]...)
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				reason := "idle timeout"
				if !c.msgStart.IsZero() {
					reason = "message not complete in time"
				}
				c.fail(reason, nil)
				continue
			}
			if n == 0 || !errors.Is(err, io.EOF) {
				c.err = err
			}
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// deadline is when the current wait for bytes ends: the message in progress must be complete
// by its start plus TCPMessageTimeout; between messages, the connection may idle for
// TCPIdleTimeout.
func (c *gatedConn) deadline() time.Time {
	if !c.msgStart.IsZero() {
		return c.msgStart.Add(c.g.limits.TCPMessageTimeout)
	}
	return c.last.Add(c.g.limits.TCPIdleTimeout)
}

// fail gives up on the connection, answering reply first if there is one.
func (c *gatedConn) fail(reason string, reply []byte) {
	c.g.log.Debug("closing sip stream connection", "transport", c.transport, "reason", reason)
	if reply != nil {
		_ = c.Conn.SetWriteDeadline(c.g.now().Add(time.Second))
		_, _ = c.Conn.Write(reply)
	}
	c.err = errGateClosed
	c.in = nil
}

// frame takes complete messages out of c.in. It reports whether it made progress (output, or
// a decision to close); false means more bytes are needed.
func (c *gatedConn) frame() bool {
	if len(c.in) == 0 {
		return false
	}
	// CRLF keep-alives between messages (RFC 5626 3.5.1) go to sipgo on their own, so that it
	// answers a double CRLF ping with a pong.
	if k := crlfPrefix(c.in); k > 0 {
		c.out = append(c.out, c.in[:k]...)
		c.in = c.in[k:]
		if len(c.in) == 0 {
			c.msgStart = time.Time{}
		}
		return true
	}
	maxLen := c.g.limits.MaxMessageBytes
	end := bytes.Index(c.in, []byte("\r\n\r\n"))
	if end < 0 {
		if len(c.in) > maxLen {
			v := c.g.tooLarge(c.in, c.transport)
			c.fail("header section too large", v.reply)
			return true
		}
		return false
	}
	head := c.in[:end+4]
	m, _ := splitMessage(head)
	cls := m.values("content-length")
	var bad string
	var n int
	switch {
	case len(cls) == 0:
		bad = "no content-length on a stream"
	case len(cls) > 1:
		bad = "more than one content-length"
	case !isDigits(cls[0]) || len(cls[0]) > 9:
		bad = "malformed content-length"
	default:
		n, _ = strconv.Atoi(cls[0])
		if len(head)+n > maxLen {
			v := c.g.tooLarge(head, c.transport)
			c.fail("message too large", v.reply)
			return true
		}
	}
	if bad != "" {
		// Without a trustworthy length there is no next message to find: answer and close
		// (RFC 4475 3.1.2.3, 3.3.9).
		v := c.g.check(head, c.transport)
		var reply []byte
		if v.act == actReply {
			reply = v.reply
		} else if method, _, _, _ := splitRequestLine(m.startLine); method != "" && method != "ACK" && len(m.values("via")) > 0 {
			reply = m.reply(400, reasonPhrase(400), nil)
		}
		c.fail(bad, reply)
		return true
	}
	if len(c.in) < len(head)+n {
		return false
	}
	msg := c.in[:len(head)+n]
	v := c.g.check(msg, c.transport)
	switch v.act {
	case actPass:
		if v.msg != nil {
			c.out = append(c.out, v.msg...)
		} else {
			c.out = append(c.out, msg...)
		}
	case actReply:
		_ = c.Conn.SetWriteDeadline(c.g.now().Add(time.Second))
		if _, err := c.Conn.Write(v.reply); err != nil {
			c.fail("stateless reply failed", nil)
			return true
		}
		_ = c.Conn.SetWriteDeadline(time.Time{})
	}
	c.in = c.in[len(msg):]
	c.msgStart = time.Time{}
	if len(bytes.TrimLeft(c.in, "\r\n")) > 0 {
		c.msgStart = c.g.now()
	}
	if len(c.in) == 0 {
		c.in = nil // let a large message's buffer go
	}
	return true
}

// crlfPrefix returns the length of the CRLF pairs c starts with.
func crlfPrefix(b []byte) int {
	k := 0
	for k+1 < len(b) && b[k] == '\r' && b[k+1] == '\n' {
		k += 2
	}
	return k
}
