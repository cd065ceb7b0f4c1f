package media

import (
	"bytes"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

func newKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, SRTPKeyLen)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// srtpPhone is the phone's side of an SRTP leg, with pion/srtp as an independent
// implementation: it encrypts with the phone's key (the leg's RemoteKey) and decrypts
// with the leg's LocalKey.
type srtpPhone struct {
	conn     *net.UDPConn
	enc, dec *srtp.Context
}

func newSRTPPhone(t testing.TB, conn *net.UDPConn, cfg *SRTP) *srtpPhone {
	t.Helper()
	p, err := cfg.Suite.profile()
	if err != nil {
		t.Fatal(err)
	}
	enc, err := srtp.CreateContext(cfg.RemoteKey[:16], cfg.RemoteKey[16:], p)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := srtp.CreateContext(cfg.LocalKey[:16], cfg.LocalKey[16:], p)
	if err != nil {
		t.Fatal(err)
	}
	return &srtpPhone{conn: conn, enc: enc, dec: dec}
}

func (p *srtpPhone) send(t testing.TB, to netip.AddrPort, plain []byte) []byte {
	t.Helper()
	b, err := p.enc.EncryptRTP(nil, plain, nil)
	if err != nil {
		t.Fatalf("encrypt: %v", err)
	}
	sendTo(t, p.conn, to, b)
	return b
}

// read reads one datagram and decrypts it; it fails the test if it does not
// authenticate with the leg's answered key.
func (p *srtpPhone) read(t testing.TB, timeout time.Duration) (raw []byte, pkt rtp.Packet) {
	t.Helper()
	buf := make([]byte, 2048)
	if err := p.conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		t.Fatal(err)
	}
	n, _, err := p.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no srtp packet within %v: %v", timeout, err)
	}
	raw = append([]byte(nil), buf[:n]...)
	plain, err := p.dec.DecryptRTP(nil, raw, nil)
	if err != nil {
		t.Fatalf("phone cannot decrypt the leg's packet (%d bytes): %v", n, err)
	}
	if err := pkt.Unmarshal(plain); err != nil {
		t.Fatalf("decrypted packet does not parse: %v", err)
	}
	return raw, pkt
}

func TestLegSRTP(t *testing.T) {
	t.Parallel()
	for _, suite := range []SRTPSuite{SuiteAESCM128HMACSHA180, SuiteAESCM128HMACSHA132} {
		t.Run(suite.String(), func(t *testing.T) {
			t.Parallel()
			cfg := &SRTP{Suite: suite, LocalKey: newKey(t), RemoteKey: newKey(t)}
			digits := make(chan rune, 4)
			r := newRig(t, LegConfig{DTMFPayloadType: 101, OnDigit: func(d rune) { digits <- d }, SRTP: cfg})
			ph := newSRTPPhone(t, r.peer, cfg)
			tag := 10
			if suite == SuiteAESCM128HMACSHA132 {
				tag = 4
			}

			// The phone decrypts what the leg sends: a prompt, frame by frame.
			audio := prompt(3)
			errc := make(chan error, 1)
			go func() { errc <- r.leg.Play(t.Context(), audio) }()
			var frames [][]byte
			for len(frames) < 3 {
				raw, pkt := ph.read(t, 2*time.Second)
				if len(raw) != rtpHeaderSize+FrameSize+tag {
					t.Fatalf("srtp packet of %d bytes, want %d", len(raw), rtpHeaderSize+FrameSize+tag)
				}
				if bytes.Contains(raw, pkt.Payload[:32]) {
					t.Fatal("payload sent in the clear")
				}
				if isSilence(pkt.Payload, silenceUlaw) && len(frames) == 0 {
					continue
				}
				frames = append(frames, pkt.Payload)
			}
			if err := <-errc; err != nil {
				t.Fatalf("Play: %v", err)
			}
			if got := bytes.Join(frames, nil); !bytes.Equal(got, audio) {
				t.Fatal("decrypted frames differ from the prompt")
			}

			// The leg decrypts the phone's audio and its RFC 4733 key press.
			const ssrc = 0x5eed
			seq := uint16(100)
			next := func(pt uint8, ts uint32, payload []byte) []byte {
				seq++
				return rtpBytes(t, pt, seq, ts, ssrc, false, payload)
			}
			first := ph.send(t, r.legAddr(), next(0, 0, make([]byte, FrameSize)))
			for _, d := range []uint16{160, 320, 640} {
				ph.send(t, r.legAddr(), next(101, 800, eventBytes(Event{Event: 7, End: d == 640, Volume: 10, Duration: d})))
			}
			select {
			case d := <-digits:
				if d != '7' {
					t.Fatalf("digit %q, want '7'", d)
				}
			case <-time.After(2 * time.Second):
				t.Fatalf("no digit from srtp telephone-event; stats %+v", r.leg.Stats())
			}
			waitFor(t, 2*time.Second, "four packets", func() bool { return r.leg.Stats().PacketsReceived == 4 })
			if st := r.leg.Stats(); st.DroppedInvalid != 0 || st.Digits != 1 {
				t.Fatalf("stats %+v, want none invalid and one digit", st)
			}

			// A replay, a packet under another key and plain RTP are all dropped as invalid.
			sendTo(t, r.peer, r.legAddr(), first)
			wrong := newSRTPPhone(t, r.peer, &SRTP{Suite: suite, LocalKey: cfg.LocalKey, RemoteKey: newKey(t)})
			wrong.send(t, r.legAddr(), next(0, 960, make([]byte, FrameSize)))
			sendTo(t, r.peer, r.legAddr(), next(0, 1120, make([]byte, FrameSize)))
			waitFor(t, 2*time.Second, "three invalid packets", func() bool { return r.leg.Stats().DroppedInvalid == 3 })
			if st := r.leg.Stats(); st.PacketsReceived != 4 {
				t.Fatalf("stats %+v, want still 4 received", st)
			}
		})
	}
}

