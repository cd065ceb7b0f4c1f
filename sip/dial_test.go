package sip

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"github.com/hotline-project/hotline/media"
	"github.com/hotline-project/hotline/prompts"
	"github.com/hotline-project/hotline/sip/sdp"
)

// waitTime bounds every wait in these tests; it is a failure deadline, not a timing assertion.
const waitTime = 5 * time.Second

// testSrv is a Server serving on loopback UDP and TCP ports chosen at run time.
type testSrv struct {
	*Server
	ports   *media.Ports
	udpAddr *net.UDPAddr
	tcpAddr *net.TCPAddr
	tlsAddr *net.TCPAddr // nil without TLS
	stop    func()
}

func startDialServer(t *testing.T) *testSrv {
	t.Helper()
	return startDialServerTLS(t, nil, nil)
}

// startDialServerTLS is startDialServer also serving TLS with serverTLS, when it is not nil,
// and connecting to phones over TLS with clientTLS.
func startDialServerTLS(t *testing.T, serverTLS, clientTLS *tls.Config) *testSrv {
	t.Helper()
	sched := media.NewScheduler(media.SchedulerOptions{Workers: 1})
	lo, hi := freePortRange(t, 40)
	ports := media.NewPorts(netip.MustParseAddr("127.0.0.1"), lo, hi)
	srv, err := NewServer(Options{
		Lines:             func(string) (string, bool) { return "", false },
		Handler:           func(context.Context, *Call) {},
		Scheduler:         sched,
		Ports:             ports,
		AdvertiseAddr:     netip.MustParseAddr("127.0.0.1"),
		InactivityTimeout: time.Minute,
		Logger:            slog.New(slog.DiscardHandler),
		TLS:               serverTLS,
		TLSClient:         clientTLS,
	})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	var tlsLn net.Listener
	if serverTLS != nil {
		if tlsLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	schedDone := make(chan error, 1)
	go func() { schedDone <- sched.Run(ctx) }()
	served := make(chan error, 1)
	go func() { served <- srv.ServeListeners(ctx, Listeners{UDP: udp, TCP: tcp, TLS: tlsLn}) }()
	// Serve records its listeners before it blocks; wait until Dial can use them.
	waitUntil(t, "server listening", func() bool {
		_, u := srv.listener("udp")
		_, c := srv.listener("tcp")
		_, l := srv.listener("tls")
		return u && c && (l || tlsLn == nil)
	})
	var once sync.Once
	ts := &testSrv{Server: srv, ports: ports, udpAddr: udp.LocalAddr().(*net.UDPAddr), tcpAddr: tcp.Addr().(*net.TCPAddr)}
	ts.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-served:
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("Serve did not return")
			}
			<-schedDone
			waitUntil(t, "media ports released", func() bool { return ports.InUse() == 0 })
		})
	}
	if tlsLn != nil {
		ts.tlsAddr = tlsLn.Addr().(*net.TCPAddr)
	}
	t.Cleanup(ts.stop)
	return ts
}

