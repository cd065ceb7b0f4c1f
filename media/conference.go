package media

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/pion/rtp"

	"github.com/hotline-project/hotline/media/g711"
)

// Mode is how a participant takes part in a Conference.
type Mode uint8

const (
	// ModeNormal hears everyone and is heard by everyone.
	ModeNormal Mode = iota
	// ModeListen hears everyone and is heard by no one (a supervisor
	// listening in).
	ModeListen
	// ModeWhisper hears everyone and is heard only by the one participant
	// named in JoinOptions.WhisperTo (a supervisor coaching an advocate).
	ModeWhisper
)

// String returns the mode's name, as records and logs spell it.
func (m Mode) String() string {
	switch m {
	case ModeNormal:
		return "normal"
	case ModeListen:
		return "listen"
	case ModeWhisper:
		return "whisper"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// JoinOptions say how a leg takes part in a conference.
type JoinOptions struct {
	Mode Mode
	// WhisperTo is the participant who alone hears a ModeWhisper
	// participant; it must be in the conference. Ignored in other modes.
	WhisperTo *Leg
}

// Conference mixes the audio of any number of legs: every 20 ms each
// participant is sent the sum of what the others said, never its own voice.
//
// It runs on the legs' own Scheduler, adding no goroutine and no timer: the
// first participant whose frame falls due in a 20 ms frame period mixes
// that period for everyone (each participant's next frame taken from its
// jitter buffer, already decoded to linear on arrival, summed once in
// int32), and each participant's frame is then finished on its own phase:
// the total minus its own contribution, plus whoever whispers to it, plus
// the prompt it is being played if any, saturated to int16 and encoded in
// its leg's payload type. A participant is sent a frame every 20 ms whether
// anyone speaks or not, so its phone's jitter buffer and NAT binding stay
// fed.
//
// Received packets go into the participant's jitter buffer (jitter.go:
// ordered by sequence number, jitterDepth frames deep, a lost frame
// repeated then faded). RFC 4733 telephone-events and comfort noise are
// never mixed as audio and not passed on; each leg's DTMF detection
// (LegConfig.OnDigit) goes on as before. A prompt played on a participant's
// leg (Leg.Play) is heard by that participant only, over the conference.
//
// A leg is in one bridge or one conference at a time. Two-party calls
// should keep the Bridge, which relays without decoding; the conference is
// for three and more, or for a listener. A participant that leaves, or
// whose leg ends, is taken out between two mixes: the others do not
// notice, and a whisperer to it is heard by no one until given a new mode.
type Conference struct {
	sched *Scheduler
	log   *slog.Logger

	mu      sync.Mutex
	members []*member
	closed  bool
	mixed   bool   // frame is valid
	frame   uint64 // the scheduler frame last mixed
	total   [FrameSize]int32

	mixes   atomic.Uint64
	joins   atomic.Uint64
	departs JitterStats // the jitter counters of participants that left, guarded by mu
}

// member is one participant. Everything but leg and conf is guarded by
// Conference.mu.
type member struct {
	conf      *Conference
	leg       *Leg
	mode      Mode
	whisperTo *member
	jb        jitterBuffer
	in        *[FrameSize]int16 // this frame's audio from the participant, or nil
	gone      bool
}

// ConferenceStats are a conference's counters.
type ConferenceStats struct {
	Participants int    // participants now
	Joins        uint64 // participants that ever joined
	Mixes        uint64 // 20 ms frames mixed
	Jitter       JitterStats
}

// NewConference returns an empty conference on the scheduler s, which must
// be the scheduler of every leg that joins. log may be nil.
func NewConference(s *Scheduler, log *slog.Logger) *Conference {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Conference{sched: s, log: log}
}

// Join adds l, which must be open and in no bridge or conference
// (ErrClosed, ErrBridged, ErrInConference), to the conference. The
// participant is heard from its next packets on, after its jitter buffer
// has filled.
func (c *Conference) Join(l *Leg, opts JoinOptions) error {
	if l == nil || l.sched != c.sched {
		return fmt.Errorf("join conference: leg missing or on another scheduler: %w", ErrInvalidConfig)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return fmt.Errorf("join conference: %w", ErrConferenceClosed)
	case l.closed:
		return fmt.Errorf("join conference on rtp port %d: %w", l.port, ErrClosed)
	case l.bridge != nil:
		return fmt.Errorf("join conference on rtp port %d: %w", l.port, ErrBridged)
	case l.conf != nil:
		return fmt.Errorf("join conference on rtp port %d: %w", l.port, ErrInConference)
	}
	m := &member{conf: c, leg: l}
	if err := c.setModeLocked(m, opts); err != nil {
		return err
	}
	c.members = append(c.members, m)
	l.conf = m
	l.member.Store(m)
	c.joins.Add(1)
	c.log.Debug("rtp leg joined conference", "rtp_port", l.port, "mode", opts.Mode.String(), "participants", len(c.members))
	return nil
}

// SetMode changes how l, a participant, takes part (ErrNotInConference
// when it is not one).
func (c *Conference) SetMode(l *Leg, opts JoinOptions) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.findLocked(l)
	if m == nil {
		return fmt.Errorf("set conference mode: %w", ErrNotInConference)
	}
	return c.setModeLocked(m, opts)
}

func (c *Conference) setModeLocked(m *member, opts JoinOptions) error {
	var to *member
	switch opts.Mode {
	case ModeNormal, ModeListen:
	case ModeWhisper:
		if to = c.findLocked(opts.WhisperTo); to == nil || to == m {
			return fmt.Errorf("whisper: the participant to whisper to is not in the conference: %w", ErrInvalidConfig)
		}
	default:
		return fmt.Errorf("conference mode %d: %w", opts.Mode, ErrInvalidConfig)
	}
	m.mode, m.whisperTo = opts.Mode, to
	return nil
}

func (c *Conference) findLocked(l *Leg) *member {
	for _, m := range c.members {
		if m.leg == l && l != nil {
			return m
		}
	}
	return nil
}

// Leave takes l out of the conference; the scheduler then sends it silence
// (or its prompts) as before it joined. It does nothing when l is not a
// participant.
func (c *Conference) Leave(l *Leg) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := l.conf; m != nil && m.conf == c {
		c.removeLocked(m)
	}
}

