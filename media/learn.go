package media

import (
	"net/netip"
	"time"
)

// Strict RTP: which source a leg accepts packets from, and sends to.
//
// A leg learns its phone's RTP source once, and from then on accepts packets
// from that source only (symmetric RTP: it also sends there). The first
// packet from anywhere used to be enough, so whoever reached a fresh port
// first owned the call: its audio, and its key presses in the menu (issue
// 14, the "RTP Bleed" class). Learning now follows Asterisk's strictrtp
// probation (res_rtp_asterisk.c, rtp_learning_rtp_seq_update: 4 packets in
// sequence from one address) and is stricter:
//
//   - A packet from exactly the address and port signalled in SDP is learned
//     at once: the dialog's own party said its media comes from there.
//   - Any other source (the phone is behind NAT, so its packets come from
//     its public address) is learned only after learnPackets consecutive
//     packets of one stream: one source, one SSRC, sequence numbers each one
//     above the last, a negotiated payload type, spread over at least
//     learnMinSpan (a burst cannot complete it). Packets during probation
//     are not used: no audio is relayed, no digit is read from them.
//   - Nothing is learned before our SDP (with the port) has been sent
//     (LegConfig.LearnLater, Leg.StartLearning): until then no packet can be
//     the phone's, whoever sends it. And a source unrelated to the
//     signalling (rankOther, below) is not learned until learnOtherGrace has
//     passed since learning started or the signalled address was set: the
//     time the caller's own first packet takes to arrive. An attacker
//     spraying a fresh port from the moment it opens, or while the call
//     rings, must not be sent even the silence before the caller's first
//     packet.
//   - Sources are ranked by how closely they are tied to the dialog's own
//     signalling: the signalled address and port (rankSignalled), then the
//     signalling peer's IP address at any port (rankPeer: a NAT keeps one
//     public address for a phone's SIP and RTP, RFC 4787 REQ-2), then any
//     other (rankOther). A stream of lower rank never disturbs a probation of
//     higher rank, and a packet of equal or higher rank from another stream
//     restarts it (counted in LegStats.LearnResets): an attacker spraying packets from
//     many addresses cannot complete a probation against a real caller
//     sending from a better-ranked address, and can at best keep a caller
//     of its own rank (behind a NAT with another address) from being
//     learned, never take the call.
//   - Once learned, a source is replaced only by one of higher rank (the
//     signalled address at once, the peer's address after probation), which
//     undoes a probation an attacker won before the caller's first packet;
//     anything of equal or lower rank is foreign and dropped. Otherwise only
//     a new signalled address (Leg.SetRemote, after a re-INVITE from the
//     dialog's own peer) starts learning again.
const (
	// learnPackets is the length of the in-sequence run that learns a
	// source other than the signalled one (Asterisk's default is 4).
	learnPackets = 5
	// learnMinSpan is the least time between the first and the last packet
	// of that run. A phone sends one packet per 20 ms: five take 80 ms.
	learnMinSpan = 60 * time.Millisecond
	// learnOtherGrace is how long after the signalled address was set a
	// source of rankOther may complete its probation. Phones start sending
	// as soon as they have the answer; what comes from elsewhere first is
	// as likely an attacker as a NAT, and a phone behind a NAT with another
	// address loses no more than the first second of its audio.
	learnOtherGrace = time.Second
)

// Source ranks, higher is more closely tied to the dialog's signalling.
const (
	rankOther     = 0
	rankPeer      = 1
	rankSignalled = 2
)

// verdict is what the learner says to do with a packet.
type verdict uint8

const (
	// accept: the packet is from the learned source; use it.
	accept verdict = iota
	// dropLearning: no source is learned (or a better one is on probation);
	// the packet counted towards learning only.
	dropLearning
	// dropForeign: a source is learned and this is not it.
	dropForeign
)

