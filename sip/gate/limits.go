package gate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/hotline-project/hotline/internal/backoff"
	"github.com/hotline-project/hotline/sip/defence"
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
//
// Connections cost file descriptors, which the process shares with its RTP ports and its
// records store. The listener caps how many stream connections are open at once, in total and
// per source, and closes a connection that has not sent a complete request soon after it was
// accepted. It also keeps accepting through errors: sipgo's accept loop returns on the first
// error, and the server used to stop with it ("accept4: too many open files", issue 14), so
// Accept backs off and retries instead (5 ms doubling to 1 s, as net/http's Server does), and
// sipgo never sees an accept error until the listener is closed.

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
	// TCPFirstRequestTimeout closes a TCP or TLS connection that has not delivered a request
	// the server serves (passed to sipgo, or answered 2xx by the gate) this long after it was
	// accepted (TLS handshake included). Default 10 s: a phone
	// or trunk sends its request as soon as it connects; an idle connection is a scan or an
	// attempt to use up descriptors.
	TCPFirstRequestTimeout time.Duration
	// MaxConnections is how many TCP and TLS connections from untrusted sources may be open at
	// once; further ones are closed as soon as they are accepted. Default 1000; the hotline
	// command derives it from the open-file limit (MaxConnectionsFor).
	MaxConnections int
	// MaxConnectionsPerSource is how many of them one source address (IPv6: one /64) may
	// have open. Default 32.
	MaxConnectionsPerSource int
}

// DefaultLimits are the limits used for zero fields of Limits.
var DefaultLimits = Limits{
	MaxMessageBytes:   65535,
	TCPMessageTimeout: 64 * sipmsg.T1,
	TCPIdleTimeout:    2 * time.Hour,

	TLSHandshakeTimeout: 10 * time.Second,

	TCPFirstRequestTimeout:  10 * time.Second,
	MaxConnections:          1000,
	MaxConnectionsPerSource: 32,
}

// Descriptors the process keeps for itself whatever the connections take: listeners, the
// records store (a SQLite file and its journal, or a PostgreSQL pool), HTTP scrapes and the
// admin API, outbound legs to advocates' phones, log files, the Go runtime's own.
const reservedDescriptors = 128

// MaxConnectionsFor is the default MaxConnections for a process that may open fdLimit file
// descriptors (RLIMIT_NOFILE) and holds one per RTP port, of which there are mediaPorts: what is
// left after the ports and a reserve of 128, at least 16 (a limit that low cannot serve the
// port range anyway; the caller should warn) and at most 100,000.
func MaxConnectionsFor(fdLimit uint64, mediaPorts int) int {
	left := int64(min(fdLimit, 1<<31)) - int64(mediaPorts) - reservedDescriptors
	return int(min(max(left, 16), 100_000))
}

// WithDefaults returns l with its zero fields set from DefaultLimits.
func (l Limits) WithDefaults() Limits {
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
	if l.TCPFirstRequestTimeout <= 0 {
		l.TCPFirstRequestTimeout = DefaultLimits.TCPFirstRequestTimeout
	}
	if l.MaxConnections <= 0 {
		l.MaxConnections = DefaultLimits.MaxConnections
	}
	if l.MaxConnectionsPerSource <= 0 {
		l.MaxConnectionsPerSource = DefaultLimits.MaxConnectionsPerSource
	}
	return l
}

// Reasons ConnObserver is given for a connection refused or closed by the gate.
const (
	ConnRefusedTotal     = "total"      // MaxConnections were open
	ConnRefusedSource    = "per_source" // the source had MaxConnectionsPerSource open
	ConnClosedFirst      = "first_request_timeout"
	ConnClosedIdle       = "idle_timeout"
	ConnClosedSlow       = "message_timeout"
	ConnClosedTooLarge   = "too_large"
	ConnClosedMalformed  = "malformed"
	ConnClosedReplyError = "write_error"
)

// ConnObserver receives the stream listeners' events for metrics. transport is "tcp" or
// "tls". Implementations must be cheap and concurrency safe.
type ConnObserver interface {
	// ConnRefused counts a connection closed as soon as it was accepted, over a cap
	// (ConnRefusedTotal, ConnRefusedSource).
	ConnRefused(transport, reason string)
	// ConnClosed counts a connection the gate closed (ConnClosedFirst, ConnClosedIdle, ...).
	ConnClosed(transport, reason string)
	// AcceptError counts a failed accept (out of descriptors, usually), after which the
	// listener waits and tries again.
	AcceptError(transport string)
}

