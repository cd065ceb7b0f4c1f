package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/hotline-project/hotline/media/g711"
)

const (
	// FrameSize is the number of G.711 bytes (and samples, at 8 kHz) in
	// one 20 ms frame. Play takes audio in multiples of it.
	FrameSize = 160

	// PayloadPCMU and PayloadPCMA are the static RTP payload types of
	// G.711 mu-law and A-law (RFC 3551).
	PayloadPCMU uint8 = 0
	PayloadPCMA uint8 = 8

	rtpHeaderSize = 12   // no CSRC, no extension
	maxPacketSize = 1500 // larger datagrams are truncated and fail to parse

	// G.711 encodings of a zero sample, the silence sent between prompts.
	silenceUlaw byte = g711.SilenceUlaw
	silenceAlaw byte = g711.SilenceAlaw
)

var (
	silenceFrameUlaw = filled(silenceUlaw)
	silenceFrameAlaw = filled(silenceAlaw)

	// errClosedInactive is what Play returns when the leg timed out.
	errClosedInactive = fmt.Errorf("%w: %w", ErrClosed, ErrInactive)
)

func filled(b byte) *[FrameSize]byte {
	var f [FrameSize]byte
	for i := range f {
		f[i] = b
	}
	return &f
}

// LegConfig configures a Leg.
type LegConfig struct {
	// Remote is the address signalled in SDP: where to send until a source
	// is learned, and the one source learned from its first packet (see
	// learn.go). It may be the zero value until known (see SetRemote).
	Remote netip.AddrPort
	// LearnLater holds learning until StartLearning: set it when our SDP
	// (and so the leg's port) has not been sent yet, as on an inbound call
	// before its answer. Until then no packet can be the phone's, and none is
	// learned from, whoever sends it.
	LearnLater bool
	// Peer is the address of the dialog's signalling peer: where the
	// caller's INVITE came from, or the phone an outbound leg called. RTP
	// from it (any port: a NAT keeps one public address per phone) is
	// learned after a probation that streams from elsewhere cannot
	// disturb. It may be the zero value.
	Peer netip.Addr
	// PayloadType is what we send: 0 (PCMU) or 8 (PCMA).
	PayloadType uint8
	// DTMFPayloadType is the telephone-event payload type from the SDP, or
	// 0 for none.
	DTMFPayloadType uint8
	// InactivityTimeout ends the leg with ErrInactive when no valid RTP
	// arrives for this long; 0 means never.
	InactivityTimeout time.Duration
	// Inband is when key presses sent as tones in the audio are detected
	// (InbandDetector) and reported through OnDigit like RFC 4733 ones: never
	// (InbandOff, the zero value), on legs that negotiated no telephone-event
	// (InbandAuto), or always (InbandAlways).
	Inband InbandMode
	// OnDigit is called from the leg's receive goroutine for each RFC 4733
	// key press ('0'-'9', '*', '#', 'A'-'D'). It must not block: hand the
	// digit to a channel. It may call Close.
	OnDigit func(d rune)
	// Logger receives the leg's logs; nil discards them.
	Logger *slog.Logger
	// SRTP, if set, protects the leg's media (SDES keys from the SDP): every packet sent,
	// prompts, silence and relayed packets alike, is encrypted and authenticated, and every
	// packet received must authenticate (with replay protection) or is dropped and counted
	// as invalid. Nil is plain RTP.
	SRTP *SRTP
}

// LegStats are a leg's counters.
type LegStats struct {
	PacketsSent     uint64 // RTP packets sent: prompts, silence and packets relayed by a Bridge
	PacketsReceived uint64 // valid packets accepted from the learned source
	DroppedForeign  uint64 // packets from a source other than the learned one, once one is learned
	DroppedLearning uint64 // valid packets not used while no source is learned (on probation, or not negotiated)
	LearnResets     uint64 // probations restarted by another stream's packet (see learn.go)
	DroppedInvalid  uint64 // packets that were not valid RTP version 2, or failed SRTP authentication or the replay check
	Digits          uint64 // DTMF key presses detected
}

