package sipagent

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"github.com/hotline-project/hotline/sip/digest"
	"github.com/hotline-project/hotline/sip/sdp"
)

// A stream keeps one SSRC and consecutive sequence numbers across audio, silence and key
// presses, its timestamps advance by the samples sent, and a press's packets share the
// press's timestamp with the marker on the first.
func TestStreamKeepsItsSequenceAndTimestamps(t *testing.T) {
	t.Parallel()
	recv, send := udpPair(t)
	rec := Record(recv)
	s := NewStreamAt(send, recv.LocalAddr().(*net.UDPAddr), 0x1234, 65534, 1000)
	s.Silence(2)
	s.Press(DTMF, 5)
	s.Frame(PCMU, s.ToneFrame(PCMU, 1000))
	waitLen(t, rec, 9)
	pkts := rec.Snapshot()
	wantTS := []uint32{1000, 1160, 1320, 1320, 1320, 1320, 1320, 1320, 1960}
	for i, p := range pkts {
		if p.Pkt.SSRC != 0x1234 {
			t.Errorf("packet %d: SSRC %x", i, p.Pkt.SSRC)
		}
		if want := uint16(65534 + i); p.Pkt.SequenceNumber != want {
			t.Errorf("packet %d: seq %d, want %d (wrapping)", i, p.Pkt.SequenceNumber, want)
		}
		if p.Pkt.Timestamp != wantTS[i] {
			t.Errorf("packet %d: ts %d, want %d", i, p.Pkt.Timestamp, wantTS[i])
		}
		if marker := i == 2; p.Pkt.Marker != marker {
			t.Errorf("packet %d: marker %v, want %v", i, p.Pkt.Marker, marker)
		}
	}
	if ev := pkts[7].Pkt; ev.PayloadType != DTMF || ev.Payload[0] != 5 || ev.Payload[1]&0x80 == 0 {
		t.Errorf("last event packet: pt %d payload %x, want an end of key 5", ev.PayloadType, ev.Payload)
	}
	if seq, ts := s.Next(); seq != 7 || ts != 2120 { // 65534 + 9, wrapped
		t.Errorf("Next() = %d, %d", seq, ts)
	}
}

// A new stream marks its first packet; the tone it plays is heard as that tone and no other.
func TestStreamToneIsHeard(t *testing.T) {
	t.Parallel()
	for _, pt := range []uint8{PCMU, PCMA} {
		recv, send := udpPair(t)
		rec := Record(recv)
		s := NewStream(send, recv.LocalAddr().(*net.UDPAddr), 0)
		for range 50 {
			s.Frame(pt, s.ToneFrame(pt, 1000))
		}
		waitLen(t, rec, 50)
		if !rec.Snapshot()[0].Pkt.Marker {
			t.Errorf("pt %d: first packet without marker", pt)
		}
		if l := rec.ToneLevel(pt, 1000, 50); l < 0.9 {
			t.Errorf("pt %d: 1000 Hz level %.2f, want > 0.9", pt, l)
		}
		if l := rec.ToneLevel(pt, 440, 50); l > 0.05 {
			t.Errorf("pt %d: 440 Hz level %.2f in a 1000 Hz tone", pt, l)
		}
		if l := rec.ToneLevel(pt+1, 1000, 50); l != 0 {
			t.Errorf("level %.2f in a payload type not received", l)
		}
		if src := rec.Source(); src.Port != send.LocalAddr().(*net.UDPAddr).Port {
			t.Errorf("source %v, want %v", src, send.LocalAddr())
		}
	}
}

// A caller's messages are accepted by a real stack (sipgo's): INVITE with SDP answered, ACK,
// BYE answered, over UDP and TCP; the answer's SDP names where to send media.
func TestCallerCallsSipgo(t *testing.T) {
	t.Parallel()
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			addr, acked, byed := sipgoUAS(t, network)
			var c *Caller
			if network == "udp" {
				c = NewCaller(t, addr)
				c.ViaPort = c.Conn.LocalAddr().(*net.UDPAddr).Port
			} else {
				c = NewTCPCaller(t, addr)
			}
			res := c.Dial("100", "0 101")
			m, err := sdp.NegotiateAnswer(res.Body())
			if err != nil || m.Remote.Port() != 4000 {
				t.Fatalf("answer %v %v:\n%s", m, err, res.Body())
			}
			if c.ToTag == "" {
				t.Error("no to-tag learnt from the 200")
			}
			waitChan(t, acked, "ACK")
			c.Hangup("100")
			waitChan(t, byed, "BYE")
		})
	}
}