type nopConnObserver struct{}

func (nopConnObserver) ConnRefused(string, string) {}
func (nopConnObserver) ConnClosed(string, string)  {}
func (nopConnObserver) AcceptError(string)         {}

// connTable counts the open stream connections, in total and per source key.
type connTable struct {
	mu       sync.Mutex
	total    int
	bySource map[netip.Addr]int
	open     [2]atomic.Int64 // by transport: tcp, tls; trusted ones included, for the gauge
}

// take counts a connection from src in, unless a cap is reached: it returns the reason then.
func (t *connTable) take(src netip.Addr, l Limits) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.total >= l.MaxConnections {
		return ConnRefusedTotal
	}
	k := defence.Key(src)
	if t.bySource[k] >= l.MaxConnectionsPerSource {
		return ConnRefusedSource
	}
	if t.bySource == nil {
		t.bySource = map[netip.Addr]int{}
	}
	t.total++
	t.bySource[k]++
	return ""
}

// give counts out a connection take let in.
func (t *connTable) give(src netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total--
	k := defence.Key(src)
	if t.bySource[k] <= 1 {
		delete(t.bySource, k)
	} else {
		t.bySource[k]--
	}
}

func transportIndex(transport string) int {
	if transport == "tls" {
		return 1
	}
	return 0
}

func init() {
	// sipgo refuses to send any UDP message larger than UDPMTUSize-200 bytes (1300). A response
	// goes back over the transport its request came on (RFC 3261 18.2.2), and a request with
	// 31 Via values (RFC 4475 3.1.1.7) has a response bigger than that: refusing to send it leaves
	// the caller retransmitting into silence. Let the IP layer fragment instead, up to the
	// largest UDP payload. Set once here, before any transport runs, as sipgo reads it unlocked.
	sipmsg.UDPMTUSize = 65507 + 200
}

// Observer counts the messages the gate answers or drops itself, for metrics (sip.Observer
// is one). Implementations must be cheap and concurrency safe.
type Observer interface {
	Request(method string)
	Response(method string, status int)
}

type nopObserver struct{}

func (nopObserver) Request(string)       {}
func (nopObserver) Response(string, int) {}

// Config is what a Gate is made of. Zero fields take the defaults.
type Config struct {
	// Parser parses the messages that pass, as sipgo would (share sipgo's, with its header
	// parsers); nil: a default parser. Its MaxMessageLength is set to Limits.MaxMessageBytes.
	Parser *sipmsg.Parser
	// Limits bound messages and stream connections; zero fields take DefaultLimits.
	Limits Limits
	// Log receives the gate's debug lines (never message text); nil discards them.
	Log *slog.Logger
	// Observer counts what the gate answers or drops; nil counts nothing.
	Observer Observer
	// ConnObserver counts the stream connections refused or closed; nil counts nothing.
	ConnObserver ConnObserver
	// Trusted sources are exempt from the connection caps; nil trusts none.
	Trusted func(a netip.Addr) bool
	// Admit decides on the requests that pass the checks (see CheckAdmit); nil passes them.
	Admit func(in Request) Verdict
	// Early sees each request that passed the checks of its raw text, before sipgo's parse
	// of it and Admit, and may answer or drop it there (ok true): what a request must cost
	// when most are refused (overload control's shed INVITEs); nil sees none.
	Early func(in Early) (v Verdict, ok bool)
}

// Early is a request as Config.Early sees it: its raw fields, before sipgo's parse.
type Early struct {
	Method    string     // the request method
	User      string     // the Request-URI's user part (sip: and sips: URIs); "" if none or unsure
	InDialog  bool       // the To header field has a tag (or could have: it is not read simply)
	CallID    string     // the Call-ID, as sipgo's parse would give it
	Require   bool       // a Require header field is present
	Src       netip.Addr // the packet's or the connection's source address
	Transport string     // "udp", "tcp" or "tls"
	raw       *rawMessage
}

// Reply is the verdict that answers e statelessly, as Request.Reply does.
func (e Early) Reply(status int, reason string, extra ...string) Verdict {
	return Verdict{act: Reply, method: e.Method, status: status, reason: reason,
		reply: e.raw.reply(status, reasonPhrase(status), extra)}
}

