package gate

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// gatedPair returns a client connection to a gated loopback listener and a channel that
// receives everything sipgo would read from the server side, closed when that read ends.
func gatedPair(t *testing.T, l Limits) (net.Conn, <-chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &Gate{parser: testParser(), limits: l.WithDefaults(), log: slog.New(slog.DiscardHandler), observer: nopObserver{}, now: time.Now}
	gl := g.Listener(ln)
	t.Cleanup(func() { gl.Close() })
	got := make(chan []byte, 16)
	go func() {
		defer close(got)
		c, err := gl.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 32768)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				got <- append([]byte(nil), buf[:n]...)
			}
			if err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, got
}

// readAll collects what the server side read until it closed the connection.
func readAll(t *testing.T, got <-chan []byte) []byte {
	t.Helper()
	var all []byte
	timeout := time.After(10 * time.Second)
	for {
		select {
		case b, ok := <-got:
			if !ok {
				return all
			}
			all = append(all, b...)
		case <-timeout:
			t.Fatal("server side never closed the connection")
		}
	}
}

// TestTCPLimits: a stream carries valid messages through unchanged, keep-alives included; a
// framing error, an oversized message, a slow sender and a silent peer are answered where
// possible and disconnected.
func TestTCPLimits(t *testing.T) {
	t.Parallel()
	valid := okInvite + "Content-Length: 3\r\n\r\nv=0"
	short := Limits{MaxMessageBytes: 2000, TCPMessageTimeout: 200 * time.Millisecond, TCPIdleTimeout: 200 * time.Millisecond}
	tests := []struct {
		name   string
		limits Limits
		send   []string // written one after another
		drip   bool     // write byte by byte, pausing between bytes
		read   string   // what sipgo gets before the connection ends
		reply  string   // the status line the client gets, "" for none
	}{
		{name: "valid messages and keep-alive pass", limits: short,
			send: []string{valid, "\r\n\r\n", valid[:50], valid[50:]}, read: valid + "\r\n\r\n" + valid},
		{name: "no content-length on a stream", limits: short,
			send: []string{okInvite + "\r\n"}, reply: "SIP/2.0 400 Bad Request"},
		{name: "negative content-length", limits: short,
			send: []string{valid, okInvite + "Content-Length: -5\r\n\r\n" + valid}, read: valid, reply: "SIP/2.0 400 Bad Request"},
		{name: "duplicate content-length", limits: short,
			send: []string{okInvite + "Content-Length: 3\r\nl: 3\r\n\r\nv=0"}, reply: "SIP/2.0 400 Bad Request"},
		{name: "absurd content-length", limits: short,
			send: []string{okInvite + "Content-Length: 4294967296000\r\n\r\n"}, reply: "SIP/2.0 400 Bad Request"},
		{name: "body beyond the size limit", limits: short,
			send: []string{okInvite + "Content-Length: 5000\r\n\r\n"}, reply: "SIP/2.0 513 Message Too Large"},
		{name: "endless header section", limits: short,
			send: []string{okInvite + strings.Repeat("X-Junk: 0123456789abcdef\r\n", 100)}, reply: "SIP/2.0 513 Message Too Large"},
		{name: "slow drip", limits: Limits{TCPMessageTimeout: 300 * time.Millisecond},
			send: []string{valid}, drip: true, reply: ""},
		{name: "silent peer", limits: Limits{TCPMessageTimeout: 100 * time.Millisecond}, reply: ""},
		{name: "idle after a message", limits: Limits{TCPIdleTimeout: 100 * time.Millisecond},
			send: []string{valid}, read: valid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, got := gatedPair(t, tc.limits)
			for _, s := range tc.send {
				if !tc.drip {
					if _, err := c.Write([]byte(s)); err != nil {
						t.Fatal(err)
					}
					continue
				}
				// One byte every 20 ms: never idle long, but the message takes ~5 s.
			drip:
				for i := 0; i < len(s); i++ {
					if _, err := c.Write([]byte{s[i]}); err != nil {
						break drip // closed by the server: what we want
					}
					time.Sleep(20 * time.Millisecond)
					select {
					case _, ok := <-got:
						if !ok {
							break drip
						}
						t.Fatal("a dripped message reached sipgo")
					default:
					}
				}
			}
			if all := readAll(t, got); string(all) != tc.read {
				t.Fatalf("sipgo read %q, want %q", all, tc.read)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := io.ReadAll(bufio.NewReader(c))
			if err != nil {
				t.Fatalf("reading the reply: %v", err)
			}
			line, _, _ := bytes.Cut(resp, []byte("\r\n"))
			if string(line) != tc.reply {
				t.Fatalf("client got %q, want %q", line, tc.reply)
			}
		})
	}
}