// Over TLS with the test certificate, trusted through Roots.
func TestSelfSignedCertificateServesTLS(t *testing.T) {
	t.Parallel()
	certs := SelfSigned(t, t.TempDir())
	pair, err := tls.LoadX509KeyPair(certs.CertFile, certs.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	got := make(chan string, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		buf := make([]byte, 4096)
		n, _ := conn.Read(buf)
		got <- string(buf[:n])
	}()
	c := NewTLSCaller(t, l.Addr().String(), certs.Roots)
	c.Invite("100", Offer(c.RTPPort(), "0", ""))
	select {
	case msg := <-got:
		m, err := sipmsg.ParseMessage([]byte(msg))
		if err != nil {
			t.Fatalf("%v:\n%s", err, msg)
		}
		req := m.(*sipmsg.Request)
		if req.Recipient.Scheme != "sips" || req.Via().Transport != "TLS" {
			t.Errorf("over TLS: %s via %s", req.Recipient.String(), req.Via().Transport)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing arrived over TLS")
	}
}

// A phone registers through a digest challenge (the server's own authenticator, behind
// sipgo), and a wrong password is refused.
func TestPhoneRegistersWithDigest(t *testing.T) {
	t.Parallel()
	ha1, err := digest.ComputeHA1(digest.MD5, "ana", "hotline", "pw")
	if err != nil {
		t.Fatal(err)
	}
	auth, err := digest.New(digest.Options{Realm: "hotline", Algorithms: []string{digest.MD5},
		Lookup: func(string) (digest.HA1, bool) { return digest.HA1{MD5: ha1}, true }})
	if err != nil {
		t.Fatal(err)
	}
	srv := newSipgo(t)
	srv.OnRegister(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		var creds []string
		for _, h := range req.GetHeaders("Authorization") {
			creds = append(creds, h.Value())
		}
		if _, err := auth.Verify(time.Now(), digest.Request{Method: "REGISTER", Authorization: creds}); err != nil {
			res := sipmsg.NewResponseFromRequest(req, 401, "Unauthorized", nil)
			for _, c := range auth.Challenges(time.Now(), "ana", false) {
				res.AppendHeader(sipmsg.NewHeader("WWW-Authenticate", c))
			}
			_ = tx.Respond(res)
			return
		}
		_ = tx.Respond(sipmsg.NewResponseFromRequest(req, 200, "OK", nil))
	})
	addr := serveUDP(t, srv)
	p := NewPhone(t, addr, "ana", "pw", PCMU, 1000)
	p.Register(60)
	p.DoRegister(60, "wrong", 401)
}

// A caller rings a phone directly: the phone answers with SDP and plays its tone, the
// caller's tone reaches the phone, the caller hangs up and the phone sees the BYE.
func TestCallerRingsPhone(t *testing.T) {
	t.Parallel()
	// The phone's "server" is the caller's socket, and the caller's the phone's.
	c := NewCaller(t, "127.0.0.1:9")
	p := NewPhone(t, c.Conn.LocalAddr().String(), "ana", "pw", PCMA, 1000)
	c.Server = p.Conn.LocalAddr().(*net.UDPAddr)
	c.ViaPort = c.Conn.LocalAddr().(*net.UDPAddr).Port
	heard := c.Record()

	c.Invite("ana", Offer(c.RTPPort(), "8 101", ""))
	inv := p.ExpectInvite(2 * time.Second)
	c.ExpectResponse("INVITE", 180, 2*time.Second)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Answer(inv)
	}()
	res := c.ExpectResponse("INVITE", 200, 2*time.Second)
	c.Ack("ana", "")
	<-done
	m, err := sdp.NegotiateAnswer(res.Body())
	if err != nil || m.PayloadType != PCMA {
		t.Fatalf("phone answered %v %v", m, err)
	}
	stop := c.StreamTo(net.UDPAddrFromAddrPort(m.Remote)).Start(PCMA, 440)
	defer stop()
	heard.WaitTone(t, "the caller hears the phone", PCMA, 1000, 5*time.Second)
	p.Heard.WaitTone(t, "the phone hears the caller", PCMA, 440, 5*time.Second)

	hungUp := make(chan struct{})
	go func() {
		defer close(hungUp)
		c.Hangup("ana")
	}()
	p.ExpectBye(2 * time.Second)
	<-hungUp
}

