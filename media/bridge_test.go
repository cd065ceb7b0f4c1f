package media

import (
	"context"
	"errors"
	"math"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/hotline-project/hotline/internal/testtool"
	"github.com/hotline-project/hotline/media/g711"
)

// phone is a test phone: a UDP socket that sends a G.711 tone to a leg
// every 20 ms, can send RFC 4733 events in the same stream, and records
// every packet it receives.
type phone struct {
	t    testing.TB
	conn *net.UDPConn
	leg  netip.AddrPort
	pt   uint8
	freq float64
	ssrc uint32

	mu     sync.Mutex // guards the stream below
	seq    uint16
	ts     uint32
	sample int
	sent   []time.Time // when each packet went out

	recvMu sync.Mutex
	got    []received

	stopSend chan struct{}
	sendWG   sync.WaitGroup
	recvWG   sync.WaitGroup
}

const toneAmplitude = 8000 // about -12 dBFS

func newPhone(t testing.TB, pt uint8, freq float64, ssrc uint32) *phone {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("listen phone: %v", err)
	}
	p := &phone{t: t, conn: c, pt: pt, freq: freq, ssrc: ssrc, seq: uint16(ssrc), ts: ssrc * 7, stopSend: make(chan struct{})}
	p.recvWG.Go(func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			var r received
			if err := r.pkt.Unmarshal(buf[:n]); err != nil {
				t.Errorf("phone got an unparsable packet %x: %v", buf[:n], err)
				continue
			}
			r.pkt.Payload = append([]byte(nil), r.pkt.Payload...)
			r.from, r.at = from, time.Now()
			p.recvMu.Lock()
			p.got = append(p.got, r)
			p.recvMu.Unlock()
		}
	})
	t.Cleanup(func() {
		p.stop()
		c.Close()
		p.recvWG.Wait()
	})
	return p
}

func (p *phone) addr() netip.AddrPort { return addrOf(p.conn) }

// start sends the tone to leg every 20 ms until stop.
func (p *phone) start(leg netip.AddrPort) {
	p.leg = leg
	p.sendWG.Go(func() {
		tick := time.NewTicker(frameDuration)
		defer tick.Stop()
		for {
			p.sendAudio()
			select {
			case <-p.stopSend:
				return
			case <-tick.C:
			}
		}
	})
}

func (p *phone) stop() {
	select {
	case <-p.stopSend:
	default:
		close(p.stopSend)
	}
	p.sendWG.Wait()
}

func (p *phone) write(pt uint8, marker bool, ts uint32, payload []byte) {
	pkt := rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: pt, Marker: marker, SequenceNumber: p.seq, Timestamp: ts, SSRC: p.ssrc},
		Payload: payload,
	}
	p.seq++
	b, err := pkt.Marshal()
	if err != nil {
		p.t.Errorf("marshal: %v", err)
		return
	}
	if _, err := p.conn.WriteToUDPAddrPort(b, p.leg); err != nil {
		p.t.Errorf("phone send: %v", err)
	}
	p.sent = append(p.sent, time.Now())
}

// longestPause returns the longest time between two packets the phone sent within
// [from, to] (and from the bounds to the nearest packet).
func (p *phone) longestPause(from, to time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var longest time.Duration
	last := from
	for _, at := range p.sent {
		if at.Before(from) || at.After(to) {
			continue
		}
		longest = max(longest, at.Sub(last))
		last = at
	}
	return max(longest, to.Sub(last))
}

func (p *phone) sendAudio() {
	p.mu.Lock()
	defer p.mu.Unlock()
	pcm := toneSamples(p.freq, p.sample, FrameSize)
	p.sample += FrameSize
	var payload []byte
	if p.pt == PayloadPCMA {
		payload = g711.AppendAlaw(nil, pcm)
	} else {
		payload = g711.AppendUlaw(nil, pcm)
	}
	p.write(p.pt, false, p.ts, payload)
	p.ts += FrameSize
}

// press sends one RFC 4733 key press as a phone does: a start packet with
// the marker bit, an update, and three copies of the end, all with the
// timestamp of the event's start.
func (p *phone) press(dtmfPT, code uint8) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ts := p.ts
	p.write(dtmfPT, true, ts, eventBytes(Event{Event: code, Volume: 10, Duration: 160}))
	p.write(dtmfPT, false, ts, eventBytes(Event{Event: code, Volume: 10, Duration: 320}))
	for range 3 {
		p.write(dtmfPT, false, ts, eventBytes(Event{Event: code, End: true, Volume: 10, Duration: 480}))
	}
}

func (p *phone) received() []received {
	p.recvMu.Lock()
	defer p.recvMu.Unlock()
	return append([]received(nil), p.got...)
}

func toneSamples(freq float64, from, n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(toneAmplitude * math.Sin(2*math.Pi*freq*float64(from+i)/8000))
	}
	return out
}