// removeLocked takes m out; l.mu and c.mu are held.
func (c *Conference) removeLocked(m *member) {
	l := m.leg
	l.conf = nil
	l.member.CompareAndSwap(m, nil)
	m.gone = true
	c.departs.add(m.jb.stats())
	for i, o := range c.members {
		if o == m {
			c.members = append(c.members[:i:i], c.members[i+1:]...)
			break
		}
	}
	for _, o := range c.members {
		if o.whisperTo == m {
			o.whisperTo = nil // heard by no one until given a new mode
		}
	}
	c.log.Debug("rtp leg left conference", "rtp_port", l.port, "participants", len(c.members))
}

// Close takes every participant out and refuses new ones. It is
// idempotent.
func (c *Conference) Close() {
	c.mu.Lock()
	c.closed = true
	legs := make([]*Leg, 0, len(c.members))
	for _, m := range c.members {
		legs = append(legs, m.leg)
	}
	c.mu.Unlock()
	for _, l := range legs {
		c.Leave(l)
	}
}

// Len returns the number of participants.
func (c *Conference) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.members)
}

// Stats returns the conference's counters; the jitter counters are summed
// over every participant, present and past.
func (c *Conference) Stats() ConferenceStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := ConferenceStats{Participants: len(c.members), Joins: c.joins.Load(), Mixes: c.mixes.Load(), Jitter: c.departs}
	for _, m := range c.members {
		st.Jitter.add(m.jb.stats())
	}
	return st
}

func (s *JitterStats) add(o JitterStats) {
	s.Played += o.Played
	s.Concealed += o.Concealed
	s.Late += o.Late
	s.Dropped += o.Dropped
}

// push takes a packet the participant's phone sent, on its leg's receive
// goroutine. Only G.711 audio is buffered: telephone-events, comfort noise
// and anything else are not mixed.
func (m *member) push(p *rtp.Packet) {
	if !validPayloadType(p.PayloadType) {
		return
	}
	c := m.conf
	c.mu.Lock()
	if !m.gone {
		m.jb.push(p.SequenceNumber, p.PayloadType, p.Payload)
	}
	c.mu.Unlock()
}

// mixLocked takes every participant's next frame and sums those heard by
// all. c.mu is held.
func (c *Conference) mixLocked(frame uint64) {
	c.mixed, c.frame = true, frame
	c.mixes.Add(1)
	clear(c.total[:])
	for _, m := range c.members {
		m.in = m.jb.pop()
		if m.in == nil || m.mode != ModeNormal {
			continue
		}
		for i, v := range m.in {
			c.total[i] += int32(v)
		}
	}
}

// render writes into dst the participant's frame for scheduler frame
// number frame, encoded as pt, with prompt (a frame of G.711 in pt, or
// nil) mixed in for it alone, and returns its length. It mixes the frame
// for everyone if no participant has yet. It runs on the leg's worker with
// the leg's mu held (lock order: Leg.mu, then Conference.mu) and does not
// allocate.
func (m *member) render(frame uint64, pt uint8, prompt []byte, dst []byte) int {
	c := m.conf
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.mixed || frame > c.frame {
		// (A worker running late may render an older frame after a newer
		// mix: it sends the newer audio rather than mix twice.)
		c.mixLocked(frame)
	}
	var acc [FrameSize]int32
	acc = c.total
	if m.in != nil && m.mode == ModeNormal {
		for i, v := range m.in {
			acc[i] -= int32(v)
		}
	}
	for _, o := range c.members {
		if o.mode == ModeWhisper && o.whisperTo == m && o.in != nil {
			for i, v := range o.in {
				acc[i] += int32(v)
			}
		}
	}
	if prompt != nil {
		var pcm [FrameSize]int16
		decodeInto(&pcm, pt, prompt)
		for i, v := range pcm {
			acc[i] += int32(v)
		}
	}
	encodeInto(dst, pt, &acc)
	return FrameSize
}

// encodeInto encodes the sums in acc, saturated, as G.711 of payload type
// pt into dst[:FrameSize].
func encodeInto(dst []byte, pt uint8, acc *[FrameSize]int32) {
	dst = dst[:FrameSize]
	if pt == PayloadPCMA {
		for i, v := range acc {
			dst[i] = g711.EncodeAlaw(saturate(v))
		}
	} else {
		for i, v := range acc {
			dst[i] = g711.EncodeUlaw(saturate(v))
		}
	}
}

// saturate clamps a sum to the int16 range.
func saturate(v int32) int16 {
	return int16(max(-32768, min(32767, v)))
}
