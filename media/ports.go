package media

import (
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
)

// Ports allocates RTP ports from the even ports of a range, one per leg. The
// odd port above each is left free for RTCP, as RFC 3550 recommends. It is
// safe for concurrent use.
//
// Ports are drawn at random among the free ones, from a generator seeded by
// crypto/rand, so that an outsider cannot tell which port the next call will
// get and aim packets at it before the caller does (issue 14; handed out in
// order, the next call's port was known to anyone who had seen one).
// Drawing, reserving and releasing are O(1): the free ports are kept in an
// array, and each port knows its place in it.
type Ports struct {
	bind     netip.Addr
	network  string
	min, max int // even bounds, min <= max unless the range is empty

	mu   sync.Mutex
	rng  *rand.Rand
	free []int32 // indexes (port = min + 2*index) of the ports not in use, in no order
	pos  []int32 // pos[index] is index's place in free, or -1 while it is in use
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
	var seed [32]byte
	// crypto/rand.Read never fails (Go 1.24+): it crashes the program rather than
	// return predictable bytes.
	_, _ = crand.Read(seed[:])
	p := &Ports{bind: bind, network: network, min: min, max: max, rng: rand.New(rand.NewChaCha8(seed))}
	n := p.count()
	p.free = make([]int32, n)
	p.pos = make([]int32, n)
	for i := range n {
		p.free[i], p.pos[i] = int32(i), int32(i)
	}
	return p
}

// count is the number of even ports in the range.
func (p *Ports) count() int {
	if p.max < p.min {
		return 0
	}
	return (p.max-p.min)/2 + 1
}

// take removes a random free index from the free list and returns it, or
// false when none is free. p.mu must be held.
func (p *Ports) take() (int, bool) {
	n := len(p.free)
	if n == 0 {
		return 0, false
	}
	i := p.rng.IntN(n)
	idx := p.free[i]
	last := p.free[n-1]
	p.free[i], p.pos[last] = last, int32(i)
	p.free = p.free[:n-1]
	p.pos[idx] = -1
	return int(idx), true
}

// put returns index idx to the free list, unless it is free already. p.mu
// must be held.
func (p *Ports) put(idx int) {
	if idx < 0 || idx >= len(p.pos) || p.pos[idx] >= 0 {
		return
	}
	p.pos[idx] = int32(len(p.free))
	p.free = append(p.free, int32(idx))
}

// Listen binds a free even port of the range, drawn at random, and returns
// its socket. Ports the operating system refuses (in use by another process,
// for example) are skipped; each port is tried at most once per call. It
// returns ErrNoPorts when no port could be bound. The caller must Release
// the port after closing the socket.
func (p *Ports) Listen() (*net.UDPConn, error) {
	var (
		lastErr error
		refused []int // held back from the free list until this call ends
	)
	defer func() {
		if len(refused) > 0 {
			p.mu.Lock()
			for _, idx := range refused {
				p.put(idx)
			}
			p.mu.Unlock()
		}
	}()
	for {
		p.mu.Lock()
		idx, ok := p.take()
		p.mu.Unlock()
		if !ok {
			break
		}
		// Bind outside the lock so that one slow bind does not hold up
		// every other call setup; the port is reserved meanwhile.
		port := p.min + 2*idx
		addr := net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.bind, uint16(port)))
		conn, err := net.ListenUDP(p.network, addr)
		if err == nil {
			return conn, nil
		}
		lastErr = err
		refused = append(refused, idx)
	}
	if lastErr != nil {
		return nil, fmt.Errorf("%w in %d-%d on %s (last refusal: %w)", ErrNoPorts, p.min, p.max, p.bind, lastErr)
	}
	return nil, fmt.Errorf("%w in %d-%d on %s", ErrNoPorts, p.min, p.max, p.bind)
}

// Release returns port to the pool. Releasing a port that is not in use, or
// not in the range, does nothing.
func (p *Ports) Release(port int) {
	if port < p.min || port > p.max || (port-p.min)%2 != 0 {
		return
	}
	p.mu.Lock()
	p.put((port - p.min) / 2)
	p.mu.Unlock()
}

// InUse returns the number of ports currently allocated.
func (p *Ports) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count() - len(p.free)
}
