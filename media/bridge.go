package media

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/pion/rtp"

	"github.com/hotline-project/hotline/media/g711"
)

// bridgeIdleFrames is how long, in frames, the relay into a bridged leg may
// stay silent before the scheduler fills the gap with G.711 silence (500
// ms): the other phone may stop sending (silence suppression, comfort
// noise, which is not relayed, or a one-way stream), and this phone must
// still see RTP so that its RTP timeout and NAT binding do not end the
// call. The threshold is far above any jitter, so the scheduler's frames
// and relayed frames never alternate packet by packet.
const bridgeIdleFrames = 25

// Bridge relays the RTP of two legs to each other: what the phone of one
// leg sends is sent to the phone of the other, through the other leg's
// socket, as the other leg's stream.
//
// A relayed packet goes out as soon as it is received (no pacing), with
// the sending leg's SSRC, its sequence numbers and timestamps continuing
// from what the leg sent before (an offset is fixed at the first relayed
// packet, which carries the marker bit, so the source's own spacing,
// losses and reordering pass through unchanged). Audio is transcoded
// between PCMU and PCMA when the legs negotiated different laws. RFC 4733
// telephone-event packets cross as telephone-event packets with the
// receiving leg's payload type, timestamps mapped like the audio's, so
// each event's duration and end retransmissions are preserved; they are
// dropped, and counted, when that leg negotiated no telephone-event.
// Comfort noise and other payload types are not relayed. Each leg's own
// DTMF detection (LegConfig.OnDigit) goes on as before.
//
// While bridged a leg plays no prompts and sends no scheduler silence,
// except to fill a gap of 500 ms or more in the relayed stream. When the
// bridge ends (Unbridge, or either leg ending), the scheduler takes each
// open leg back, its timestamps continuing from the last relayed packet by
// the time that passed.
//
// The source is re-anchored (new offsets, marker bit) when its SSRC
// changes, its sequence numbers jump, or the scheduler sent in between.
type Bridge struct {
	a, b *Leg
	ab   *relay // a's packets to b
	ba   *relay // b's packets to a

	once sync.Once
	done chan struct{}
	err  error // why the bridge ended, set before done is closed
}

// relay is one direction of a bridge: the source leg's receive goroutine
// calls relay for each packet it accepts. Everything but the counters is
// owned by that goroutine.
type relay struct {
	br       *Bridge
	src, dst *Leg

	anchored  bool
	inSSRC    uint32
	lastInSeq uint16 // highest sequence number seen from the source
	seqOff    uint16
	tsOff     uint32

	buf [maxPacketSize + maxAuthTagLen]byte // room for dst's SRTP tag

	noEvents atomic.Bool // drop the source's telephone-events (DropEvents)

	packets, transcoded, events, eventsDropped, dropped atomic.Uint64
}

// RelayStats are the counters of one direction of a Bridge.
type RelayStats struct {
	Packets       uint64 // packets sent on to the other leg, audio and telephone-event
	Transcoded    uint64 // audio packets converted between PCMU and PCMA
	Events        uint64 // telephone-event packets sent on
	EventsDropped uint64 // telephone-event packets dropped: the other leg has no telephone-event, or DropEvents
	Dropped       uint64 // other packets not sent on: comfort noise, other payload types, the other leg on hold or closed
}

// BridgeStats are a Bridge's counters in each direction.
type BridgeStats struct {
	AToB, BToA RelayStats
}

