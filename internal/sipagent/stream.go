package sipagent

import (
	"bytes"
	"context"
	"math"
	mrand "math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/pion/rtp"

	"github.com/hotline-project/hotline/media/g711"
)

// Payload types the agents send.
const (
	PCMU = 0   // G.711 μ-law
	PCMA = 8   // G.711 A-law
	DTMF = 101 // telephone-event, as Offer numbers it
)

// Stream is one outgoing RTP stream from a socket to an address: one SSRC, consecutive
// sequence numbers and a timestamp that advances by the samples sent, whatever mix of
// audio, silence and key presses goes out, and by the time that passed when it paused, as a
// phone's stream does. Its methods may be called from several goroutines.
type Stream struct {
	conn *net.UDPConn
	to   *net.UDPAddr
	ssrc uint32

	mu     sync.Mutex
	seq    uint16
	ts     uint32
	sample int       // tone phase: samples of tone sent so far
	first  bool      // the next packet is the stream's first (marker bit)
	last   time.Time // when the last packet went out
}

// pause is how long a stream may have sent nothing when Play or Press starts for that to
// be a new talkspurt: the timestamp then advances by the time that passed, as a phone's
// sampling clock does while it sends nothing, and the first packet carries the marker bit.
const pause = 100 * time.Millisecond

// NewStream is a stream from conn to to with SSRC ssrc (0 picks one at random), starting
// at a random sequence number and timestamp.
func NewStream(conn *net.UDPConn, to *net.UDPAddr, ssrc uint32) *Stream {
	if ssrc == 0 {
		ssrc = mrand.Uint32() | 1
	}
	return &Stream{conn: conn, to: to, ssrc: ssrc, seq: uint16(mrand.Uint32()), ts: mrand.Uint32(), first: true}
}

// NewStreamAt is NewStream going on from sequence number seq and timestamp ts: a stream
// already under way, so its first packet carries no marker bit.
func NewStreamAt(conn *net.UDPConn, to *net.UDPAddr, ssrc uint32, seq uint16, ts uint32) *Stream {
	s := NewStream(conn, to, ssrc)
	s.seq, s.ts, s.first = seq, ts, false
	return s
}

// SSRC returns the stream's synchronisation source.
func (s *Stream) SSRC() uint32 { return s.ssrc }

// Next returns the sequence number and timestamp the next packet will carry.
func (s *Stream) Next() (uint16, uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq, s.ts
}

// write sends one packet at timestamp ts; s.mu must be held.
func (s *Stream) write(pt uint8, marker bool, ts uint32, payload []byte) {
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, Marker: marker || s.first,
		SequenceNumber: s.seq, Timestamp: ts, SSRC: s.ssrc}, Payload: payload}
	b, _ := p.Marshal()
	_, _ = s.conn.WriteToUDP(b, s.to)
	s.seq++
	s.first = false
	s.last = time.Now()
}

// resume starts a new talkspurt if the stream paused (see pause); s.mu must be held.
func (s *Stream) resume() {
	if s.last.IsZero() {
		return
	}
	if idle := time.Since(s.last); idle > pause {
		frames := uint32(idle/(20*time.Millisecond)) - 1 // the last packet's frame was counted
		s.ts += 160 * frames
		s.first = true
	}
}

// Frame sends one 20 ms audio frame (payload, 160 samples) and advances the timestamp.
func (s *Stream) Frame(pt uint8, payload []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.write(pt, false, s.ts, payload)
	s.ts += 160
}

// Silence sends n frames of PCMU silence at once, without pacing: enough for the server to
// learn the stream's source.
func (s *Stream) Silence(n int) {
	frame := bytes.Repeat([]byte{0xFF}, 160)
	for range n {
		s.Frame(PCMU, frame)
	}
}

// Press sends one RFC 4733 key press with payload type pt the way phones do: a start packet
// (marker bit), two updates and three end packets, all at the press's timestamp, 5 ms
// apart; the press lasts four frames of the stream's time. Other frames wait while it is sent.
func (s *Stream) Press(pt uint8, event byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resume()
	start := s.ts
	for i := range 6 {
		end := i >= 3
		dur := uint16(160 * (i + 1))
		if end {
			dur = 160 * 3
		}
		flags := byte(10) // volume
		if end {
			flags |= 0x80
		}
		s.write(pt, i == 0, start, []byte{event, flags, byte(dur >> 8), byte(dur)})
		time.Sleep(5 * time.Millisecond)
	}
	s.ts += 160 * 4
}

// ToneFrame returns the next 20 ms of a sine tone at freq (0 for silence), G.711-encoded
// for pt (PCMA, otherwise PCMU), continuing the phase of the frames before it.
func (s *Stream) ToneFrame(pt uint8, freq float64) []byte {
	s.mu.Lock()
	n := s.sample
	s.sample += 160
	s.mu.Unlock()
	return toneFrame(pt, freq, n)
}

func toneFrame(pt uint8, freq float64, n int) []byte {
	payload := make([]byte, 160)
	for i := range payload {
		v := int16(8000 * math.Sin(2*math.Pi*freq*float64(n+i)/8000))
		if pt == PCMA {
			payload[i] = g711.EncodeAlaw(v)
		} else {
			payload[i] = g711.EncodeUlaw(v)
		}
	}
	return payload
}

// Play sends a tone at freq (0 for silence) as 20 ms frames in real time until ctx ends.
// Started after a pause, it starts a new talkspurt (see pause); a late tick within it
// does not.
func (s *Stream) Play(ctx context.Context, pt uint8, freq float64) {
	s.mu.Lock()
	s.resume()
	s.mu.Unlock()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		s.Frame(pt, s.ToneFrame(pt, freq))
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Start plays a tone at freq (0 for silence) in the background, as Play, until the
// returned stop is called; stop waits for the last frame to be sent and may be called twice.
func (s *Stream) Start(pt uint8, freq float64) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Play(ctx, pt, freq)
	}()
	return func() {
		cancel()
		<-done
	}
}
