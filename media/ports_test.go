package media

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
)

func TestNewPortsBounds(t *testing.T) {
	tests := []struct {
		name               string
		min, max           int
		wantMin, wantCount int
	}{
		{"even bounds", 10000, 10010, 10000, 6},
		{"odd bounds shrink inwards", 10001, 10009, 10002, 4},
		{"single port", 10000, 10001, 10000, 1},
		{"empty", 10001, 10001, 10002, 0},
		{"reversed", 20000, 10000, 20000, 0},
		{"clamped low", -5, 4, 2, 2},
		{"clamped high", 65530, 70000, 65530, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPorts(loopback, tt.min, tt.max)
			if p.min != tt.wantMin || p.count() != tt.wantCount {
				t.Errorf("NewPorts(%d, %d): min %d count %d, want min %d count %d",
					tt.min, tt.max, p.min, p.count(), tt.wantMin, tt.wantCount)
			}
		})
	}
}

func TestPortsExhaustAndRelease(t *testing.T) {
	min, max := testRange(t, 3)
	p := NewPorts(loopback, min, max)
	seen := map[int]*net.UDPConn{}
	for range 3 {
		c, err := p.Listen()
		if err != nil {
			t.Fatalf("Listen: %v", err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		if port%2 != 0 || port < min || port > max || seen[port] != nil {
			t.Fatalf("Listen gave port %d, want a new even port in %d-%d (have %v)", port, min, max, seen)
		}
		seen[port] = c
	}
	if got := p.InUse(); got != 3 {
		t.Errorf("InUse() = %d, want 3", got)
	}
	if c, err := p.Listen(); !errors.Is(err, ErrNoPorts) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("Listen on a full range: err = %v, want ErrNoPorts", err)
	}

	seen[min+2].Close()
	p.Release(min + 2)
	p.Release(min + 2) // releasing twice is harmless
	if got := p.InUse(); got != 2 {
		t.Errorf("InUse() after Release = %d, want 2", got)
	}
	c, err := p.Listen()
	if err != nil {
		t.Fatalf("Listen after Release: %v", err)
	}
	if port := c.LocalAddr().(*net.UDPAddr).Port; port != min+2 {
		t.Errorf("Listen after Release gave %d, want the released %d", port, min+2)
	}
	seen[min+2] = c
	for port, c := range seen {
		c.Close()
		p.Release(port)
	}
	if got := p.InUse(); got != 0 {
		t.Errorf("InUse() at the end = %d, want 0", got)
	}
}

func TestPortsSkipsRefused(t *testing.T) {
	min, max := testRange(t, 2)
	// Another process holds the first port of the range.
	other, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, uint16(min))))
	if err != nil {
		t.Fatalf("occupy port %d: %v", min, err)
	}
	defer other.Close()

	p := NewPorts(loopback, min, max)
	c, err := p.Listen()
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer c.Close()
	if port := c.LocalAddr().(*net.UDPAddr).Port; port != min+2 {
		t.Errorf("Listen gave %d, want %d (skipping the refused %d)", port, min+2, min)
	}
	if _, err := p.Listen(); !errors.Is(err, ErrNoPorts) {
		t.Errorf("Listen with the rest refused: err = %v, want ErrNoPorts", err)
	}
	if got := p.InUse(); got != 1 {
		t.Errorf("InUse() = %d, want 1 (refused ports are not kept)", got)
	}
}

func TestPortsConcurrent(t *testing.T) {
	min, max := testRange(t, 64)
	p := NewPorts(loopback, min, max)
	var (
		mu     sync.Mutex
		holder = map[int]int{}
		wg     sync.WaitGroup
	)
	for g := range 8 {
		wg.Go(func() {
			for range 50 {
				c, err := p.Listen()
				if err != nil {
					t.Errorf("Listen: %v", err)
					return
				}
				port := c.LocalAddr().(*net.UDPAddr).Port
				mu.Lock()
				if h, ok := holder[port]; ok {
					t.Errorf("port %d handed to goroutine %d while goroutine %d holds it", port, g, h)
				}
				holder[port] = g
				mu.Unlock()

				mu.Lock()
				delete(holder, port)
				mu.Unlock()
				c.Close()
				p.Release(port)
			}
		})
	}
	wg.Wait()
	if got := p.InUse(); got != 0 {
		t.Errorf("InUse() = %d, want 0", got)
	}
}

// TestPortsRandom: the port of the next call cannot be told from the last
// one's (https://github.com/hotline-project/hotline/issues/14: handed out
// in order, an attacker sprayed the next port before the caller's first
// packet arrived).
func TestPortsRandom(t *testing.T) {
	min, max := testRange(t, 64)
	p := NewPorts(loopback, min, max)
	const n = 300
	seen := map[int]bool{}
	next, prev := 0, -1
	for range n {
		c, err := p.Listen()
		if err != nil {
			t.Fatalf("Listen: %v", err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		p.Release(port)
		if port%2 != 0 || port < min || port > max {
			t.Fatalf("port %d outside the even ports of %d-%d", port, min, max)
		}
		seen[port] = true
		if port == prev+2 || port == prev {
			next++
		}
		prev = port
	}
	// Drawn uniformly, about 300*(2/64) ≈ 9 follow or repeat the one before,
	// and about 63 of the 64 ports turn up.
	t.Logf("%d of %d draws followed or repeated the previous port; %d of 64 ports used", next, n, len(seen))
	if next > n/6 {
		t.Errorf("%d of %d ports were the previous one or the one after it: predictable", next, n)
	}
	if len(seen) < 48 {
		t.Errorf("only %d of 64 ports were used in %d draws", len(seen), n)
	}
}

// TestPortsTakeAll draws every port of a 5,000-port range without sockets:
// each exactly once, then ErrNoPorts' condition, then all back.
func TestPortsTakeAll(t *testing.T) {
	p := NewPorts(loopback, 20000, 29999)
	if p.count() != 5000 {
		t.Fatalf("count = %d, want 5000", p.count())
	}
	got := make([]bool, p.count())
	for i := range p.count() {
		idx, ok := p.take()
		if !ok || got[idx] {
			t.Fatalf("draw %d: index %d ok %v, already drawn %v", i, idx, ok, got[idx])
		}
		got[idx] = true
	}
	if _, ok := p.take(); ok {
		t.Fatal("a port was drawn from an exhausted range")
	}
	if p.InUse() != 5000 {
		t.Errorf("InUse = %d, want 5000", p.InUse())
	}
	for i := range p.count() {
		p.Release(20000 + 2*i)
	}
	p.Release(20001) // odd: not ours
	p.Release(40000) // outside the range
	if p.InUse() != 0 || len(p.free) != 5000 {
		t.Errorf("after releasing all: InUse %d, free %d", p.InUse(), len(p.free))
	}
}

// BenchmarkPortsTakePut is the allocator's own cost, without the bind, in a
// 5,000-port range that is nearly full.
func BenchmarkPortsTakePut(b *testing.B) {
	p := NewPorts(loopback, 20000, 29999)
	for range 4990 {
		p.take()
	}
	b.ReportAllocs()
	for b.Loop() {
		idx, _ := p.take()
		p.put(idx)
	}
}
