package sipagent

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
	icholy "github.com/icholy/digest"

	"github.com/hotline-project/hotline/sip/sdp"
)

// Phone is an advocate's SIP phone over UDP: it registers with digest authentication,
// answers (or refuses) the INVITEs the server sends it, and while in a call plays a tone of
// its own over RTP and records what it hears.
type Phone struct {
	tb testing.TB

	ID, Password string
	Conn         *net.UDPConn // the SIP socket
	RTP          *net.UDPConn // the media socket, on 127.0.0.1
	Server       *net.UDPAddr
	Msgs         chan sipmsg.Message
	Heard        *Recorder // the RTP the phone received
	PT           uint8     // what it answers with: PCMU or PCMA
	Freq         float64   // the tone it plays while in a call
	ContactURI   string    // sip:id@host:port, as it registers
	RegCSeq      int       // the CSeq of the last REGISTER (RegisterMsg uses it as it is)
	// ViaReplies sends responses to the request's top Via (RFC 3261 18.2.2), not to Server:
	// another node of a cluster may be the one ringing the phone.
	ViaReplies bool
	ByeCSeq    int // the CSeq of the phone's last BYE (Hangup uses the next)

	regCallID string

	mu       sync.Mutex
	inCall   *sipmsg.Request // the INVITE of the current call
	localTag string
	out      *Stream // the current call's outgoing RTP
	stopTone func()
}

// NewPhone is the phone of advocate id with password pw, on 127.0.0.1, registering with
// server; in a call it answers with payload type pt and plays a tone at freq.
func NewPhone(tb testing.TB, server, id, pw string, pt uint8, freq float64) *Phone {
	tb.Helper()
	return NewPhoneAt(tb, Loopback, server, id, pw, pt, freq)
}

// NewPhoneAt is NewPhone with its SIP socket on ip (any of 127.0.0.0/8), so that tests can
// place phones at different source addresses.
func NewPhoneAt(tb testing.TB, ip net.IP, server, id, pw string, pt uint8, freq float64) *Phone {
	tb.Helper()
	saddr, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		tb.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		tb.Fatal(err)
	}
	rtpConn, err := net.ListenUDP("udp", &net.UDPAddr{IP: Loopback})
	if err != nil {
		conn.Close()
		tb.Fatal(err)
	}
	p := &Phone{tb: tb, ID: id, Password: pw, Conn: conn, RTP: rtpConn, Server: saddr, Msgs: make(chan sipmsg.Message, 64),
		regCallID: RandHex(8) + "@phone", PT: pt, Freq: freq, ByeCSeq: 100}
	p.ContactURI = fmt.Sprintf("sip:%s@%s", id, conn.LocalAddr())
	go ReadUDP(conn, p.Msgs)
	p.Heard = Record(rtpConn)
	tb.Cleanup(func() {
		p.StopTone()
		conn.Close()
		rtpConn.Close()
	})
	return p
}

// TB returns the test the phone reports to.
func (p *Phone) TB() testing.TB { return p.tb }

// Send sends msg to the server as it is.
func (p *Phone) Send(msg string) {
	if _, err := p.Conn.WriteToUDP([]byte(msg), p.Server); err != nil {
		p.tb.Error(err)
	}
}

// Register registers the phone for expires seconds and expects 200.
func (p *Phone) Register(expires int) {
	p.tb.Helper()
	p.DoRegister(expires, p.Password, 200)
}

// DoRegister sends REGISTER, answers the 401's challenge with password pw and expects
// status; it returns that response.
func (p *Phone) DoRegister(expires int, pw string, status int) *sipmsg.Response {
	p.tb.Helper()
	p.RegCSeq++
	p.Send(p.RegisterMsg(expires, ""))
	chal := p.ExpectResponse("REGISTER", 401, 2*time.Second)
	p.RegCSeq++
	p.Send(p.RegisterMsg(expires, p.Authorization(chal, "REGISTER", "sip:"+p.Server.String(), pw)))
	return p.ExpectResponse("REGISTER", status, 2*time.Second)
}

// Authorization is the Authorization header line answering chal's (first) challenge for
// method on uri with password pw.
func (p *Phone) Authorization(chal *sipmsg.Response, method, uri, pw string) string {
	p.tb.Helper()
	h := chal.GetHeader("WWW-Authenticate")
	if h == nil {
		p.tb.Fatalf("%d %s carries no challenge", chal.StatusCode, chal.Reason)
	}
	c, err := icholy.ParseChallenge(h.Value())
	if err != nil {
		p.tb.Fatal(err)
	}
	cred, err := icholy.Digest(c, icholy.Options{Method: method, URI: uri, Username: p.ID, Password: pw, Count: 1})
	if err != nil {
		p.tb.Fatal(err)
	}
	return "Authorization: " + cred.String()
}