// freePortRange returns an RTP port range starting at a port the kernel just handed out.
func freePortRange(t *testing.T, width int) (int, int) {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := c.LocalAddr().(*net.UDPAddr).Port &^ 1
	c.Close()
	if p+width > 65534 {
		p = 65534 - width
	}
	return p, p + width
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// phone is a SIP phone for tests (the advocate's), over UDP or TCP, written by hand so that
// tests control every message: it can retransmit a 200, or answer nothing.
type phone struct {
	t         *testing.T
	transport string // "udp", "tcp" or "tls"
	udp       *net.UDPConn
	ln        net.Listener
	rtp       *net.UDPConn
	tag       string
	msgs      chan sipmsg.Message
	tlsConf   *tls.Config

	mu     sync.Mutex
	tcp    net.Conn     // the connection the server opened
	peer   *net.UDPAddr // where the last UDP message came from
	invite *sipmsg.Request
	cseq   int
}

func newPhone(t *testing.T, transport string) *phone {
	t.Helper()
	return newPhoneTLS(t, transport, nil)
}

// newPhoneTLS is newPhone; for transport "tls" it serves TLS with conf.
func newPhoneTLS(t *testing.T, transport string, conf *tls.Config) *phone {
	t.Helper()
	p := &phone{t: t, transport: transport, tag: randHex(4), msgs: make(chan sipmsg.Message, 64), cseq: 100, tlsConf: conf}
	var err error
	p.rtp, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	if transport == "udp" {
		p.udp, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(p.readUDP)
	} else {
		p.ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if transport == "tls" {
			p.ln = tls.NewListener(p.ln, p.tlsConf)
		}
		wg.Go(p.acceptTCP)
	}
	t.Cleanup(func() {
		p.rtp.Close()
		if p.udp != nil {
			p.udp.Close()
		}
		if p.ln != nil {
			p.ln.Close()
		}
		p.mu.Lock()
		if p.tcp != nil {
			p.tcp.Close()
		}
		p.mu.Unlock()
		wg.Wait()
	})
	return p
}

func (p *phone) addr() string {
	if p.udp != nil {
		return p.udp.LocalAddr().String()
	}
	return p.ln.Addr().String()
}

// uri is the phone's contact URI, as a registrar would have recorded it.
func (p *phone) uri() string {
	return "sip:alice@" + p.addr() + ";transport=" + p.transport
}

func (p *phone) rtpPort() int { return p.rtp.LocalAddr().(*net.UDPAddr).Port }

func (p *phone) readUDP() {
	buf := make([]byte, 65535)
	for {
		n, from, err := p.udp.ReadFromUDP(buf)
		if err != nil {
			return
		}
		m, err := sipmsg.ParseMessage(append([]byte(nil), buf[:n]...))
		if err != nil {
			continue
		}
		m.SetSource(from.String())
		p.mu.Lock()
		p.peer = from
		p.mu.Unlock()
		p.msgs <- m
	}
}

func (p *phone) acceptTCP() {
	conn, err := p.ln.Accept()
	if err != nil {
		return
	}
	p.mu.Lock()
	p.tcp = conn
	p.mu.Unlock()
	r := bufio.NewReader(conn)
	for {
		var head bytes.Buffer
		length := 0
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if head.Len() == 0 && strings.TrimSpace(line) == "" {
				continue // keep-alive
			}
			head.WriteString(line)
			if line == "\r\n" {
				break
			}
			if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "content-length") {
				length, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		body := make([]byte, length)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		m, err := sipmsg.ParseMessage(append(head.Bytes(), body...))
		if err != nil {
			continue
		}
		m.SetSource(conn.RemoteAddr().String())
		p.msgs <- m
	}
}

func (p *phone) send(b []byte) {
	p.t.Helper()
	p.mu.Lock()
	tcp, peer := p.tcp, p.peer
	p.mu.Unlock()
	var err error
	if tcp != nil {
		_, err = tcp.Write(b)
	} else {
		_, err = p.udp.WriteToUDP(b, peer)
	}
	if err != nil {
		p.t.Fatalf("phone send: %v", err)
	}
}

// expectRequest waits for a request of the given method, skipping anything else.
func (p *phone) expectRequest(method string) *sipmsg.Request {
	p.t.Helper()
	deadline := time.After(waitTime)
	for {
		select {
		case m := <-p.msgs:
			if req, ok := m.(*sipmsg.Request); ok && string(req.Method) == method {
				if req.IsInvite() && p.invite == nil {
					p.invite = req
				}
				return req
			}
		case <-deadline:
			p.t.Fatalf("phone: no %s", method)
			return nil
		}
	}
}

// expectResponse waits for the final response to the phone's request with this CSeq method.
func (p *phone) expectResponse(method string) *sipmsg.Response {
	p.t.Helper()
	deadline := time.After(waitTime)
	for {
		select {
		case m := <-p.msgs:
			if res, ok := m.(*sipmsg.Response); ok && string(res.CSeq().MethodName) == method && res.StatusCode >= 200 {
				return res
			}
		case <-deadline:
			p.t.Fatalf("phone: no response to %s", method)
			return nil
		}
	}
}

// respond answers req; responses to the INVITE carry the phone's To tag and Contact.
func (p *phone) respond(req *sipmsg.Request, code int, reason string, body string) []byte {
	p.t.Helper()
	res := sipmsg.NewResponseFromRequest(req, code, reason, nil)
	if req.IsInvite() && code > 100 {
		res.To().Params.Add("tag", p.tag)
		res.AppendHeader(sipmsg.NewHeader("Contact", "<"+p.uri()+">"))
	}
	if body != "" {
		res.AppendHeader(sipmsg.NewHeader("Content-Type", "application/sdp"))
	}
	res.SetBody([]byte(body))
	b := []byte(res.String())
	p.send(b)
	return b
}

// request sends a request inside the dialog the server's INVITE created.
func (p *phone) request(method, ctype, body string) {
	p.t.Helper()
	inv := p.invite
	p.cseq++
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", method, inv.Contact().Address.String())
	fmt.Fprintf(&b, "Via: SIP/2.0/%s %s;branch=z9hG4bK%s\r\n", strings.ToUpper(p.transport), p.addr(), randHex(6))
	b.WriteString("Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: <%s>;tag=%s\r\n", inv.To().Address.String(), p.tag)
	fmt.Fprintf(&b, "To: %s\r\n", inv.From().Value())
	fmt.Fprintf(&b, "Call-ID: %s\r\n", inv.CallID().Value())
	fmt.Fprintf(&b, "CSeq: %d %s\r\n", p.cseq, method)
	fmt.Fprintf(&b, "Contact: <%s>\r\n", p.uri())
	if body != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", ctype)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	p.send([]byte(b.String()))
}

// answerSDP is the phone's SDP: PCMA and telephone-event, with an optional direction.
func (p *phone) answerSDP(direction string) string {
	s := "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio " + strconv.Itoa(p.rtpPort()) + " RTP/AVP 8 101\r\n" +
		"a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
	if direction != "" {
		s += "a=" + direction + "\r\n"
	}
	return s
}

// offeredRTP returns the RTP address in the server's SDP offer or answer.
func offeredRTP(t *testing.T, body []byte) netip.AddrPort {
	t.Helper()
	m, err := sdp.NegotiateOffer(body)
	if err != nil {
		t.Fatalf("server sdp: %v\n%s", err, body)
	}
	return m.Remote
}

// readRTP reads RTP packets from the phone's media socket until one satisfies ok.
func (p *phone) readRTP(ok func(*rtp.Packet) bool) *rtp.Packet {
	p.t.Helper()
	buf := make([]byte, 2048)
	deadline := time.Now().Add(waitTime)
	for {
		if err := p.rtp.SetReadDeadline(deadline); err != nil {
			p.t.Fatal(err)
		}
		n, _, err := p.rtp.ReadFromUDP(buf)
		if err != nil {
			p.t.Fatalf("phone: rtp: %v", err)
		}
		var pkt rtp.Packet
		if pkt.Unmarshal(buf[:n]) == nil && ok(&pkt) {
			return &pkt
		}
	}
}

// sendRTP sends one PCMA packet to the server's leg, so that the leg latches to the phone.
func (p *phone) sendRTP(to netip.AddrPort, seq uint16) {
	p.t.Helper()
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: 42}, Payload: make([]byte, 160)}
	b, err := pkt.Marshal()
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.rtp.WriteToUDPAddrPort(b, to); err != nil {
		p.t.Fatal(err)
	}
}

