package main

import (
	"context"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
	icholy "github.com/icholy/digest"
	"github.com/pion/rtp"

	"github.com/hotline-project/hotline/media/g711"
	"github.com/hotline-project/hotline/sip/digest"
	"github.com/hotline-project/hotline/sip/sdp"
)

// advocateYAML returns the advocates: section for advocates with these ids, languages and
// passwords (id:lang,lang:password), with HA1 values as `hotline passwd` prints them.
func advocateYAML(t *testing.T, specs ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("advocates:\n")
	for _, s := range specs {
		parts := strings.Split(s, ":")
		id, langs, pw := parts[0], parts[1], parts[2]
		sha, err := digest.ComputeHA1(digest.SHA256, id, "hotline", pw)
		if err != nil {
			t.Fatal(err)
		}
		md5, err := digest.ComputeHA1(digest.MD5, id, "hotline", pw)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "  - id: %s\n    name: %s\n    languages: [%s]\n    ha1_sha256: %s\n    ha1_md5: %s\n", id, strings.ToUpper(id[:1])+id[1:], langs, sha, md5)
	}
	return b.String()
}

// phone is an advocate's SIP phone on loopback: it registers with digest authentication,
// answers (or refuses) the INVITEs the server sends it, and plays a tone of its own over RTP
// while recording what it hears.
type phone struct {
	t          *testing.T
	id, pw     string
	conn       *net.UDPConn
	rtp        *net.UDPConn
	server     *net.UDPAddr
	msgs       chan sipmsg.Message
	regCallID  string
	regCSeq    int
	stream     *rtpStream
	pt         uint8   // what it answers with: 0 PCMU or 8 PCMA
	freq       float64 // the tone it sends while in a call
	mu         sync.Mutex
	inCall     *sipmsg.Request // the INVITE of the current call
	localTag   string
	stopTone   context.CancelFunc
	byeCSeq    int
	contactURI string
	// viaReplies sends responses to the request's top Via, not to server.
	viaReplies bool
}

func newPhone(t *testing.T, server, id, pw string, pt uint8, freq float64) *phone {
	t.Helper()
	return newPhoneAt(t, net.IPv4(127, 0, 0, 1), server, id, pw, pt, freq)
}

// newPhoneAt is newPhone with its SIP socket on local address ip (any of 127.0.0.0/8), so
// that tests can place phones at different source addresses.
func newPhoneAt(t *testing.T, ip net.IP, server, id, pw string, pt uint8, freq float64) *phone {
	t.Helper()
	saddr, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	rtpConn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &phone{t: t, id: id, pw: pw, conn: conn, rtp: rtpConn, server: saddr, msgs: make(chan sipmsg.Message, 64),
		regCallID: randHex(8) + "@phone", pt: pt, freq: freq, byeCSeq: 100}
	p.contactURI = fmt.Sprintf("sip:%s@%s", id, conn.LocalAddr())
	u := &uac{t: t, conn: conn, rtp: rtpConn, msgs: p.msgs}
	go u.readLoop()
	p.stream = u.receiveRTP()
	t.Cleanup(func() {
		p.mu.Lock()
		if p.stopTone != nil {
			p.stopTone()
		}
		p.mu.Unlock()
		conn.Close()
		rtpConn.Close()
	})
	return p
}

func (p *phone) send(msg string) {
	if _, err := p.conn.WriteToUDP([]byte(msg), p.server); err != nil {
		p.t.Error(err)
	}
}

func (p *phone) register(expires int) {
	p.t.Helper()
	p.doRegister(expires, p.pw, 200)
}

// doRegister sends REGISTER, answers the challenge with password pw and expects status.
func (p *phone) doRegister(expires int, pw string, status int) *sipmsg.Response {
	p.t.Helper()
	p.regCSeq++
	p.send(p.registerMsg(expires, ""))
	chal := p.expectResponse("REGISTER", 401, 2*time.Second)
	p.regCSeq++
	p.send(p.registerMsg(expires, p.authorization(chal, "REGISTER", "sip:"+p.server.String(), pw)))
	return p.expectResponse("REGISTER", status, 2*time.Second)
}

func (p *phone) authorization(chal *sipmsg.Response, method, uri, pw string) string {
	p.t.Helper()
	c, err := icholy.ParseChallenge(chal.GetHeader("WWW-Authenticate").Value())
	if err != nil {
		p.t.Fatal(err)
	}
	cred, err := icholy.Digest(c, icholy.Options{Method: method, URI: uri, Username: p.id, Password: pw, Count: 1})
	if err != nil {
		p.t.Fatal(err)
	}
	return "Authorization: " + cred.String()
}