// learner is the strict RTP state machine of one leg. It does no I/O and has
// no clock: the leg passes each packet's source, SSRC, sequence number,
// whether its payload type was negotiated, and the time since an arbitrary
// origin. It is not safe for concurrent use; the leg guards it with its mu.
type learner struct {
	signalled netip.AddrPort // from SDP; may be invalid (not known yet)
	peer      netip.Addr     // the signalling peer's address; may be invalid
	since     time.Duration  // when learning started or signalled was last set, on the observe clock
	// held is set until our SDP has been sent: nothing is learned, no run starts.
	held bool

	learned bool
	src     netip.AddrPort // the learned source, when learned
	rank    int            // its rank

	// The stream on probation, when probing.
	probing   bool
	cand      netip.AddrPort
	candRank  int
	candSSRC  uint32
	candSeq   uint16        // the last sequence number of the run
	candCount int           // packets in the run
	candFirst time.Duration // arrival of the run's first packet

	// resets counts probations restarted by another stream's packet; the
	// leg reads and clears it after each observe.
	resets int
	// changed is set when observe learned a source (first or replacing).
	changed bool
}

// rankOf returns how closely from is tied to the dialog's signalling.
func (l *learner) rankOf(from netip.AddrPort) int {
	switch {
	case l.signalled.IsValid() && !l.signalled.Addr().IsUnspecified() && from == l.signalled:
		return rankSignalled
	case l.peer.IsValid() && from.Addr() == l.peer:
		return rankPeer
	default:
		return rankOther
	}
}

// dest is where to send: the learned source, else the signalled address
// (which may be invalid).
func (l *learner) dest() netip.AddrPort {
	if l.learned {
		return l.src
	}
	return l.signalled
}

// setSignalled changes the signalled address, at now on the observe clock.
// A different address starts learning over (the dialog's parties moved the
// media); the same one, as in a re-INVITE that only refreshes the session or
// puts it on hold, changes nothing.
func (l *learner) setSignalled(a netip.AddrPort, now time.Duration) bool {
	if a == l.signalled {
		return false
	}
	l.signalled, l.since = a, now
	l.learned, l.src, l.rank = false, netip.AddrPort{}, 0
	l.probing = false
	return true
}

// start ends the hold of a learner created held, at now on the observe clock.
func (l *learner) start(now time.Duration) {
	if l.held {
		l.held, l.since = false, now
	}
}

// observe decides about one packet from from with the given SSRC and
// sequence number; eligible reports whether its payload type is one that
// was negotiated (audio, telephone-event or comfort noise). now is only
// called when the answer depends on time.
func (l *learner) observe(from netip.AddrPort, ssrc uint32, seq uint16, eligible bool, now func() time.Duration) verdict {
	if l.learned && from == l.src {
		return accept
	}
	if l.held {
		return dropLearning
	}
	r := l.rankOf(from)
	if l.learned && r <= l.rank {
		return dropForeign
	}
	miss := dropLearning
	if l.learned {
		miss = dropForeign
	}
	if !eligible {
		// Not what was negotiated: it neither learns nor competes, but it
		// breaks its own stream's run.
		if l.probing && from == l.cand {
			l.probing = false
		}
		return miss
	}
	if r == rankSignalled {
		if l.probing {
			l.resets++ // the signalled source cuts another's probation short
		}
		l.learn(from, r)
		return accept
	}
	if l.probing && from == l.cand {
		if ssrc == l.candSSRC && seq == l.candSeq+1 {
			l.candSeq = seq
			l.candCount++
			if l.candCount >= learnPackets {
				t := now()
				if t-l.candFirst >= learnMinSpan && (r > rankOther || t-l.since >= learnOtherGrace) {
					l.learn(from, r)
					return accept
				}
			}
			return miss
		}
		// The same source broke its sequence or changed SSRC: its run
		// starts again from this packet, which is no competition.
		l.startRun(from, r, ssrc, seq, now())
		return miss
	}
	if l.probing && r < l.candRank {
		// A weaker source does not disturb a better-tied probation.
		return miss
	}
	if l.probing {
		l.resets++
	}
	l.startRun(from, r, ssrc, seq, now())
	return miss
}

// rankName names a rank for logs.
func rankName(r int) string {
	switch r {
	case rankSignalled:
		return "signalled"
	case rankPeer:
		return "peer_address"
	default:
		return "other"
	}
}

func (l *learner) startRun(from netip.AddrPort, r int, ssrc uint32, seq uint16, at time.Duration) {
	l.probing = true
	l.cand, l.candRank, l.candSSRC, l.candSeq, l.candCount, l.candFirst = from, r, ssrc, seq, 1, at
}

func (l *learner) learn(from netip.AddrPort, r int) {
	l.learned, l.src, l.rank = true, from, r
	l.probing = false
	l.changed = true
}