// RegisterMsg builds a REGISTER of the phone's registration dialog, with CSeq RegCSeq and
// the Authorization line auth ("" for none).
func (p *Phone) RegisterMsg(expires int, auth string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "REGISTER sip:%s SIP/2.0\r\n", p.Server)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n", p.Conn.LocalAddr(), RandHex(6))
	b.WriteString("Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%s\r\n", p.ID, p.Server, RandHex(4))
	fmt.Fprintf(&b, "To: <sip:%s@%s>\r\n", p.ID, p.Server)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", p.regCallID)
	fmt.Fprintf(&b, "CSeq: %d REGISTER\r\n", p.RegCSeq)
	fmt.Fprintf(&b, "Contact: <%s>\r\n", p.ContactURI)
	fmt.Fprintf(&b, "Expires: %d\r\n", expires)
	if auth != "" {
		b.WriteString(auth + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

// NextRegister advances the registration's CSeq, for a REGISTER sent by hand.
func (p *Phone) NextRegister() { p.RegCSeq++ }

// Dialog returns the INVITE of the phone's current call and the phone's tag in it.
func (p *Phone) Dialog() (*sipmsg.Request, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inCall, p.localTag
}

// SetDialog makes inv, where the phone's tag is tag, the phone's current call (for a test
// that answers by hand).
func (p *Phone) SetDialog(inv *sipmsg.Request, tag string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inCall, p.localTag = inv, tag
}

// ExpectResponse waits for a final (or the given provisional) response to method; another
// final status fails the test. Requests arriving meanwhile are handled as strays.
func (p *Phone) ExpectResponse(method string, status int, timeout time.Duration) *sipmsg.Response {
	p.tb.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-p.Msgs:
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
				p.tb.Fatalf("%s: got %d %s, want %d", method, res.StatusCode, res.Reason, status)
			}
			return res
		case <-deadline:
			p.tb.Fatalf("%s: no %d within %v", method, status, timeout)
			return nil
		}
	}
}

// handleStray answers requests that arrive while waiting for something else: a CANCEL of
// the INVITE being rung.
func (p *Phone) handleStray(req *sipmsg.Request) {
	if req.Method == sipmsg.CANCEL {
		p.Reply(req, 200, "OK", "", "")
	}
}

// Reply answers req with code and reason, an SDP body (if any) and a to-tag (if any); a
// 2xx to INVITE carries the phone's Contact.
func (p *Phone) Reply(req *sipmsg.Request, code int, reason, body, toTag string) {
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
		res.AppendHeader(sipmsg.NewHeader("Contact", "<"+p.ContactURI+">"))
	}
	to := p.Server
	if p.ViaReplies {
		if via := req.Via(); via != nil {
			if a, err := net.ResolveUDPAddr("udp", net.JoinHostPort(via.Host, strconv.Itoa(via.Port))); err == nil {
				to = a
			}
		}
	}
	if _, err := p.Conn.WriteToUDP([]byte(res.String()), to); err != nil {
		p.tb.Error(err)
	}
}

// ExpectInvite waits for the server to ring the phone and answers 180 Ringing.
func (p *Phone) ExpectInvite(timeout time.Duration) *sipmsg.Request {
	p.tb.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-p.Msgs:
			req, ok := m.(*sipmsg.Request)
			if !ok {
				continue
			}
			if req.Method != sipmsg.INVITE {
				p.handleStray(req)
				continue
			}
			p.Reply(req, 180, "Ringing", "", "ph"+RandHex(3))
			return req
		case <-deadline:
			p.tb.Fatalf("phone %s: no INVITE within %v", p.ID, timeout)
			return nil
		}
	}
}

// ExpectNoInvite checks that the server does not ring the phone for d.
func (p *Phone) ExpectNoInvite(d time.Duration) {
	p.tb.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-p.Msgs:
			if req, ok := m.(*sipmsg.Request); ok && req.Method == sipmsg.INVITE {
				p.tb.Fatalf("phone %s rang, want no INVITE", p.ID)
			}
		case <-deadline:
			return
		}
	}
}

// Answer answers inv with 200 OK and an SDP answer, waits for the ACK and starts playing
// its tone to the address in the offer.
func (p *Phone) Answer(inv *sipmsg.Request) {
	p.tb.Helper()
	p.AnswerAfter(inv, 0)
}

// AnswerAfter is Answer with the phone's media starting delay after the ACK, as over a
// real network, where someone else's packets can arrive first.
func (p *Phone) AnswerAfter(inv *sipmsg.Request, delay time.Duration) {
	p.tb.Helper()
	offer, err := sdp.NegotiateOffer(inv.Body())
	if err != nil {
		p.tb.Fatalf("phone %s: bad offer: %v\n%s", p.ID, err, inv.Body())
	}
	tag := "ph" + RandHex(3)
	p.mu.Lock()
	p.inCall, p.localTag = inv, tag
	p.mu.Unlock()
	p.Reply(inv, 200, "OK", Offer(p.RTP.LocalAddr().(*net.UDPAddr).Port, strconv.Itoa(int(p.PT))+" 101", ""), tag)
	p.ExpectRequest("ACK", 2*time.Second, false)
	time.Sleep(delay)
	p.StartTone(net.UDPAddrFromAddrPort(offer.Remote), p.PT, p.Freq)
}

