package media

import (
	"net/netip"
	"testing"
	"time"
)

// pkt is one packet fed to a learner: its source, stream, whether its
// payload type was negotiated, its arrival time in ms, and the verdict
// wanted.
type pkt struct {
	from netip.AddrPort
	ssrc uint32
	seq  uint16
	bad  bool // payload type not negotiated
	at   int  // ms
	want verdict
}

var (
	sdpAddr  = netip.MustParseAddrPort("192.0.2.10:4000")    // signalled in SDP
	peerIP   = netip.MustParseAddr("198.51.100.7")           // where the INVITE came from
	natAddr  = netip.MustParseAddrPort("198.51.100.7:61000") // the phone's RTP behind NAT: peer IP, another port
	farAddr  = netip.MustParseAddrPort("203.0.113.5:30000")  // a phone behind a NAT with another address
	attacker = netip.MustParseAddrPort("127.0.0.66:5000")
	spray2   = netip.MustParseAddrPort("127.0.0.67:5000")
)

// stream returns n in-sequence packets of one stream, one every gap ms
// from at, each wanting want.
func stream(from netip.AddrPort, ssrc uint32, seq uint16, at, gap, n int, want verdict) []pkt {
	out := make([]pkt, n)
	for i := range out {
		out[i] = pkt{from: from, ssrc: ssrc, seq: seq + uint16(i), at: at + i*gap, want: want}
	}
	return out
}

// then sets the verdict wanted for the last packet of ps.
func then(ps []pkt, want verdict) []pkt {
	ps[len(ps)-1].want = want
	return ps
}