// NewBridge bridges legs a and b, which must be open, distinct and not in
// another bridge (ErrClosed, ErrInvalidConfig, ErrBridged). A prompt
// playing on either leg ends, its Play returning ErrBridged. The caller
// ends the bridge with Unbridge; closing either leg ends it too.
func NewBridge(a, b *Leg) (*Bridge, error) {
	if a == nil || b == nil || a == b {
		return nil, fmt.Errorf("new bridge: two distinct legs are required: %w", ErrInvalidConfig)
	}
	if a.sched != b.sched {
		return nil, fmt.Errorf("new bridge: legs on different schedulers: %w", ErrInvalidConfig)
	}
	br := &Bridge{a: a, b: b, done: make(chan struct{})}
	br.ab = &relay{br: br, src: a, dst: b}
	br.ba = &relay{br: br, src: b, dst: a}

	// Lock in a fixed order (by port; two open legs never share one
	// socket) so that concurrent bridges of the same legs cannot deadlock.
	first, second := a, b
	if second.port < first.port || (second.port == first.port && second.conn.LocalAddr().String() < first.conn.LocalAddr().String()) {
		first, second = second, first
	}
	first.mu.Lock()
	second.mu.Lock()
	var err error
	switch {
	case a.closed || b.closed:
		err = ErrClosed
	case a.bridge != nil || b.bridge != nil:
		err = ErrBridged
	case a.conf != nil || b.conf != nil:
		err = ErrInConference
	}
	var stopped []*Playback
	if err == nil {
		now := a.sched.frameNow()
		for _, l := range []*Leg{a, b} {
			l.bridge = br
			l.relayFrame = now
			if l.cur != nil {
				stopped = append(stopped, l.cur)
				l.cur = nil
			}
		}
		a.out.Store(br.ab)
		b.out.Store(br.ba)
	}
	second.mu.Unlock()
	first.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("bridge rtp ports %d and %d: %w", a.port, b.port, err)
	}
	for _, pb := range stopped {
		pb.finish(ErrBridged)
	}
	a.log.Debug("rtp legs bridged", "other_port", b.port)
	return br, nil
}

// Unbridge ends the bridge and returns both legs (those still open) to the
// scheduler, which sends silence until the next Play. It is idempotent and
// safe to call concurrently with traffic, with Close, and from OnDigit.
func (br *Bridge) Unbridge() { br.stop(nil) }

// DropEvents stops relaying the RFC 4733 telephone-events that l, one of the bridge's
// legs, receives: the other phone never sees those key presses (an advocate's feature
// codes must not reach the caller). They are still detected on l (LegConfig.OnDigit) and
// counted as EventsDropped. Audio is relayed as before.
func (br *Bridge) DropEvents(l *Leg) {
	for _, r := range []*relay{br.ab, br.ba} {
		if r.src == l {
			r.noEvents.Store(true)
		}
	}
}

// Done returns a channel that is closed when the bridge ends.
func (br *Bridge) Done() <-chan struct{} { return br.done }

// Err returns why the bridge ended: nil while it runs and after Unbridge,
// an error matching ErrClosed when a leg ended.
func (br *Bridge) Err() error {
	select {
	case <-br.done:
		return br.err
	default:
		return nil
	}
}

// Stats returns the bridge's counters.
func (br *Bridge) Stats() BridgeStats {
	return BridgeStats{AToB: br.ab.stats(), BToA: br.ba.stats()}
}

func (r *relay) stats() RelayStats {
	return RelayStats{
		Packets:       r.packets.Load(),
		Transcoded:    r.transcoded.Load(),
		Events:        r.events.Load(),
		EventsDropped: r.eventsDropped.Load(),
		Dropped:       r.dropped.Load(),
	}
}

// stop ends the bridge once, for reason. A relay that has already checked
// the bridge may still send one packet; it holds the leg's wmu while it
// does, so the scheduler's next packet follows it.
func (br *Bridge) stop(reason error) {
	br.once.Do(func() {
		for _, r := range []*relay{br.ab, br.ba} {
			l := r.src
			// Only ours: a newer bridge may already have the leg.
			l.out.CompareAndSwap(r, nil)
			l.mu.Lock()
			if l.bridge == br {
				l.bridge = nil
			}
			l.mu.Unlock()
		}
		br.err = reason
		close(br.done)
		st := br.Stats()
		br.a.log.Debug("rtp bridge ended", "other_port", br.b.port, "reason", reason,
			"relayed_a_b", st.AToB.Packets, "relayed_b_a", st.BToA.Packets)
	})
}

