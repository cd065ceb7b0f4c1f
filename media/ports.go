package media

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// Ports allocates RTP ports from the even ports of a range, one per leg. The
// odd port above each is left free for RTCP, as RFC 3550 recommends. It is
// safe for concurrent use.
type Ports struct {
	bind     netip.Addr
	network  string
	min, max int // even bounds, min <= max unless the range is empty

	mu   sync.Mutex
	next int // index of the next port to try, 0 <= next < count
	used map[int]struct{}
}

// NewPorts returns an allocator of the even ports in [min, max], bound on
// bind (an unspecified address binds all interfaces of that family). An
// empty or out-of-range interval gives an allocator whose Listen always
// returns ErrNoPorts.
func NewPorts(bind netip.Addr, min, max int) *Ports {
	bind = bind.Unmap()
	network := "udp4"
	if bind.Is6() {
		network = "udp6"
	}
	if min < 2 {
		min = 2
	}
	if min%2 != 0 {
		min++
	}
	if max > 65535 {
		max = 65535
	}
	if max%2 != 0 {
		max--
	}
	return &Ports{bind: bind, network: network, min: min, max: max, used: make(map[int]struct{})}
}

// count is the number of even ports in the range.
func (p *Ports) count() int {
	if p.max < p.min {
		return 0
	}
	return (p.max-p.min)/2 + 1
}

// Listen binds the next free even port of the range and returns its socket.
// Ports the operating system refuses (in use by another process, for
// example) are skipped; each port is tried at most once per call. It
// returns ErrNoPorts when no port could be bound. The caller must Release
// the port after closing the socket.
func (p *Ports) Listen() (*net.UDPConn, error) {
	n := p.count()
	p.mu.Lock()
	start := p.next
	p.mu.Unlock()

	var lastErr error
	for i := range n {
		idx := (start + i) % n
		port := p.min + 2*idx
		p.mu.Lock()
		if _, busy := p.used[port]; busy {
			p.mu.Unlock()
			continue
		}
		p.used[port] = struct{}{}
		p.next = (idx + 1) % n
		p.mu.Unlock()

		// Bind outside the lock so that one slow bind does not hold up
		// every other call setup; the port is reserved meanwhile.
		addr := net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.bind, uint16(port)))
		conn, err := net.ListenUDP(p.network, addr)
		if err == nil {
			return conn, nil
		}
		lastErr = err
		p.Release(port)
	}
	if lastErr != nil {
		return nil, fmt.Errorf("%w in %d-%d on %s (last refusal: %w)", ErrNoPorts, p.min, p.max, p.bind, lastErr)
	}
	return nil, fmt.Errorf("%w in %d-%d on %s", ErrNoPorts, p.min, p.max, p.bind)
}

// Release returns port to the pool. Releasing a port that is not in use
// does nothing.
func (p *Ports) Release(port int) {
	p.mu.Lock()
	delete(p.used, port)
	p.mu.Unlock()
}

// InUse returns the number of ports currently allocated.
func (p *Ports) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.used)
}