// Leg is one RTP call leg: a UDP port, the sending state the Scheduler
// drives, and one goroutine that reads the port.
//
// Sending: every 20 ms the scheduler sends the next 160-byte frame of the
// current prompt, or a frame of G.711 silence when there is none, which
// keeps the phone's jitter buffer and any NAT binding alive. Sequence
// numbers advance by one per packet sent and timestamps by 160 per frame
// period elapsed, sent or not (on hold, or when the scheduler skipped
// ahead). The marker bit is set on the leg's first packet, the first packet
// of each prompt and the first packet after a pause in sending.
//
// Receiving follows symmetric, strict RTP (learn.go): until a source is
// learned we send to the signalled address and use no packet; a source is
// learned from its first packet when it is the signalled address, else
// after a probation of several in-sequence packets of one stream; from
// then on we send only there and drop (and count) packets from any other
// source, never answering them.
//
// Bridging (NewBridge) hands the leg's stream to the relay of the other
// leg's packets, on the same SSRC with continuous sequence numbers and
// timestamps, and hands it back to the scheduler when the bridge ends.
type Leg struct {
	sched   *Scheduler
	ports   *Ports
	conn    *net.UDPConn
	port    int
	log     *slog.Logger
	onDigit func(rune)
	dtmfPT  uint8
	inband  InbandMode
	timeout time.Duration
	epoch   time.Time     // monotonic origin of lastValid
	srtp    *srtpContexts // nil for plain RTP

	// worker and slot are the leg's place in the scheduler, guarded by
	// Scheduler.mu.
	worker *worker
	slot   int

	// out relays what this leg receives to the other leg of its bridge;
	// nil when not bridged. Only the receive goroutine uses what it points
	// to.
	out atomic.Pointer[relay]
	// member takes what this leg receives into its conference; nil when
	// not in one. Set with conf.
	member atomic.Pointer[member]

	// wmu serializes building and writing this leg's packets, by the
	// scheduler and by a bridge's relay, so that they leave in sequence
	// order even when control of the stream passes from one to the other.
	// Lock order: wmu before mu.
	wmu sync.Mutex

	mu        sync.Mutex
	learn     learner // the signalled address and the learned source
	pt        uint8
	send      bool
	recv      bool
	ssrc      uint32
	seq       uint16
	ts0       uint32 // timestamp of frame frameBase
	frameBase uint64 // scheduler frame number of our first frame
	started   bool   // frameBase is set
	marker    bool   // set the marker bit on the next packet sent
	cur       *Playback
	closed    bool
	err       error // why the leg ended, set when closed

	// The stream's history, shared by the scheduler and a bridge's relay,
	// which take turns sending on the leg's SSRC.
	bridge     *Bridge // the bridge the leg is in, or nil
	conf       *member // the leg's place in a conference, or nil
	sentAny    bool    // a packet has been sent: lastTS and lastFrame are valid
	lastTS     uint32  // newest timestamp sent
	lastFrame  uint64  // scheduler frame (clock) when lastTS was sent
	relayFrame uint64  // scheduler frame of the last relayed packet, or of the bridge's start
	schedOwns  bool    // the scheduler sent last (or nothing was sent): ts0 and frameBase hold

	// buf is the outgoing packet, written only by the sending worker, with room for an
	// SRTP authentication tag.
	buf [rtpHeaderSize + FrameSize + maxAuthTagLen]byte

	lastValid atomic.Int64           // time of the last valid packet, ns since epoch
	beep      atomic.Pointer[func()] // WatchBeep's fn while watching

	sent, received, foreign, learning, resets, invalid, digits atomic.Uint64

	closeOnce  sync.Once
	done       chan struct{} // closed when the leg ends
	afters     []*func()     // AfterDone's functions, guarded by mu; nil once run
	aftersRan  bool          // shutdown has taken afters, guarded by mu
	recvDone   chan struct{} // closed when the receive goroutine returns
	inCallback atomic.Bool   // OnDigit is running on the receive goroutine
}

