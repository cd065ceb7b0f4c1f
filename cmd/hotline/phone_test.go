package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/hotline-project/hotline/internal/sipagent"
	"github.com/hotline-project/hotline/sip/digest"
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

// phone is an advocate's phone, sipagent.Phone, under the names this package's tests have
// long used: what tests read and set is in the fields below, and each method hands them to
// the agent and takes them back.
type phone struct {
	t *testing.T
	a *sipagent.Phone

	id, pw     string
	conn       *net.UDPConn
	rtp        *net.UDPConn
	server     *net.UDPAddr // where its messages go
	msgs       chan sipmsg.Message
	stream     *rtpStream // what it hears
	pt         uint8      // what it answers with: 0 PCMU or 8 PCMA
	freq       float64    // the tone it sends while in a call
	contactURI string
	regCSeq    int
	viaReplies bool // responses go to the request's top Via, not to server
	// The current call, as tests that answer by hand set it.
	mu       sync.Mutex
	inCall   *sipmsg.Request
	localTag string
	byeCSeq  int
	stopTone context.CancelFunc // a tone a test started itself; stop ends it too
}

func newPhone(t *testing.T, server, id, pw string, pt uint8, freq float64) *phone {
	t.Helper()
	return newPhoneAt(t, net.IPv4(127, 0, 0, 1), server, id, pw, pt, freq)
}

// newPhoneAt is newPhone with its SIP socket on local address ip (any of 127.0.0.0/8), so
// that tests can place phones at different source addresses.
func newPhoneAt(t *testing.T, ip net.IP, server, id, pw string, pt uint8, freq float64) *phone {
	t.Helper()
	a := sipagent.NewPhoneAt(t, ip, server, id, pw, pt, freq)
	p := &phone{t: t, a: a, id: a.ID, pw: a.Password, conn: a.Conn, rtp: a.RTP, server: a.Server, msgs: a.Msgs,
		stream: &rtpStream{Recorder: a.Heard}, pt: a.PT, freq: a.Freq, contactURI: a.ContactURI, byeCSeq: a.ByeCSeq}
	t.Cleanup(p.stop)
	return p
}

// agent hands the fields to the agent.
func (p *phone) agent() *sipagent.Phone {
	a := p.a
	copyField(&a.ID, p.id)
	copyField(&a.Password, p.pw)
	copyField(&a.Server, p.server)
	copyField(&a.PT, p.pt)
	copyField(&a.Freq, p.freq)
	copyField(&a.ContactURI, p.contactURI)
	copyField(&a.RegCSeq, p.regCSeq)
	copyField(&a.ViaReplies, p.viaReplies)
	p.mu.Lock()
	inv, tag, bye := p.inCall, p.localTag, p.byeCSeq
	p.mu.Unlock()
	copyField(&a.ByeCSeq, bye)
	if inv != nil {
		a.SetDialog(inv, tag)
	}
	return a
}

// pull takes the registration's CSeq and the current call back from the agent.
func (p *phone) pull() {
	copyField(&p.regCSeq, p.a.RegCSeq)
	inv, tag := p.a.Dialog()
	p.mu.Lock()
	p.inCall, p.localTag = inv, tag
	copyField(&p.byeCSeq, p.a.ByeCSeq)
	p.mu.Unlock()
}

func (p *phone) send(msg string) { p.agent().Send(msg) }

func (p *phone) register(expires int) {
	p.t.Helper()
	defer p.pull()
	p.agent().Register(expires)
}

// doRegister sends REGISTER, answers the challenge with password pw and expects status.
func (p *phone) doRegister(expires int, pw string, status int) *sipmsg.Response {
	p.t.Helper()
	defer p.pull()
	return p.agent().DoRegister(expires, pw, status)
}

func (p *phone) authorization(chal *sipmsg.Response, method, uri, pw string) string {
	p.t.Helper()
	return p.agent().Authorization(chal, method, uri, pw)
}

// registerMsg builds a REGISTER with CSeq regCSeq and the Authorization line auth.
func (p *phone) registerMsg(expires int, auth string) string {
	return p.agent().RegisterMsg(expires, auth)
}

// expectResponse waits for a final (or the given provisional) response to method.
func (p *phone) expectResponse(method string, status int, timeout time.Duration) *sipmsg.Response {
	p.t.Helper()
	defer p.pull()
	return p.agent().ExpectResponse(method, status, timeout)
}

