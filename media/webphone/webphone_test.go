package webphone

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/hotline-project/hotline/media"
)

// browser is a second pion peer on loopback standing in for a browser: it answers the
// offer, sends PCMU frames of value 0x55 and counts the packets it receives.
type browser struct {
	pc       *webrtc.PeerConnection
	track    *webrtc.TrackLocalStaticRTP
	received chan []byte
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "mic", "browser")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	b := &browser{pc: pc, track: track, received: make(chan []byte, 1000)}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			select {
			case b.received <- p.Payload:
			default:
			}
		}
	})
	return b
}

func (b *browser) answer(t *testing.T, offer string) string {
	t.Helper()
	if err := b.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		t.Fatal(err)
	}
	ans, err := b.pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	g := webrtc.GatheringCompletePromise(b.pc)
	if err := b.pc.SetLocalDescription(ans); err != nil {
		t.Fatal(err)
	}
	<-g
	return b.pc.LocalDescription().SDP
}

// TestCallCarriesAudioBothWays offers a call, has the stand-in browser answer, and checks
// that a prompt played on the leg reaches the browser and the browser's audio reaches the
// leg; closing the browser ends the call.
func TestCallCarriesAudioBothWays(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sched := media.NewScheduler(media.SchedulerOptions{})
	go func() { _ = sched.Run(ctx) }()
	lo := netip.MustParseAddr("127.0.0.1")
	e, err := New(Options{Scheduler: sched, Ports: media.NewPorts(lo, 30000, 30100), LegHost: lo,
		Addresses: []netip.Addr{lo}, InactivityTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.Offer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The offer: PCMU alone, DTLS-SRTP, host candidates on loopback only.
	var cands int
	for _, line := range strings.Split(c.Offer(), "\r\n") {
		switch {
		case strings.HasPrefix(line, "m=") && line != "m=audio 9 UDP/TLS/RTP/SAVPF 0":
			t.Errorf("offer media line %q, want PCMU alone over DTLS-SRTP", line)
		case strings.HasPrefix(line, "a=candidate:"):
			cands++
			if !strings.Contains(line, " 127.0.0.1 ") || !strings.Contains(line, " typ host") {
				t.Errorf("candidate %q, want a host candidate on 127.0.0.1", line)
			}
		}
	}
	if cands == 0 || !strings.Contains(c.Offer(), "a=fingerprint:sha-256 ") {
		t.Errorf("offer without candidates or a DTLS fingerprint:\n%s", c.Offer())
	}
	b := newBrowser(t)
	if err := c.Accept(ctx, b.answer(t, c.Offer())); err != nil {
		t.Fatal(err)
	}

	// The leg's prompt (0x11 bytes) arrives at the browser.
	prompt := make([]byte, 10*media.FrameSize)
	for i := range prompt {
		prompt[i] = 0x11
	}
	go func() { _ = c.Leg().Play(ctx, prompt) }()
	for got := false; !got; {
		select {
		case p := <-b.received:
			got = len(p) == media.FrameSize && p[0] == 0x11
		case <-ctx.Done():
			t.Fatal("the browser never heard the prompt")
		}
	}

	// The browser's audio reaches the leg.
	seq, ts := uint16(1), uint32(0)
	frame := make([]byte, media.FrameSize)
	for i := range frame {
		frame[i] = 0x55
	}
	for c.Leg().Stats().PacketsReceived < 10 {
		if ctx.Err() != nil {
			t.Fatalf("the leg received %d packets from the browser", c.Leg().Stats().PacketsReceived)
		}
		_ = b.track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: ts}, Payload: frame})
		seq++
		ts += media.FrameSize
		time.Sleep(20 * time.Millisecond)
	}

	_ = b.pc.Close()
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("the call did not end when the browser went away")
	}
}

// TestBadAnswer is refused with ErrBadAnswer.
func TestBadAnswer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := newEngine(t, ctx, 30200)
	c, err := e.Offer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Accept(ctx, "v=0\r\nnot sdp"); !errors.Is(err, ErrBadAnswer) {
		t.Fatalf("a bad answer: %v, want ErrBadAnswer", err)
	}
}

func newEngine(t testing.TB, ctx context.Context, port int) *Engine {
	sched := media.NewScheduler(media.SchedulerOptions{})
	go func() { _ = sched.Run(ctx) }()
	lo := netip.MustParseAddr("127.0.0.1")
	e, err := New(Options{Scheduler: sched, Ports: media.NewPorts(lo, port, port+100), LegHost: lo, Addresses: []netip.Addr{lo}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// FuzzAnswer gives arbitrary answers (what a signed-in page may send) to an offered call:
// an error or a connection attempt, never a panic. Each input costs a peer connection,
// so the fuzzer runs slowly.
func FuzzAnswer(f *testing.F) {
	for _, s := range []string{"", "v=0", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n",
		"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 00:11\r\na=setup:active\r\na=sendrecv\r\na=rtpmap:0 PCMU/8000\r\n"} {
		f.Add(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	e := newEngine(f, ctx, 30400)
	f.Fuzz(func(t *testing.T, answer string) {
		c, err := e.Offer(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		actx, stop := context.WithTimeout(ctx, 50*time.Millisecond)
		defer stop()
		_ = c.Accept(actx, answer)
	})
}