// finish ends the playback with err. Exactly one party calls it: whoever
// took the playback out of Leg.cur.
func (p *Playback) finish(err error) {
	p.err = err
	close(p.done)
}

// NewLeg allocates a port from ports, starts the leg's receive goroutine
// and registers the leg with s, which sends silence until Play is called.
// The caller must Close the leg.
func NewLeg(s *Scheduler, ports *Ports, cfg LegConfig) (*Leg, error) {
	if s == nil || ports == nil {
		return nil, fmt.Errorf("new leg: scheduler and ports are required: %w", ErrInvalidConfig)
	}
	if !validPayloadType(cfg.PayloadType) {
		return nil, fmt.Errorf("new leg: payload type %d: %w", cfg.PayloadType, ErrPayloadType)
	}
	if cfg.DTMFPayloadType > 127 || (cfg.DTMFPayloadType >= 64 && cfg.DTMFPayloadType <= 95) ||
		(cfg.DTMFPayloadType != 0 && cfg.DTMFPayloadType == cfg.PayloadType) {
		return nil, fmt.Errorf("new leg: telephone-event payload type %d: %w", cfg.DTMFPayloadType, ErrPayloadType)
	}
	var sc *srtpContexts
	if cfg.SRTP != nil {
		var err error
		if sc, err = newSRTPContexts(cfg.SRTP); err != nil {
			return nil, fmt.Errorf("new leg: %w", err)
		}
	}
	conn, err := ports.Listen()
	if err != nil {
		return nil, fmt.Errorf("new leg: %w", err)
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Leg{
		sched:     s,
		ports:     ports,
		conn:      conn,
		port:      port,
		log:       log.With("rtp_port", port),
		onDigit:   cfg.OnDigit,
		inband:    cfg.Inband,
		dtmfPT:    cfg.DTMFPayloadType,
		timeout:   cfg.InactivityTimeout,
		epoch:     time.Now(),
		srtp:      sc,
		learn:     learner{signalled: unmap(cfg.Remote), peer: cfg.Peer.Unmap(), held: cfg.LearnLater},
		pt:        cfg.PayloadType,
		send:      true,
		recv:      true,
		ssrc:      rand.Uint32(),
		seq:       uint16(rand.Uint32()),
		ts0:       rand.Uint32(),
		marker:    true,
		schedOwns: true,
		done:      make(chan struct{}),
		recvDone:  make(chan struct{}),
	}
	l.mu.Lock()
	l.armDeadlineLocked()
	l.mu.Unlock()
	// Register before the receive goroutine exists, so that a shutdown
	// from it (inactivity) always finds the leg registered.
	s.add(l)
	go l.receive()
	l.log.Debug("rtp leg opened", "remote", l.learn.signalled, "pt", l.pt, "srtp", sc != nil)
	return l, nil
}

// payloadCN is comfort noise (RFC 3389), which phones send during silence.
const payloadCN = 13

func validPayloadType(pt uint8) bool { return pt == PayloadPCMU || pt == PayloadPCMA }

// negotiatedLocked reports whether a received packet's payload type pt is
// one a source may be learned from: the negotiated audio codec,
// telephone-event, or comfort noise, which phones send in silence (a silent
// caller must still be heard). l.mu must be held.
func (l *Leg) negotiatedLocked(pt uint8) bool {
	return pt == l.pt || pt == payloadCN || (l.dtmfPT != 0 && pt == l.dtmfPT)
}

// sinceEpoch is the learner's clock.
func (l *Leg) sinceEpoch() time.Duration { return time.Since(l.epoch) }

func unmap(a netip.AddrPort) netip.AddrPort {
	if !a.IsValid() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// LocalPort returns the leg's RTP port, for the SDP answer.
func (l *Leg) LocalPort() int { return l.port }

// SetRemote changes the signalled remote address, after an SDP answer or a
// re-INVITE from the dialog's own peer (the SIP layer checks who sent it)
// moved the media. When addr differs from the signalled address, learning
// starts over: we send to addr until a source is learned (learn.go). The
// same address changes nothing, so a re-INVITE that refreshes the session
// or holds it keeps the learned source.
func (l *Leg) SetRemote(addr netip.AddrPort) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.learn.setSignalled(unmap(addr), time.Since(l.epoch)) {
		l.log.Debug("rtp remote changed, learning the source again", "remote", l.learn.signalled)
	}
}

// StartLearning lets a leg created with LearnLater learn its source: call it
// as our SDP is sent. It does nothing on other legs, or a second time.
func (l *Leg) StartLearning() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.learn.start(time.Since(l.epoch))
}