func (p *phone) registerMsg(expires int, auth string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "REGISTER sip:%s SIP/2.0\r\n", p.server)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n", p.conn.LocalAddr(), randHex(6))
	b.WriteString("Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%s\r\n", p.id, p.server, randHex(4))
	fmt.Fprintf(&b, "To: <sip:%s@%s>\r\n", p.id, p.server)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", p.regCallID)
	fmt.Fprintf(&b, "CSeq: %d REGISTER\r\n", p.regCSeq)
	fmt.Fprintf(&b, "Contact: <%s>\r\n", p.contactURI)
	fmt.Fprintf(&b, "Expires: %d\r\n", expires)
	if auth != "" {
		b.WriteString(auth + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

// expectResponse waits for a final (or the given provisional) response to method.
func (p *phone) expectResponse(method string, status int, timeout time.Duration) *sipmsg.Response {
	p.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-p.msgs:
			res, ok := m.(*sipmsg.Response)
			if !ok {
				if req, ok := m.(*sipmsg.Request); ok {
					p.handleStray(req)
				}
				continue
			}
			if res.CSeq() == nil || string(res.CSeq().MethodName) != method || res.StatusCode < 200 && res.StatusCode != status {
				continue
			}
			if res.StatusCode != status {
				p.t.Fatalf("%s: got %d %s, want %d", method, res.StatusCode, res.Reason, status)
			}
			return res
		case <-deadline:
			p.t.Fatalf("%s: no %d within %v", method, status, timeout)
			return nil
		}
	}
}

// handleStray answers requests that arrive while waiting for something else: a CANCEL of
// the INVITE being rung, or a retransmitted INVITE.
func (p *phone) handleStray(req *sipmsg.Request) {
	if req.Method == sipmsg.CANCEL {
		p.reply(req, 200, "OK", "", "")
	}
}

func (p *phone) reply(req *sipmsg.Request, code int, reason, body, toTag string) {
	res := sipmsg.NewResponseFromRequest(req, code, reason, nil)
	if toTag != "" {
		if to := res.To(); to != nil {
			to.Params.Add("tag", toTag)
		}
	}
	if body != "" {
		res.AppendHeader(sipmsg.NewHeader("Content-Type", "application/sdp"))
		res.SetBody([]byte(body))
	}
	if code >= 200 && code < 300 && req.Method == sipmsg.INVITE {
		res.AppendHeader(sipmsg.NewHeader("Contact", "<"+p.contactURI+">"))
	}
	to := p.server
	if p.viaReplies {
		// As RFC 3261 18.2.2 says: to the top Via's sent-by (another node of a cluster
		// may be the one ringing this phone).
		if via := req.Via(); via != nil {
			if a, err := net.ResolveUDPAddr("udp", net.JoinHostPort(via.Host, strconv.Itoa(via.Port))); err == nil {
				to = a
			}
		}
	}
	if _, err := p.conn.WriteToUDP([]byte(res.String()), to); err != nil {
		p.t.Error(err)
	}
}

// expectInvite waits for the server to ring this phone and answers 180 Ringing.
func (p *phone) expectInvite(timeout time.Duration) *sipmsg.Request {
	p.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-p.msgs:
			req, ok := m.(*sipmsg.Request)
			if !ok {
				continue
			}
			if req.Method != sipmsg.INVITE {
				p.handleStray(req)
				continue
			}
			p.reply(req, 180, "Ringing", "", "ph"+randHex(3))
			return req
		case <-deadline:
			p.t.Fatalf("phone %s: no INVITE within %v", p.id, timeout)
			return nil
		}
	}
}

// expectNoInvite checks that the server does not ring this phone for a while.
func (p *phone) expectNoInvite(d time.Duration) {
	p.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-p.msgs:
			if req, ok := m.(*sipmsg.Request); ok && req.Method == sipmsg.INVITE {
				p.t.Fatalf("phone %s rang, want no INVITE", p.id)
			}
		case <-deadline:
			return
		}
	}
}

// answer answers inv with 200 OK and an SDP answer, waits for the ACK and starts sending
// its tone to the address in the offer.
func (p *phone) answer(inv *sipmsg.Request) {
	p.t.Helper()
	offer, err := sdp.NegotiateOffer(inv.Body())
	if err != nil {
		p.t.Fatalf("phone %s: bad offer: %v\n%s", p.id, err, inv.Body())
	}
	fmts := strconv.Itoa(int(p.pt)) + " 101"
	tag := "ph" + randHex(3)
	p.mu.Lock()
	p.inCall, p.localTag = inv, tag
	p.mu.Unlock()
	p.reply(inv, 200, "OK", sdpOffer(p.rtp.LocalAddr().(*net.UDPAddr).Port, fmts, ""), tag)
	p.expectRequest("ACK", 2*time.Second, false)
	ctx, cancel := context.WithCancel(context.Background())
	p.mu.Lock()
	p.stopTone = cancel
	p.mu.Unlock()
	go sendTone(ctx, p.rtp, net.UDPAddrFromAddrPort(offer.Remote), p.pt, p.freq)
}