// early makes the Early of m for Config.Early.
func early(m *rawMessage, method, uri string, src netip.Addr, transport string) Early {
	e := Early{Method: method, Src: src, Transport: transport, raw: m, User: uriUser(uri),
		Require: len(m.values("require")) > 0}
	if ids := m.values("call-id"); len(ids) == 1 {
		e.CallID = strings.TrimSpace(ids[0])
	}
	to := m.values("to")
	e.InDialog = len(to) != 1 || strings.ContainsAny(to[0], "\"\\") || strings.Contains(strings.ToLower(to[0]), "tag")
	return e
}

// uriUser returns the user part of a sip: or sips: Request-URI, "" when it has none or is
// not read simply (a password, parameters or escapes in the user part, another scheme).
func uriUser(uri string) string {
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok || !(strings.EqualFold(scheme, "sip") || strings.EqualFold(scheme, "sips")) {
		return ""
	}
	at := strings.IndexByte(rest, '@')
	if at < 0 {
		return ""
	}
	user := rest[:at]
	if strings.ContainsAny(user, ":;?%") {
		return ""
	}
	return user
}

// Gate checks received messages; one Gate is shared by the UDP, TCP and TLS wrappers of one
// server.
type Gate struct {
	parser   *sipmsg.Parser
	limits   Limits
	log      *slog.Logger
	observer Observer
	now      func() time.Time

	conns   connTable
	connObs ConnObserver             // nil: nopConnObserver
	trusted func(a netip.Addr) bool  // sources exempt from the connection caps; nil: none
	sleep   func(d time.Duration)    // the accept backoff's; nil: time.Sleep
	admit   func(in Request) Verdict // decides on requests that pass checkMessage; nil: pass
	early   func(in Early) (Verdict, bool)

	udpRotateAfter int // PacketConn.rotateAfter; 0: defaultRotateAfter
}

// New returns a Gate for c.
func New(c Config) *Gate {
	l := c.Limits.WithDefaults()
	parser := c.Parser
	if parser == nil {
		parser = sipmsg.NewParser()
	}
	parser.MaxMessageLength = l.MaxMessageBytes
	g := &Gate{parser: parser, limits: l, log: c.Log, observer: c.Observer, now: time.Now,
		connObs: c.ConnObserver, trusted: c.Trusted, admit: c.Admit, early: c.Early}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.observer == nil {
		g.observer = nopObserver{}
	}
	return g
}

// Limits returns the gate's limits, defaults applied.
func (g *Gate) Limits() Limits { return g.limits }

// SetUDPRotateAfter sets how many new UDP sources end sipgo's read loop once (PacketConn);
// n <= 0 restores the default. Call it before PacketConn.
func (g *Gate) SetUDPRotateAfter(n int) { g.udpRotateAfter = n }

func (g *Gate) connObserver() ConnObserver {
	if g.connObs == nil {
		return nopConnObserver{}
	}
	return g.connObs
}

// Request is a request that passed checkMessage, as the gate hands it to Config.Admit.
type Request struct {
	Req       *sipmsg.Request // sipgo's parse of it; its Source and Transport are not set
	Src       netip.Addr      // the packet's or the connection's source address
	Transport string          // "udp", "tcp" or "tls"
	raw       *rawMessage     // its raw fields, for a stateless reply
}

// Reply is the verdict that answers r statelessly with status, reason (for the logs, never
// message text) and extra header lines ("Name: value").
func (r Request) Reply(status int, reason string, extra ...string) Verdict {
	return Verdict{act: Reply, method: string(r.Req.Method), status: status, reason: reason,
		reply: r.raw.reply(status, reasonPhrase(status), extra)}
}

// Dropped is the verdict that discards r without an answer; reason is for the logs.
func (r Request) Dropped(reason string) Verdict {
	return Verdict{act: Drop, method: string(r.Req.Method), reason: reason}
}

// check runs checkMessage and records the outcome.
func (g *Gate) check(b []byte, transport string) Verdict {
	v := checkMessage(g.parser, b, g.limits.MaxMessageBytes)
	g.record(v, transport)
	return v
}