type dialResult struct {
	call *Call
	err  error
}

func dialAsync(ctx context.Context, s *testSrv, req DialRequest) <-chan dialResult {
	ch := make(chan dialResult, 1)
	go func() {
		c, err := s.Dial(ctx, req)
		ch <- dialResult{c, err}
	}()
	return ch
}

func waitDial(t *testing.T, ch <-chan dialResult) dialResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(waitTime):
		t.Fatal("Dial did not return")
		return dialResult{}
	}
}

func testPrompt(t *testing.T) *prompts.Prompt {
	t.Helper()
	cat, err := prompts.LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range cat.Languages() {
		for _, name := range cat.Names(lang) {
			if p, ok := cat.Get(lang, name); ok {
				return p
			}
		}
	}
	t.Fatal("no embedded prompt")
	return nil
}

// answer runs the phone's side of an answered call: INVITE, 180, 200 with PCMA, ACK. It
// returns the 200 as sent and the server's RTP address.
func answer(t *testing.T, p *phone) ([]byte, netip.AddrPort) {
	t.Helper()
	inv := p.expectRequest("INVITE")
	p.respond(inv, 100, "Trying", "")
	p.respond(inv, 180, "Ringing", "")
	ok := p.respond(inv, 200, "OK", p.answerSDP(""))
	p.expectRequest("ACK")
	return ok, offeredRTP(t, inv.Body())
}

