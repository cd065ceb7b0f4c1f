package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
)

const (
	frameDur   = 20 * time.Millisecond
	slots      = 20 // phases per frame, as the server's scheduler has
	slotDur    = frameDur / slots
	rtpHdr     = 12
	payloadLen = 160
	// tagMagic marks the payload of a packet the generator sent, so that a receiver can
	// tell a relayed packet (bridge) from the server's own prompts.
	tagMagic = 0x484c4247 // "HLBG"
	tagLen   = 4 + 4 + 8 + 8
)

// epoch is the origin of the generator's monotonic clock.
var epoch = time.Now()

func nowNS() int64 { return int64(time.Since(epoch)) }

// tag is what a generator packet carries in its payload: which stream, when it was due
// (nominal) and when it was handed to the kernel (actual), both on the generator's clock.
type tag struct {
	stream          uint32
	nominal, actual int64
}

func putTag(p []byte, t tag) {
	binary.BigEndian.PutUint32(p[0:], tagMagic)
	binary.BigEndian.PutUint32(p[4:], t.stream)
	binary.BigEndian.PutUint64(p[8:], uint64(t.nominal))
	binary.BigEndian.PutUint64(p[16:], uint64(t.actual))
}

func readTag(p []byte) (tag, bool) {
	if len(p) < tagLen || binary.BigEndian.Uint32(p) != tagMagic {
		return tag{}, false
	}
	return tag{
		stream:  binary.BigEndian.Uint32(p[4:]),
		nominal: int64(binary.BigEndian.Uint64(p[8:])),
		actual:  int64(binary.BigEndian.Uint64(p[16:])),
	}, true
}

// rxStream is what one call hears: the packets arriving from one server RTP port.
type rxStream struct {
	mu     sync.Mutex
	total  int   // packets ever
	tagged int   // packets ever that carry a generator tag (relayed by a bridge)
	n      int   // packets in the window
	last   int64 // arrival of the previous packet in the window, 0 at the window's start
	gaps   *hist // inter-arrival times in the window

	// Bridge figures over the window, from tagged packets: D is RFC 3550's transit
	// difference between consecutive packets, against the nominal send times, for the
	// generator's send (in) and for the arrival after the relay (out).
	lastTag         tag
	lastTagRecv     int64
	haveTag         bool
	sumDin, sumDout float64 // sums of |D| in ns
	nD              int
	transit         *hist // arrival minus actual send; allocated at the first tagged packet
}

func newRxStream() *rxStream {
	return &rxStream{gaps: newHist(500*time.Microsecond, 1000)}
}

func newTransitHist() *hist { return newHist(100*time.Microsecond, 1000) }

// window is the measurement window shared by every receiver.
type window struct{ on atomic.Bool }

func (s *rxStream) packet(payload []byte, at int64, w *window) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total++
	t, tagged := readTag(payload)
	if tagged {
		s.tagged++
	}
	if !w.on.Load() {
		s.last, s.haveTag = 0, false
		return
	}
	s.n++
	if s.last != 0 {
		s.gaps.add(time.Duration(at - s.last))
	}
	s.last = at
	if !tagged {
		return
	}
	if s.transit == nil {
		s.transit = newTransitHist()
	}
	s.transit.add(time.Duration(at - t.actual))
	if s.haveTag {
		din := (t.actual - t.nominal) - (s.lastTag.actual - s.lastTag.nominal)
		dout := (at - t.nominal) - (s.lastTagRecv - s.lastTag.nominal)
		s.sumDin += float64(abs(din))
		s.sumDout += float64(abs(dout))
		s.nD++
	}
	s.lastTag, s.lastTagRecv, s.haveTag = t, at, true
}

// resetWindow clears the window's figures.
func (s *rxStream) resetWindow() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n, s.last, s.haveTag, s.sumDin, s.sumDout, s.nD = 0, 0, false, 0, 0, 0
	s.gaps.reset()
	if s.transit != nil {
		s.transit.reset()
	}
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// rtpPool is a few UDP sockets shared by every call's media. The server sends each leg
// from its own port, so a packet's source port says which call it belongs to; the
// generator needs no socket per call.
type rtpPool struct {
	conns   []*net.UDPConn
	streams [65536]atomic.Pointer[rxStream]
	w       window
	unknown atomic.Uint64
	next    atomic.Uint32
}

func newRTPPool(n int) (*rtpPool, error) {
	p := &rtpPool{}
	for range n {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			p.close()
			return nil, fmt.Errorf("rtp socket: %w", err)
		}
		_ = c.SetReadBuffer(4 << 20)
		_ = c.SetWriteBuffer(4 << 20)
		p.conns = append(p.conns, c)
		go p.readLoop(c)
	}
	return p, nil
}

// pick returns the socket the next call uses.
func (p *rtpPool) pick() *net.UDPConn {
	return p.conns[int(p.next.Add(1))%len(p.conns)]
}

func (p *rtpPool) close() {
	for _, c := range p.conns {
		c.Close()
	}
}

// listen routes the packets from the server port to s (nil stops).
func (p *rtpPool) listen(port uint16, s *rxStream) { p.streams[port].Store(s) }