// checkAdmit runs checkMessage, then has a request that passes admitted (gate.admit): the
// requests the server refuses at once (over a limit, to an unknown line) and those it can
// answer without a transaction (OPTIONS) are answered or dropped here, statelessly, so that
// sipgo never creates a transaction for them (issue 14: a flood held 890 MB of transactions,
// and each refused INVITE's 503 was retransmitted 11 times towards its claimed source).
func (g *Gate) CheckAdmit(b []byte, transport string, src netip.Addr) Verdict {
	var hook func(m *rawMessage, method, uri string) (Verdict, bool)
	if g.early != nil {
		hook = func(m *rawMessage, method, uri string) (Verdict, bool) {
			return g.early(early(m, method, uri, src, transport))
		}
	}
	v := checkMessageEarly(g.parser, b, g.limits.MaxMessageBytes, hook)
	if v.act == Pass && v.req != nil && g.admit != nil {
		a := g.admit(Request{Req: v.req, raw: v.raw, Src: src, Transport: transport})
		if a.act != Pass {
			if a.act == Drop && a.method != "" {
				g.observer.Request(a.method)
			}
			v = a
		}
	}
	g.record(v, transport)
	return v
}

// addrOf returns the IP address of a, invalid if it has none.
func addrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case nil:
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func (g *Gate) record(v Verdict, transport string) {
	switch v.act {
	case Reply:
		g.observer.Request(v.method)
		g.observer.Response(v.method, v.status)
		g.log.Debug("rejected sip message", "transport", transport, "status", v.status, "reason", v.reason)
	case Drop:
		g.log.Debug("dropped sip message", "transport", transport, "reason", v.reason)
	}
}

// tooLarge answers a message over the size limit with 513 when it is a request with a Via.
func (g *Gate) tooLarge(b []byte, transport string) Verdict {
	v := Verdict{act: Drop, reason: "message too large"}
	m, _ := splitMessage(b)
	if method, _, _, _ := splitRequestLine(m.startLine); method != "" && method != "ACK" && len(m.values("via")) > 0 {
		v = Verdict{act: Reply, method: method, status: 513, reason: v.reason,
			reply: m.reply(513, reasonPhrase(513), nil)}
	}
	g.record(v, transport)
	return v
}

// PacketConn is the UDP socket sipgo reads: it delivers only datagrams that pass the gate
// and answers or drops the rest itself.
//
// It also bounds what sipgo remembers per source. sipgo v1.7.3's UDP read loop records every
// source address:port it is handed, in its connection pool and in a map of its own, and
// forgets them only when the loop ends: a flood from forged addresses and ports would grow
// both for as long as the server runs. After rotateAfter changes of source address, ReadFrom
// ends sipgo's loop once (with an error wrapping net.ErrClosed; sipgo then deletes the
// addresses it recorded, and keeps the socket open, as it does for a listener), and the
// server serves the same socket again (ServeListeners). Transactions in progress keep
// writing through the socket; the server's own requests (BYE, INVITEs to phones) name the
// listener's address, which the new loop records first.
type PacketConn struct {
	net.PacketConn
	g   *Gate
	buf []byte

	last        net.Addr // the previous datagram's source (sipgo's read goroutine only)
	fresh       int      // source changes handed to sipgo since its loop started
	rotateAfter int
	rotating    atomic.Bool // ReadFrom ended sipgo's loop for a rotation
}

// rotated reports whether sipgo's read loop ended for a rotation, and clears the mark.
func (c *PacketConn) Rotated() bool { return c.rotating.Swap(false) }

// rotateGrace is how long reading pauses before a rotation: a flood (what makes rotations
// happen) waits in the socket's buffer, or is dropped there.
const rotateGrace = 200 * time.Millisecond

// defaultRotateAfter bounds sipgo's per-source records at about 65,536 entries (some 130
// bytes each).
const defaultRotateAfter = 1 << 16

// errRotate ends sipgo's UDP read loop so that it forgets the sources it has recorded.
var errRotate = fmt.Errorf("sip: udp read loop restarted to forget sources: %w", net.ErrClosed)

func (g *Gate) PacketConn(c net.PacketConn) *PacketConn {
	n := g.udpRotateAfter
	if n <= 0 {
		n = defaultRotateAfter
	}
	return &PacketConn{PacketConn: c, g: g, buf: make([]byte, 65536), rotateAfter: n}
}

// Close leaves the socket open: sipgo closes its listener connection when its read loop
// ends, including a rotation's; the server closes the socket itself when it stops.
func (c *PacketConn) Close() error { return nil }

