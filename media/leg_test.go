package media

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

func TestLegPlay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		pt      uint8
		silence byte
	}{
		{"PCMU", PayloadPCMU, silenceUlaw},
		{"PCMA", PayloadPCMA, silenceAlaw},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, LegConfig{PayloadType: tt.pt})

			// Idle: silence, the marker on the leg's first packet only.
			var pkts []received
			for i := range 4 {
				p := readPacket(t, r.peer, time.Second)
				if p.pkt.Marker != (i == 0) {
					t.Errorf("idle packet %d marker = %v, want %v", i, p.pkt.Marker, i == 0)
				}
				if p.pkt.PayloadType != tt.pt || !isSilence(p.pkt.Payload, tt.silence) {
					t.Errorf("idle packet %d: pt %d payload %x, want pt %d and silence %#x",
						i, p.pkt.PayloadType, p.pkt.Payload, tt.pt, tt.silence)
				}
				pkts = append(pkts, p)
			}

			const frames = 60
			audio := prompt(frames)
			errc := make(chan error, 1)
			go func() { errc <- r.leg.Play(context.Background(), audio) }()

			var promptPkts []received
			for len(promptPkts) < frames {
				p := readPacket(t, r.peer, time.Second)
				pkts = append(pkts, p)
				if len(promptPkts) == 0 && isSilence(p.pkt.Payload, tt.silence) {
					continue
				}
				i := len(promptPkts)
				if want := audio[i*FrameSize : (i+1)*FrameSize]; !bytes.Equal(p.pkt.Payload, want) {
					t.Fatalf("prompt packet %d payload %x..., want %x...", i, p.pkt.Payload[:8], want[:8])
				}
				if p.pkt.Marker != (i == 0) {
					t.Errorf("prompt packet %d marker = %v, want %v", i, p.pkt.Marker, i == 0)
				}
				promptPkts = append(promptPkts, p)
			}
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("Play() = %v, want nil", err)
				}
			case <-time.After(time.Second):
				t.Fatal("Play did not return after its last frame")
			}
			after := readPacket(t, r.peer, time.Second)
			if !isSilence(after.pkt.Payload, tt.silence) {
				t.Errorf("packet after the prompt is not silence: %x", after.pkt.Payload)
			}
			pkts = append(pkts, after)

			for i := 1; i < len(pkts); i++ {
				prev, cur := pkts[i-1].pkt, pkts[i].pkt
				if cur.SequenceNumber != prev.SequenceNumber+1 {
					t.Errorf("packet %d seq %d after %d, want +1", i, cur.SequenceNumber, prev.SequenceNumber)
				}
				// Exactly one frame later, unless the machine stalled and the
				// scheduler skipped ahead, which the timestamps then reflect.
				d := cur.Timestamp - prev.Timestamp
				if d != FrameSize && (r.sched.Stats().Skips == 0 || d%FrameSize != 0 || d > 1<<20) {
					t.Errorf("packet %d timestamp %d after %d, want +%d (scheduler skips: %d)",
						i, cur.Timestamp, prev.Timestamp, FrameSize, r.sched.Stats().Skips)
				}
				if cur.SSRC != prev.SSRC {
					t.Errorf("packet %d SSRC %#x, was %#x", i, cur.SSRC, prev.SSRC)
				}
				if pkts[i].from != r.legAddr() {
					t.Errorf("packet %d from %v, want %v", i, pkts[i].from, r.legAddr())
				}
			}
			// Pacing: about 20 ms apart on average. Intervals across a skip
			// (a stall of the whole machine, seen as a timestamp jump) are
			// left out; without skips this is every interval.
			var span time.Duration
			intervals := 0
			for i := 1; i < frames; i++ {
				if promptPkts[i].pkt.Timestamp-promptPkts[i-1].pkt.Timestamp == FrameSize {
					span += promptPkts[i].at.Sub(promptPkts[i-1].at)
					intervals++
				}
			}
			if intervals < frames/2 {
				t.Fatalf("only %d of %d intervals without a skip", intervals, frames-1)
			}
			if mean := span / time.Duration(intervals); mean < 15*time.Millisecond || mean > 25*time.Millisecond {
				t.Errorf("mean inter-arrival over %d intervals = %v, want about 20ms", intervals, mean)
			}
			waitFor(t, time.Second, "Stats().PacketsSent to count every packet read", func() bool {
				return r.leg.Stats().PacketsSent >= uint64(len(pkts))
			})
		})
	}
}