// SetDirection sets what the leg does, after SDP hold or resume: send=false
// stops sending (timestamps keep advancing, and a prompt in progress pauses
// until sending resumes); recv=false suspends the inactivity timeout, which
// restarts in full when recv is set again. Packets that arrive are handled
// either way.
func (l *Leg) SetDirection(send, recv bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if send && !l.send {
		l.marker = true
	}
	l.send = send
	if recv && !l.recv {
		l.lastValid.Store(int64(time.Since(l.epoch)))
	}
	l.recv = recv
	l.armDeadlineLocked()
}

// SetPayloadType changes the payload type we send, 0 (PCMU) or 8 (PCMA),
// after a re-INVITE changed the codec; other values are ignored. A prompt
// in progress keeps its bytes: the caller should Play it again in the new
// encoding.
func (l *Leg) SetPayloadType(pt uint8) {
	if !validPayloadType(pt) {
		l.log.Warn("ignoring unsupported rtp payload type", "pt", pt)
		return
	}
	l.mu.Lock()
	l.pt = pt
	l.mu.Unlock()
}

// Play sends audio, G.711 in the leg's payload type and a whole number of
// 160-byte frames, and blocks until its last frame has been sent (nil), ctx
// is done (ctx.Err(); no frame of the prompt is sent after Play returns,
// which is how a digit interrupts a prompt), another Play replaces it
// (ErrReplaced), the leg is bridged (ErrBridged, also returned at once
// while it is) or the leg ends (ErrClosed, also matching ErrInactive after
// a timeout). audio must not be modified until Play returns. On a leg in a
// Conference the prompt is mixed over the conference for this leg's phone
// alone.
func (l *Leg) Play(ctx context.Context, audio []byte) error {
	if err := checkAudio(audio); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	pb, err := l.Start(audio)
	if err != nil {
		return err
	}
	select {
	case <-pb.done:
		return pb.err
	case <-ctx.Done():
		return pb.stop(ctx.Err())
	}
}

// Playback is a prompt started with Start.
type Playback struct {
	l     *Leg
	audio []byte
	pos   int           // bytes sent, guarded by Leg.mu
	done  chan struct{} // closed by finish
	err   error         // set before done is closed
}

// Start starts sending audio as Play does, and returns at once: the Playback's Done is
// closed when Play would return, and Err is then what it would return (context.Canceled
// after Stop). It lets one goroutine wait for a prompt and for other events (the caller's
// keys, a queue's) together, where Play would take a goroutine of its own per call.
func (l *Leg) Start(audio []byte) (*Playback, error) {
	if err := checkAudio(audio); err != nil {
		return nil, err
	}
	pb := &Playback{l: l, audio: audio, done: make(chan struct{})}
	l.mu.Lock()
	if l.closed {
		err := l.closedErrLocked()
		l.mu.Unlock()
		return nil, err
	}
	if l.bridge != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("play on rtp port %d: %w", l.port, ErrBridged)
	}
	old := l.cur
	l.cur = pb
	l.marker = true
	l.mu.Unlock()
	if old != nil {
		old.finish(ErrReplaced)
	}
	return pb, nil
}