// ReadFrom returns the next datagram that passes the gate. sipgo calls it from one goroutine.
func (c *PacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	if c.fresh >= c.rotateAfter {
		// Let the requests already handed over reach their transactions first: sipgo looks
		// their source up in the records it is about to forget.
		if c.g.sleep != nil {
			c.g.sleep(rotateGrace)
		} else {
			time.Sleep(rotateGrace)
		}
		c.fresh, c.last = 0, nil
		c.rotating.Store(true)
		return 0, nil, errRotate
	}
	for {
		n, addr, err := c.PacketConn.ReadFrom(c.buf)
		if err != nil {
			return 0, addr, err
		}
		data := c.buf[:n]
		var v Verdict
		if n > c.g.limits.MaxMessageBytes || n > len(p) {
			v = c.g.tooLarge(data, "udp")
		} else {
			v = c.g.CheckAdmit(data, "udp", addrOf(addr))
		}
		switch v.act {
		case Pass:
			if v.msg != nil {
				data = v.msg
			}
			if len(data) > len(p) {
				c.g.log.Debug("dropped sip message", "transport", "udp", "reason", "rewritten message too large")
				continue
			}
			if c.last == nil || c.last.String() != addr.String() {
				c.fresh++ // sipgo records a source each time it changes
			}
			c.last = addr
			return copy(p, data), addr, nil
		case Reply:
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
	g         *Gate
	transport string // "tcp" or "tls", for logs and metrics

	lastLog time.Time // of an accept error; Accept runs on one goroutine (sipgo's loop)
}

func (g *Gate) Listener(l net.Listener) net.Listener {
	return &gatedListener{Listener: l, g: g, transport: "tcp"}
}

// tlsListener gates the plaintext streams of l, a listener of TLS connections.
func (g *Gate) TLSListener(l net.Listener) net.Listener {
	return &gatedListener{Listener: l, g: g, transport: "tls"}
}

// Accept returns the next connection within the caps, wrapped. It returns an error only when
// the listener is closed: any other accept error (EMFILE when the process is out of
// descriptors, ECONNABORTED, ENOBUFS...) is counted and logged, and Accept waits and tries
// again, 5 ms doubling to 1 s while the errors last. The pending connections wait in the
// kernel's backlog meanwhile, and the calls in progress go on.
func (l *gatedListener) Accept() (net.Conn, error) {
	failures := 0
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			failures++
			d := backoff.Accept(failures)
			l.g.connObserver().AcceptError(l.transport)
			if now := l.g.now(); now.Sub(l.lastLog) >= 10*time.Second {
				l.lastLog = now
				l.g.log.Warn("sip accept failed; retrying", "transport", l.transport, "error", err, "retry_in", d)
			}
			if l.g.sleep != nil {
				l.g.sleep(d)
			} else {
				time.Sleep(d)
			}
			continue
		}
		failures = 0
		src := addrOf(c.RemoteAddr())
		counted := l.g.trusted == nil || !l.g.trusted(src)
		if counted {
			if reason := l.g.conns.take(src, l.g.limits); reason != "" {
				// Closed at once, unread: the peer sees a reset or EOF. Not logged (a flood
				// would flood the log); counted.
				_ = c.Close()
				l.g.connObserver().ConnRefused(l.transport, reason)
				continue
			}
		}
		now := l.g.now()
		l.g.conns.open[transportIndex(l.transport)].Add(1)
		return &gatedConn{Conn: c, g: l.g, transport: l.transport, buf: make([]byte, 16384),
			msgStart: now, last: now, accepted: now, src: src, counted: counted}, nil
	}
}

// OpenConnections returns the number of stream connections open now over transport
// ("tcp" or "tls"), trusted sources' included.
func (g *Gate) OpenConnections(transport string) int {
	return int(g.conns.open[transportIndex(transport)].Load())
}

// gatedConn frames SIP messages out of a TCP stream, checks each, and serves sipgo only those
// that pass. Read is called by sipgo's one reader goroutine; writes go straight to the Conn
// (net.Conn writes are safe to interleave with our stateless replies, each a single Write).
type gatedConn struct {
	net.Conn
	g         *Gate
	transport string
	buf       []byte
	in        []byte    // received, not yet framed
	out       []byte    // checked, not yet read by sipgo
	err       error     // sticky: the connection is finished
	msgStart  time.Time // when the message being received started; zero between messages
	last      time.Time // when the last byte arrived
	accepted  time.Time // when the connection was accepted
	requested bool      // a request has been served (passed to sipgo, or answered 2xx)
	src       netip.Addr
	counted   bool // counted in gate.conns (not a trusted source)
	closeOnce sync.Once
}

// Close closes the connection and counts it out of the caps.
func (c *gatedConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		c.g.conns.open[transportIndex(c.transport)].Add(-1)
		if c.counted {
			c.g.conns.give(c.src)
		}
	})
	return err
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
				_, code := c.wait()
				reason := map[string]string{ConnClosedFirst: "no request in time",
					ConnClosedSlow: "message not complete in time", ConnClosedIdle: "idle timeout"}[code]
				c.fail(reason, code, nil)
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

