package media

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// TestMain fails the run if goroutines started by this package (receive
// goroutines, scheduler workers, test helpers) outlive the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(3 * time.Second)
		leaked := ourGoroutines()
		for len(leaked) > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			leaked = ourGoroutines()
		}
		if len(leaked) > 0 {
			fmt.Fprintf(os.Stderr, "%d leaked goroutines:\n\n%s\n", len(leaked), strings.Join(leaked, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

// ourGoroutines returns the stacks of the goroutines that run or were
// started by code of this package, other than TestMain's own. Goroutines
// of the testing and fuzzing machinery are not ours.
func ourGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "hotline/media.") && !strings.Contains(g, "media.TestMain(") {
			out = append(out, g)
		}
	}
	return out
}

var (
	loopback = netip.MustParseAddr("127.0.0.1")
	// nextTestPort hands out disjoint port ranges to tests, starting at a
	// random even offset above the usual ephemeral range, so that parallel
	// tests and concurrent runs rarely meet.
	nextTestPort atomic.Int64
)

func init() {
	nextTestPort.Store(int64(61000 + 2*rand.IntN(1000)))
}

// testRange returns an even [min, max] range of n even ports.
func testRange(t testing.TB, n int) (int, int) {
	t.Helper()
	end := int(nextTestPort.Add(int64(2 * n)))
	if end > 65534 {
		nextTestPort.Store(61000)
		end = int(nextTestPort.Add(int64(2 * n)))
	}
	return end - 2*n, end - 2
}

// startScheduler runs a scheduler until the test ends.
func startScheduler(t testing.TB, opts SchedulerOptions) *Scheduler {
	t.Helper()
	s := NewScheduler(opts)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
	})
	return s
}

// newPeer returns a UDP socket on loopback standing for the phone.
func newPeer(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("listen peer: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addrOf(c *net.UDPConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// rig is a running scheduler, a port range and one leg.
type rig struct {
	sched *Scheduler
	ports *Ports
	leg   *Leg
	peer  *net.UDPConn // cfg.Remote, unless the test set another
}

func newRig(t testing.TB, cfg LegConfig) *rig {
	t.Helper()
	r := &rig{sched: startScheduler(t, SchedulerOptions{Workers: 2})}
	min, max := testRange(t, 4)
	r.ports = NewPorts(loopback, min, max)
	r.peer = newPeer(t)
	if !cfg.Remote.IsValid() {
		cfg.Remote = addrOf(r.peer)
	}
	leg, err := NewLeg(r.sched, r.ports, cfg)
	if err != nil {
		t.Fatalf("NewLeg: %v", err)
	}
	t.Cleanup(func() {
		if err := leg.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if n := r.ports.InUse(); n != 0 {
			t.Errorf("ports in use after Close = %d, want 0", n)
		}
	})
	r.leg = leg
	return r
}

func (r *rig) legAddr() netip.AddrPort {
	return netip.AddrPortFrom(loopback, uint16(r.leg.LocalPort()))
}

// received is one packet read by a test socket.
type received struct {
	pkt  rtp.Packet
	from netip.AddrPort
	at   time.Time
}

// readPacket reads one RTP packet from c, failing the test after timeout.
func readPacket(t testing.TB, c *net.UDPConn, timeout time.Duration) received {
	t.Helper()
	r, ok := tryRead(t, c, timeout)
	if !ok {
		t.Fatalf("no packet on %s within %v", c.LocalAddr(), timeout)
	}
	return r
}

// tryRead reads one RTP packet from c, or reports false after timeout.
func tryRead(t testing.TB, c *net.UDPConn, timeout time.Duration) (received, bool) {
	t.Helper()
	buf := make([]byte, 2048)
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		return received{}, false
	}
	var r received
	if err := r.pkt.Unmarshal(buf[:n]); err != nil {
		t.Fatalf("leg sent an unparsable packet %x: %v", buf[:n], err)
	}
	r.from, r.at = from, time.Now()
	return r, true
}

// drain discards what c has queued.
func drain(t testing.TB, c *net.UDPConn) {
	t.Helper()
	for {
		if _, ok := tryRead(t, c, time.Millisecond); !ok {
			return
		}
	}
}

// rtpBytes builds an RTP packet.
func rtpBytes(t testing.TB, pt uint8, seq uint16, ts, ssrc uint32, marker bool, payload []byte) []byte {
	t.Helper()
	p := rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc, Marker: marker},
		Payload: payload,
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatalf("marshal rtp: %v", err)
	}
	return b
}

// sendTo writes b from c to addr.
func sendTo(t testing.TB, c *net.UDPConn, addr netip.AddrPort, b []byte) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(b, addr); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// isSilence reports whether payload is one frame of the given silence byte.
func isSilence(payload []byte, b byte) bool {
	return len(payload) == FrameSize && strings.Count(string(payload), string([]byte{b})) == FrameSize
}

// prompt returns n frames of recognisable non-silent audio.
func prompt(n int) []byte {
	audio := make([]byte, n*FrameSize)
	for i := range audio {
		audio[i] = byte(1 + (i/FrameSize*7+i)%200)
	}
	return audio
}

// sink is a socket that counts and discards what it receives.
type sink struct {
	conn    *net.UDPConn
	packets atomic.Uint64
	wg      sync.WaitGroup
}

func newSink(t testing.TB) *sink {
	t.Helper()
	s := &sink{conn: newPeer(t)}
	_ = s.conn.SetReadBuffer(4 << 20)
	s.wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := s.conn.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
			s.packets.Add(1)
		}
	})
	t.Cleanup(func() {
		s.conn.Close()
		s.wg.Wait()
	})
	return s
}
