package sipagent

import (
	"bytes"
	"math"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/hotline-project/hotline/media/g711"
)

// Packet is one RTP packet a Recorder received, with when and where from.
type Packet struct {
	At   time.Time
	From *net.UDPAddr
	Pkt  rtp.Packet
}

// Recorder keeps every RTP packet a socket receives until the socket is closed.
type Recorder struct {
	mu      sync.Mutex
	packets []Packet
}

// Record starts reading RTP from conn into a new Recorder; it stops when conn is closed.
// Datagrams that are not RTP are dropped. Where the system can (Linux), a packet's At is
// when the kernel received it, not when this process got round to reading it: a test
// that loads its own process (a flooder) then still measures the sender's pacing.
func Record(conn *net.UDPConn) *Recorder {
	r := &Recorder{}
	stamped := kernelTimestamps(conn)
	go func() {
		buf := make([]byte, 2048)
		oob := make([]byte, 128)
		for {
			n, oobn, _, from, err := conn.ReadMsgUDP(buf, oob)
			if err != nil {
				return
			}
			at := time.Now()
			if stamped {
				if t, ok := kernelTime(oob[:oobn]); ok {
					at = t
				}
			}
			var p rtp.Packet
			if err := p.Unmarshal(append([]byte(nil), buf[:n]...)); err != nil {
				continue
			}
			r.Add(Packet{At: at, From: from, Pkt: p})
		}
	}()
	return r
}

// RecorderOf is a Recorder holding packets, for checking a recording offline.
func RecorderOf(packets ...Packet) *Recorder {
	return &Recorder{packets: packets}
}

// Add records p as received.
func (r *Recorder) Add(p Packet) {
	r.mu.Lock()
	r.packets = append(r.packets, p)
	r.mu.Unlock()
}

// Snapshot returns the packets received so far.
func (r *Recorder) Snapshot() []Packet {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Packet(nil), r.packets...)
}

// Len returns how many packets were received so far.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.packets)
}

// Source returns the address the last packet came from, or nil.
func (r *Recorder) Source() *net.UDPAddr {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.packets) == 0 {
		return nil
	}
	return r.packets[len(r.packets)-1].From
}

// Payload returns the payloads of all packets received so far, concatenated.
func (r *Recorder) Payload() []byte {
	var b []byte
	for _, p := range r.Snapshot() {
		b = append(b, p.Pkt.Payload...)
	}
	return b
}

// WaitFor waits until the caller has heard want (G.711 bytes, such as a prompt's; see
// Heard), or fails the test naming what after timeout.
func (r *Recorder) WaitFor(tb testing.TB, what string, want []byte, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if r.Heard(want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("did not hear %s within %v (%d packets received)", what, timeout, r.Len())
}

// FrameSize is the payload of a 20 ms G.711 frame.
const FrameSize = 160

// maxSkipped is the share of a recording's frames that may be missing for Heard to count
// it heard: 1 in 20.
const maxSkipped = 20

// Heard reports whether the audio received so far holds want: its exact bytes, or its 20 ms
// frames as consecutive packets with at most 1 in 20 frames missing (and never more than
// 5 in a row). A pacing scheduler that falls behind on a loaded machine skips ahead by whole
// frames (the server logs it); the frames it sent are still the recording's, in order.
func (r *Recorder) Heard(want []byte) bool {
	payload := r.Payload()
	if bytes.Contains(payload, want) {
		return true
	}
	var got [][]byte
	for _, p := range r.Snapshot() {
		if len(p.Pkt.Payload) == FrameSize {
			got = append(got, p.Pkt.Payload)
		}
	}
	return framesHeard(got, want)
}

// framesHeard reports whether want's frames appear among the packets got in order, as
// consecutive packets, with frames missing as Heard allows.
func framesHeard(got [][]byte, want []byte) bool {
	var frames [][]byte
	for len(want) > 0 {
		n := min(FrameSize, len(want))
		frames = append(frames, want[:n])
		want = want[n:]
	}
	if len(frames) < 2*maxSkipped {
		return false // too short to tell a skip from a different recording: exact only
	}
	allowed := len(frames) / maxSkipped
	for start := range got {
		// The recording may start with a skipped frame: try the first few as its start.
		for first := 0; first <= allowed && first < 5; first++ {
			if bytes.HasPrefix(got[start], frames[first]) && matchFrom(got[start:], frames[first:], allowed-first) {
				return true
			}
		}
	}
	return false
}

// matchFrom reports whether frames follow in got from its first packet on, with at most
// allowed frames (5 in a row) missing; got[0] matches frames[0].
func matchFrom(got, frames [][]byte, allowed int) bool {
	i, j, run := 0, 0, 0
	for j < len(frames) {
		if i < len(got) && bytes.HasPrefix(got[i], frames[j]) {
			i, j, run = i+1, j+1, 0
			continue
		}
		// frames[j] was not sent: skipped ahead.
		j, allowed, run = j+1, allowed-1, run+1
		if allowed < 0 || run > 5 {
			return false
		}
	}
	return true
}

// ToneLevel returns the power of freq relative to the whole signal (0..1) in the packets
// with payload type pt among the last n received (Goertzel).
func (r *Recorder) ToneLevel(pt uint8, freq float64, n int) float64 {
	pkts := r.Snapshot()
	return ToneLevel(pkts[max(0, len(pkts)-n):], pt, freq)
}

// ToneLevel returns the power of freq relative to the whole signal (0..1) in the G.711
// packets of pkts with payload type pt (PCMA, otherwise PCMU) (Goertzel).
func ToneLevel(pkts []Packet, pt uint8, freq float64) float64 {
	var samples []float64
	for _, p := range pkts {
		if p.Pkt.PayloadType != pt {
			continue
		}
		for _, b := range p.Pkt.Payload {
			if pt == PCMA {
				samples = append(samples, float64(g711.DecodeAlaw(b)))
			} else {
				samples = append(samples, float64(g711.DecodeUlaw(b)))
			}
		}
	}
	if len(samples) == 0 {
		return 0
	}
	w := 2 * math.Pi * freq / 8000
	coeff := 2 * math.Cos(w)
	var s1, s2, total float64
	for _, x := range samples {
		s0 := x + coeff*s1 - s2
		s2, s1 = s1, s0
		total += x * x
	}
	if total == 0 {
		return 0
	}
	power := s1*s1 + s2*s2 - coeff*s1*s2
	return power / (total * float64(len(samples)) / 2)
}

// WaitTone waits until the last second received carries freq as its main content (more
// than 0.8 of its power), or fails the test naming what after timeout.
func (r *Recorder) WaitTone(tb testing.TB, what string, pt uint8, freq float64, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	var level float64
	for time.Now().Before(deadline) {
		if level = r.ToneLevel(pt, freq, 50); level > 0.8 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("%s: %v Hz carries %.2f of the last second's power, want > 0.8", what, freq, level)
}