func decode(pt uint8, payload []byte) []int16 {
	out := make([]int16, len(payload))
	for i, c := range payload {
		if pt == PayloadPCMA {
			out[i] = g711.DecodeAlaw(c)
		} else {
			out[i] = g711.DecodeUlaw(c)
		}
	}
	return out
}

// goertzel returns the power of x at freq (8 kHz sampling), normalised so
// that a sine of amplitude A over a whole number of periods gives A²/4.
func goertzel(x []int16, freq float64) float64 {
	w := 2 * math.Pi * freq / 8000
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = float64(v)+c*s1-s2, s1
	}
	p := s1*s1 + s2*s2 - c*s1*s2
	n := float64(len(x))
	return p / (n * n)
}

// dominant returns the frequency, on a 10 Hz grid from 100 Hz to 3.9 kHz,
// with the most power in x.
func dominant(x []int16) float64 {
	best, bestP := 0.0, -1.0
	for f := 100.0; f < 3900; f += 10 {
		if p := goertzel(x, f); p > bestP {
			best, bestP = f, p
		}
	}
	return best
}

func rms(x []int16) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(x)))
}

// bridgeRig is a running scheduler and two legs, each latched by its phone.
type bridgeRig struct {
	sched      *Scheduler
	ports      *Ports
	a, b       *Leg
	pa, pb     *phone
	digitsA    chan rune
	digitsB    chan rune
	cfgA, cfgB LegConfig
}

