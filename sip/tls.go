package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// SIP over TLS (RFC 3261 26.2, RFC 5630). The TLS listener sits under the gate: the raw TCP
// listener is wrapped by tlsListener, whose connections are plaintext streams once the
// handshake is done, and the gate frames and checks the messages of those streams exactly as
// it does on TCP (package gate). The order matters: the gate sees SIP, not TLS records.
//
// A tls.Conn performs its handshake on first use, which here is the first Read by sipgo's
// reader goroutine for the connection, so a slow or silent client never blocks Accept. The
// handshake has its own deadline, gate.Limits.TLSHandshakeTimeout: a client that connects and
// never completes it is dropped then, and its goroutine ends.

// tlsListener turns accepted TCP connections into server-side TLS connections.
type tlsListener struct {
	net.Listener
	conf    *tls.Config
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger
}

// Accept wraps the next connection in TLS; the handshake runs on the first Read.
func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tlsServerConn{Conn: tls.Server(c, l.conf), l: l}, nil
}

// tlsServerConn is a server-side TLS connection whose handshake is bounded in time. It
// remembers the read deadline its user (the gate) set, because the handshake needs a deadline
// of its own and must put the user's back afterwards.
type tlsServerConn struct {
	*tls.Conn
	l *tlsListener

	mu           sync.Mutex
	handshaken   bool
	readDeadline time.Time
}

// errHandshake ends a connection whose TLS handshake failed or took too long. Read returns
// io.EOF instead, so that sipgo closes the connection quietly: it is logged here at Debug,
// as port scanners and clients with the wrong certificate do this all day.
var errHandshake = errors.New("sip: tls handshake failed")

// Read completes the handshake first, then reads plaintext.
func (c *tlsServerConn) Read(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, io.EOF
	}
	return c.Conn.Read(p)
}

// Write completes the handshake first (sipgo only writes to a connection after reading a
// message from it, so this is the rare case), then writes.
func (c *tlsServerConn) Write(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// SetReadDeadline records the deadline, to restore it after the handshake, and sets it.
func (c *tlsServerConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.readDeadline = t
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline records the read deadline, to restore it after the handshake, and sets both.
func (c *tlsServerConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.readDeadline = t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

func (c *tlsServerConn) handshake() error {
	c.mu.Lock()
	if c.handshaken {
		c.mu.Unlock()
		return nil
	}
	rd := c.readDeadline
	c.mu.Unlock()
	deadline := c.l.now().Add(c.l.timeout)
	if !rd.IsZero() && rd.Before(deadline) {
		deadline = rd
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	// HandshakeContext closes the connection's reads when ctx ends, whatever deadline the
	// raw connection has; it is safe to call from Read and Write at once (tls.Conn serialises).
	if err := c.Conn.HandshakeContext(ctx); err != nil {
		c.l.log.Debug("tls handshake failed", "error", err)
		_ = c.Conn.NetConn().Close()
		return errors.Join(errHandshake, err)
	}
	c.mu.Lock()
	c.handshaken = true
	rd = c.readDeadline
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(rd)
}