// TestLegLearning: the strict RTP learning of learn.go on real sockets
// (https://github.com/hotline-project/hotline/issues/14).
func TestLegLearning(t *testing.T) {
	t.Parallel()
	r := newRig(t, LegConfig{Peer: loopback}) // the phone's SIP came from 127.0.0.1
	a := r.peer                               // signalled in SDP
	readPacket(t, a, time.Second)

	// A packet of a kind that was not negotiated (here PT 96) does not count.
	stray := newPeer(t)
	sendTo(t, stray, r.legAddr(), rtpBytes(t, 96, 1, 1000, 0x7777, true, make([]byte, 20)))
	waitFor(t, time.Second, "the stray packet to be dropped", func() bool { return r.leg.Stats().DroppedLearning == 1 })

	// The phone is behind NAT: its packets come from another port of its
	// address, and are not used until five in sequence have arrived over
	// 60 ms or more.
	b := newPeer(t)
	sent := 0
	for r.leg.Stats().PacketsReceived == 0 {
		if sent == 50 {
			t.Fatalf("not learned after %d in-sequence packets over %d ms", sent, 20*sent)
		}
		if sent > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		if sent == learnPackets-1 {
			// Give the leg time to read the packets sent so far: none may have been used.
			time.Sleep(30 * time.Millisecond)
			if got := r.leg.Stats().PacketsReceived; got != 0 {
				t.Fatalf("packet accepted after %d of %d probation packets", sent, learnPackets)
			}
		}
		sendTo(t, b, r.legAddr(), rtpBytes(t, 0, uint16(1+sent), 1000+160*uint32(sent), 0x1234, sent == 0, make([]byte, FrameSize)))
		sent++
		if sent >= learnPackets {
			// The run is long enough; it completes once its span is (under load the leg may
			// read several packets at once, and it takes a later one).
			waitForOrNot(50*time.Millisecond, func() bool { return r.leg.Stats().PacketsReceived == 1 })
		}
	}
	if st := r.leg.Stats(); st.DroppedLearning != uint64(sent) {
		t.Errorf("DroppedLearning = %d, want %d (the stray and the probation)", st.DroppedLearning, sent)
	}
	drain(t, b)
	if p := readPacket(t, b, time.Second); p.from != r.legAddr() {
		t.Errorf("packet to the learned source from %v, want %v", p.from, r.legAddr())
	}
	drain(t, a)
	if p, ok := tryRead(t, a, 100*time.Millisecond); ok {
		t.Errorf("signalled address still receives after learning: seq %d", p.pkt.SequenceNumber)
	}

	// Another source (here another port of the same address) is now
	// foreign however well it behaves: dropped, counted, unanswered.
	c := newPeer(t)
	for i := range 8 {
		sendTo(t, c, r.legAddr(), rtpBytes(t, 0, uint16(i), 1000+160*uint32(i), 0x9999, false, make([]byte, FrameSize)))
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(t, time.Second, "foreign packets to be counted", func() bool { return r.leg.Stats().DroppedForeign == 8 })
	if p, ok := tryRead(t, c, 50*time.Millisecond); ok {
		t.Errorf("foreign source got a packet: seq %d", p.pkt.SequenceNumber)
	}

	// A new SSRC from the learned source is accepted.
	sendTo(t, b, r.legAddr(), rtpBytes(t, 0, 500, 9000, 0x5678, true, make([]byte, FrameSize)))
	waitFor(t, time.Second, "the new SSRC to be accepted", func() bool { return r.leg.Stats().PacketsReceived == 2 })

	// The signalled address is tied more closely to the dialog than a
	// stream learned on probation: it takes over at once.
	sendTo(t, a, r.legAddr(), rtpBytes(t, 0, 1, 1000, 0x4242, true, make([]byte, FrameSize)))
	waitFor(t, time.Second, "the signalled address to take over", func() bool { return r.leg.Stats().PacketsReceived == 3 })
	readPacket(t, a, time.Second)
	sendTo(t, b, r.legAddr(), rtpBytes(t, 0, 501, 9160, 0x5678, false, make([]byte, FrameSize)))
	waitFor(t, time.Second, "the NAT stream to be foreign", func() bool { return r.leg.Stats().DroppedForeign == 9 })

	st := r.sched.Stats()
	if st.DroppedForeign != 9 || st.PacketsReceived != 3 || st.DroppedLearning != uint64(sent) {
		t.Errorf("scheduler totals: foreign %d received %d learning %d, want 9, 3 and %d",
			st.DroppedForeign, st.PacketsReceived, st.DroppedLearning, sent)
	}
}

// waitForOrNot polls cond for up to timeout and reports whether it held.
func waitForOrNot(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}

func TestLegSetRemote(t *testing.T) {
	t.Parallel()
	r := newRig(t, LegConfig{})
	a := r.peer
	sendTo(t, a, r.legAddr(), rtpBytes(t, 0, 1, 1000, 1, false, make([]byte, FrameSize)))
	waitFor(t, time.Second, "learning", func() bool { return r.leg.Stats().PacketsReceived == 1 })

	// A re-INVITE with the same address keeps the learned source.
	r.leg.SetRemote(addrOf(a))
	sendTo(t, a, r.legAddr(), rtpBytes(t, 0, 2, 1160, 1, false, make([]byte, FrameSize)))
	waitFor(t, time.Second, "the same source still accepted", func() bool { return r.leg.Stats().PacketsReceived == 2 })

	// A re-INVITE moves the media to c.
	c := newPeer(t)
	r.leg.SetRemote(addrOf(c))
	readPacket(t, c, time.Second)
	drain(t, a)
	if _, ok := tryRead(t, a, 100*time.Millisecond); ok {
		t.Error("old address still receives after SetRemote")
	}
	// Learning starts over: one packet from elsewhere is not enough; c's
	// first packet is.
	d := newPeer(t)
	sendTo(t, d, r.legAddr(), rtpBytes(t, 0, 1, 1000, 2, false, make([]byte, FrameSize)))
	waitFor(t, time.Second, "d's packet held back", func() bool { return r.leg.Stats().DroppedLearning == 1 })
	sendTo(t, c, r.legAddr(), rtpBytes(t, 0, 1, 1000, 3, false, make([]byte, FrameSize)))
	waitFor(t, time.Second, "learning c", func() bool { return r.leg.Stats().PacketsReceived == 3 })
	sendTo(t, a, r.legAddr(), rtpBytes(t, 0, 3, 1320, 1, false, make([]byte, FrameSize)))
	waitFor(t, time.Second, "a to be foreign", func() bool { return r.leg.Stats().DroppedForeign == 1 })
}

func TestLegDropsInvalid(t *testing.T) {
	t.Parallel()
	r := newRig(t, LegConfig{DTMFPayloadType: 101})
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", []byte{}},
		{"short", []byte{0x80, 0, 0, 1, 0}},
		{"version 1", append([]byte{0x40, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}, make([]byte, 160)...)},
		{"version 0", make([]byte, 172)},
		{"rtcp sender report", []byte{0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"csrc count beyond the packet", []byte{0x8f, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0}},
		{"padding beyond the packet", []byte{0xa0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0xff}},
		{"zero padding", []byte{0xa0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0}},
		{"extension beyond the packet", []byte{0x90, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0, 9}},
	}
	other := newPeer(t)
	for i, tt := range tests {
		sendTo(t, other, r.legAddr(), tt.b)
		want := uint64(i + 1)
		deadline := time.Now().Add(time.Second)
		for r.leg.Stats().DroppedInvalid != want && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		if got := r.leg.Stats().DroppedInvalid; got != want {
			t.Fatalf("%s: DroppedInvalid = %d, want %d", tt.name, got, want)
		}
	}
	if st := r.leg.Stats(); st.PacketsReceived != 0 || st.Digits != 0 {
		t.Errorf("invalid packets were accepted: %+v", st)
	}
	// Not latched: still sending to the signalled address.
	drain(t, r.peer)
	readPacket(t, r.peer, time.Second)
	if got := r.sched.Stats().DroppedInvalid; got != uint64(len(tests)) {
		t.Errorf("scheduler DroppedInvalid = %d, want %d", got, len(tests))
	}
}

func TestLegDTMF(t *testing.T) {
	t.Parallel()
	digits := make(chan rune, 16)
	r := newRig(t, LegConfig{DTMFPayloadType: 101, OnDigit: func(d rune) { digits <- d }})
	const ssrc = 0xabcd
	seq := uint16(0)
	send := func(pt uint8, ts uint32, payload []byte) {
		seq++
		sendTo(t, r.peer, r.legAddr(), rtpBytes(t, pt, seq, ts, ssrc, false, payload))
	}
	press := func(ts uint32, ev uint8, withStart bool) {
		if withStart {
			send(101, ts, eventBytes(Event{Event: ev, Volume: 10, Duration: 160}))
			send(101, ts, eventBytes(Event{Event: ev, Volume: 10, Duration: 320}))
		}
		for range 3 {
			send(101, ts, eventBytes(Event{Event: ev, End: true, Volume: 10, Duration: 640}))
		}
	}
	send(0, 0, make([]byte, FrameSize))
	press(1000, 5, true)
	send(0, 2000, make([]byte, FrameSize))
	press(3000, 5, true)                                    // the same key again
	press(5000, 11, false)                                  // start packets lost
	send(101, 1000, eventBytes(Event{Event: 5, End: true})) // a late end of the first press
	send(101, 7000, []byte{1, 2})                           // malformed, ignored

	// A foreign source's digits are never seen.
	other := newPeer(t)
	sendTo(t, other, r.legAddr(), rtpBytes(t, 101, 1, 9000, 1, false, eventBytes(Event{Event: 9})))

	var got []rune
	timeout := time.After(2 * time.Second)
	for len(got) < 3 {
		select {
		case d := <-digits:
			got = append(got, d)
		case <-timeout:
			t.Fatalf("digits = %q, want %q", string(got), "55#")
		}
	}
	waitFor(t, time.Second, "the foreign packet", func() bool { return r.leg.Stats().DroppedForeign == 1 })
	select {
	case d := <-digits:
		got = append(got, d)
	case <-time.After(50 * time.Millisecond):
	}
	if string(got) != "55#" {
		t.Errorf("digits = %q, want %q", string(got), "55#")
	}
	if st := r.leg.Stats(); st.Digits != 3 {
		t.Errorf("Stats().Digits = %d, want 3", st.Digits)
	}
}

func TestLegInactivity(t *testing.T) {
	t.Parallel()
	// Long enough that a loaded machine delaying the test's own sends does
	// not end the leg early.
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name string
		// before acts on the leg and returns the moments at which it
		// restarted the inactivity clock (valid packets sent, resume).
		before  func(t *testing.T, r *rig) []time.Time
		timeout time.Duration
		wantEnd bool
	}{
		{"silent", func(*testing.T, *rig) []time.Time { return nil }, timeout, true},
		{"packets keep it up", func(t *testing.T, r *rig) []time.Time {
			var sent []time.Time
			for i := range 6 {
				time.Sleep(timeout / 6)
				sent = append(sent, time.Now())
				sendTo(t, r.peer, r.legAddr(), rtpBytes(t, 0, uint16(i), uint32(i)*160, 7, false, make([]byte, FrameSize)))
			}
			return sent
		}, timeout, true},
		{"foreign packets do not", func(t *testing.T, r *rig) []time.Time {
			sent := []time.Time{time.Now()}
			sendTo(t, r.peer, r.legAddr(), rtpBytes(t, 0, 0, 0, 7, false, make([]byte, FrameSize)))
			other := newPeer(t)
			for i := range 5 {
				sendTo(t, other, r.legAddr(), rtpBytes(t, 0, uint16(i), 0, 8, false, make([]byte, FrameSize)))
				time.Sleep(timeout / 10)
			}
			return sent
		}, timeout, true},
		{"receive suspended", func(t *testing.T, r *rig) []time.Time {
			r.leg.SetDirection(true, false)
			time.Sleep(2 * timeout)
			select {
			case <-r.leg.Done():
				t.Fatal("leg ended while receiving was suspended")
			default:
			}
			resumed := time.Now()
			r.leg.SetDirection(true, true)
			return []time.Time{resumed}
		}, timeout, true},
		{"no timeout", func(*testing.T, *rig) []time.Time { return nil }, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			created := time.Now()
			r := newRig(t, LegConfig{InactivityTimeout: tt.timeout})
			ended := make(chan time.Time, 1)
			go func() {
				<-r.leg.Done()
				ended <- time.Now()
			}()
			playErr := make(chan error, 1)
			go func() { playErr <- r.leg.Play(context.Background(), prompt(500)) }()
			restarts := append([]time.Time{created}, tt.before(t, r)...)
			select {
			case end := <-ended:
				if !tt.wantEnd {
					t.Fatalf("leg ended: %v", r.leg.Err())
				}
				// The leg may only end once the clock's last restart before
				// the end is a full timeout old. (Timing from the test's
				// side, so that a stalled machine cannot fail the test.)
				last := created
				for _, r := range restarts {
					if r.Before(end) {
						last = r
					}
				}
				if d := end.Sub(last); d < timeout-10*time.Millisecond {
					t.Errorf("leg ended %v after the last valid packet, want >= %v", d, timeout)
				}
			case <-time.After(timeout + time.Second):
				if tt.wantEnd {
					t.Fatal("leg did not end")
				}
				r.leg.Close()
				<-ended
			}
			err := <-playErr
			if !tt.wantEnd {
				if !errors.Is(err, ErrClosed) || errors.Is(err, ErrInactive) || r.leg.Err() != nil {
					t.Errorf("after Close: Play() = %v, Err() = %v; want ErrClosed and nil", err, r.leg.Err())
				}
				return
			}
			if !errors.Is(r.leg.Err(), ErrInactive) {
				t.Errorf("Err() = %v, want ErrInactive", r.leg.Err())
			}
			if !errors.Is(err, ErrClosed) || !errors.Is(err, ErrInactive) {
				t.Errorf("Play() = %v, want ErrClosed and ErrInactive", err)
			}
			if n := r.ports.InUse(); n != 0 {
				t.Errorf("ports in use after the timeout = %d, want 0", n)
			}
			if n := r.sched.Stats().Legs; n != 0 {
				t.Errorf("scheduler legs after the timeout = %d, want 0", n)
			}
		})
	}
}