// relay sends p, received from r.src's phone, to r.dst's phone. It runs on
// r.src's receive goroutine and does not allocate.
func (r *relay) relay(p *rtp.Packet) {
	dst := r.dst
	pt := p.PayloadType
	event := r.src.dtmfPT != 0 && pt == r.src.dtmfPT
	switch {
	case event && (dst.dtmfPT == 0 || r.noEvents.Load()):
		r.eventsDropped.Add(1)
		r.skip(p)
		return
	case !event && !validPayloadType(pt), rtpHeaderSize+len(p.Payload)+maxAuthTagLen > len(r.buf):
		// (Oversized cannot happen with packets read into a buffer of
		// maxPacketSize, but the relay must not depend on it.)
		r.dropped.Add(1)
		r.skip(p)
		return
	}

	dst.wmu.Lock()
	defer dst.wmu.Unlock()
	n, to, ok := r.build(p, event)
	if !ok {
		r.dropped.Add(1)
		r.skip(p)
		return
	}
	// Each leg has its own keys (or none): what the source's leg decrypted
	// is encrypted again for dst's phone, under dst.wmu like dst's own frames.
	pkt := r.buf[:n]
	if dst.srtp != nil {
		var err error
		if pkt, err = dst.srtp.protect(r.buf[:], n); err != nil {
			r.dropped.Add(1)
			return
		}
	}
	// Ignore errors as sendFrame does: a closed socket means the leg
	// ended, anything else is transient; the next packet tries again.
	if _, err := dst.conn.WriteToUDPAddrPort(pkt, to); err != nil {
		r.dropped.Add(1)
		return
	}
	dst.sent.Add(1)
	r.packets.Add(1)
	if event {
		r.events.Add(1)
	}
}

// skip accounts for a packet of the source's stream that is not sent on,
// so that the next one takes its sequence number: the other phone sees
// no gap for what was dropped on purpose.
func (r *relay) skip(p *rtp.Packet) {
	if r.anchored && p.SSRC == r.inSSRC {
		if d := int16(p.SequenceNumber - r.lastInSeq); d > 0 && d <= 1000 {
			r.lastInSeq = p.SequenceNumber
			r.seqOff--
		}
	}
}

// build writes the packet for p into r.buf under dst.mu, and returns its
// length and destination, or false when it is not to be sent.
func (r *relay) build(p *rtp.Packet, event bool) (int, netip.AddrPort, bool) {
	dst := r.dst
	dst.mu.Lock()
	defer dst.mu.Unlock()
	to := dst.learn.dest()
	if dst.bridge != r.br || dst.closed || !dst.send || !to.IsValid() {
		return 0, to, false
	}
	now := dst.sched.frameNow()
	in := &p.Header
	marker := in.Marker
	if jump := int16(in.SequenceNumber - r.lastInSeq); !r.anchored || dst.schedOwns ||
		in.SSRC != r.inSSRC || jump > 1000 || jump < -1000 {
		// Continue dst's stream from its newest packet, by the time that
		// passed since it was sent.
		ts := dst.ts0
		if dst.sentAny {
			ts = dst.lastTS + FrameSize*uint32(max(1, int64(now)-int64(dst.lastFrame)))
		}
		r.anchored, r.inSSRC, r.lastInSeq = true, in.SSRC, in.SequenceNumber
		r.seqOff = dst.seq - in.SequenceNumber
		r.tsOff = ts - in.Timestamp
		dst.schedOwns = false
		marker = true
	}
	if int16(in.SequenceNumber-r.lastInSeq) > 0 {
		r.lastInSeq = in.SequenceNumber
	}
	h := rtp.Header{
		Version:        2,
		Marker:         marker,
		SequenceNumber: in.SequenceNumber + r.seqOff,
		Timestamp:      in.Timestamp + r.tsOff,
		SSRC:           dst.ssrc,
	}
	if event {
		h.PayloadType = dst.dtmfPT
	} else {
		h.PayloadType = dst.pt
	}
	n, err := h.MarshalTo(r.buf[:])
	if err != nil {
		return 0, to, false
	}
	out := r.buf[n : n+len(p.Payload)]
	switch {
	case event || in.PayloadType == dst.pt:
		copy(out, p.Payload)
	case in.PayloadType == PayloadPCMU:
		for i, c := range p.Payload {
			out[i] = g711.UlawToAlaw(c)
		}
		r.transcoded.Add(1)
	default:
		for i, c := range p.Payload {
			out[i] = g711.AlawToUlaw(c)
		}
		r.transcoded.Add(1)
	}

	if int16(h.SequenceNumber-dst.seq) >= 0 {
		dst.seq = h.SequenceNumber + 1
	}
	if !dst.sentAny || int32(h.Timestamp-dst.lastTS) > 0 {
		dst.lastTS = h.Timestamp
	}
	dst.sentAny, dst.lastFrame, dst.relayFrame = true, now, now
	return n + len(out), to, true
}