// A flooder counts one answer per request, however often it is retransmitted.
func TestFlooderCountsAnswers(t *testing.T) {
	t.Parallel()
	srv := newSipgo(t)
	srv.OnOptions(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		res := sipmsg.NewResponseFromRequest(req, 200, "OK", nil)
		_ = tx.Respond(res)
		_ = tx.Respond(res) // a retransmission
	})
	addr := serveUDP(t, srv)
	f := NewFlooder(t, net.IPv4(127, 0, 0, 7), addr)
	const n = 20
	for range n {
		if !f.Send("OPTIONS", "100") {
			t.Fatal("send failed")
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.Count("OPTIONS 200") < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := f.Count("OPTIONS 200"); got != n {
		t.Fatalf("%d requests answered, want %d", got, n)
	}
	if finals := f.Finals(); len(finals) != n {
		t.Errorf("%d Call-IDs with finals, want %d", len(finals), n)
	}
}

func udpPair(t *testing.T) (recv, send *net.UDPConn) {
	t.Helper()
	recv, err := net.ListenUDP("udp", &net.UDPAddr{IP: Loopback})
	if err != nil {
		t.Fatal(err)
	}
	send, err = net.ListenUDP("udp", &net.UDPAddr{IP: Loopback})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { recv.Close(); send.Close() })
	return recv, send
}

func waitLen(t *testing.T, r *Recorder, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.Len() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d packets received, want %d", r.Len(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitChan(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(5 * time.Second):
		t.Fatalf("the UAS saw no %s", what)
	}
}

func newSipgo(t *testing.T) *sipgo.Server {
	t.Helper()
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(); ua.Close() })
	return srv
}

func serveUDP(t *testing.T, srv *sipgo.Server) string {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.ServeUDP(conn) }()
	return conn.LocalAddr().String()
}

// sipgoUAS is a sipgo server on network answering INVITE with SDP (media at port 4000),
// and BYE; it reports the ACK and the BYE.
func sipgoUAS(t *testing.T, network string) (addr string, acked, byed chan struct{}) {
	t.Helper()
	srv := newSipgo(t)
	acked, byed = make(chan struct{}, 1), make(chan struct{}, 1)
	srv.OnInvite(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		res := sipmsg.NewResponseFromRequest(req, 200, "OK", []byte(Offer(4000, "0 101", "")))
		res.AppendHeader(sipmsg.NewHeader("Content-Type", "application/sdp"))
		res.To().Params.Add("tag", "uas")
		_ = tx.Respond(res)
	})
	srv.OnAck(func(*sipmsg.Request, sipmsg.ServerTransaction) { acked <- struct{}{} })
	srv.OnBye(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		_ = tx.Respond(sipmsg.NewResponseFromRequest(req, 200, "OK", nil))
		byed <- struct{}{}
	})
	if network == "udp" {
		return serveUDP(t, srv), acked, byed
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.ServeTCP(l) }()
	return l.Addr().String(), acked, byed
}