func cat(parts ...[]pkt) []pkt {
	var out []pkt
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// interleave alternates the packets of a and b, a first.
func interleave(a, b []pkt) []pkt {
	var out []pkt
	for i := 0; i < len(a) || i < len(b); i++ {
		if i < len(a) {
			out = append(out, a[i])
		}
		if i < len(b) {
			out = append(out, b[i])
		}
	}
	return out
}

func TestLearner(t *testing.T) {
	tests := []struct {
		name       string
		signalled  netip.AddrPort
		peer       netip.Addr
		packets    []pkt
		wantSrc    netip.AddrPort // invalid: nothing learned
		wantResets int
	}{
		{
			name:      "the signalled address is learned from its first packet",
			signalled: sdpAddr, peer: peerIP,
			packets: stream(sdpAddr, 1, 100, 0, 20, 3, accept),
			wantSrc: sdpAddr,
		},
		{
			name:      "behind NAT: learned after five in-sequence packets over 80 ms",
			signalled: sdpAddr, peer: peerIP,
			packets: cat(then(stream(natAddr, 1, 100, 0, 20, 5, dropLearning), accept), stream(natAddr, 1, 105, 100, 20, 2, accept)),
			wantSrc: natAddr,
		},
		{
			name:      "an address unrelated to the signalling is learned the same way, after the grace",
			signalled: sdpAddr, peer: peerIP,
			packets: then(stream(farAddr, 7, 65534, 1000, 20, 5, dropLearning), accept), // across the sequence wrap
			wantSrc: farAddr,
		},
		{
			name:    "without a signalled address or peer, probation still applies",
			packets: then(stream(farAddr, 7, 1, 1000, 20, 5, dropLearning), accept),
			wantSrc: farAddr,
		},
		{
			name:      "an address unrelated to the signalling is not learned within the grace",
			signalled: sdpAddr, peer: peerIP,
			packets: then(stream(attacker, 7, 1, 0, 20, 51, dropLearning), accept), // 0 to 1000 ms
			wantSrc: attacker,
		},
		{
			name:      "the peer's address needs no grace",
			signalled: sdpAddr, peer: peerIP,
			packets: then(stream(natAddr, 7, 1, 0, 20, 5, dropLearning), accept),
			wantSrc: natAddr,
		},
		{
			name:      "a burst does not complete probation",
			signalled: sdpAddr, peer: peerIP,
			packets: stream(attacker, 9, 1, 0, 1, 40, dropLearning),
		},
		{
			name:      "a burst followed by real-time packets learns once the span is reached",
			signalled: sdpAddr, peer: peerIP,
			packets: cat(stream(farAddr, 9, 1, 1000, 1, 5, dropLearning), then(stream(farAddr, 9, 6, 1020, 20, 3, dropLearning), accept)),
			wantSrc: farAddr,
		},
		{
			name:      "a payload type not negotiated never learns",
			signalled: sdpAddr, peer: peerIP,
			packets: func() []pkt {
				ps := stream(farAddr, 1, 1, 0, 20, 10, dropLearning)
				for i := range ps {
					ps[i].bad = true
				}
				return append(ps, pkt{from: sdpAddr, ssrc: 2, seq: 1, at: 200, bad: true, want: dropLearning})
			}(),
		},
		{
			name:      "one packet of the wrong type breaks the run",
			signalled: sdpAddr, peer: peerIP,
			packets: cat(stream(farAddr, 1, 1, 0, 20, 4, dropLearning),
				[]pkt{{from: farAddr, ssrc: 1, seq: 5, at: 80, bad: true, want: dropLearning}},
				stream(farAddr, 1, 6, 100, 20, 4, dropLearning)),
		},
		{
			name:      "jumping sequence numbers never learn",
			signalled: sdpAddr, peer: peerIP,
			packets: func() []pkt {
				ps := stream(farAddr, 1, 1, 0, 20, 10, dropLearning)
				for i := range ps {
					ps[i].seq = uint16(1 + 2*i)
				}
				return ps
			}(),
		},
		{
			name:      "a new SSRC from the same source starts the run again",
			signalled: sdpAddr, peer: peerIP,
			packets: cat(stream(farAddr, 1, 1, 1000, 20, 4, dropLearning), then(stream(farAddr, 2, 5, 1080, 20, 5, dropLearning), accept)),
			wantSrc: farAddr,
		},
		{
			name:      "two sources of equal rank in alternation never learn",
			signalled: sdpAddr, peer: peerIP,
			packets:    interleave(stream(attacker, 1, 1, 0, 20, 10, dropLearning), stream(farAddr, 2, 1, 10, 20, 10, dropLearning)),
			wantResets: 19,
		},
		{
			name:      "a sprayer from many addresses cannot stop the caller at the peer address",
			signalled: sdpAddr, peer: peerIP,
			packets: cat(
				// Before the caller sends, the sprayer's addresses compete with each other.
				interleave(stream(attacker, 3, 1, 0, 20, 3, dropLearning), stream(spray2, 4, 1, 5, 20, 3, dropLearning)),
				// The caller's first packet takes over the probation; the sprayer no longer disturbs it.
				interleave(then(stream(natAddr, 1, 1, 60, 20, 5, dropLearning), accept),
					interleave(stream(attacker, 3, 4, 65, 20, 2, dropLearning), stream(spray2, 4, 4, 66, 20, 2, dropLearning))),
				interleave(stream(attacker, 3, 6, 145, 20, 3, dropForeign), stream(spray2, 4, 6, 146, 20, 3, dropForeign))),
			wantSrc:    natAddr,
			wantResets: 6, // five between the sprayer's addresses, one by the caller
		},
		{
			name:      "the signalled caller wins at once against a sprayer",
			signalled: sdpAddr, peer: peerIP,
			packets: cat(
				stream(attacker, 3, 1, 0, 20, 3, dropLearning),
				[]pkt{{from: sdpAddr, ssrc: 1, seq: 50, at: 61, want: accept}},
				stream(attacker, 3, 4, 80, 20, 10, dropForeign)),
			wantSrc:    sdpAddr,
			wantResets: 1,
		},
		{
			name:      "after learning, a foreign stream is dropped however well formed",
			signalled: sdpAddr, peer: peerIP,
			packets: cat(stream(sdpAddr, 1, 1, 0, 20, 2, accept), stream(attacker, 3, 1, 30, 20, 20, dropForeign), stream(natAddr, 5, 1, 40, 20, 10, dropForeign)),
			wantSrc: sdpAddr,
		},
		{
			name:      "an attacker who won probation before the caller's first packet loses it to the signalled address",
			signalled: sdpAddr, peer: peerIP,
			packets: cat(
				then(stream(attacker, 3, 1, 1000, 20, 5, dropLearning), accept),
				[]pkt{{from: sdpAddr, ssrc: 1, seq: 9, at: 1090, want: accept}},
				stream(attacker, 3, 6, 1100, 20, 5, dropForeign)),
			wantSrc: sdpAddr,
		},
		{
			name:      "... and to the peer's own address after its probation",
			signalled: sdpAddr, peer: peerIP,
			packets: cat(
				then(stream(attacker, 3, 1, 1000, 20, 5, dropLearning), accept),
				interleave(then(stream(natAddr, 1, 1, 1090, 20, 5, dropForeign), accept), stream(attacker, 3, 6, 1095, 20, 4, accept)),
				stream(attacker, 3, 10, 1200, 20, 3, dropForeign)),
			wantSrc: natAddr,
		},
		{
			name:      "a source learned at the peer address is not displaced by another port of it",
			signalled: sdpAddr, peer: peerIP,
			packets: cat(
				then(stream(natAddr, 1, 1, 0, 20, 5, dropLearning), accept),
				stream(netip.AddrPortFrom(peerIP, 61002), 2, 1, 100, 20, 10, dropForeign)),
			wantSrc: natAddr,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := learner{signalled: tt.signalled, peer: tt.peer}
			resets := 0
			for i, p := range tt.packets {
				now := func() time.Duration { return time.Duration(p.at) * time.Millisecond }
				got := l.observe(p.from, p.ssrc, p.seq, !p.bad, now)
				resets += l.resets
				l.resets = 0
				if got != p.want {
					t.Fatalf("packet %d (from %v ssrc %d seq %d at %d ms): verdict %d, want %d", i, p.from, p.ssrc, p.seq, p.at, got, p.want)
				}
			}
			if tt.wantSrc.IsValid() != l.learned || (l.learned && l.src != tt.wantSrc) {
				t.Errorf("learned %v %v, want %v", l.learned, l.src, tt.wantSrc)
			}
			if resets != tt.wantResets {
				t.Errorf("resets = %d, want %d", resets, tt.wantResets)
			}
		})
	}
}

