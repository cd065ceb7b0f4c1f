package state

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"golang.org/x/time/rate"

	"github.com/hotline-project/hotline/internal/backoff"
)

// The cluster's TCP port carries two kinds of connection, told apart by their first
// bytes (the way Consul and Nomad multiplex theirs): raft's own RPCs, and this package's
// requests to the leader (forwarded writes, joins). Every connection starts with a
// preamble: a magic string, a hash of the cluster's shared secret, and the kind. A
// connection whose preamble is wrong is closed before raft or the leader sees a byte of
// it, so a stranger on the network can neither vote, nor append to the log, nor write.
const (
	magic       = "HLC1"
	kindRaft    = 'R'
	kindRequest = 'Q'
	maxRequest  = 8 << 20 // bytes of one request or answer
	preambleLen = len(magic) + sha256.Size + 1
)

// secretHash is what a node presents: SHA-256 of the secret with a fixed label.
func secretHash(secret string) [sha256.Size]byte {
	return sha256.Sum256([]byte("hotline cluster v1\x00" + secret))
}

// streamLayer is raft's StreamLayer over one TCP listener, checking every connection's
// preamble and handing request connections to serve.
type streamLayer struct {
	ln     net.Listener
	secret [sha256.Size]byte
	conns  chan net.Conn
	serve  func(net.Conn)
	log    *slog.Logger
	// refused counts connections whose preamble was wrong.
	refused atomic.Uint64
	// refusedLog logs refused connections at most once a second: a stranger sending
	// wrong preambles as fast as it can would otherwise write a line each.
	refusedLog rate.Sometimes

	once   sync.Once
	closed chan struct{}
	// admitting holds a token per connection whose preamble is still being read: a
	// stranger holding maxAdmitting connections open gets the next ones closed at once,
	// not a goroutine and a descriptor each for 5 s.
	admitting chan struct{}
	mu        sync.Mutex
	bySource  map[netip.Addr]int // connections being checked, by source address
}

// maxAdmitting bounds the cluster connections still being checked at once, and
// maxAdmittingPerSource those from one address (members open a few each), so one stranger
// cannot keep the members' new connections out.
const (
	maxAdmitting          = 64
	maxAdmittingPerSource = 4
)

// take reserves a checking slot for a connection from src; false when none is free.
func (l *streamLayer) take(src netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bySource[src] >= maxAdmittingPerSource {
		return false
	}
	select {
	case l.admitting <- struct{}{}:
		l.bySource[src]++
		return true
	default:
		return false
	}
}

// release gives back the slot take reserved.
func (l *streamLayer) release(src netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	<-l.admitting
	if l.bySource[src]--; l.bySource[src] <= 0 {
		delete(l.bySource, src)
	}
}

// sourceOf is the IP address a connection comes from (the zero Addr if it has none).
func sourceOf(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

func newStreamLayer(ln net.Listener, secret string, serve func(net.Conn), log *slog.Logger) *streamLayer {
	l := &streamLayer{ln: ln, secret: secretHash(secret), conns: make(chan net.Conn), serve: serve, log: log,
		closed: make(chan struct{}), admitting: make(chan struct{}, maxAdmitting), bySource: map[netip.Addr]int{},
		refusedLog: rate.Sometimes{Interval: time.Second}}
	go l.acceptLoop()
	return l
}

// acceptLoop accepts until the listener is closed. Any other accept error (EMFILE when
// the process is out of descriptors...) waits and tries again, as the SIP listeners do:
// the cluster port never stops for it.
func (l *streamLayer) acceptLoop() {
	failures := 0
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				l.Close()
				return
			}
			failures++
			select {
			case <-time.After(backoff.Accept(failures)):
			case <-l.closed:
				return
			}
			continue
		}
		failures = 0
		if src := sourceOf(c); l.take(src) {
			go l.admit(c, src)
		} else {
			l.refused.Add(1)
			c.Close()
		}
	}
}

// admit reads c's preamble (within 5 s) and passes it on, or closes it.
func (l *streamLayer) admit(c net.Conn, src netip.Addr) {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var p [preambleLen]byte
	_, err := io.ReadFull(c, p[:])
	l.release(src) // read (or not): the slot goes back
	if err != nil || string(p[:len(magic)]) != magic ||
		subtle.ConstantTimeCompare(p[len(magic):len(magic)+sha256.Size], l.secret[:]) != 1 {
		n := l.refused.Add(1)
		l.refusedLog.Do(func() {
			l.log.Warn("state: cluster connection refused: wrong preamble or secret", "from", c.RemoteAddr().String(),
				"refused_total", n)
		})
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	switch p[preambleLen-1] {
	case kindRaft:
		select {
		case l.conns <- c:
		case <-l.closed:
			c.Close()
		}
	case kindRequest:
		l.serve(c)
	default:
		l.refused.Add(1)
		c.Close()
	}
}

// Accept implements net.Listener for raft.
func (l *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (l *streamLayer) Close() error {
	var err error
	l.once.Do(func() {
		close(l.closed)
		err = l.ln.Close()
	})
	return err
}

// Addr implements net.Listener.
func (l *streamLayer) Addr() net.Addr { return l.ln.Addr() }

// Dial implements raft.StreamLayer.
func (l *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return l.dial(string(address), kindRaft, timeout)
}

func (l *streamLayer) dial(address string, kind byte, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", address, timeout)
	if err != nil {
		return nil, err
	}
	p := make([]byte, 0, preambleLen)
	p = append(p, magic...)
	p = append(p, l.secret[:]...)
	p = append(p, kind)
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write(p); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetWriteDeadline(time.Time{})
	return c, nil
}

// request is what a node asks the leader.
type request struct {
	// Entry is a write to apply (a follower's changes), as Encode made it.
	Entry json.RawMessage `json:"entry,omitempty"`
	// Join asks the leader to add the node ID at Addr as a voter.
	JoinID   string `json:"join_id,omitempty"`
	JoinAddr string `json:"join_addr,omitempty"`
	// RemoveID asks the leader to remove the node from the cluster.
	RemoveID string `json:"remove_id,omitempty"`
}

// answer is the leader's answer to a request.
type answer struct {
	Err string `json:"err,omitempty"`
	// Claimed: the write's claim was refused (the advocate is someone else's).
	Claimed bool `json:"claimed,omitempty"`
	// NotLeader: the node asked is not (or no longer) the leader; ask again.
	NotLeader bool `json:"not_leader,omitempty"`
}

// writeMsg writes v as a length-prefixed JSON message.
func writeMsg(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(b)))
	if _, err := w.Write(append(n[:], b...)); err != nil {
		return err
	}
	return nil
}

// readMsg reads a message writeMsg wrote into v.
func readMsg(r io.Reader, v any) error {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxRequest {
		return fmt.Errorf("message of %d bytes", size)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// ask sends req to the node at addr and returns its answer.
func (l *streamLayer) ask(ctx context.Context, addr string, req request) (answer, error) {
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Millisecond)
	}
	c, err := l.dial(addr, kindRequest, timeout)
	if err != nil {
		return answer{}, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if err := writeMsg(c, req); err != nil {
		return answer{}, err
	}
	var a answer
	if err := readMsg(bufio.NewReader(c), &a); err != nil {
		return answer{}, err
	}
	return a, nil
}