// TestDialAnswered: the server INVITEs the phone from its listening socket with the line's
// identity, ACKs the 200 and every retransmission of it, sends prompts in the answered codec,
// takes INFO digits, and ends the call when the phone hangs up.
func TestDialAnswered(t *testing.T) {
	s := startDialServer(t)
	p := newPhone(t, "udp")
	progress := make(chan int, 4)
	res := dialAsync(context.Background(), s, DialRequest{
		Target:      p.uri(),
		Line:        "main",
		FromDisplay: "Hotline EN",
		Headers:     []Header{{Name: "X-Hotline-Queue", Value: "english"}},
		OnProgress:  func(status int) { progress <- status },
	})

	inv := p.expectRequest("INVITE")
	p.mu.Lock()
	from := p.peer
	p.mu.Unlock()
	if from.Port != s.udpAddr.Port {
		t.Errorf("INVITE sent from port %d, want the listening port %d", from.Port, s.udpAddr.Port)
	}
	if got := inv.From().Address.User; got != "main" {
		t.Errorf("From user = %q, want the line name", got)
	}
	if got := inv.From().DisplayName; got != "Hotline EN" {
		t.Errorf("From display = %q, want %q", got, "Hotline EN")
	}
	if h := inv.GetHeader("X-Hotline-Queue"); h == nil || h.Value() != "english" {
		t.Errorf("X-Hotline-Queue = %v, want english", h)
	}
	if via := inv.Via(); via.Port != s.udpAddr.Port || via.Host != "127.0.0.1" {
		t.Errorf("Via sent-by = %s:%d, want 127.0.0.1:%d", via.Host, via.Port, s.udpAddr.Port)
	}
	for _, codec := range []string{"PCMU/8000", "PCMA/8000", "telephone-event/8000"} {
		if !strings.Contains(string(inv.Body()), codec) {
			t.Errorf("offer lacks %s:\n%s", codec, inv.Body())
		}
	}
	p.respond(inv, 100, "Trying", "")
	p.respond(inv, 180, "Ringing", "")
	// Wait for the 180 to be handled: UDP datagrams are handled concurrently, and a 180
	// overtaken by the 200 is (rightly) dropped.
	select {
	case st := <-progress:
		if st != 180 {
			t.Errorf("progress %d, want 180", st)
		}
	case <-time.After(waitTime):
		t.Fatal("no progress reported for 180")
	}
	ok := p.respond(inv, 200, "OK", p.answerSDP(""))
	ack := p.expectRequest("ACK")
	if ack.CSeq().SeqNo != inv.CSeq().SeqNo {
		t.Errorf("ACK CSeq %d, want the INVITE's %d", ack.CSeq().SeqNo, inv.CSeq().SeqNo)
	}
	// The 200 is retransmitted (as if the ACK were lost): it must be ACKed again.
	p.send(ok)
	p.expectRequest("ACK")

	r := waitDial(t, res)
	if r.err != nil {
		t.Fatalf("Dial: %v", r.err)
	}
	c := r.call
	if len(progress) != 0 {
		t.Errorf("progress reported %d more times, want once (not for 100)", len(progress))
	}
	if got := c.Media().PayloadType; got != sdp.PayloadPCMA {
		t.Errorf("payload type = %d, want PCMA", got)
	}
	if c.Leg() == nil {
		t.Fatal("Leg() = nil")
	}
	if n := s.ActiveCalls(); n != 1 {
		t.Errorf("ActiveCalls = %d, want 1", n)
	}

	// Media: the leg latches to the phone and a prompt arrives in PCMA.
	legAddr := offeredRTP(t, inv.Body())
	p.sendRTP(legAddr, 1)
	played := make(chan error, 1)
	go func() { played <- c.Play(context.Background(), testPrompt(t)) }()
	p.readRTP(func(pkt *rtp.Packet) bool {
		return pkt.PayloadType == sdp.PayloadPCMA && !bytes.Equal(pkt.Payload, bytes.Repeat([]byte{0xd5}, len(pkt.Payload)))
	})

	// A digit sent by SIP INFO reaches Digits.
	p.request("INFO", "application/dtmf-relay", "Signal=7\r\nDuration=160\r\n")
	if res := p.expectResponse("INFO"); res.StatusCode != 200 {
		t.Errorf("INFO answered %d", res.StatusCode)
	}
	select {
	case d := <-c.Digits():
		if d != '7' {
			t.Errorf("digit %q, want 7", d)
		}
	case <-time.After(waitTime):
		t.Error("no digit from INFO")
	}

	// And one sent as an RFC 4733 event, at the telephone-event payload type we offered.
	ev := rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: 2, Timestamp: 320, SSRC: 42, Marker: true},
		Payload: []byte{5, 0x80 | 10, 0x03, 0x20}, // event 5, end, duration 800
	}
	evb, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.rtp.WriteToUDPAddrPort(evb, legAddr); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-c.Digits():
		if d != '5' {
			t.Errorf("digit %q, want 5", d)
		}
	case <-time.After(waitTime):
		t.Error("no digit from the RFC 4733 event")
	}

	p.request("BYE", "", "")
	if res := p.expectResponse("BYE"); res.StatusCode != 200 {
		t.Errorf("BYE answered %d", res.StatusCode)
	}
	select {
	case <-c.Done():
	case <-time.After(waitTime):
		t.Fatal("call not ended by the phone's BYE")
	}
	if cause := context.Cause(c.Context()); !errors.Is(cause, ErrRemoteHangup) {
		t.Errorf("cause = %v, want ErrRemoteHangup", cause)
	}
	if err := <-played; err == nil {
		t.Error("Play returned nil after hang-up, want the call's end")
	}
	waitUntil(t, "call released", func() bool { return s.ActiveCalls() == 0 && s.ports.InUse() == 0 })
}