// checkAudio reports ErrBadAudio unless audio is whole frames, at least one.
func checkAudio(audio []byte) error {
	if len(audio) == 0 || len(audio)%FrameSize != 0 {
		return fmt.Errorf("play %d bytes: %w", len(audio), ErrBadAudio)
	}
	return nil
}

// Done is closed when the playback has ended.
func (p *Playback) Done() <-chan struct{} { return p.done }

// Err is why the playback ended (nil: played to the end); valid once Done is closed.
func (p *Playback) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Stop ends the playback if it is still playing: no frame of it is sent after Stop
// returns. It may be called any number of times.
func (p *Playback) Stop() { _ = p.stop(context.Canceled) }

// stop ends the playback with err unless it ended already, and returns why it ended.
func (p *Playback) stop(err error) error {
	l := p.l
	l.mu.Lock()
	mine := l.cur == p
	if mine {
		l.cur = nil
	}
	l.mu.Unlock()
	if !mine {
		// Someone else has taken it out (the last frame was just sent, it was
		// replaced, the leg closed) and finishes it.
		<-p.done
		return p.err
	}
	p.finish(err)
	return err
}

// Done returns a channel closed when the leg ends, by Close or inactivity.
func (l *Leg) Done() <-chan struct{} { return l.done }

// AfterDone arranges for f to be called once the leg has ended (after Done is closed), on
// the goroutine that ends it, or at once on this one if it has ended already; f must not
// block. stop unregisters f and reports whether that kept it from being called. It watches
// the leg's end without a goroutine waiting for it (at thousands of calls, each goroutine's
// stack is a share of the memory a call costs).
func (l *Leg) AfterDone(f func()) (stop func() bool) {
	p := &f
	l.mu.Lock()
	if l.aftersRan {
		l.mu.Unlock()
		f()
		return func() bool { return false }
	}
	l.afters = append(l.afters, p)
	l.mu.Unlock()
	return func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, q := range l.afters {
			if q == p {
				l.afters = append(l.afters[:i], l.afters[i+1:]...)
				return true
			}
		}
		return false
	}
}

// Err returns why the leg ended: nil while open and after Close,
// ErrInactive after the inactivity timeout.
func (l *Leg) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Close ends the leg: it stops sending, leaves the scheduler, closes the
// socket, waits for the receive goroutine (unless called from OnDigit) and
// releases the port. It is idempotent.
func (l *Leg) Close() error {
	err := l.shutdown(nil)
	if !l.inCallback.Load() {
		<-l.recvDone
	}
	if err != nil {
		return fmt.Errorf("close rtp leg on port %d: %w", l.port, err)
	}
	return nil
}

// shutdown ends the leg once, for reason (nil for Close).
func (l *Leg) shutdown(reason error) error {
	var err error
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.err = reason
		pb := l.cur
		l.cur = nil
		closedErr := l.closedErrLocked()
		br := l.bridge
		var conf *Conference
		if l.conf != nil {
			conf = l.conf.conf
		}
		l.mu.Unlock()

		if br != nil {
			// The other leg goes back to the scheduler.
			br.stop(fmt.Errorf("rtp leg on port %d ended: %w", l.port, closedErr))
		}
		if conf != nil {
			// The others go on without it.
			conf.Leave(l)
		}

		l.sched.remove(l)
		err = l.conn.Close()
		l.ports.Release(l.port)
		if pb != nil {
			pb.finish(closedErr)
		}
		close(l.done)
		l.mu.Lock()
		afters := l.afters
		l.afters, l.aftersRan = nil, true
		l.mu.Unlock()
		for _, f := range afters {
			(*f)()
		}
		l.log.Debug("rtp leg closed", "reason", reason, "sent", l.sent.Load(), "received", l.received.Load())
	})
	return err
}

func (l *Leg) closedErrLocked() error {
	if errors.Is(l.err, ErrInactive) {
		return errClosedInactive
	}
	return ErrClosed
}