func TestLegPlayCancel(t *testing.T) {
	t.Parallel()
	r := newRig(t, LegConfig{})
	audio := prompt(100)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- r.leg.Play(ctx, audio) }()

	heard := 0
	for heard < 5 {
		if p := readPacket(t, r.peer, time.Second); !isSilence(p.pkt.Payload, silenceUlaw) {
			heard++
		}
	}
	cancel() // a digit arrived
	start := time.Now()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Play() = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 50*time.Millisecond {
			t.Errorf("Play returned %v after cancel, want promptly", d)
		}
	case <-time.After(time.Second):
		t.Fatal("Play did not return after cancel")
	}
	silent := 0
	for silent < 5 {
		p := readPacket(t, r.peer, time.Second)
		if isSilence(p.pkt.Payload, silenceUlaw) {
			silent++
			continue
		}
		if silent > 0 {
			t.Fatal("prompt frame after silence following cancel")
		}
		heard++
	}
	// The frame after the fifth was due 20 ms after we read it; allow one
	// more for scheduling.
	if heard > 6 {
		t.Errorf("heard %d prompt frames, want at most 6 after cancelling at 5", heard)
	}
}

func TestLegPlayReplaced(t *testing.T) {
	t.Parallel()
	r := newRig(t, LegConfig{})
	first, second := prompt(100), bytes.Repeat([]byte{0x42}, 3*FrameSize)
	errc := make(chan error, 1)
	go func() { errc <- r.leg.Play(context.Background(), first) }()
	for isSilence(readPacket(t, r.peer, time.Second).pkt.Payload, silenceUlaw) {
	}
	if err := r.leg.Play(context.Background(), second); err != nil {
		t.Errorf("second Play() = %v, want nil", err)
	}
	if err := <-errc; !errors.Is(err, ErrReplaced) {
		t.Errorf("first Play() = %v, want ErrReplaced", err)
	}
	var got []received
	for {
		p := readPacket(t, r.peer, time.Second)
		if isSilence(p.pkt.Payload, silenceUlaw) {
			break
		}
		if p.pkt.Payload[0] == 0x42 {
			got = append(got, p)
		}
	}
	if len(got) != 3 || !got[0].pkt.Marker || got[1].pkt.Marker {
		t.Errorf("second prompt: %d packets (marker on first %v), want 3 with the marker on the first", len(got), len(got) > 0 && got[0].pkt.Marker)
	}
}