// refuse answers inv with a final error response, such as 486 Busy Here.
func (p *phone) refuse(inv *sipmsg.Request, code int, reason string) {
	p.reply(inv, code, reason, "", "ph"+randHex(3))
	p.expectRequest("ACK", 2*time.Second, false)
}

// expectRequest waits for a request, answering 200 unless it is an ACK.
func (p *phone) expectRequest(method string, timeout time.Duration, answer bool) *sipmsg.Request {
	p.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-p.msgs:
			req, ok := m.(*sipmsg.Request)
			if !ok || string(req.Method) != method {
				if ok && req.Method == sipmsg.CANCEL && method != "CANCEL" {
					p.handleStray(req)
				}
				continue
			}
			if answer {
				p.reply(req, 200, "OK", "", "")
			}
			return req
		case <-deadline:
			p.t.Fatalf("phone %s: no %s within %v", p.id, method, timeout)
			return nil
		}
	}
}

// expectCancel waits for the server to cancel the ringing INVITE: 200 to the CANCEL and
// 487 to the INVITE.
func (p *phone) expectCancel(inv *sipmsg.Request, timeout time.Duration) {
	p.t.Helper()
	p.expectRequest("CANCEL", timeout, true)
	p.reply(inv, 487, "Request Terminated", "", "ph"+randHex(3))
}

// expectBye waits for the server to hang up the call.
func (p *phone) expectBye(timeout time.Duration) {
	p.t.Helper()
	p.expectRequest("BYE", timeout, true)
	p.stop()
}

func (p *phone) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopTone != nil {
		p.stopTone()
		p.stopTone = nil
	}
}

// hangup sends BYE in the current call's dialog (the phone is its UAS) and expects 200.
func (p *phone) hangup() {
	p.t.Helper()
	p.mu.Lock()
	inv, tag := p.inCall, p.localTag
	p.byeCSeq++
	cseq := p.byeCSeq
	p.mu.Unlock()
	p.stop()
	from := inv.From()
	to := inv.To()
	target := inv.Contact().Address
	var b strings.Builder
	fmt.Fprintf(&b, "BYE %s SIP/2.0\r\n", target.String())
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n", p.conn.LocalAddr(), randHex(6))
	b.WriteString("Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: <%s>;tag=%s\r\n", to.Address.String(), tag)
	fromTag, _ := from.Params.Get("tag")
	fmt.Fprintf(&b, "To: <%s>;tag=%s\r\n", from.Address.String(), fromTag)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", inv.CallID().Value())
	fmt.Fprintf(&b, "CSeq: %d BYE\r\n", cseq)
	b.WriteString("Content-Length: 0\r\n\r\n")
	p.send(b.String())
	p.expectResponse("BYE", 200, 2*time.Second)
}

// sendTone sends a sine tone at freq as 20 ms G.711 packets in real time until ctx ends.
func sendTone(ctx context.Context, conn *net.UDPConn, to *net.UDPAddr, pt uint8, freq float64) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	ssrc := uint32(time.Now().UnixNano())
	var seq uint16
	var ts uint32
	var n int
	for {
		payload := make([]byte, 160)
		for i := range payload {
			s := int16(8000 * math.Sin(2*math.Pi*freq*float64(n)/8000))
			n++
			if pt == 8 {
				payload[i] = g711.EncodeAlaw(s)
			} else {
				payload[i] = g711.EncodeUlaw(s)
			}
		}
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc, Marker: seq == 0}, Payload: payload}
		b, _ := pkt.Marshal()
		_, _ = conn.WriteToUDP(b, to)
		seq++
		ts += 160
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// toneLevel returns the power of freq relative to the whole signal (0..1) in the last n
// packets of s with payload type pt (Goertzel).
func toneLevel(s *rtpStream, pt uint8, freq float64, n int) float64 {
	pkts := s.snapshot()
	var samples []float64
	for i := max(0, len(pkts)-n); i < len(pkts); i++ {
		if pkts[i].pkt.PayloadType != pt {
			continue
		}
		for _, b := range pkts[i].pkt.Payload {
			if pt == 8 {
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
	power := s1*s1 + s2*s2 - coeff*s1*s2
	if total == 0 {
		return 0
	}
	return power / (total * float64(len(samples)) / 2)
}

// waitTone waits until the last second of s carries freq as its main content.
func waitTone(t *testing.T, what string, s *rtpStream, pt uint8, freq float64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var level float64
	for time.Now().Before(deadline) {
		if level = toneLevel(s, pt, freq, 50); level > 0.8 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %v Hz carries %.2f of the last second's power, want > 0.8", what, freq, level)
}