// readLoop reads c in batches (recvmmsg, through x/net/ipv4): at 100,000 packets/s and
// more, one system call per packet would make the generator, not the server, the limit.
func (p *rtpPool) readLoop(c *net.UDPConn) {
	const batch = 64
	pc := ipv4.NewPacketConn(c)
	msgs := make([]ipv4.Message, batch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 1500)}
	}
	for {
		n, err := pc.ReadBatch(msgs, 0)
		if err != nil {
			return
		}
		at := nowNS()
		for _, m := range msgs[:n] {
			from, ok := m.Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			s := p.streams[uint16(from.Port)].Load()
			if s == nil || m.N < rtpHdr {
				p.unknown.Add(1)
				continue
			}
			s.packet(m.Buffers[0][rtpHdr:m.N], at, &p.w)
		}
	}
}

// txStream is one stream the generator sends: a caller's microphone or an advocate's.
type txStream struct {
	id     uint32
	conn   *net.UDPConn
	to     netip.AddrPort
	ssrc   uint32
	seq    uint16
	ts     uint32
	every  int64 // send every this many frames (1: 50 packets/s)
	tagged bool
	stop   atomic.Bool
}

// sender paces every txStream from one clock, in phases spread over the frame like the
// server's scheduler, with one goroutine per worker.
type sender struct {
	mu      sync.Mutex
	slots   [slots][]*txStream
	nextID  atomic.Uint32
	next    int
	sent    atomic.Uint64
	errs    atomic.Uint64
	workers int
}

func newSender(workers int) *sender { return &sender{workers: max(1, workers)} }

// add places st in the least recently used phase.
func (s *sender) add(st *txStream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.id = s.nextID.Add(1)
	i := s.next
	s.next = (s.next + 1) % slots
	l := make([]*txStream, 0, len(s.slots[i])+1)
	for _, o := range s.slots[i] {
		if !o.stop.Load() {
			l = append(l, o)
		}
	}
	s.slots[i] = append(l, st)
}

func (s *sender) run(stop <-chan struct{}) {
	var wg sync.WaitGroup
	for w := range s.workers {
		wg.Go(func() { s.worker(w, stop) })
	}
	wg.Wait()
}

func (s *sender) worker(w int, stop <-chan struct{}) {
	buf := make([]byte, rtpHdr+payloadLen)
	for i := rtpHdr; i < len(buf); i++ {
		buf[i] = 0xff // PCMU silence
	}
	buf[0], buf[1] = 0x80, 0 // version 2, PCMU
	timer := time.NewTimer(time.Hour)
	k := int64(time.Since(epoch)/slotDur) + 1
	for {
		if k%slots%int64(s.workers) != int64(w) {
			k++
			continue
		}
		due := time.Duration(k) * slotDur
		if d := due - time.Since(epoch); d > 0 {
			timer.Reset(d)
			select {
			case <-stop:
				return
			case <-timer.C:
			}
		} else if d < -5*frameDur {
			k = int64(time.Since(epoch)/slotDur) + 1 // fell far behind: skip ahead
			continue
		}
		s.mu.Lock()
		list := s.slots[k%slots]
		s.mu.Unlock()
		frame := k / slots
		for _, st := range list {
			if st.stop.Load() || frame%st.every != int64(st.id)%st.every {
				continue
			}
			binary.BigEndian.PutUint16(buf[2:], st.seq)
			binary.BigEndian.PutUint32(buf[4:], st.ts)
			binary.BigEndian.PutUint32(buf[8:], st.ssrc)
			st.seq++
			st.ts += uint32(payloadLen * st.every)
			if st.tagged {
				putTag(buf[rtpHdr:], tag{stream: st.id, nominal: int64(due), actual: nowNS()})
			}
			if _, err := st.conn.WriteToUDPAddrPort(buf, st.to); err != nil {
				s.errs.Add(1)
			} else {
				s.sent.Add(1)
			}
		}
		k++
	}
}

// sendDigit sends one RFC 4733 key press on st's SSRC before the stream is handed to the
// sender: a start packet, two updates and three end packets, 20 ms apart.
func sendDigit(st *txStream, pt uint8, event byte) error {
	buf := make([]byte, rtpHdr+4)
	start := st.ts
	for i := range 6 {
		end := i >= 3
		dur := uint16(160 * (i + 1))
		if end {
			dur = 160 * 3
		}
		buf[0], buf[1] = 0x80, pt
		if i == 0 {
			buf[1] |= 0x80 // marker
		}
		binary.BigEndian.PutUint16(buf[2:], st.seq)
		binary.BigEndian.PutUint32(buf[4:], start)
		binary.BigEndian.PutUint32(buf[8:], st.ssrc)
		buf[12], buf[13] = event, 10
		if end {
			buf[13] |= 0x80
		}
		binary.BigEndian.PutUint16(buf[14:], dur)
		if _, err := st.conn.WriteToUDPAddrPort(buf, st.to); err != nil {
			return fmt.Errorf("dtmf: %w", err)
		}
		st.seq++
		time.Sleep(frameDur)
	}
	st.ts += 160 * 6
	return nil
}