// handleStray answers a request that arrived while the test waited for something else:
// a CANCEL of the INVITE being rung.
func (p *phone) handleStray(req *sipmsg.Request) {
	if req.Method == sipmsg.CANCEL {
		p.reply(req, 200, "OK", "", "")
	}
}

func (p *phone) reply(req *sipmsg.Request, code int, reason, body, toTag string) {
	p.agent().Reply(req, code, reason, body, toTag)
}

// expectInvite waits for the server to ring this phone and answers 180 Ringing.
func (p *phone) expectInvite(timeout time.Duration) *sipmsg.Request {
	p.t.Helper()
	return p.agent().ExpectInvite(timeout)
}

// expectNoInvite checks that the server does not ring this phone for a while.
func (p *phone) expectNoInvite(d time.Duration) {
	p.t.Helper()
	p.agent().ExpectNoInvite(d)
}

// answer answers inv with 200 OK and an SDP answer, waits for the ACK and starts sending
// its tone to the address in the offer.
func (p *phone) answer(inv *sipmsg.Request) {
	p.t.Helper()
	defer p.pull()
	p.agent().Answer(inv)
}

// refuse answers inv with a final error response, such as 486 Busy Here.
func (p *phone) refuse(inv *sipmsg.Request, code int, reason string) {
	p.t.Helper()
	p.agent().Refuse(inv, code, reason)
}

// expectRequest waits for a request, answering 200 unless it is an ACK.
func (p *phone) expectRequest(method string, timeout time.Duration, answer bool) *sipmsg.Request {
	p.t.Helper()
	return p.agent().ExpectRequest(method, timeout, answer)
}

// expectCancel waits for the server to cancel the ringing INVITE: 200 to the CANCEL and
// 487 to the INVITE.
func (p *phone) expectCancel(inv *sipmsg.Request, timeout time.Duration) {
	p.t.Helper()
	p.agent().ExpectCancel(inv, timeout)
}

// expectBye waits for the server to hang up the call.
func (p *phone) expectBye(timeout time.Duration) {
	p.t.Helper()
	p.agent().ExpectRequest("BYE", timeout, true)
	p.stop()
}

// stop stops the phone's tone: the agent's and any a test started (stopTone).
func (p *phone) stop() {
	p.a.StopTone()
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
	p.stop()
	defer p.pull()
	p.agent().Hangup()
}

// caller is a new dialog from the phone's sockets: the phone dialling out.
func (p *phone) caller() *uac { return wrapCaller(p.t, p.agent().Caller()) }

// dialAuth dials code from the phone, answering the digest challenge, and waits for the
// final status want (a 2xx is acknowledged).
func (p *phone) dialAuth(code string, want int) (*uac, *sipmsg.Response) {
	p.t.Helper()
	c, res := p.agent().DialAuth(code, want)
	return wrapCaller(p.t, c), res
}

// startTone starts the phone's outgoing RTP to to, a tone at freq (0 for silence), in the
// phone's one stream, in place of any tone it was playing.
func (p *phone) startTone(to *net.UDPAddr, pt uint8, freq float64) {
	p.stop()
	p.a.StartTone(to, pt, freq)
}

// press sends a key press (RFC 4733, payload type 101) in the phone's current stream.
func (p *phone) press(ev byte) { p.a.Out().Press(sipagent.DTMF, ev) }

// sendTone sends a sine tone at freq as 20 ms G.711 packets in real time until ctx ends.
func sendTone(ctx context.Context, conn *net.UDPConn, to *net.UDPAddr, pt uint8, freq float64) {
	sipagent.NewStream(conn, to, 0).Play(ctx, pt, freq)
}

// toneLevel returns the power of freq relative to the whole signal (0..1) in the last n
// packets of s with payload type pt (Goertzel).
func toneLevel(s *rtpStream, pt uint8, freq float64, n int) float64 {
	return s.rec().ToneLevel(pt, freq, n)
}

// waitTone waits until the last second of s carries freq as its main content.
func waitTone(t *testing.T, what string, s *rtpStream, pt uint8, freq float64, timeout time.Duration) {
	t.Helper()
	s.rec().WaitTone(t, what, pt, freq, timeout)
}