func TestLearnerSetSignalled(t *testing.T) {
	at := func() time.Duration { return 0 }
	l := learner{signalled: sdpAddr, peer: peerIP}
	if v := l.observe(sdpAddr, 1, 1, true, at); v != accept {
		t.Fatalf("first packet from the signalled address: %d, want accept", v)
	}
	// A re-INVITE with the same address (a session refresh, hold) keeps the source.
	if l.setSignalled(sdpAddr, 0) || !l.learned {
		t.Fatal("the same signalled address restarted learning")
	}
	// A re-INVITE moving the media: the new address is learned at once, the old one is foreign.
	moved := netip.MustParseAddrPort("192.0.2.11:5000")
	if !l.setSignalled(moved, 0) || l.learned {
		t.Fatal("a new signalled address did not restart learning")
	}
	if l.dest() != moved {
		t.Errorf("dest() = %v while learning, want the signalled %v", l.dest(), moved)
	}
	if v := l.observe(sdpAddr, 1, 2, true, at); v != dropLearning {
		t.Errorf("old address after the move: %d, want dropLearning", v)
	}
	if v := l.observe(moved, 5, 1, true, at); v != accept || l.dest() != moved {
		t.Errorf("new signalled address: %d, dest %v", v, l.dest())
	}
	if v := l.observe(sdpAddr, 1, 3, true, at); v != dropForeign {
		t.Errorf("old address once the new one is learned: %d, want dropForeign", v)
	}
	// Hold with c=0.0.0.0 never makes 0.0.0.0 a source.
	l.setSignalled(netip.MustParseAddrPort("0.0.0.0:5000"), 0)
	if l.rankOf(netip.MustParseAddrPort("0.0.0.0:5000")) != rankOther {
		t.Error("an unspecified signalled address ranks as signalled")
	}
}