// deadline is when the current wait for bytes ends: the first request must be complete
// TCPFirstRequestTimeout after the connection was accepted; any message in progress, by its
// start plus TCPMessageTimeout; between messages, the connection may idle for TCPIdleTimeout.
func (c *gatedConn) deadline() time.Time {
	d, _ := c.wait()
	return d
}

// wait returns deadline() and the reason the connection is closed if it passes
// (ConnClosedFirst, ConnClosedSlow or ConnClosedIdle).
func (c *gatedConn) wait() (time.Time, string) {
	d, code := c.last.Add(c.g.limits.TCPIdleTimeout), ConnClosedIdle
	if !c.msgStart.IsZero() {
		d, code = c.msgStart.Add(c.g.limits.TCPMessageTimeout), ConnClosedSlow
	}
	if !c.requested {
		if first := c.accepted.Add(c.g.limits.TCPFirstRequestTimeout); !first.After(d) {
			d, code = first, ConnClosedFirst
		}
	}
	return d, code
}

// fail gives up on the connection, answering reply first if there is one. code is the
// reason's ConnClosed* label.
func (c *gatedConn) fail(reason, code string, reply []byte) {
	c.g.log.Debug("closing sip stream connection", "transport", c.transport, "reason", reason)
	c.g.connObserver().ConnClosed(c.transport, code)
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
			c.fail("header section too large", ConnClosedTooLarge, v.reply)
			return true
		}
		return false
	}
	head := c.in[:end+4]
	n, ok := c.bodyLength(head)
	if !ok {
		return true
	}
	if len(c.in) < len(head)+n {
		return false
	}
	c.deliver(c.in[:len(head)+n])
	return true
}

// bodyLength is the length of the body that follows head, a message's header section, from
// its Content-Length. Without a trustworthy one, or over the size limit, it answers, closes
// the connection and returns false: there is no next message to find.
func (c *gatedConn) bodyLength(head []byte) (int, bool) {
	m, _ := splitMessage(head)
	cls := m.values("content-length")
	var bad string
	switch {
	case len(cls) == 0:
		bad = "no content-length on a stream"
	case len(cls) > 1:
		bad = "more than one content-length"
	case !isDigits(cls[0]) || len(cls[0]) > 9:
		bad = "malformed content-length"
	default:
		n, _ := strconv.Atoi(cls[0])
		if len(head)+n > c.g.limits.MaxMessageBytes {
			v := c.g.tooLarge(head, c.transport)
			c.fail("message too large", ConnClosedTooLarge, v.reply)
			return 0, false
		}
		return n, true
	}
	// Without a trustworthy length there is no next message to find: answer and close
	// (RFC 4475 3.1.2.3, 3.3.9).
	v := c.g.check(head, c.transport)
	var reply []byte
	if v.act == Reply {
		reply = v.reply
	} else if method, _, _, _ := splitRequestLine(m.startLine); method != "" && method != "ACK" && len(m.values("via")) > 0 {
		reply = m.reply(400, reasonPhrase(400), nil)
	}
	c.fail(bad, ConnClosedMalformed, reply)
	return 0, false
}

// deliver checks one framed message, msg, the start of c.in: it goes on to sipgo, or is
// answered or dropped here (a reply that cannot be written finishes c).
func (c *gatedConn) deliver(msg []byte) {
	v := c.g.CheckAdmit(msg, c.transport, c.src)
	if v.method != "" && (v.act == Pass || v.act == Reply && v.status < 300) {
		// A request that was served counts; garbage, or requests refused, do not keep a
		// connection open past the first-request timeout.
		c.requested = true
	}
	switch v.act {
	case Pass:
		if v.msg != nil {
			c.out = append(c.out, v.msg...)
		} else {
			c.out = append(c.out, msg...)
		}
	case Reply:
		_ = c.Conn.SetWriteDeadline(c.g.now().Add(time.Second))
		if _, err := c.Conn.Write(v.reply); err != nil {
			c.fail("stateless reply failed", ConnClosedReplyError, nil)
			return
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
}

// crlfPrefix returns the length of the CRLF pairs c starts with.
func crlfPrefix(b []byte) int {
	k := 0
	for k+1 < len(b) && b[k] == '\r' && b[k+1] == '\n' {
		k += 2
	}
	return k
}