// TestDialHangup: our Hangup sends a BYE the phone answers, over UDP and over TCP.
func TestDialHangup(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			s := startDialServer(t)
			p := newPhone(t, transport)
			res := dialAsync(context.Background(), s, DialRequest{Target: p.uri(), Line: "main"})
			_, legAddr := answer(t, p)
			r := waitDial(t, res)
			if r.err != nil {
				t.Fatalf("Dial: %v", r.err)
			}
			c := r.call
			if got := p.invite.Transport(); !strings.EqualFold(got, transport) {
				t.Errorf("INVITE transport %s, want %s", got, transport)
			}
			p.sendRTP(legAddr, 1)
			played := make(chan error, 1)
			go func() { played <- c.Play(context.Background(), testPrompt(t)) }()
			p.readRTP(func(pkt *rtp.Packet) bool { return pkt.PayloadType == sdp.PayloadPCMA })

			hung := make(chan error, 1)
			go func() { hung <- c.Hangup(context.Background(), "test") }()
			bye := p.expectRequest("BYE")
			p.respond(bye, 200, "OK", "")
			if err := <-hung; err != nil {
				t.Errorf("Hangup: %v", err)
			}
			if cause := context.Cause(c.Context()); !errors.Is(cause, ErrServerHangup) {
				t.Errorf("cause = %v, want ErrServerHangup", cause)
			}
			<-played
			waitUntil(t, "call released", func() bool { return s.ActiveCalls() == 0 && s.ports.InUse() == 0 })
		})
	}
}