// FuzzLearner feeds the learner any sequence of packets from five sources
// (the signalled address, another port of the peer's address, and three
// others), held or not until the answer, and checks its invariants: only the
// learned source is accepted, a learned source only ever gives way to a
// better-ranked one, nothing is learned while held, and a source unrelated to
// the signalling is never learned within the grace.
func FuzzLearner(f *testing.F) {
	f.Add([]byte{2, 1, 1, 20, 2, 1, 1, 20, 2, 1, 1, 20, 2, 1, 1, 20, 2, 1, 1, 20, 0, 1, 1, 20})
	f.Add([]byte{1, 0, 1, 20, 1, 0, 1, 20, 1, 0, 1, 20, 1, 0, 1, 20, 1, 0, 1, 20})
	f.Add([]byte{3, 0, 1, 255, 3, 0, 1, 255, 3, 0, 1, 255, 3, 0, 1, 255, 3, 0, 1, 255, 3, 0, 1, 255})
	sources := []netip.AddrPort{sdpAddr, natAddr, farAddr, attacker, spray2}
	f.Fuzz(func(t *testing.T, b []byte) {
		l := learner{signalled: sdpAddr, peer: peerIP}
		if len(b)%2 == 1 {
			l.held = true // an inbound call before its answer
		}
		seqs := map[netip.AddrPort]uint16{}
		var now time.Duration
		for len(b) >= 4 {
			if b[0] == 0xff {
				l.start(now) // the answer is sent
			}
			from := sources[int(b[0])%len(sources)]
			ssrc := uint32(b[1] % 2)
			seqs[from] += uint16(b[2] % 3)
			bad := b[1]&0x80 != 0
			now += time.Duration(b[3]) * time.Millisecond
			b = b[4:]
			wasLearned, wasSrc, wasRank := l.learned, l.src, l.rank
			v := l.observe(from, ssrc, seqs[from], !bad, func() time.Duration { return now })
			if v == accept && (!l.learned || l.src != from) {
				t.Fatalf("accepted a packet from %v while learned=%v src=%v", from, l.learned, l.src)
			}
			if wasLearned && (!l.learned || (l.src != wasSrc && l.rank <= wasRank)) {
				t.Fatalf("learned %v (rank %d) gave way to %v (rank %d)", wasSrc, wasRank, l.src, l.rank)
			}
			if l.learned && l.src != wasSrc && l.rank == rankOther && now-l.since < learnOtherGrace {
				t.Fatalf("%v learned at %v, within the grace from %v", l.src, now, l.since)
			}
			if l.held && l.learned {
				t.Fatalf("%v learned before learning started", l.src)
			}
		}
	})
}

// TestLearnerHeld: before our SDP has been sent nothing is learned, not even the signalled
// address; the grace for unrelated sources counts from the start of learning, so a call that
// rang for a while is not handed to whoever sprayed its port meanwhile.
func TestLearnerHeld(t *testing.T) {
	at := func(ms int) func() time.Duration {
		return func() time.Duration { return time.Duration(ms) * time.Millisecond }
	}
	l := learner{signalled: sdpAddr, peer: peerIP, held: true}
	for i := range 100 { // two seconds of ringing, sprayed
		if v := l.observe(attacker, 1, uint16(i), true, at(20*i)); v != dropLearning {
			t.Fatalf("held: attacker packet %d: verdict %d", i, v)
		}
	}
	if v := l.observe(sdpAddr, 2, 1, true, at(2000)); v != dropLearning || l.learned {
		t.Fatalf("held: the signalled address was learned (verdict %d)", v)
	}
	l.start(2000 * time.Millisecond)
	for i := range 50 { // the attacker goes on, the caller has not sent yet: within the grace
		if v := l.observe(attacker, 1, uint16(100+i), true, at(2000+20*i)); v != dropLearning {
			t.Fatalf("attacker packet %d after the answer: verdict %d", i, v)
		}
	}
	if v := l.observe(sdpAddr, 2, 2, true, at(3000)); v != accept || l.src != sdpAddr {
		t.Fatalf("the caller's first packet after the answer: verdict %d, learned %v", v, l.src)
	}
	l.start(4000 * time.Millisecond) // again: nothing changes
	if !l.learned || l.src != sdpAddr {
		t.Fatal("a second start changed the learned source")
	}
}