// A recording is heard with a few frames skipped (as a late scheduler does), and not when
// too many are missing or another recording plays.
func TestHeardAllowsSkippedFrames(t *testing.T) {
	t.Parallel()
	s := NewStream(nil, nil, 1)
	var prompt []byte
	for range 100 {
		prompt = append(prompt, s.ToneFrame(PCMU, 700+float64(len(prompt)%3000))...)
	}
	prompt = prompt[:len(prompt)-40] // the last frame partial
	other := NewStream(nil, nil, 2)
	frames := func(skip func(i int) bool) *Recorder {
		r := &Recorder{}
		for range 3 {
			r.Add(Packet{Pkt: rtp.Packet{Payload: other.ToneFrame(PCMU, 300)}})
		}
		for i := 0; i*FrameSize < len(prompt); i++ {
			if skip(i) {
				continue
			}
			f := make([]byte, FrameSize)
			copy(f, bytes.Repeat([]byte{0xFF}, FrameSize))
			copy(f, prompt[i*FrameSize:min(len(prompt), (i+1)*FrameSize)])
			r.Add(Packet{Pkt: rtp.Packet{Payload: f}})
			if i == 50 {
				r.Add(Packet{Pkt: rtp.Packet{Header: rtp.Header{PayloadType: DTMF}, Payload: []byte{1, 2, 3, 4}}})
			}
		}
		return r
	}
	for _, tt := range []struct {
		name string
		skip func(int) bool
		want bool
	}{
		{"all", func(int) bool { return false }, true},
		{"first skipped", func(i int) bool { return i == 0 }, true},
		{"every 25th skipped", func(i int) bool { return i%25 == 7 }, true},
		{"one in ten skipped", func(i int) bool { return i%10 == 3 }, false},
		{"seven in a row", func(i int) bool { return i >= 40 && i < 47 }, false},
		{"the second half missing", func(i int) bool { return i >= 50 }, false},
	} {
		if got := frames(tt.skip).Heard(prompt); got != tt.want {
			t.Errorf("%s: Heard = %v, want %v", tt.name, got, tt.want)
		}
	}
	if frames(func(int) bool { return false }).Heard(other.ToneFrame(PCMU, 1234)) {
		t.Error("heard a frame never sent")
	}
}

// After a pause the stream's timestamp has moved on with the clock, and the first packet
// after it carries the marker bit.
func TestStreamPauseAdvancesTimestamp(t *testing.T) {
	t.Parallel()
	recv, send := udpPair(t)
	rec := Record(recv)
	s := NewStreamAt(send, recv.LocalAddr().(*net.UDPAddr), 9, 10, 0)
	s.Silence(1)
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.Play(ctx, PCMU, 0) // one frame: a talkspurt after the pause
	waitLen(t, rec, 2)
	p := rec.Snapshot()
	if d := p[1].Pkt.Timestamp - p[0].Pkt.Timestamp; d < 160*14 || d%160 != 0 {
		t.Errorf("timestamp advanced %d over 300 ms of pause, want at least 15 frames' worth, whole frames", d)
	}
	if p[1].Pkt.SequenceNumber != 11 || !p[1].Pkt.Marker || p[0].Pkt.Marker {
		t.Errorf("seq %d marker %v then %v: want consecutive, the marker after the pause only", p[1].Pkt.SequenceNumber, p[0].Pkt.Marker, p[1].Pkt.Marker)
	}
}

// With ViaReplies a phone answers to the request's top Via, wherever its server is.
func TestPhoneRepliesToVia(t *testing.T) {
	t.Parallel()
	c := NewCaller(t, "127.0.0.1:9")
	p := NewPhone(t, "127.0.0.1:9", "ana", "pw", PCMU, 1000)
	p.ViaReplies = true
	c.Server = p.Conn.LocalAddr().(*net.UDPAddr)
	c.ViaPort = c.Conn.LocalAddr().(*net.UDPAddr).Port
	c.Invite("ana", Offer(c.RTPPort(), "0", ""))
	inv := p.ExpectInvite(2 * time.Second)
	c.ExpectResponse("INVITE", 180, 2*time.Second)
	p.Reply(inv, 486, "Busy Here", "", "ph1")
	if res := c.FinalResponse("INVITE", 2*time.Second); res.StatusCode != 486 {
		t.Errorf("final %d, want 486", res.StatusCode)
	}
	c.Send(c.Request("ACK", "ana", "", ""))
	p.ExpectRequest("ACK", 2*time.Second, false)
}