func TestNewLegSRTPErrors(t *testing.T) {
	t.Parallel()
	s := startScheduler(t, SchedulerOptions{Workers: 1})
	min, max := testRange(t, 2)
	ports := NewPorts(loopback, min, max)
	key := make([]byte, SRTPKeyLen)
	for name, cfg := range map[string]*SRTP{
		"no suite":  {LocalKey: key, RemoteKey: key},
		"short key": {Suite: SuiteAESCM128HMACSHA180, LocalKey: key[:16], RemoteKey: key},
		"no remote": {Suite: SuiteAESCM128HMACSHA132, LocalKey: key},
	} {
		if l, err := NewLeg(s, ports, LegConfig{SRTP: cfg}); !errors.Is(err, ErrSRTP) {
			if l != nil {
				l.Close()
			}
			t.Errorf("%s: NewLeg err = %v, want ErrSRTP", name, err)
		}
	}
	if n := ports.InUse(); n != 0 {
		t.Errorf("ports in use = %d, want 0", n)
	}
}

// TestBridgeSRTPToPlain bridges a caller's SRTP leg with an advocate's plain RTP leg: each
// leg decrypts what it receives and encrypts what it sends with its own keys.
func TestBridgeSRTPToPlain(t *testing.T) {
	t.Parallel()
	s := startScheduler(t, SchedulerOptions{Workers: 2})
	min, max := testRange(t, 4)
	ports := NewPorts(loopback, min, max)
	caller, advocate := newPeer(t), newPeer(t)
	cfg := &SRTP{Suite: SuiteAESCM128HMACSHA180, LocalKey: newKey(t), RemoteKey: newKey(t)}
	a, err := NewLeg(s, ports, LegConfig{Remote: addrOf(caller), SRTP: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewLeg(s, ports, LegConfig{Remote: addrOf(advocate)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	br, err := NewBridge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Unbridge()
	ph := newSRTPPhone(t, caller, cfg)
	aAddr := netip.AddrPortFrom(loopback, uint16(a.LocalPort()))
	bAddr := netip.AddrPortFrom(loopback, uint16(b.LocalPort()))

	// Caller to advocate: encrypted in, plain out, payload intact.
	voice := prompt(1)
	ph.send(t, aAddr, rtpBytes(t, PayloadPCMU, 1, 160, 0xca11, false, voice))
	found := false
	for i := 0; i < 50 && !found; i++ {
		got := readPacket(t, advocate, 2*time.Second)
		found = bytes.Equal(got.pkt.Payload, voice)
	}
	if !found {
		t.Fatal("advocate never received the caller's decrypted audio")
	}

	// Advocate to caller: plain in, encrypted out; the caller decrypts it with a's key.
	reply := prompt(2)[FrameSize:]
	sendTo(t, advocate, bAddr, rtpBytes(t, PayloadPCMU, 1, 160, 0xad, false, reply))
	found = false
	for i := 0; i < 50 && !found; i++ {
		_, pkt := ph.read(t, 2*time.Second)
		found = bytes.Equal(pkt.Payload, reply)
	}
	if !found {
		t.Fatal("caller never received the advocate's audio, encrypted")
	}
	// The relay counts a packet after sending it: give the count a moment to catch up.
	deadline := time.Now().Add(2 * time.Second)
	for st := br.Stats(); st.AToB.Packets == 0 || st.BToA.Packets == 0; st = br.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("bridge stats %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkSendFrameSRTP measures one scheduler frame sent with SRTP, for its cost and
// allocations beside BenchmarkSendFrame.
func BenchmarkSendFrameSRTP(b *testing.B) {
	s := NewScheduler(SchedulerOptions{Workers: 1}) // not running: the loop drives it
	min, max := testRange(b, 1)
	snk := newSink(b)
	cfg := &SRTP{Suite: SuiteAESCM128HMACSHA180, LocalKey: newKey(b), RemoteKey: newKey(b)}
	l, err := NewLeg(s, NewPorts(loopback, min, max), LegConfig{Remote: addrOf(snk.conn), SRTP: cfg})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	w, slot := l.worker, l.slot
	var frame uint64
	b.ReportAllocs()
	for b.Loop() {
		w.runSlot(slot, frame)
		frame++
	}
	if st := s.Stats(); st.SendErrors != 0 || st.FramesSent == 0 {
		b.Fatalf("stats %+v", st)
	}
}