// TestDialFailures: final responses map to typed errors, and nothing is left behind.
func TestDialFailures(t *testing.T) {
	tests := []struct {
		status int
		want   error
	}{
		{486, ErrBusy},
		{600, ErrBusy},
		{603, ErrRejected},
		{403, ErrRejected},
		{480, ErrNoAnswer},
		{408, ErrNoAnswer},
		{500, ErrDialFailed},
		{404, ErrDialFailed},
	}
	s := startDialServer(t)
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			p := newPhone(t, "udp")
			res := dialAsync(context.Background(), s, DialRequest{Target: p.uri(), Line: "main"})
			inv := p.expectRequest("INVITE")
			p.respond(inv, 180, "Ringing", "")
			p.respond(inv, tt.status, "Nope", "")
			p.expectRequest("ACK") // the transaction layer ACKs a failure response
			r := waitDial(t, res)
			if !errors.Is(r.err, tt.want) {
				t.Fatalf("Dial error = %v, want %v", r.err, tt.want)
			}
			var de *DialError
			if !errors.As(r.err, &de) || de.Status != tt.status {
				t.Errorf("Dial error = %#v, want a *DialError with status %d", r.err, tt.status)
			}
			waitUntil(t, "leg released", func() bool { return s.ActiveCalls() == 0 && s.ports.InUse() == 0 })
		})
	}
}

// TestDialCancel: the ring timeout (ctx) ends before the answer: CANCEL, 487, ErrNoAnswer.
func TestDialCancel(t *testing.T) {
	s := startDialServer(t)
	p := newPhone(t, "udp")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ringing := make(chan struct{})
	res := dialAsync(ctx, s, DialRequest{Target: p.uri(), Line: "main", OnProgress: func(int) { close(ringing) }})
	inv := p.expectRequest("INVITE")
	p.respond(inv, 180, "Ringing", "")
	<-ringing
	cancel()
	cancelReq := p.expectRequest("CANCEL")
	if cancelReq.CSeq().SeqNo != inv.CSeq().SeqNo {
		t.Errorf("CANCEL CSeq %d, want %d", cancelReq.CSeq().SeqNo, inv.CSeq().SeqNo)
	}
	p.respond(cancelReq, 200, "OK", "")
	p.respond(inv, 487, "Request Terminated", "")
	p.expectRequest("ACK")
	r := waitDial(t, res)
	if !errors.Is(r.err, ErrNoAnswer) || !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Dial error = %v, want ErrNoAnswer and context.Canceled", r.err)
	}
	waitUntil(t, "leg released", func() bool { return s.ActiveCalls() == 0 && s.ports.InUse() == 0 })
}

// TestDialCancelSilentPhone: a phone that never answered at all cannot be sent CANCEL (RFC 3261
// 9.1); the dial gives up after cancelGrace instead of waiting for Timer B.
func TestDialCancelSilentPhone(t *testing.T) {
	old := cancelGrace
	cancelGrace = 50 * time.Millisecond
	defer func() { cancelGrace = old }()
	s := startDialServer(t)
	p := newPhone(t, "udp")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := dialAsync(ctx, s, DialRequest{Target: p.uri(), Line: "main"})
	p.expectRequest("INVITE")
	cancel()
	r := waitDial(t, res)
	if !errors.Is(r.err, ErrNoAnswer) || !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Dial error = %v, want ErrNoAnswer and context.Canceled", r.err)
	}
	waitUntil(t, "leg released", func() bool { return s.ActiveCalls() == 0 && s.ports.InUse() == 0 })
}

// TestDialCancelCrossesAnswer: the phone answers just as the dial is cancelled: the 200 is
// ACKed and the call hung up at once.
func TestDialCancelCrossesAnswer(t *testing.T) {
	s := startDialServer(t)
	p := newPhone(t, "udp")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ringing := make(chan struct{})
	res := dialAsync(ctx, s, DialRequest{Target: p.uri(), Line: "main", OnProgress: func(int) { close(ringing) }})
	inv := p.expectRequest("INVITE")
	p.respond(inv, 180, "Ringing", "")
	<-ringing
	cancel()
	cancelReq := p.expectRequest("CANCEL")
	p.respond(cancelReq, 200, "OK", "")
	p.respond(inv, 200, "OK", p.answerSDP(""))
	p.expectRequest("ACK")
	bye := p.expectRequest("BYE")
	p.respond(bye, 200, "OK", "")
	r := waitDial(t, res)
	if !errors.Is(r.err, ErrNoAnswer) {
		t.Fatalf("Dial error = %v, want ErrNoAnswer", r.err)
	}
	waitUntil(t, "leg released", func() bool { return s.ActiveCalls() == 0 && s.ports.InUse() == 0 })
}

