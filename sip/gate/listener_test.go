package gate

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestMaxConnectionsFor(t *testing.T) {
	tests := []struct {
		limit uint64
		ports int
		want  int
	}{
		{1024, 450, 446},
		{256, 20, 108},
		{256, 450, 16}, // too low for the port range: the floor, and a warning from serve
		{1 << 20, 450, 100_000},
		{1 << 62, 0, 100_000},
	}
	for _, tc := range tests {
		if got := MaxConnectionsFor(tc.limit, tc.ports); got != tc.want {
			t.Errorf("MaxConnectionsFor(%d, %d) = %d, want %d", tc.limit, tc.ports, got, tc.want)
		}
	}
}

// failingListener fails its first n accepts with err, then accepts from the embedded one;
// closed makes it return net.ErrClosed.
type failingListener struct {
	net.Listener
	mu  sync.Mutex
	n   int
	err error
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.n > 0 {
		l.n--
		l.mu.Unlock()
		return nil, l.err
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

type countingConnObserver struct {
	mu                      sync.Mutex
	refused, closed, errors map[string]int
}

func newCountingConnObserver() *countingConnObserver {
	return &countingConnObserver{refused: map[string]int{}, closed: map[string]int{}, errors: map[string]int{}}
}

func (o *countingConnObserver) ConnRefused(tr, reason string) {
	o.mu.Lock()
	o.refused[reason]++
	o.mu.Unlock()
}

func (o *countingConnObserver) ConnClosed(tr, reason string) {
	o.mu.Lock()
	o.closed[reason]++
	o.mu.Unlock()
}

func (o *countingConnObserver) AcceptError(tr string) {
	o.mu.Lock()
	o.errors[tr]++
	o.mu.Unlock()
}

func (o *countingConnObserver) get(m map[string]int, k string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return m[k]
}

func testGate(l Limits, obs ConnObserver) *Gate {
	return &Gate{parser: testParser(), limits: l.WithDefaults(), log: slog.New(slog.DiscardHandler),
		observer: nopObserver{}, now: time.Now, connObs: obs}
}

// Accept errors never reach sipgo: the listener waits, 5 ms doubling, and tries again
// (issue 14: "sip: listener stopped: accept4: too many open files" ended the process).
func TestAcceptRetriesErrors(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	obs := newCountingConnObserver()
	g := testGate(Limits{}, obs)
	var slept []time.Duration
	g.sleep = func(d time.Duration) { slept = append(slept, d) }
	gl := g.Listener(&failingListener{Listener: ln, n: 4, err: &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}})
	defer gl.Close()
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			defer c.Close()
			time.Sleep(time.Second)
		}
	}()
	c, err := gl.Accept()
	if err != nil {
		t.Fatalf("Accept returned %v; want the connection after the errors", err)
	}
	c.Close()
	want := []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}
	if len(slept) != len(want) {
		t.Fatalf("slept %v, want %v", slept, want)
	}
	for i := range want {
		if slept[i] != want[i] {
			t.Fatalf("slept %v, want %v", slept, want)
		}
	}
	if n := obs.get(obs.errors, "tcp"); n != 4 {
		t.Errorf("%d accept errors counted, want 4", n)
	}
	// Closed, the listener's Accept returns at once, with net.ErrClosed.
	ln.Close()
	if _, err := gl.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on a closed listener: %v", err)
	}
}