// StartTone starts the phone's outgoing RTP to to: a tone at freq (0 for silence) with
// payload type pt, in place of any it was playing. The stream (SSRC, sequence numbers,
// timestamps) goes on from the one before when it goes to the same address.
func (p *Phone) StartTone(to *net.UDPAddr, pt uint8, freq float64) {
	p.StopTone()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.out == nil || p.out.to.String() != to.String() {
		p.out = NewStream(p.RTP, to, 0)
	}
	p.stopTone = p.out.Start(pt, freq)
}

// StopTone stops the phone's outgoing RTP, if any.
func (p *Phone) StopTone() {
	p.mu.Lock()
	stop := p.stopTone
	p.stopTone = nil
	p.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// Out returns the current call's outgoing RTP stream (nil before the first answer), to
// send key presses in it.
func (p *Phone) Out() *Stream {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out
}

// Refuse answers inv with a final error response, such as 486 Busy Here, and waits for
// the ACK.
func (p *Phone) Refuse(inv *sipmsg.Request, code int, reason string) {
	p.tb.Helper()
	p.Reply(inv, code, reason, "", "ph"+RandHex(3))
	p.ExpectRequest("ACK", 2*time.Second, false)
}

// ExpectRequest waits for a request with method, answering it 200 if answer is set.
// CANCELs arriving meanwhile are answered.
func (p *Phone) ExpectRequest(method string, timeout time.Duration, answer bool) *sipmsg.Request {
	p.tb.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-p.Msgs:
			req, ok := m.(*sipmsg.Request)
			if !ok || string(req.Method) != method {
				if ok && req.Method == sipmsg.CANCEL && method != "CANCEL" {
					p.handleStray(req)
				}
				continue
			}
			if answer {
				p.Reply(req, 200, "OK", "", "")
			}
			return req
		case <-deadline:
			p.tb.Fatalf("phone %s: no %s within %v", p.ID, method, timeout)
			return nil
		}
	}
}

// ExpectCancel waits for the server to cancel the ringing INVITE inv: 200 to the CANCEL
// and 487 to the INVITE.
func (p *Phone) ExpectCancel(inv *sipmsg.Request, timeout time.Duration) {
	p.tb.Helper()
	p.ExpectRequest("CANCEL", timeout, true)
	p.Reply(inv, 487, "Request Terminated", "", "ph"+RandHex(3))
}

// ExpectBye waits for the server to hang up the call, answers 200 and stops the tone.
func (p *Phone) ExpectBye(timeout time.Duration) {
	p.tb.Helper()
	p.ExpectRequest("BYE", timeout, true)
	p.StopTone()
}

// Hangup sends BYE in the current call's dialog (the phone is its UAS) and expects 200.
func (p *Phone) Hangup() {
	p.tb.Helper()
	p.mu.Lock()
	inv, tag := p.inCall, p.localTag
	p.ByeCSeq++
	cseq := p.ByeCSeq
	p.mu.Unlock()
	if inv == nil {
		p.tb.Fatalf("phone %s: hang up with no call", p.ID)
	}
	p.StopTone()
	from, to := inv.From(), inv.To()
	var b strings.Builder
	fmt.Fprintf(&b, "BYE %s SIP/2.0\r\n", inv.Contact().Address.String())
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n", p.Conn.LocalAddr(), RandHex(6))
	b.WriteString("Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: <%s>;tag=%s\r\n", to.Address.String(), tag)
	fromTag, _ := from.Params.Get("tag")
	fmt.Fprintf(&b, "To: <%s>;tag=%s\r\n", from.Address.String(), fromTag)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", inv.CallID().Value())
	fmt.Fprintf(&b, "CSeq: %d BYE\r\n", cseq)
	b.WriteString("Content-Length: 0\r\n\r\n")
	p.Send(b.String())
	p.ExpectResponse("BYE", 200, 2*time.Second)
}

// Caller is a new dialog from the phone's sockets with the phone's id as its user: the
// phone dialling out (a feature code, a supervisor's code).
func (p *Phone) Caller() *Caller {
	return NewDialog(p.tb, p.Conn, p.Server, p.RTP, p.Msgs, p.ID)
}

// DialAuth dials code from the phone, answering the 401 with the phone's password, and
// waits for the final status want (a 2xx is acknowledged). It returns the dialog and the
// final response.
func (p *Phone) DialAuth(code string, want int) (*Caller, *sipmsg.Response) {
	p.tb.Helper()
	c := p.Caller()
	offer := Offer(p.RTP.LocalAddr().(*net.UDPAddr).Port, "0 101", "")
	c.Invite(code, offer)
	chal := c.ExpectResponse("INVITE", 401, 2*time.Second)
	c.Send(c.Request("ACK", code, "", ""))
	c.CSeq++
	c.Send(c.Request("INVITE", code, offer, "application/sdp",
		p.Authorization(chal, "INVITE", "sip:"+code+"@"+p.Server.String(), p.Password)))
	res := c.ExpectResponse("INVITE", want, 5*time.Second)
	if want >= 200 && want < 300 {
		c.Ack(code, "")
	}
	return c, res
}