// Stats returns the leg's counters.
func (l *Leg) Stats() LegStats {
	return LegStats{
		PacketsSent:     l.sent.Load(),
		PacketsReceived: l.received.Load(),
		DroppedForeign:  l.foreign.Load(),
		DroppedLearning: l.learning.Load(),
		LearnResets:     l.resets.Load(),
		DroppedInvalid:  l.invalid.Load(),
		Digits:          l.digits.Load(),
	}
}

// sendFrame builds and sends the leg's packet for scheduler frame number
// frame. It is called only by the leg's worker (and benchmarks), and does
// not allocate.
func (l *Leg) sendFrame(frame uint64, w *worker) {
	// Deferred so that a panic cannot leave it held and block a relay.
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	if !l.started {
		l.started = true
		l.frameBase = frame
	}
	if l.bridge != nil && frame < l.relayFrame+bridgeIdleFrames {
		// The relay carries the stream.
		l.mu.Unlock()
		return
	}
	if !l.schedOwns {
		// Take the stream back from a relay: continue its timestamps
		// from its newest packet, by the time that passed since.
		l.schedOwns = true
		l.frameBase = frame
		l.ts0 = l.lastTS + FrameSize*uint32(max(1, int64(frame)-int64(l.lastFrame)))
		l.marker = true
	}
	dst := l.learn.dest()
	if !l.send || !dst.IsValid() {
		// Nothing goes out; the timestamp of the next packet will still
		// reflect the time that passed.
		l.mu.Unlock()
		return
	}
	var (
		payload  []byte
		finished *Playback
	)
	if pb := l.cur; pb != nil && l.bridge == nil {
		payload = pb.audio[pb.pos : pb.pos+FrameSize]
		pb.pos += FrameSize
		if pb.pos >= len(pb.audio) {
			finished = pb
			l.cur = nil
		}
	} else if l.conf != nil {
		// The conference's mix alone.
	} else if l.pt == PayloadPCMA {
		payload = silenceFrameAlaw[:]
	} else {
		payload = silenceFrameUlaw[:]
	}
	h := rtp.Header{
		Version:        2,
		Marker:         l.marker,
		PayloadType:    l.pt,
		SequenceNumber: l.seq,
		Timestamp:      l.ts0 + uint32(frame-l.frameBase)*FrameSize,
		SSRC:           l.ssrc,
	}
	l.marker = false
	l.seq++
	l.sentAny, l.lastTS, l.lastFrame = true, h.Timestamp, frame
	n, err := h.MarshalTo(l.buf[:])
	if err == nil {
		if l.conf != nil {
			// The others' audio, with this leg's prompt (if any) over it.
			n += l.conf.render(frame, l.pt, payload, l.buf[n:])
		} else {
			n += copy(l.buf[n:], payload)
		}
	}
	l.mu.Unlock()

	pkt := l.buf[:n]
	if err == nil && l.srtp != nil {
		pkt, err = l.srtp.protect(l.buf[:], n)
	}
	if err == nil {
		_, err = l.conn.WriteToUDPAddrPort(pkt, dst)
	}
	switch {
	case err == nil:
		l.sent.Add(1)
		w.framesSent.Add(1)
	case errors.Is(err, net.ErrClosed):
		// Closed between the check above and the write.
	default:
		if w.sendErrors.Add(1)%1000 == 1 {
			l.log.Warn("rtp send failed", "remote", dst, "err", err)
		}
	}
	if finished != nil {
		finished.finish(nil)
	}
}

// armDeadlineLocked sets the socket's read deadline to when the leg
// becomes inactive, or clears it when there is no timeout or it is
// suspended. l.mu must be held.
func (l *Leg) armDeadlineLocked() {
	if l.closed {
		return
	}
	var t time.Time
	if l.timeout > 0 && l.recv {
		t = l.epoch.Add(time.Duration(l.lastValid.Load()) + l.timeout)
	}
	// Only fails on a closed socket, which the reader notices itself.
	_ = l.conn.SetReadDeadline(t)
}