// dialFrom connects to addr from local address ip.
func dialFrom(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// await waits up to 2 s for the count of key in m to reach want, and returns it: the gate
// closes a refused connection before it counts it, so the peer may see the close first.
func (o *countingConnObserver) await(m map[string]int, key string, want int) int {
	deadline := time.Now().Add(2 * time.Second)
	for {
		n := o.get(m, key)
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(time.Millisecond)
	}
}

// closedByServer reports whether the server closed c within d.
func closedByServer(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// The caps: per source, then in total; trusted sources count against neither, and a closed
// connection frees its place.
func TestConnectionCaps(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	obs := newCountingConnObserver()
	g := testGate(Limits{MaxConnections: 5, MaxConnectionsPerSource: 2}, obs)
	g.trusted = func(a netip.Addr) bool { return a == netip.MustParseAddr("127.0.0.9") }
	gl := g.Listener(ln)
	defer gl.Close()
	accepted := make(chan net.Conn, 100)
	go func() {
		for {
			c, err := gl.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	addr := ln.Addr().String()
	next := func() net.Conn {
		t.Helper()
		select {
		case c := <-accepted:
			return c
		case <-time.After(2 * time.Second):
			t.Fatal("no connection accepted")
			return nil
		}
	}
	dialFrom(t, "127.0.0.2", addr)
	dialFrom(t, "127.0.0.2", addr)
	s1 := next()
	next()
	over := dialFrom(t, "127.0.0.2", addr)
	if !closedByServer(over, 2*time.Second) {
		t.Fatal("a third connection from one source was not refused")
	}
	if n := obs.await(obs.refused, ConnRefusedSource, 1); n != 1 {
		t.Errorf("%d refused per source, want 1", n)
	}
	dialFrom(t, "127.0.0.3", addr)
	dialFrom(t, "127.0.0.3", addr)
	dialFrom(t, "127.0.0.4", addr)
	next()
	next()
	next()
	// Five open: the total is reached for untrusted sources, not for trusted ones.
	if c := dialFrom(t, "127.0.0.5", addr); !closedByServer(c, 2*time.Second) {
		t.Fatal("a connection over the total was not refused")
	}
	if n := obs.await(obs.refused, ConnRefusedTotal, 1); n != 1 {
		t.Errorf("%d refused over the total, want 1", n)
	}
	for range 3 {
		dialFrom(t, "127.0.0.9", addr)
		next()
	}
	if g.OpenConnections("tcp") != 8 {
		t.Errorf("%d open, want 8", g.OpenConnections("tcp"))
	}
	// A connection closed (by sipgo, or by the gate) frees its place.
	s1.Close()
	s1.Close() // sipgo may close twice; counted out once
	dialFrom(t, "127.0.0.2", addr)
	next()
	if n := obs.get(obs.refused, ConnRefusedSource) + obs.get(obs.refused, ConnRefusedTotal); n != 2 {
		t.Errorf("%d refused, want still 2", n)
	}
}

// A connection that sends nothing, or only keep-alives, or part of a request, is closed
// TCPFirstRequestTimeout after it was accepted; one that sent a request may idle longer.
func TestFirstRequestTimeout(t *testing.T) {
	t.Parallel()
	valid := okInvite + "Content-Length: 0\r\n\r\n"
	l := Limits{TCPFirstRequestTimeout: 300 * time.Millisecond, TCPIdleTimeout: time.Hour}
	tests := []struct {
		name   string
		send   string
		closed bool
	}{
		{"silent", "", true},
		{"keep-alives only", "\r\n\r\n", true},
		{"half a request", valid[:40], true},
		{"only refused requests", strings.Replace(valid, "SIP/2.0\r\n", "SIP/3.0\r\n", 1), true},
		{"a request", valid, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, got := gatedPair(t, l)
			start := time.Now()
			if tc.send != "" {
				if _, err := c.Write([]byte(tc.send)); err != nil {
					t.Fatal(err)
				}
			}
			timer := time.After(1500 * time.Millisecond)
			for {
				select {
				case _, ok := <-got:
					if ok {
						continue
					}
					if !tc.closed {
						t.Fatal("closed after a complete request")
					}
					if e := time.Since(start); e < 250*time.Millisecond || e > 1400*time.Millisecond {
						t.Errorf("closed after %v, want about 300ms", e)
					}
					return
				case <-timer:
					if tc.closed {
						t.Fatal("not closed")
					}
					return
				}
			}
		})
	}
}

var _ io.Closer = (*gatedConn)(nil)