// TestDialBadAnswerSDP: a 2xx without a usable answer is ACKed, then hung up.
func TestDialBadAnswerSDP(t *testing.T) {
	s := startDialServer(t)
	p := newPhone(t, "udp")
	res := dialAsync(context.Background(), s, DialRequest{Target: p.uri(), Line: "main"})
	inv := p.expectRequest("INVITE")
	g722 := "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio " + strconv.Itoa(p.rtpPort()) + " RTP/AVP 9\r\na=rtpmap:9 G722/8000\r\n"
	p.respond(inv, 200, "OK", g722)
	p.expectRequest("ACK")
	bye := p.expectRequest("BYE")
	p.respond(bye, 200, "OK", "")
	r := waitDial(t, res)
	if !errors.Is(r.err, sdp.ErrNotAcceptable) {
		t.Fatalf("Dial error = %v, want sdp.ErrNotAcceptable", r.err)
	}
	waitUntil(t, "leg released", func() bool { return s.ActiveCalls() == 0 && s.ports.InUse() == 0 })
}

// TestDialHold: a re-INVITE from the phone with a=sendonly is answered recvonly and the leg
// stops sending; a=sendrecv resumes.
func TestDialHold(t *testing.T) {
	s := startDialServer(t)
	p := newPhone(t, "udp")
	res := dialAsync(context.Background(), s, DialRequest{Target: p.uri(), Line: "main"})
	_, legAddr := answer(t, p)
	r := waitDial(t, res)
	if r.err != nil {
		t.Fatalf("Dial: %v", r.err)
	}
	c := r.call
	p.sendRTP(legAddr, 1)
	p.readRTP(func(*rtp.Packet) bool { return true })

	p.request("INVITE", "application/sdp", p.answerSDP("sendonly"))
	ok := p.expectResponse("INVITE")
	if ok.StatusCode != 200 || !strings.Contains(string(ok.Body()), "a=recvonly") {
		t.Fatalf("hold answered %d:\n%s", ok.StatusCode, ok.Body())
	}
	if c.Media().Send {
		t.Error("still sending after hold")
	}
	// The 200 left after the leg stopped: drain what was sent before, then nothing more comes.
	drainRTP(p.rtp)
	if err := p.rtp.SetReadDeadline(time.Now().Add(300 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if n, _, err := p.rtp.ReadFromUDP(make([]byte, 2048)); err == nil {
		t.Errorf("got %d bytes of RTP while on hold", n)
	}

	p.request("INVITE", "application/sdp", p.answerSDP("sendrecv"))
	if ok := p.expectResponse("INVITE"); ok.StatusCode != 200 || !strings.Contains(string(ok.Body()), "a=sendrecv") {
		t.Fatalf("resume answered %d:\n%s", ok.StatusCode, ok.Body())
	}
	p.readRTP(func(*rtp.Packet) bool { return true })

	// The server stopping ends the call with a BYE.
	stopped := make(chan struct{})
	go func() { s.stop(); close(stopped) }()
	bye := p.expectRequest("BYE")
	p.respond(bye, 200, "OK", "")
	<-stopped
	if c.Context().Err() == nil {
		t.Error("call still up after the server stopped")
	}
}

func drainRTP(c *net.UDPConn) {
	buf := make([]byte, 2048)
	for {
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, _, err := c.ReadFromUDP(buf); err != nil {
			return
		}
	}
}

// TestDialSendTo: the INVITE goes to SendTo (the REGISTER's source) rather than the URI's host.
func TestDialSendTo(t *testing.T) {
	s := startDialServer(t)
	p := newPhone(t, "udp")
	res := dialAsync(context.Background(), s, DialRequest{
		Target: "sip:alice@192.0.2.1:5060", // unroutable: only SendTo reaches the phone
		SendTo: p.addr(),
		Line:   "main",
	})
	inv := p.expectRequest("INVITE")
	if inv.Recipient.Host != "192.0.2.1" {
		t.Errorf("Request-URI host %s, want the contact's", inv.Recipient.Host)
	}
	p.respond(inv, 486, "Busy Here", "")
	if r := waitDial(t, res); !errors.Is(r.err, ErrBusy) {
		t.Fatalf("Dial error = %v, want ErrBusy", r.err)
	}
}

// TestDialRoute: with a Route set (the Path the phone registered with, RFC 3327) the INVITE
// goes to the first route's address, an edge proxy, carrying the Route headers in order;
// SendTo (the REGISTER's source, the proxy's own address here) is not used.
func TestDialRoute(t *testing.T) {
	s := startDialServer(t)
	proxy := newPhone(t, "udp")
	route := []string{"<sip:" + proxy.addr() + ";lr;received=sip:127.0.0.9%3A4000>", "<sip:second.example.org;lr>"}
	res := dialAsync(context.Background(), s, DialRequest{
		Target: "sip:alice@192.0.2.1:5060", // the phone's private contact: only the proxy reaches it
		SendTo: "192.0.2.2:5060",
		Route:  route,
		Line:   "main",
	})
	inv := proxy.expectRequest("INVITE")
	if inv.Recipient.Host != "192.0.2.1" {
		t.Errorf("Request-URI host %s, want the contact's", inv.Recipient.Host)
	}
	var got []string
	for _, h := range inv.GetHeaders("Route") {
		got = append(got, h.Value())
	}
	if !slices.Equal(got, route) {
		t.Errorf("Route headers %q, want %q", got, route)
	}
	proxy.respond(inv, 486, "Busy Here", "")
	if r := waitDial(t, res); !errors.Is(r.err, ErrBusy) {
		t.Fatalf("Dial error = %v, want ErrBusy", r.err)
	}
}

// TestDialRequestInvalid: bad requests fail before anything is sent or allocated.
func TestDialRequestInvalid(t *testing.T) {
	s := startDialServer(t)
	tests := []struct {
		name string
		req  DialRequest
	}{
		{"bad uri", DialRequest{Target: "alice"}},
		{"tel uri", DialRequest{Target: "tel:+15551234567"}},
		{"tls not served", DialRequest{Target: "sip:a@127.0.0.1:5060;transport=tls"}},
		{"sips over udp", DialRequest{Target: "sips:a@127.0.0.1:5060;transport=udp"}},
		{"bad send-to", DialRequest{Target: "sip:a@127.0.0.1", SendTo: "127.0.0.1"}},
		{"bad route", DialRequest{Target: "sip:a@127.0.0.1", Route: []string{"<tel:1>"}}},
		{"route injection", DialRequest{Target: "sip:a@127.0.0.1", Route: []string{"<sip:127.0.0.1;lr>", "<sip:b;lr>\r\nVia: evil"}}},
		{"reserved header", DialRequest{Target: "sip:a@127.0.0.1", Headers: []Header{{"From", "x"}}}},
		{"header injection", DialRequest{Target: "sip:a@127.0.0.1", Headers: []Header{{"X-Q", "a\r\nVia: evil"}}}},
		{"bad header name", DialRequest{Target: "sip:a@127.0.0.1", Headers: []Header{{"X Q", "a"}}}},
		{"quote in display", DialRequest{Target: "sip:a@127.0.0.1", FromDisplay: `a"b`}},
		{"bad from user", DialRequest{Target: "sip:a@127.0.0.1", FromUser: "a@b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := s.Dial(context.Background(), tt.req); err == nil {
				c.Hangup(context.Background(), "test")
				t.Fatal("Dial succeeded, want an error")
			}
			if n := s.ports.InUse(); n != 0 {
				t.Errorf("ports in use = %d, want 0", n)
			}
		})
	}
}

func TestClassifyStatus(t *testing.T) {
	tests := []struct {
		status int
		want   error
	}{
		{486, ErrBusy}, {600, ErrBusy}, {603, ErrRejected}, {403, ErrRejected},
		{408, ErrNoAnswer}, {480, ErrNoAnswer}, {487, ErrNoAnswer}, {404, ErrDialFailed}, {503, ErrDialFailed},
	}
	for _, tt := range tests {
		if got := classifyStatus(tt.status); got != tt.want {
			t.Errorf("classifyStatus(%d) = %v, want %v", tt.status, got, tt.want)
		}
	}
}
