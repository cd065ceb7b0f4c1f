package state

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestStreamLayerStrangersDoNotKeepMembersOut: a stranger opening many connections to the
// cluster port and sending nothing holds at most maxAdmittingPerSource of them in the
// preamble check (the rest are closed at once, counted as refused); a member from another
// address still gets through at once.
func TestStreamLayerStrangersDoNotKeepMembersOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newStreamLayer(ln, "s3cret", func(c net.Conn) { c.Close() }, slog.New(slog.DiscardHandler))
	defer l.Close()

	const strangers = 40
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range strangers {
		c, err := net.DialTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 9)}, ln.Addr().(*net.TCPAddr))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// The connections past the per-source bound are closed by the server: a read ends.
	closed := 0
	for _, c := range held {
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err == io.EOF {
			closed++
		}
	}
	if want := strangers - maxAdmittingPerSource; closed != want || l.refused.Load() != uint64(want) {
		t.Errorf("%d of %d strangers' connections closed (%d counted), want %d", closed, strangers, l.refused.Load(), want)
	}

	// A member (another loopback address, as a node would be) dials while the stranger
	// still holds its connections open.
	member := newStreamLayer(mustListen(t, "127.0.0.2:0"), "s3cret", func(c net.Conn) { c.Close() }, slog.New(slog.DiscardHandler))
	defer member.Close()
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	c, err := member.Dial(raft.ServerAddress(ln.Addr().String()), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the member's connection was not admitted while a stranger held the port")
	}
}

func mustListen(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// countHandler counts the records logged at Warn or above.
type countHandler struct{ n *atomic.Int64 }

func (h countHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h countHandler) Handle(context.Context, slog.Record) error    { h.n.Add(1); return nil }
func (h countHandler) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h countHandler) WithGroup(string) slog.Handler                { return h }

// TestStreamLayerRefusalsDoNotFloodTheLog: a stranger sending wrong preambles one
// connection after another has each refused and counted, but the log gets a line a second
// at most, not one per connection.
func TestStreamLayerRefusalsDoNotFloodTheLog(t *testing.T) {
	ln := mustListen(t, "127.0.0.1:0")
	var logged atomic.Int64
	l := newStreamLayer(ln, "s3cret", func(c net.Conn) { c.Close() }, slog.New(countHandler{&logged}))
	defer l.Close()
	const tries = 30
	wrong := make([]byte, preambleLen)
	copy(wrong, magic)
	start := time.Now()
	for range tries {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(wrong); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Read(make([]byte, 1)) // until the server closes it
		c.Close()
	}
	took := time.Since(start)
	if got := l.refused.Load(); got != tries {
		t.Errorf("%d connections refused, want %d", got, tries)
	}
	if most := int64(took/time.Second) + 1; logged.Load() < 1 || logged.Load() > most {
		t.Errorf("%d refusals logged in %v for %d connections, want 1 to %d", logged.Load(), took, tries, most)
	}
}