// inactive reports whether the inactivity timeout has expired; if not, it
// re-arms the read deadline for the time left. The deadline is not moved
// on every packet, which would cost a timer update per packet: the reader
// wakes at the old deadline and finds a newer packet.
func (l *Leg) inactive() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.timeout <= 0 || !l.recv {
		l.armDeadlineLocked()
		return false
	}
	if time.Since(l.epoch) >= time.Duration(l.lastValid.Load())+l.timeout {
		return true
	}
	l.armDeadlineLocked()
	return false
}

// recvState is the receive goroutine's own state.
type recvState struct {
	buf     []byte // maxPacketSize
	pkt     rtp.Packet
	ssrc    uint32
	hasSSRC bool
	det     DTMFDetector
	// The in-band and beep detectors are allocated the first time a packet needs them
	// (a call without telephone-event; a callback's gate), and then kept: no allocation
	// per packet, and none at all on the other calls. Held by pointer, they keep the
	// receive goroutine's frame small: it is parked in its read for the whole call, and
	// the runtime halves a stack only when a quarter of it holds frames (memory per call,
	// README "Benchmarks").
	inband *InbandDetector
	beep   *BeepDetector
	beepFn *func() // the WatchBeep the detector is fed for
}

// receive is the leg's goroutine: it reads packets until the socket is
// closed or the leg times out.
func (l *Leg) receive() {
	defer close(l.recvDone)
	defer func() {
		// A bug on this goroutine must end this call's media, not the process.
		if r := recover(); r != nil {
			l.log.Error("panic in rtp receive", "panic", r, "stack", string(debug.Stack()))
			_ = l.shutdown(ErrFailed)
		}
	}()
	// On the heap, with the buffer: this goroutine is parked in the read below for the
	// whole call, and a small frame lets the runtime keep its stack at the minimum.
	st := newRecvState()
	errs := 0
	for {
		n, from, err := l.conn.ReadFromUDPAddrPort(st.buf)
		if err != nil {
			if l.readFailed(err, &errs) {
				return
			}
			continue
		}
		errs = 0
		l.handlePacket(st, st.buf[:n], unmap(from))
	}
}

// newRecvState allocates the receive goroutine's state and buffer.
//
//go:noinline
func newRecvState() *recvState {
	return &recvState{buf: make([]byte, maxPacketSize)}
}

// readFailed handles a failed read; it reports whether the leg's receiving is over (the
// socket closed, or the leg timed out). errs counts transient errors in a row.
//
//go:noinline
func (l *Leg) readFailed(err error, errs *int) (over bool) {
	switch {
	case errors.Is(err, net.ErrClosed):
		return true
	case errors.Is(err, os.ErrDeadlineExceeded):
		if l.inactive() {
			l.log.Info("rtp inactivity timeout", "timeout", l.timeout)
			_ = l.shutdown(ErrInactive)
			return true
		}
	default:
		// Transient (an ICMP error reported on the socket, for
		// example); back off if it persists so as not to spin.
		*errs++
		if *errs%100 == 1 {
			l.log.Warn("rtp read failed", "err", err)
		}
		if *errs > 10 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return false
}

// parseRTP parses b into pkt and reports whether it is an RTP version 2
// media packet. pion/rtp should never panic on bad input, but a packet
// from the network must never take the server down, so a panic counts as
// an invalid packet.
func parseRTP(pkt *rtp.Packet, b []byte) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	if len(b) < rtpHeaderSize || b[0]>>6 != 2 {
		return false
	}
	// Payload types 64-95 collide with RTCP packet types 192-223 when
	// RTCP is multiplexed on the RTP port (RFC 5761): not media.
	if pt := b[1] & 0x7f; pt >= 64 && pt <= 95 {
		return false
	}
	return pkt.Unmarshal(b) == nil
}