func TestLegPlayErrors(t *testing.T) {
	t.Parallel()
	r := newRig(t, LegConfig{})
	for _, n := range []int{0, 1, FrameSize - 1, FrameSize + 1} {
		if err := r.leg.Play(context.Background(), make([]byte, n)); !errors.Is(err, ErrBadAudio) {
			t.Errorf("Play(%d bytes) = %v, want ErrBadAudio", n, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.leg.Play(ctx, prompt(10)); !errors.Is(err, context.Canceled) {
		t.Errorf("Play(cancelled ctx) = %v, want context.Canceled", err)
	}
	if err := r.leg.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r.leg.Play(context.Background(), prompt(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Play after Close = %v, want ErrClosed", err)
	}
}

func TestLegClose(t *testing.T) {
	t.Parallel()
	r := newRig(t, LegConfig{})
	readPacket(t, r.peer, time.Second)
	if r.ports.InUse() != 1 || r.sched.Stats().Legs != 1 {
		t.Fatalf("before Close: %d ports, %d legs; want 1 and 1", r.ports.InUse(), r.sched.Stats().Legs)
	}
	for i := range 2 {
		if err := r.leg.Close(); err != nil {
			t.Errorf("Close #%d: %v", i+1, err)
		}
	}
	select {
	case <-r.leg.Done():
	default:
		t.Error("Done not closed after Close")
	}
	if err := r.leg.Err(); err != nil {
		t.Errorf("Err() after Close = %v, want nil", err)
	}
	if r.ports.InUse() != 0 || r.sched.Stats().Legs != 0 {
		t.Errorf("after Close: %d ports, %d legs; want 0 and 0", r.ports.InUse(), r.sched.Stats().Legs)
	}
	drain(t, r.peer)
	if _, ok := tryRead(t, r.peer, 60*time.Millisecond); ok {
		t.Error("packet sent after Close")
	}
}

func TestLegCloseFromOnDigit(t *testing.T) {
	t.Parallel()
	var leg *Leg
	ready := make(chan struct{})
	r := newRig(t, LegConfig{DTMFPayloadType: 101, OnDigit: func(rune) {
		<-ready
		leg.Close() // the IVR hangs up on a digit, from the receive goroutine
	}})
	leg = r.leg
	close(ready)
	sendTo(t, r.peer, r.legAddr(), rtpBytes(t, 101, 1, 1000, 1, false, eventBytes(Event{Event: 1})))
	select {
	case <-r.leg.Done():
	case <-time.After(time.Second):
		t.Fatal("Close from OnDigit did not end the leg")
	}
}

func TestLegHold(t *testing.T) {
	t.Parallel()
	r := newRig(t, LegConfig{})
	readPacket(t, r.peer, time.Second)
	last := readPacket(t, r.peer, time.Second)
	r.leg.SetDirection(false, true)
	time.Sleep(30 * time.Millisecond)
	for {
		p, ok := tryRead(t, r.peer, time.Millisecond)
		if !ok {
			break
		}
		last = p
	}
	if p, ok := tryRead(t, r.peer, 200*time.Millisecond); ok {
		t.Fatalf("packet sent on hold: seq %d", p.pkt.SequenceNumber)
	}
	r.leg.SetDirection(true, true)
	p := readPacket(t, r.peer, time.Second)
	if p.pkt.SequenceNumber != last.pkt.SequenceNumber+1 {
		t.Errorf("seq after hold = %d, want %d", p.pkt.SequenceNumber, last.pkt.SequenceNumber+1)
	}
	if d := p.pkt.Timestamp - last.pkt.Timestamp; d%FrameSize != 0 || d < 10*FrameSize {
		t.Errorf("timestamp advanced by %d over a 200 ms hold, want a multiple of %d >= %d", d, FrameSize, 10*FrameSize)
	}
	if !p.pkt.Marker {
		t.Error("no marker on the first packet after hold")
	}
}

func TestLegSetPayloadType(t *testing.T) {
	t.Parallel()
	r := newRig(t, LegConfig{})
	r.leg.SetPayloadType(PayloadPCMA)
	r.leg.SetPayloadType(3) // unsupported, ignored
	time.Sleep(25 * time.Millisecond)
	drain(t, r.peer)
	p := readPacket(t, r.peer, time.Second)
	if p.pkt.PayloadType != PayloadPCMA || !isSilence(p.pkt.Payload, silenceAlaw) {
		t.Errorf("after SetPayloadType(8): pt %d payload %x, want 8 and A-law silence", p.pkt.PayloadType, p.pkt.Payload[:4])
	}
}

func TestLegNoRemote(t *testing.T) {
	t.Parallel()
	// A leg without a remote address sends nothing until it learns one.
	r := &rig{sched: startScheduler(t, SchedulerOptions{Workers: 1})}
	min, max := testRange(t, 1)
	r.ports = NewPorts(loopback, min, max)
	leg, err := NewLeg(r.sched, r.ports, LegConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer leg.Close()
	r.leg = leg
	peer := newPeer(t)
	if _, ok := tryRead(t, peer, 60*time.Millisecond); ok {
		t.Fatal("packet with no remote")
	}
	leg.SetRemote(netip.AddrPortFrom(netip.MustParseAddr("::ffff:127.0.0.1"), addrOf(peer).Port()))
	if p := readPacket(t, peer, time.Second); !p.pkt.Marker {
		t.Error("the leg's first packet has no marker")
	}
}

func TestNewLegErrors(t *testing.T) {
	t.Parallel()
	s := NewScheduler(SchedulerOptions{Workers: 1})
	min, max := testRange(t, 1)
	ports := NewPorts(loopback, min, max)
	tests := []struct {
		name  string
		s     *Scheduler
		ports *Ports
		cfg   LegConfig
		want  error
	}{
		{"no scheduler", nil, ports, LegConfig{}, ErrInvalidConfig},
		{"no ports", s, nil, LegConfig{}, ErrInvalidConfig},
		{"GSM", s, ports, LegConfig{PayloadType: 3}, ErrPayloadType},
		{"telephone-event out of range", s, ports, LegConfig{DTMFPayloadType: 200}, ErrPayloadType},
		{"telephone-event in the RTCP range", s, ports, LegConfig{DTMFPayloadType: 72}, ErrPayloadType},
		{"telephone-event same as audio", s, ports, LegConfig{PayloadType: 8, DTMFPayloadType: 8}, ErrPayloadType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if l, err := NewLeg(tt.s, tt.ports, tt.cfg); !errors.Is(err, tt.want) {
				if l != nil {
					l.Close()
				}
				t.Errorf("NewLeg() error = %v, want %v", err, tt.want)
			}
		})
	}
	l, err := NewLeg(s, ports, LegConfig{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("NewLeg: %v", err)
	}
	defer l.Close()
	if l2, err := NewLeg(s, ports, LegConfig{}); !errors.Is(err, ErrNoPorts) {
		if l2 != nil {
			l2.Close()
		}
		t.Errorf("NewLeg with the range exhausted: error = %v, want ErrNoPorts", err)
	}
}

func TestSendFrameTimestamps(t *testing.T) {
	t.Parallel()
	// No running scheduler: the test drives the frame clock itself.
	s := NewScheduler(SchedulerOptions{Workers: 1})
	min, max := testRange(t, 1)
	peer := newPeer(t)
	l, err := NewLeg(s, NewPorts(loopback, min, max), LegConfig{Remote: addrOf(peer)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	frames := []uint64{5, 6, 7, 12, 13} // 8-11 skipped, as after a stall
	for _, f := range frames {
		l.sendFrame(f, l.worker)
	}
	var prev received
	for i, f := range frames {
		p := readPacket(t, peer, time.Second)
		if p.pkt.Marker != (i == 0) {
			t.Errorf("frame %d marker = %v", f, p.pkt.Marker)
		}
		if i > 0 {
			if p.pkt.SequenceNumber != prev.pkt.SequenceNumber+1 {
				t.Errorf("frame %d seq %d after %d, want +1", f, p.pkt.SequenceNumber, prev.pkt.SequenceNumber)
			}
			want := uint32(f-frames[i-1]) * FrameSize
			if d := p.pkt.Timestamp - prev.pkt.Timestamp; d != want {
				t.Errorf("frame %d timestamp +%d, want +%d", f, d, want)
			}
		}
		prev = p
	}
}

func FuzzHandlePacket(f *testing.F) {
	f.Add([]byte{0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff})
	f.Add([]byte{0x80, 101, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 5, 0x80, 0, 160})
	f.Add([]byte{0x90, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0})
	f.Add([]byte{0xa0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0xff})
	f.Add([]byte{0x8f, 0, 0, 1})
	src := netip.MustParseAddrPort("192.0.2.1:4000")
	f.Fuzz(func(t *testing.T, b []byte) {
		var digits int
		l := &Leg{
			sched:   NewScheduler(SchedulerOptions{Workers: 1}),
			log:     slog.New(slog.DiscardHandler),
			dtmfPT:  101,
			onDigit: func(rune) { digits++ },
			learn:   learner{signalled: src},
		}
		var st recvState
		l.handlePacket(&st, b, src)
		s := l.Stats()
		if s.PacketsReceived+s.DroppedInvalid+s.DroppedForeign+s.DroppedLearning != 1 {
			t.Fatalf("packet %x counted %+v, want exactly once", b, s)
		}
		if (s.PacketsReceived == 1) != (l.learn.learned && l.learn.src == src) {
			t.Fatalf("packet %x: received %d but learned %v to %v", b, s.PacketsReceived, l.learn.learned, l.learn.src)
		}
		if uint64(digits) != s.Digits || s.Digits > 1 {
			t.Fatalf("packet %x: %d OnDigit calls, Stats().Digits %d", b, digits, s.Digits)
		}
	})
}

// TestLegPanicEndsOnlyThatLeg: a fault on a leg's receive path ends that leg with ErrFailed;
// the process and the other legs go on.
func TestLegPanicEndsOnlyThatLeg(t *testing.T) {
	t.Parallel()
	bad := newRig(t, LegConfig{DTMFPayloadType: 101, OnDigit: func(rune) { panic("bug in a digit handler") }})
	good := newRig(t, LegConfig{})
	sendTo(t, bad.peer, bad.legAddr(), rtpBytes(t, 101, 1, 1000, 1, true, eventBytes(Event{Event: 1, Duration: 160})))
	select {
	case <-bad.leg.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("the failing leg did not end")
	}
	if !errors.Is(bad.leg.Err(), ErrFailed) {
		t.Fatalf("Err = %v, want ErrFailed", bad.leg.Err())
	}
	readPacket(t, good.peer, time.Second)
	select {
	case <-good.leg.Done():
		t.Fatal("the other leg ended too")
	default:
	}
}

// TestLegAfterDone: a function registered with AfterDone runs once when the leg ends, after
// Done is closed; one unregistered first never runs; one registered after the end runs at
// once. The sip call's watch of its leg relies on it instead of a goroutine per call
// (memory per call, issue 15).
func TestLegAfterDone(t *testing.T) {
	t.Parallel()
	r := newRig(t, LegConfig{})
	var ran, stopped, doneFirst atomic.Int32
	r.leg.AfterDone(func() {
		select {
		case <-r.leg.Done():
			doneFirst.Add(1)
		default:
		}
		ran.Add(1)
	})
	stop := r.leg.AfterDone(func() { stopped.Add(1) })
	if !stop() {
		t.Error("stop before the end reported false")
	}
	if stop() {
		t.Error("a second stop reported true")
	}
	if ran.Load() != 0 {
		t.Fatal("ran before the leg ended")
	}
	_ = r.leg.Close()
	_ = r.leg.Close()
	if ran.Load() != 1 || doneFirst.Load() != 1 {
		t.Errorf("ran %d times (%d after Done), want 1 (1)", ran.Load(), doneFirst.Load())
	}
	if stopped.Load() != 0 {
		t.Error("an unregistered function ran")
	}
	late := 0
	stop = r.leg.AfterDone(func() { late++ })
	if late != 1 {
		t.Errorf("registered after the end: ran %d times at once, want 1", late)
	}
	if stop() {
		t.Error("stop after it ran reported true")
	}
}

// TestLegStart: a prompt started with Start plays while nobody waits for it; its Done is
// closed with Err nil when it has played, and Stop ends another at once, with no frame of
// it after, Err context.Canceled. The call flow's menus and hold audio wait for prompts
// this way, without a goroutine per call (memory per call, issue 15).
func TestLegStart(t *testing.T) {
	t.Parallel()
	r := newRig(t, LegConfig{})
	short, err := r.leg.Start(prompt(3))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-short.Done():
		if err := short.Err(); err != nil {
			t.Errorf("Err() = %v after playing, want nil", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a three-frame prompt did not end")
	}
	long, err := r.leg.Start(prompt(100))
	if err != nil {
		t.Fatal(err)
	}
	if long.Err() != nil {
		t.Error("Err() set while playing")
	}
	drain(t, r.peer)
	heard := 0
	for heard < 3 {
		if p := readPacket(t, r.peer, time.Second); !isSilence(p.pkt.Payload, silenceUlaw) {
			heard++
		}
	}
	long.Stop()
	long.Stop()
	select {
	case <-long.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if !errors.Is(long.Err(), context.Canceled) {
		t.Errorf("Err() = %v after Stop, want context.Canceled", long.Err())
	}
	silent := 0
	for silent < 5 {
		p := readPacket(t, r.peer, time.Second)
		if isSilence(p.pkt.Payload, silenceUlaw) {
			silent++
		} else if silent > 0 {
			t.Fatal("prompt frame after silence following Stop")
		}
	}
	if _, err := r.leg.Start(make([]byte, 7)); !errors.Is(err, ErrBadAudio) {
		t.Errorf("Start(7 bytes) = %v, want ErrBadAudio", err)
	}
}