func newBridgeRig(t *testing.T, cfgA, cfgB LegConfig) *bridgeRig {
	t.Helper()
	r := &bridgeRig{sched: startScheduler(t, SchedulerOptions{Workers: 2}), digitsA: make(chan rune, 16), digitsB: make(chan rune, 16)}
	min, max := testRange(t, 4)
	r.ports = NewPorts(loopback, min, max)
	r.pa = newPhone(t, cfgA.PayloadType, 440, 0x1111)
	r.pb = newPhone(t, cfgB.PayloadType, 1000, 0x2222)
	cfgA.Remote, cfgB.Remote = r.pa.addr(), r.pb.addr()
	if cfgA.OnDigit == nil {
		cfgA.OnDigit = func(d rune) { r.digitsA <- d }
	}
	if cfgB.OnDigit == nil {
		cfgB.OnDigit = func(d rune) { r.digitsB <- d }
	}
	r.cfgA, r.cfgB = cfgA, cfgB
	var err error
	if r.a, err = NewLeg(r.sched, r.ports, cfgA); err != nil {
		t.Fatalf("NewLeg a: %v", err)
	}
	if r.b, err = NewLeg(r.sched, r.ports, cfgB); err != nil {
		t.Fatalf("NewLeg b: %v", err)
	}
	t.Cleanup(func() {
		r.pa.stop()
		r.pb.stop()
		for _, l := range []*Leg{r.a, r.b} {
			if err := l.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
		if n := r.ports.InUse(); n != 0 {
			t.Errorf("ports in use after Close = %d, want 0", n)
		}
	})
	r.pa.start(netip.AddrPortFrom(loopback, uint16(r.a.LocalPort())))
	r.pb.start(netip.AddrPortFrom(loopback, uint16(r.b.LocalPort())))
	return r
}

// isTone reports whether payload is the given frequency, at about the
// tone's level, decoded with pt.
func isTone(pt uint8, payload []byte, freq float64) bool {
	x := decode(pt, payload)
	want := toneAmplitude / math.Sqrt2
	return len(x) == FrameSize && math.Abs(dominant(x)-freq) <= 10 && math.Abs(rms(x)-want) < 0.1*want
}

// countWhere counts the packets of p that satisfy f.
func countWhere(p *phone, f func(received) bool) int {
	n := 0
	for _, r := range p.received() {
		if f(r) {
			n++
		}
	}
	return n
}

func silentFor(pt uint8) byte {
	if pt == PayloadPCMA {
		return silenceAlaw
	}
	return silenceUlaw
}

// checkStream checks what a phone received from its leg: one SSRC, from
// the leg's address, sequence numbers without a gap, audio timestamps
// increasing, and the marker bit on the first packet of each change
// between silence and relayed audio.
func checkStream(t *testing.T, name string, got []received, leg netip.AddrPort, pt, dtmfPT uint8) {
	t.Helper()
	var prevAudio *received
	for i := range got {
		r := &got[i]
		if r.from != leg {
			t.Errorf("%s: packet %d from %v, want %v", name, i, r.from, leg)
		}
		if r.pkt.SSRC != got[0].pkt.SSRC {
			t.Errorf("%s: packet %d SSRC %#x, want %#x", name, i, r.pkt.SSRC, got[0].pkt.SSRC)
		}
		if i > 0 && r.pkt.SequenceNumber != got[i-1].pkt.SequenceNumber+1 {
			t.Errorf("%s: packet %d seq %d after %d, want +1", name, i, r.pkt.SequenceNumber, got[i-1].pkt.SequenceNumber)
		}
		switch r.pkt.PayloadType {
		case pt:
			if prevAudio != nil {
				if d := int32(r.pkt.Timestamp - prevAudio.pkt.Timestamp); d <= 0 {
					t.Errorf("%s: packet %d timestamp %d after %d", name, i, r.pkt.Timestamp, prevAudio.pkt.Timestamp)
				}
				silent := isSilence(r.pkt.Payload, silentFor(pt))
				if silent != isSilence(prevAudio.pkt.Payload, silentFor(pt)) && !r.pkt.Marker {
					t.Errorf("%s: packet %d switches between silence and relay without the marker bit", name, i)
				}
			}
			prevAudio = r
		case dtmfPT:
		default:
			t.Errorf("%s: packet %d payload type %d, want %d or %d", name, i, r.pkt.PayloadType, pt, dtmfPT)
		}
	}
}

func TestBridge(t *testing.T) {
	t.Parallel()
	// The phones' streams must not stall for half a second (bridgeIdleFrames), or the bridge
	// rightly fills the gap with silence and the transitions counted below are more.
	testtool.Alone(t)
	tests := []struct {
		name       string
		cfgA, cfgB LegConfig
		wantEvents bool // b negotiated telephone-event
	}{
		{
			name:       "pcmu to pcma",
			cfgA:       LegConfig{PayloadType: PayloadPCMU, DTMFPayloadType: 101},
			cfgB:       LegConfig{PayloadType: PayloadPCMA, DTMFPayloadType: 96},
			wantEvents: true,
		},
		{
			name: "pcma to pcmu, b without telephone-event",
			cfgA: LegConfig{PayloadType: PayloadPCMA, DTMFPayloadType: 101},
			cfgB: LegConfig{PayloadType: PayloadPCMU},
		},
		{
			name:       "same codec",
			cfgA:       LegConfig{PayloadType: PayloadPCMU, DTMFPayloadType: 101},
			cfgB:       LegConfig{PayloadType: PayloadPCMU, DTMFPayloadType: 101},
			wantEvents: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newBridgeRig(t, tt.cfgA, tt.cfgB)
			ptA, ptB := tt.cfgA.PayloadType, tt.cfgB.PayloadType
			silence := func(pt uint8) func(received) bool {
				return func(p received) bool { return isSilence(p.pkt.Payload, silentFor(pt)) }
			}
			waitFor(t, 3*time.Second, "scheduler silence on both phones", func() bool {
				return countWhere(r.pa, silence(ptA)) >= 5 && countWhere(r.pb, silence(ptB)) >= 5
			})
			if st := r.a.Stats(); st.PacketsReceived == 0 {
				t.Fatalf("leg a received nothing: %+v", st)
			}

			bridged := time.Now()
			br, err := NewBridge(r.a, r.b)
			if err != nil {
				t.Fatalf("NewBridge: %v", err)
			}
			tone := func(pt uint8, freq float64) func(received) bool {
				return func(p received) bool { return p.pkt.PayloadType == pt && isTone(pt, p.pkt.Payload, freq) }
			}
			waitFor(t, 3*time.Second, "the other phone's tone on both phones", func() bool {
				return countWhere(r.pb, tone(ptB, 440)) >= 10 && countWhere(r.pa, tone(ptA, 1000)) >= 10
			})

			// A foreign source's audio reaches neither phone.
			foreign := newPeer(t)
			alien := g711.AppendUlaw(nil, toneSamples(2000, 0, FrameSize))
			sendTo(t, foreign, netip.AddrPortFrom(loopback, uint16(r.a.LocalPort())), rtpBytes(t, PayloadPCMU, 1, 1, 99, false, alien))
			waitFor(t, time.Second, "the foreign packet dropped", func() bool { return r.a.Stats().DroppedForeign == 1 })

			// A key pressed on phone a crosses to phone b as telephone-event.
			r.pa.press(tt.cfgA.DTMFPayloadType, 11)
			select {
			case d := <-r.digitsA:
				if d != '#' {
					t.Errorf("leg a OnDigit(%q), want '#'", d)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("leg a detected no digit during the bridge")
			}
			if tt.wantEvents {
				waitFor(t, 2*time.Second, "5 telephone-event packets on phone b", func() bool {
					return countWhere(r.pb, func(p received) bool { return p.pkt.PayloadType == tt.cfgB.DTMFPayloadType }) >= 5
				})
			} else {
				waitFor(t, 2*time.Second, "5 telephone-event packets dropped", func() bool { return br.Stats().AToB.EventsDropped == 5 })
			}
			waitFor(t, 3*time.Second, "more of the tone after the key press", func() bool {
				return countWhere(r.pb, tone(ptB, 440)) >= 20
			})

			br.Unbridge()
			unbridged := time.Now()
			select {
			case <-br.Done():
			default:
				t.Fatal("Done not closed after Unbridge")
			}
			if err := br.Err(); err != nil {
				t.Errorf("Err after Unbridge = %v, want nil", err)
			}
			nA, nB := len(r.pa.received()), len(r.pb.received())
			waitFor(t, 3*time.Second, "silence on both phones after Unbridge", func() bool {
				return endsInSilence(r.pa, nA+5, ptA) && endsInSilence(r.pb, nB+5, ptB)
			})
			r.pa.stop()
			r.pb.stop()
			n := len(r.pb.received())
			waitFor(t, 2*time.Second, "more silence", func() bool { return len(r.pb.received()) >= n+3 })

			gotA, gotB := r.pa.received(), r.pb.received()
			checkStream(t, "phone a", gotA, netip.AddrPortFrom(loopback, uint16(r.a.LocalPort())), ptA, tt.cfgA.DTMFPayloadType)
			checkStream(t, "phone b", gotB, netip.AddrPortFrom(loopback, uint16(r.b.LocalPort())), ptB, tt.cfgB.DTMFPayloadType)

			// Both phones heard silence, then the other phone, then
			// silence again, and nothing else.
			for _, p := range []struct {
				name string
				got  []received
				pt   uint8
				from *phone // whose audio it hears while bridged
			}{{"phone a", gotA, ptA, r.pb}, {"phone b", gotB, ptB, r.pa}} {
				// A sender that stalled for bridgeIdleFrames (a loaded machine) rightly
				// gets its gap filled with silence: more changes, and nothing to judge.
				if pause := p.from.longestPause(bridged, unbridged); pause >= (bridgeIdleFrames-2)*frameDuration {
					t.Logf("%s: its peer paused %v while bridged (idle fill after %v): changes not counted", p.name, pause, bridgeIdleFrames*frameDuration)
					continue
				}
				changes := 0
				for i := 1; i < len(p.got); i++ {
					if isSilence(p.got[i].pkt.Payload, silentFor(p.pt)) != isSilence(p.got[i-1].pkt.Payload, silentFor(p.pt)) {
						changes++
					}
				}
				if changes != 2 {
					t.Errorf("%s: %d changes between silence and relayed packets, want 2", p.name, changes)
				}
			}

			// Every packet phone b received is silence, a's tone or a's
			// key press: nothing of the foreign source.
			var events []Event
			for i, p := range gotB {
				switch {
				case p.pkt.PayloadType == tt.cfgB.DTMFPayloadType && tt.wantEvents:
					ev, err := ParseEvent(p.pkt.Payload)
					if err != nil {
						t.Fatalf("phone b event packet %d: %v", i, err)
					}
					events = append(events, ev)
					if len(events) == 1 && !p.pkt.Marker {
						t.Errorf("first event packet has no marker bit")
					}
					if p.pkt.Timestamp != gotB[i-len(events)+1].pkt.Timestamp {
						t.Errorf("event packet %d timestamp %d, want the event's %d", len(events), p.pkt.Timestamp, gotB[i-len(events)+1].pkt.Timestamp)
					}
				case isSilence(p.pkt.Payload, silentFor(ptB)):
				case isTone(ptB, p.pkt.Payload, 440):
				default:
					t.Errorf("phone b packet %d (pt %d) is neither silence, the 440 Hz tone nor an event: dominant %v Hz", i, p.pkt.PayloadType, dominant(decode(ptB, p.pkt.Payload)))
				}
			}
			if tt.wantEvents {
				want := []Event{
					{Event: 11, Volume: 10, Duration: 160},
					{Event: 11, Volume: 10, Duration: 320},
					{Event: 11, End: true, Volume: 10, Duration: 480},
					{Event: 11, End: true, Volume: 10, Duration: 480},
					{Event: 11, End: true, Volume: 10, Duration: 480},
				}
				if len(events) != len(want) {
					t.Fatalf("phone b got events %+v, want %+v", events, want)
				}
				for i := range want {
					if events[i] != want[i] {
						t.Errorf("event packet %d = %+v, want %+v", i, events[i], want[i])
					}
				}
			}
			// Nothing of the key press comes back to phone a.
			for i, p := range gotA {
				if p.pkt.PayloadType != ptA {
					t.Errorf("phone a packet %d has payload type %d: an echo of its event?", i, p.pkt.PayloadType)
				}
			}
			st := br.Stats()
			if tt.cfgA.PayloadType != tt.cfgB.PayloadType && (st.AToB.Transcoded == 0 || st.BToA.Transcoded == 0) {
				t.Errorf("Stats() = %+v, want transcoded packets both ways", st)
			}
			if tt.cfgA.PayloadType == tt.cfgB.PayloadType && (st.AToB.Transcoded != 0 || st.BToA.Transcoded != 0) {
				t.Errorf("Stats() = %+v, want nothing transcoded", st)
			}
			if tt.wantEvents && st.AToB.Events != 5 {
				t.Errorf("Stats().AToB.Events = %d, want 5", st.AToB.Events)
			}
		})
	}
}

// endsInSilence reports whether p received at least n packets, the last
// three of them silence.
func endsInSilence(p *phone, n int, pt uint8) bool {
	got := p.received()
	if len(got) < n {
		return false
	}
	for _, r := range got[len(got)-3:] {
		if !isSilence(r.pkt.Payload, silentFor(pt)) {
			return false
		}
	}
	return true
}

func last(p *phone) received {
	got := p.received()
	if len(got) == 0 {
		return received{}
	}
	return got[len(got)-1]
}

// TestBridgeLegCloses: closing one leg during traffic ends the bridge, and
// the other leg goes back to the scheduler's silence and can play again.
func TestBridgeLegCloses(t *testing.T) {
	t.Parallel()
	r := newBridgeRig(t, LegConfig{PayloadType: PayloadPCMU, DTMFPayloadType: 101}, LegConfig{PayloadType: PayloadPCMA})
	waitFor(t, 3*time.Second, "both legs latched", func() bool {
		return r.a.Stats().PacketsReceived > 0 && r.b.Stats().PacketsReceived > 0
	})
	br, err := NewBridge(r.a, r.b)
	if err != nil {
		t.Fatalf("NewBridge: %v", err)
	}
	waitFor(t, 3*time.Second, "relayed audio", func() bool { return br.Stats().AToB.Packets > 5 && br.Stats().BToA.Packets > 5 })
	if err := r.b.Close(); err != nil {
		t.Fatalf("Close b: %v", err)
	}
	select {
	case <-br.Done():
	case <-time.After(time.Second):
		t.Fatal("the bridge did not end when a leg closed")
	}
	if !errors.Is(br.Err(), ErrClosed) {
		t.Errorf("Err = %v, want ErrClosed", br.Err())
	}
	n := len(r.pa.received())
	waitFor(t, 3*time.Second, "silence on phone a", func() bool {
		return len(r.pa.received()) >= n+5 && isSilence(last(r.pa).pkt.Payload, silenceUlaw)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := r.a.Play(ctx, prompt(2)); err != nil {
		t.Errorf("Play after the bridge ended = %v, want nil", err)
	}
	r.pa.stop()
	r.pb.stop()
	checkStream(t, "phone a", r.pa.received(), netip.AddrPortFrom(loopback, uint16(r.a.LocalPort())), PayloadPCMU, 101)
}

// TestBridgeConcurrentEnd ends bridges by Unbridge and Close at once, while
// both phones send; run with -race.
func TestBridgeConcurrentEnd(t *testing.T) {
	t.Parallel()
	for i := range 5 {
		r := newBridgeRig(t, LegConfig{PayloadType: PayloadPCMU, DTMFPayloadType: 101}, LegConfig{PayloadType: PayloadPCMA, DTMFPayloadType: 101})
		waitFor(t, 3*time.Second, "both legs latched", func() bool {
			return r.a.Stats().PacketsReceived > 0 && r.b.Stats().PacketsReceived > 0
		})
		br, err := NewBridge(r.a, r.b)
		if err != nil {
			t.Fatalf("NewBridge: %v", err)
		}
		var wg sync.WaitGroup
		wg.Go(func() { r.pa.press(101, 1) })
		wg.Go(br.Unbridge)
		wg.Go(br.Unbridge)
		wg.Go(func() { _ = r.a.Close() })
		if i%2 == 0 {
			wg.Go(func() { _ = r.b.Close() })
		}
		wg.Wait()
		<-br.Done()
		if _, err := NewBridge(r.a, r.b); !errors.Is(err, ErrClosed) {
			t.Errorf("NewBridge with a closed leg = %v, want ErrClosed", err)
		}
	}
}

func TestNewBridgeErrors(t *testing.T) {
	t.Parallel()
	s := startScheduler(t, SchedulerOptions{Workers: 1})
	min, max := testRange(t, 4)
	ports := NewPorts(loopback, min, max)
	peer := newPeer(t)
	newLeg := func() *Leg {
		l, err := NewLeg(s, ports, LegConfig{Remote: addrOf(peer)})
		if err != nil {
			t.Fatalf("NewLeg: %v", err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	a, b, c := newLeg(), newLeg(), newLeg()

	// A prompt playing when the bridge starts ends with ErrBridged.
	played := make(chan error, 1)
	go func() { played <- a.Play(context.Background(), prompt(500)) }()
	waitFor(t, 2*time.Second, "the prompt to start", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.cur != nil
	})
	br, err := NewBridge(a, b)
	if err != nil {
		t.Fatalf("NewBridge: %v", err)
	}
	if err := <-played; !errors.Is(err, ErrBridged) {
		t.Errorf("Play interrupted by the bridge = %v, want ErrBridged", err)
	}
	if err := a.Play(context.Background(), prompt(1)); !errors.Is(err, ErrBridged) {
		t.Errorf("Play while bridged = %v, want ErrBridged", err)
	}

	other := NewScheduler(SchedulerOptions{Workers: 1})
	d, err := NewLeg(other, ports, LegConfig{})
	if err != nil {
		t.Fatalf("NewLeg: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	tests := []struct {
		name string
		a, b *Leg
		want error
	}{
		{"nil", a, nil, ErrInvalidConfig},
		{"same leg", c, c, ErrInvalidConfig},
		{"other scheduler", c, d, ErrInvalidConfig},
		{"already bridged", c, b, ErrBridged},
		{"already bridged, other side", a, c, ErrBridged},
	}
	for _, tt := range tests {
		if _, err := NewBridge(tt.a, tt.b); !errors.Is(err, tt.want) {
			t.Errorf("%s: NewBridge = %v, want %v", tt.name, err, tt.want)
		}
	}
	br.Unbridge()
	br.Unbridge()
	br2, err := NewBridge(c, b)
	if err != nil {
		t.Fatalf("NewBridge after Unbridge: %v", err)
	}
	br.Unbridge() // the old bridge must not end the new one
	select {
	case <-br2.Done():
		t.Fatal("Unbridge of an old bridge ended the new one")
	default:
	}
	if b.out.Load() != br2.ba {
		t.Error("Unbridge of an old bridge cleared the new one's relay")
	}
	br2.Unbridge()
}

// TestBridgeTimestamps drives the scheduler's frames and the relay by hand
// and checks the exact sequence numbers and timestamps across the hand-over
// both ways.
func TestBridgeTimestamps(t *testing.T) {
	t.Parallel()
	s := NewScheduler(SchedulerOptions{Workers: 1}) // not running
	min, max := testRange(t, 2)
	ports := NewPorts(loopback, min, max)
	phoneB := newPeer(t)
	src := netip.MustParseAddrPort("127.0.0.1:9") // phone A, as signalled
	a, err := NewLeg(s, ports, LegConfig{PayloadType: PayloadPCMU, DTMFPayloadType: 101, Remote: src})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewLeg(s, ports, LegConfig{PayloadType: PayloadPCMU, DTMFPayloadType: 100, Remote: addrOf(phoneB)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	f := s.frameNow()
	for i := range uint64(3) {
		b.sendFrame(f+i, b.worker)
	}
	br, err := NewBridge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	b.sendFrame(f+3, b.worker) // the relay has the stream: nothing is sent
	var st recvState
	in := []struct {
		pt  uint8
		seq uint16
		ts  uint32
	}{
		{0, 65534, 4000000000}, {0, 65535, 4000000160}, {101, 0, 4000000320}, {101, 1, 4000000320},
		{0, 3, 4000000640}, // seq 2 lost
		{0, 2, 4000000480}, // and arrives late
	}
	for _, p := range in {
		a.handlePacket(&st, rtpBytes(t, p.pt, p.seq, p.ts, 7, false, eventOr(p.pt)), src)
	}
	br.Unbridge()
	b.sendFrame(f+4, b.worker)
	b.sendFrame(f+5, b.worker)

	var got []rtp.Packet
	for range 3 + len(in) + 2 {
		got = append(got, readPacket(t, phoneB, time.Second).pkt)
	}
	seq0, ts0 := got[0].SequenceNumber, got[0].Timestamp
	relayTS := got[3].Timestamp
	if d := int32(relayTS - got[2].Timestamp); d < FrameSize {
		t.Errorf("first relayed timestamp %d is %d after the last scheduled one, want >= %d", relayTS, d, FrameSize)
	}
	lastRelayed := relayTS + 640
	wants := []struct {
		pt     uint8
		seq    uint16
		ts     uint32
		marker bool
	}{
		{0, seq0, ts0, true}, {0, seq0 + 1, ts0 + 160, false}, {0, seq0 + 2, ts0 + 320, false},
		{0, seq0 + 3, relayTS, true}, {0, seq0 + 4, relayTS + 160, false}, {100, seq0 + 5, relayTS + 320, false}, {100, seq0 + 6, relayTS + 320, false},
		{0, seq0 + 8, relayTS + 640, false}, {0, seq0 + 7, relayTS + 480, false},
		// The scheduler again: the next sequence number after the newest
		// relayed, the timestamp at least a frame after the newest.
		{0, seq0 + 9, 0, true}, {0, seq0 + 10, 0, false},
	}
	for i, w := range wants {
		g := got[i]
		if g.PayloadType != w.pt || g.SequenceNumber != w.seq || g.Marker != w.marker || g.SSRC != got[0].SSRC {
			t.Errorf("packet %d: pt %d seq %d marker %v ssrc %#x, want pt %d seq %d marker %v ssrc %#x",
				i, g.PayloadType, g.SequenceNumber, g.Marker, g.SSRC, w.pt, w.seq, w.marker, got[0].SSRC)
		}
		if w.ts != 0 && g.Timestamp != w.ts {
			t.Errorf("packet %d: timestamp %d, want %d", i, g.Timestamp, w.ts)
		}
	}
	if d := int32(got[9].Timestamp - lastRelayed); d < FrameSize {
		t.Errorf("scheduler resumed at timestamp %d, %d after the newest relayed; want >= %d", got[9].Timestamp, d, FrameSize)
	}
	if d := got[10].Timestamp - got[9].Timestamp; d != FrameSize {
		t.Errorf("scheduler timestamps +%d, want +%d", d, FrameSize)
	}
}

func eventOr(pt uint8) []byte {
	if pt == 101 {
		return eventBytes(Event{Event: 3, Duration: 160})
	}
	return make([]byte, FrameSize)
}

// TestBridgeIdleFill: when the other phone sends nothing, the scheduler
// keeps the bridged leg's stream alive with silence after bridgeIdleFrames,
// and the relay takes it back, re-anchored, when packets come.
func TestBridgeIdleFill(t *testing.T) {
	t.Parallel()
	s := NewScheduler(SchedulerOptions{Workers: 1}) // not running
	min, max := testRange(t, 2)
	ports := NewPorts(loopback, min, max)
	phoneB := newPeer(t)
	a, err := NewLeg(s, ports, LegConfig{PayloadType: PayloadPCMU, Remote: netip.MustParseAddrPort("127.0.0.1:9")})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewLeg(s, ports, LegConfig{PayloadType: PayloadPCMU, Remote: addrOf(phoneB)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	br, err := NewBridge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Unbridge()
	f := s.frameNow()
	b.sendFrame(f+1, b.worker) // within the idle allowance: nothing
	b.sendFrame(f+bridgeIdleFrames, b.worker)
	b.sendFrame(f+bridgeIdleFrames+1, b.worker)
	var st recvState
	a.handlePacket(&st, rtpBytes(t, 0, 10, 100, 7, false, prompt(1)), netip.MustParseAddrPort("127.0.0.1:9"))
	var got []rtp.Packet
	for range 3 {
		got = append(got, readPacket(t, phoneB, time.Second).pkt)
	}
	if _, ok := tryRead(t, phoneB, 50*time.Millisecond); ok {
		t.Fatal("a packet was sent within the idle allowance")
	}
	if !isSilence(got[0].Payload, silenceUlaw) || !isSilence(got[1].Payload, silenceUlaw) || isSilence(got[2].Payload, silenceUlaw) {
		t.Errorf("got silence %v %v %v, want silence, silence, relayed audio",
			isSilence(got[0].Payload, silenceUlaw), isSilence(got[1].Payload, silenceUlaw), isSilence(got[2].Payload, silenceUlaw))
	}
	if got[1].SequenceNumber != got[0].SequenceNumber+1 || got[2].SequenceNumber != got[1].SequenceNumber+1 {
		t.Errorf("seqs %d %d %d, want consecutive", got[0].SequenceNumber, got[1].SequenceNumber, got[2].SequenceNumber)
	}
	if !got[2].Marker || int32(got[2].Timestamp-got[1].Timestamp) < FrameSize {
		t.Errorf("relayed packet marker %v timestamp +%d, want marker and >= +%d", got[2].Marker, int32(got[2].Timestamp-got[1].Timestamp), FrameSize)
	}
}

// TestBridgeFailure: a fault on a bridged leg's receive path ends that leg
// with ErrFailed and the bridge with it; the other leg goes on.
func TestBridgeFailure(t *testing.T) {
	t.Parallel()
	r := newBridgeRig(t,
		LegConfig{PayloadType: PayloadPCMU, DTMFPayloadType: 101, OnDigit: func(rune) { panic("bug in a digit handler") }},
		LegConfig{PayloadType: PayloadPCMU, DTMFPayloadType: 101})
	waitFor(t, 3*time.Second, "both legs latched", func() bool {
		return r.a.Stats().PacketsReceived > 0 && r.b.Stats().PacketsReceived > 0
	})
	br, err := NewBridge(r.a, r.b)
	if err != nil {
		t.Fatalf("NewBridge: %v", err)
	}
	r.pa.press(101, 1)
	select {
	case <-br.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("the bridge did not end")
	}
	if !errors.Is(r.a.Err(), ErrFailed) || !errors.Is(br.Err(), ErrClosed) {
		t.Errorf("leg Err = %v, bridge Err = %v; want ErrFailed, ErrClosed", r.a.Err(), br.Err())
	}
	n := len(r.pb.received())
	waitFor(t, 3*time.Second, "silence on phone b", func() bool {
		return len(r.pb.received()) >= n+3 && isSilence(last(r.pb).pkt.Payload, silenceUlaw)
	})
}

// BenchmarkRelay measures one packet through leg a's receive path
// (handlePacket: parse, latching check, relay, DTMF check) and out of leg
// b's socket to a sink.
func BenchmarkRelay(b *testing.B) {
	cases := []struct {
		name     string
		inPT     uint8
		ptA, ptB uint8
	}{
		{"pcmu-pcmu", 0, PayloadPCMU, PayloadPCMU},
		{"pcmu-pcma", 0, PayloadPCMU, PayloadPCMA},
		{"event", 101, PayloadPCMU, PayloadPCMU},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			s := NewScheduler(SchedulerOptions{Workers: 1}) // not running
			min, max := testRange(b, 2)
			ports := NewPorts(loopback, min, max)
			snk := newSink(b)
			src := netip.MustParseAddrPort("127.0.0.1:9") // phone A, as signalled
			la, err := NewLeg(s, ports, LegConfig{PayloadType: c.ptA, DTMFPayloadType: 101, Remote: src})
			if err != nil {
				b.Fatal(err)
			}
			defer la.Close()
			lb, err := NewLeg(s, ports, LegConfig{PayloadType: c.ptB, DTMFPayloadType: 100, Remote: addrOf(snk.conn)})
			if err != nil {
				b.Fatal(err)
			}
			defer lb.Close()
			br, err := NewBridge(la, lb)
			if err != nil {
				b.Fatal(err)
			}
			defer br.Unbridge()
			pkt := rtpBytes(b, c.inPT, 0, 0, 7, false, eventOr(c.inPT))
			var st recvState
			var seq uint16
			b.ReportAllocs()
			for b.Loop() {
				seq++
				pkt[2], pkt[3] = byte(seq>>8), byte(seq)
				la.handlePacket(&st, pkt, src)
			}
			if got := br.Stats().AToB.Packets; got == 0 || got != lb.Stats().PacketsSent {
				b.Fatalf("relayed %d, leg b sent %d", got, lb.Stats().PacketsSent)
			}
		})
	}
}

// FuzzBridgeRelay feeds arbitrary datagrams from the latched source into a
// bridged leg: nothing panics, and each accepted packet is relayed or
// counted as dropped exactly once.
func FuzzBridgeRelay(f *testing.F) {
	f.Add([]byte{0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff})
	f.Add([]byte{0x80, 8, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0xd5})
	f.Add([]byte{0x80, 101, 0, 3, 0, 0, 0, 1, 0, 0, 0, 1, 5, 0x80, 0, 160})
	f.Add([]byte{0x80, 13, 0, 4, 0, 0, 0, 1, 0, 0, 0, 1, 40})
	f.Add([]byte{0xa0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0xff, 0, 2})
	f.Add([]byte{0x90, 0, 0x80, 6, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0, 1})
	s := NewScheduler(SchedulerOptions{Workers: 1}) // not running
	min, max := testRange(f, 2)
	ports := NewPorts(loopback, min, max)
	snk := newSink(f)
	src := netip.MustParseAddrPort("127.0.0.1:9") // phone A, as signalled
	a, err := NewLeg(s, ports, LegConfig{PayloadType: PayloadPCMU, DTMFPayloadType: 101, Remote: src})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { a.Close() })
	b, err := NewLeg(s, ports, LegConfig{PayloadType: PayloadPCMA, DTMFPayloadType: 96, Remote: addrOf(snk.conn)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { b.Close() })
	br, err := NewBridge(a, b)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(br.Unbridge)
	var st recvState
	f.Fuzz(func(t *testing.T, pkt []byte) {
		count := func() uint64 {
			r := br.Stats().AToB
			return r.Packets + r.Dropped + r.EventsDropped
		}
		recv0, n0 := a.Stats().PacketsReceived, count()
		a.handlePacket(&st, pkt, src)
		accepted := a.Stats().PacketsReceived - recv0
		if handled := count() - n0; handled != accepted {
			t.Fatalf("packet %x: accepted %d, relayed or dropped %d", pkt, accepted, handled)
		}
	})
}

// TestBridgeDropEvents: with DropEvents on leg b (the advocate's), b's key presses are
// detected on b but never reach phone a (the caller), while a's still reach b and audio
// flows both ways.
func TestBridgeDropEvents(t *testing.T) {
	t.Parallel()
	r := newBridgeRig(t, LegConfig{DTMFPayloadType: 101}, LegConfig{DTMFPayloadType: 101})
	br, err := NewBridge(r.a, r.b)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Unbridge()
	br.DropEvents(r.b)
	r.pb.press(101, 5)
	select {
	case d := <-r.digitsB:
		if d != '5' {
			t.Errorf("leg b OnDigit(%q), want '5'", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("leg b detected no digit")
	}
	waitFor(t, 2*time.Second, "b's 5 event packets dropped", func() bool { return br.Stats().BToA.EventsDropped == 5 })
	r.pa.press(101, 1)
	waitFor(t, 2*time.Second, "a's key on phone b", func() bool {
		return countWhere(r.pb, func(p received) bool { return p.pkt.PayloadType == 101 }) >= 5
	})
	waitFor(t, 3*time.Second, "audio both ways", func() bool {
		return countWhere(r.pb, func(p received) bool { return isTone(PayloadPCMU, p.pkt.Payload, 440) }) >= 10 &&
			countWhere(r.pa, func(p received) bool { return isTone(PayloadPCMU, p.pkt.Payload, 1000) }) >= 10
	})
	if n := countWhere(r.pa, func(p received) bool { return p.pkt.PayloadType == 101 }); n != 0 {
		t.Errorf("phone a received %d telephone-event packets from b, want 0", n)
	}
}