// handlePacket processes one datagram from from.
func (l *Leg) handlePacket(st *recvState, b []byte, from netip.AddrPort) {
	if l.srtp != nil {
		var ok bool
		if b, ok = l.srtp.unprotect(b); !ok {
			l.invalid.Add(1)
			l.sched.invalid.Add(1)
			return
		}
	}
	if !parseRTP(&st.pkt, b) {
		l.invalid.Add(1)
		l.sched.invalid.Add(1)
		return
	}
	h := &st.pkt.Header
	l.mu.Lock()
	v := l.learn.observe(from, h.SSRC, h.SequenceNumber, l.negotiatedLocked(h.PayloadType), l.sinceEpoch)
	resets, changed := l.learn.resets, l.learn.changed
	l.learn.resets, l.learn.changed = 0, false
	rank := l.learn.rank
	l.mu.Unlock()
	if resets > 0 {
		l.resets.Add(uint64(resets))
		l.sched.learnResets.Add(uint64(resets))
	}
	if changed {
		l.log.Debug("rtp source learned", "rank", rankName(rank))
	}
	switch v {
	case dropForeign:
		l.foreign.Add(1)
		l.sched.foreign.Add(1)
		return
	case dropLearning:
		l.learning.Add(1)
		l.sched.learning.Add(1)
		return
	}
	l.lastValid.Store(int64(time.Since(l.epoch)))
	l.received.Add(1)
	l.sched.received.Add(1)
	if r := l.out.Load(); r != nil {
		r.relay(&st.pkt)
	} else if m := l.member.Load(); m != nil {
		m.push(&st.pkt)
	}

	if f := l.beep.Load(); f != nil {
		l.feedBeep(st, f)
	}
	if !st.hasSSRC || h.SSRC != st.ssrc {
		// A new stream (the phone restarted it, or a transfer): its
		// telephone-event timestamps are unrelated to the old ones.
		st.hasSSRC, st.ssrc = true, h.SSRC
		st.det.Reset()
		if st.inband != nil {
			st.inband.Reset()
		}
	}
	if l.inband == InbandAlways || (l.inband == InbandAuto && l.dtmfPT == 0) {
		if pt := h.PayloadType; pt == 0 || pt == 8 {
			if st.inband == nil {
				st.inband = new(InbandDetector)
			}
			if d, ok := st.inband.FeedPayload(pt, st.pkt.Payload); ok {
				l.digit(d)
			}
			return
		}
	}
	if l.dtmfPT == 0 || h.PayloadType != l.dtmfPT {
		return
	}
	ev, err := ParseEvent(st.pkt.Payload)
	if err != nil {
		l.log.Debug("bad telephone-event packet", "err", err)
		return
	}
	d, ok := st.det.Feed(h.Timestamp, ev)
	if !ok {
		return
	}
	l.digit(d)
}

// WatchBeep calls fn once, on the receive goroutine, when the learned source's audio
// holds an answering machine's beep (BeepDetector); a later call replaces fn, nil stops
// watching. A callback's gate watches for it, so as to hang up before anything of the
// hotline is recorded as a message.
func (l *Leg) WatchBeep(fn func()) {
	if fn == nil {
		l.beep.Store(nil)
		return
	}
	l.beep.Store(&fn)
}

// feedBeep feeds a G.711 packet to the beep detector watching for f.
func (l *Leg) feedBeep(st *recvState, f *func()) {
	if st.beep == nil {
		st.beep = new(BeepDetector)
	}
	if st.beepFn != f {
		st.beep.Reset()
		st.beepFn = f
	}
	pt := st.pkt.PayloadType
	if (pt == 0 || pt == 8) && st.beep.FeedPayload(pt, st.pkt.Payload) && l.beep.CompareAndSwap(f, nil) {
		(*f)()
	}
}

// digit reports a key press detected on the receive goroutine.
func (l *Leg) digit(d rune) {
	l.digits.Add(1)
	l.sched.digits.Add(1)
	if l.onDigit != nil {
		l.inCallback.Store(true)
		l.onDigit(d)
		l.inCallback.Store(false)
	}
}
