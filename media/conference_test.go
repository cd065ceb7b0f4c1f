package media

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// confRig is a running scheduler and n legs, each with a phone sending
// its own tone, all in one conference.
type confRig struct {
	sched  *Scheduler
	ports  *Ports
	conf   *Conference
	legs   []*Leg
	phones []*phone
	digits chan rune
}

// newConfRig starts n phones sending tones freqs[i] (PCMA for the indexes
// in pcma) to n legs and joins every leg to one conference in mode
// ModeNormal.
func newConfRig(t *testing.T, freqs []float64, pcma ...int) *confRig {
	t.Helper()
	n := len(freqs)
	r := &confRig{sched: startScheduler(t, SchedulerOptions{Workers: 2}), digits: make(chan rune, 16)}
	min, max := testRange(t, n+2)
	r.ports = NewPorts(loopback, min, max)
	r.conf = NewConference(r.sched, nil)
	for i, f := range freqs {
		pt := PayloadPCMU
		if slices.Contains(pcma, i) {
			pt = PayloadPCMA
		}
		p := newPhone(t, pt, f, uint32(0x1000*(i+1)))
		l, err := NewLeg(r.sched, r.ports, LegConfig{Remote: p.addr(), PayloadType: pt, DTMFPayloadType: 101,
			OnDigit: func(d rune) { r.digits <- d }})
		if err != nil {
			t.Fatalf("NewLeg %d: %v", i, err)
		}
		r.legs, r.phones = append(r.legs, l), append(r.phones, p)
	}
	t.Cleanup(func() {
		for _, p := range r.phones {
			p.stop()
		}
		r.conf.Close()
		for _, l := range r.legs {
			if err := l.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
		if n := r.ports.InUse(); n != 0 {
			t.Errorf("ports in use after Close = %d, want 0", n)
		}
	})
	for i, l := range r.legs {
		if err := r.conf.Join(l, JoinOptions{}); err != nil {
			t.Fatalf("Join %d: %v", i, err)
		}
		r.phones[i].start(netip.AddrPortFrom(loopback, uint16(l.LocalPort())))
	}
	return r
}

// heard returns the audio phone p received after since, decoded.
func heard(p *phone, since time.Time) []int16 {
	var x []int16
	for _, r := range p.received() {
		if r.at.After(since) && validPayloadType(r.pkt.PayloadType) {
			x = append(x, decode(r.pkt.PayloadType, r.pkt.Payload)...)
		}
	}
	return x
}

// toneLevels listens to what each phone receives for window, after a
// settling time, and returns for each phone the power of every frequency
// relative to a tone of the phones' level (1 = the tone at full level).
func toneLevels(t *testing.T, phones []*phone, freqs []float64, window time.Duration) [][]float64 {
	t.Helper()
	time.Sleep(200 * time.Millisecond) // the jitter buffers fill, a mode change takes
	since := time.Now()
	time.Sleep(window)
	full := float64(toneAmplitude) * toneAmplitude / 4
	out := make([][]float64, len(phones))
	for i, p := range phones {
		x := heard(p, since)
		if len(x) < int(window/frameDuration)*FrameSize/2 {
			t.Fatalf("phone %d received %d samples in %v, want about %d", i, len(x), window, int(window/frameDuration)*FrameSize)
		}
		for _, f := range freqs {
			out[i] = append(out[i], goertzel(x, f)/full)
		}
	}
	return out
}

// checkHears fails unless each phone i hears exactly the frequencies j for
// which want(i, j) holds: at more than half the tone's power, and the
// others at less than 1 %.
func checkHears(t *testing.T, levels [][]float64, freqs []float64, want func(i, j int) bool) {
	t.Helper()
	for i := range levels {
		for j, lv := range levels[i] {
			switch w := want(i, j); {
			case w && lv < 0.5:
				t.Errorf("phone %d hears %v Hz at %.3f of full power, want it heard", i, freqs[j], lv)
			case !w && lv > 0.01:
				t.Errorf("phone %d hears %v Hz at %.3f of full power, want it not heard", i, freqs[j], lv)
			}
		}
	}
}

// TestConferenceEachHearsTheOthers: every participant hears every other's
// tone and not its own, with PCMU and PCMA legs in one conference.
func TestConferenceEachHearsTheOthers(t *testing.T) {
	t.Parallel()
	for _, freqs := range [][]float64{{400, 1000, 1700}, {400, 700, 1000, 1400, 1900}} {
		t.Run(fmt.Sprintf("%d-party", len(freqs)), func(t *testing.T) {
			t.Parallel()
			r := newConfRig(t, freqs, 1)
			levels := toneLevels(t, r.phones, freqs, 500*time.Millisecond)
			checkHears(t, levels, freqs, func(i, j int) bool { return i != j })
			for i, p := range r.phones {
				// One continuous stream from the leg: the mix is sent every
				// frame, silent or not.
				got := p.received()
				leg := netip.AddrPortFrom(loopback, uint16(r.legs[i].LocalPort()))
				for k, g := range got {
					if g.from != leg || g.pkt.SSRC != got[0].pkt.SSRC || g.pkt.PayloadType != p.pt {
						t.Fatalf("phone %d packet %d from %v SSRC %#x pt %d, want %v %#x %d", i, k, g.from, g.pkt.SSRC, g.pkt.PayloadType, leg, got[0].pkt.SSRC, p.pt)
					}
					if k > 0 && (g.pkt.SequenceNumber != got[k-1].pkt.SequenceNumber+1 || int32(g.pkt.Timestamp-got[k-1].pkt.Timestamp) <= 0) {
						t.Fatalf("phone %d packet %d seq %d ts %d after %d %d", i, k, g.pkt.SequenceNumber, g.pkt.Timestamp, got[k-1].pkt.SequenceNumber, got[k-1].pkt.Timestamp)
					}
				}
			}
			if st := r.conf.Stats(); st.Participants != len(freqs) || st.Mixes == 0 || st.Jitter.Played == 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestConferenceModes: a supervisor listening is heard by no one; whispering
// to the advocate, by the advocate only; back to normal, by both.
func TestConferenceModes(t *testing.T) {
	t.Parallel()
	freqs := []float64{400, 1000, 1700} // caller, advocate, supervisor
	const caller, advocate, supervisor = 0, 1, 2
	r := newConfRig(t, freqs)
	sup := r.legs[supervisor]

	if err := r.conf.SetMode(sup, JoinOptions{Mode: ModeListen}); err != nil {
		t.Fatal(err)
	}
	checkHears(t, toneLevels(t, r.phones, freqs, 400*time.Millisecond), freqs, func(i, j int) bool {
		return i != j && j != supervisor
	})

	if err := r.conf.SetMode(sup, JoinOptions{Mode: ModeWhisper, WhisperTo: r.legs[advocate]}); err != nil {
		t.Fatal(err)
	}
	checkHears(t, toneLevels(t, r.phones, freqs, 400*time.Millisecond), freqs, func(i, j int) bool {
		return i != j && (j != supervisor || i == advocate)
	})

	if err := r.conf.SetMode(sup, JoinOptions{Mode: ModeNormal}); err != nil {
		t.Fatal(err)
	}
	checkHears(t, toneLevels(t, r.phones, freqs, 400*time.Millisecond), freqs, func(i, j int) bool { return i != j })

	// The advocate leaves: the whisperer is heard by no one, the caller and
	// the supervisor (back in whisper mode) go on.
	if err := r.conf.SetMode(sup, JoinOptions{Mode: ModeWhisper, WhisperTo: r.legs[advocate]}); err != nil {
		t.Fatal(err)
	}
	r.conf.Leave(r.legs[advocate])
	r.phones[advocate].stop()
	lv := toneLevels(t, []*phone{r.phones[caller], r.phones[supervisor]}, freqs, 400*time.Millisecond)
	checkHears(t, lv, freqs, func(i, j int) bool { return i == 1 && j == caller })

	for _, bad := range []JoinOptions{
		{Mode: ModeWhisper},                       // to no one
		{Mode: ModeWhisper, WhisperTo: sup},       // to itself
		{Mode: ModeWhisper, WhisperTo: r.legs[1]}, // to one who left
		{Mode: Mode(9)},
	} {
		if err := r.conf.SetMode(sup, bad); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("SetMode(%+v) = %v, want ErrInvalidConfig", bad, err)
		}
	}
	if err := r.conf.SetMode(r.legs[advocate], JoinOptions{}); !errors.Is(err, ErrNotInConference) {
		t.Errorf("SetMode of a leg that left = %v, want ErrNotInConference", err)
	}
}

// TestConferenceLegEnds: a participant whose leg ends is taken out, and
// the others hear each other as before.
func TestConferenceLegEnds(t *testing.T) {
	t.Parallel()
	freqs := []float64{400, 1000, 1700, 2300}
	r := newConfRig(t, freqs)
	r.phones[3].stop()
	if err := r.legs[3].Close(); err != nil {
		t.Fatal(err)
	}
	if n := r.conf.Len(); n != 3 {
		t.Fatalf("participants after a leg closed = %d, want 3", n)
	}
	checkHears(t, toneLevels(t, r.phones[:3], freqs, 400*time.Millisecond), freqs, func(i, j int) bool {
		return i != j && j != 3
	})
}

// TestConferencePromptAndDTMF: a prompt played on a participant's leg is
// heard over the conference by that participant alone; its key presses
// are detected and reach no one else, as events or as audio.
func TestConferencePromptAndDTMF(t *testing.T) {
	t.Parallel()
	freqs := []float64{400, 1000, 1700}
	r := newConfRig(t, freqs)
	const promptFreq = 2300
	all := append(slices.Clone(freqs), promptFreq)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	played := make(chan error, 1)
	go func() {
		audio := toneFrames(PayloadPCMU, promptFreq, 50)
		played <- r.legs[1].Play(ctx, audio)
	}()
	time.Sleep(100 * time.Millisecond)
	since := time.Now()
	time.Sleep(400 * time.Millisecond)
	for i, p := range r.phones {
		x := heard(p, since)
		lv := goertzel(x, promptFreq) / (float64(toneAmplitude) * toneAmplitude / 4)
		if i == 1 && lv < 0.5 {
			t.Errorf("the leg playing the prompt hears it at %.3f", lv)
		}
		if i != 1 && lv > 0.01 {
			t.Errorf("phone %d hears another's prompt at %.3f", i, lv)
		}
	}
	if err := <-played; err != nil {
		t.Errorf("Play in a conference = %v, want nil", err)
	}

	r.phones[0].press(101, 5)
	select {
	case d := <-r.digits:
		if d != '5' {
			t.Errorf("digit %q, want '5'", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no digit detected from a participant")
	}
	time.Sleep(100 * time.Millisecond)
	for i, p := range r.phones {
		for _, got := range p.received() {
			if !validPayloadType(got.pkt.PayloadType) {
				t.Fatalf("phone %d received payload type %d, want audio only", i, got.pkt.PayloadType)
			}
		}
	}
	checkHears(t, toneLevels(t, r.phones, all, 300*time.Millisecond), all, func(i, j int) bool { return i != j && j < 3 })
}

// toneFrames returns n frames of a tone at the phones' level, encoded as pt.
func toneFrames(pt uint8, freq float64, n int) []byte {
	var out []byte
	for i := range n {
		pcm := toneSamples(freq, i*FrameSize, FrameSize)
		var f [FrameSize]int32
		for k, v := range pcm {
			f[k] = int32(v)
		}
		frame := make([]byte, FrameSize)
		encodeInto(frame, pt, &f)
		out = append(out, frame...)
	}
	return out
}

func TestConferenceJoinErrors(t *testing.T) {
	t.Parallel()
	r := newBridgeRig(t, LegConfig{}, LegConfig{})
	conf := NewConference(r.sched, nil)
	other := NewConference(NewScheduler(SchedulerOptions{Workers: 1}), nil)
	if err := other.Join(r.a, JoinOptions{}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Join on another scheduler = %v, want ErrInvalidConfig", err)
	}
	br, err := NewBridge(r.a, r.b)
	if err != nil {
		t.Fatal(err)
	}
	if err := conf.Join(r.a, JoinOptions{}); !errors.Is(err, ErrBridged) {
		t.Errorf("Join of a bridged leg = %v, want ErrBridged", err)
	}
	br.Unbridge()
	if err := conf.Join(r.a, JoinOptions{}); err != nil {
		t.Fatalf("Join after Unbridge = %v", err)
	}
	if err := conf.Join(r.a, JoinOptions{}); !errors.Is(err, ErrInConference) {
		t.Errorf("Join twice = %v, want ErrInConference", err)
	}
	if _, err := NewBridge(r.a, r.b); !errors.Is(err, ErrInConference) {
		t.Errorf("NewBridge of a leg in a conference = %v, want ErrInConference", err)
	}
	if err := conf.Join(r.b, JoinOptions{Mode: ModeWhisper, WhisperTo: r.b}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Join whispering to itself = %v, want ErrInvalidConfig", err)
	}
	conf.Close()
	conf.Close()
	if conf.Len() != 0 {
		t.Errorf("Len after Close = %d", conf.Len())
	}
	if err := conf.Join(r.b, JoinOptions{}); !errors.Is(err, ErrConferenceClosed) {
		t.Errorf("Join after Close = %v, want ErrConferenceClosed", err)
	}
	// Out of the conference, the leg bridges again.
	br, err = NewBridge(r.a, r.b)
	if err != nil {
		t.Fatalf("NewBridge after the conference closed = %v", err)
	}
	br.Unbridge()
	closed, err := NewLeg(r.sched, r.ports, LegConfig{Remote: r.pa.addr()})
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	if err := NewConference(r.sched, nil).Join(closed, JoinOptions{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Join of a closed leg = %v, want ErrClosed", err)
	}
}

func TestSaturate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   int32
		want int16
	}{{0, 0}, {32767, 32767}, {40000, 32767}, {-32768, -32768}, {-99999, -32768}, {-5, -5}} {
		if got := saturate(c.in); got != c.want {
			t.Errorf("saturate(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}
