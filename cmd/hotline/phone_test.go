package main

import (
	"context"
	"fmt"
	"net"
	"strings"
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

// phone is an advocate's phone (sipagent.Phone) under the names the tests of this package
// have long used; new tests may call the agent's exported methods directly.
type phone struct {
	*sipagent.Phone
	t      *testing.T
	stream *rtpStream // what it hears
}

func newPhone(t *testing.T, server, id, pw string, pt uint8, freq float64) *phone {
	t.Helper()
	return newPhoneAt(t, net.IPv4(127, 0, 0, 1), server, id, pw, pt, freq)
}

// newPhoneAt is newPhone with its SIP socket on local address ip (any of 127.0.0.0/8), so
// that tests can place phones at different source addresses.
func newPhoneAt(t *testing.T, ip net.IP, server, id, pw string, pt uint8, freq float64) *phone {
	t.Helper()
	p := sipagent.NewPhoneAt(t, ip, server, id, pw, pt, freq)
	return &phone{p, t, &rtpStream{p.Heard}}
}

func (p *phone) send(msg string) { p.Send(msg) }

func (p *phone) register(expires int) { p.t.Helper(); p.Register(expires) }

// doRegister sends REGISTER, answers the challenge with password pw and expects status.
func (p *phone) doRegister(expires int, pw string, status int) *sipmsg.Response {
	p.t.Helper()
	return p.DoRegister(expires, pw, status)
}

func (p *phone) authorization(chal *sipmsg.Response, method, uri, pw string) string {
	p.t.Helper()
	return p.Authorization(chal, method, uri, pw)
}

// expectResponse waits for a final (or the given provisional) response to method.
func (p *phone) expectResponse(method string, status int, timeout time.Duration) *sipmsg.Response {
	p.t.Helper()
	return p.ExpectResponse(method, status, timeout)
}

func (p *phone) reply(req *sipmsg.Request, code int, reason, body, toTag string) {
	p.Reply(req, code, reason, body, toTag)
}

// expectInvite waits for the server to ring this phone and answers 180 Ringing.
func (p *phone) expectInvite(timeout time.Duration) *sipmsg.Request {
	p.t.Helper()
	return p.ExpectInvite(timeout)
}

// expectNoInvite checks that the server does not ring this phone for a while.
func (p *phone) expectNoInvite(d time.Duration) { p.t.Helper(); p.ExpectNoInvite(d) }

// answer answers inv with 200 OK and an SDP answer, waits for the ACK and starts sending
// its tone to the address in the offer.
func (p *phone) answer(inv *sipmsg.Request) { p.t.Helper(); p.Answer(inv) }

// refuse answers inv with a final error response, such as 486 Busy Here.
func (p *phone) refuse(inv *sipmsg.Request, code int, reason string) {
	p.t.Helper()
	p.Refuse(inv, code, reason)
}

// expectRequest waits for a request, answering 200 unless it is an ACK.
func (p *phone) expectRequest(method string, timeout time.Duration, answer bool) *sipmsg.Request {
	p.t.Helper()
	return p.ExpectRequest(method, timeout, answer)
}

// expectCancel waits for the server to cancel the ringing INVITE: 200 to the CANCEL and
// 487 to the INVITE.
func (p *phone) expectCancel(inv *sipmsg.Request, timeout time.Duration) {
	p.t.Helper()
	p.ExpectCancel(inv, timeout)
}

// expectBye waits for the server to hang up the call.
func (p *phone) expectBye(timeout time.Duration) { p.t.Helper(); p.ExpectBye(timeout) }

// stop stops the phone's tone.
func (p *phone) stop() { p.StopTone() }

// hangup sends BYE in the current call's dialog (the phone is its UAS) and expects 200.
func (p *phone) hangup() { p.t.Helper(); p.Hangup() }

// caller is a new dialog from the phone's sockets: the phone dialling out.
func (p *phone) caller() *uac { return &uac{p.Caller(), p.t} }

// sendTone sends a sine tone at freq as 20 ms G.711 packets in real time until ctx ends.
func sendTone(ctx context.Context, conn *net.UDPConn, to *net.UDPAddr, pt uint8, freq float64) {
	sipagent.NewStream(conn, to, 0).Play(ctx, pt, freq)
}

// toneLevel returns the power of freq relative to the whole signal (0..1) in the last n
// packets of s with payload type pt (Goertzel).
func toneLevel(s *rtpStream, pt uint8, freq float64, n int) float64 { return s.ToneLevel(pt, freq, n) }

// waitTone waits until the last second of s carries freq as its main content.
func waitTone(t *testing.T, what string, s *rtpStream, pt uint8, freq float64, timeout time.Duration) {
	t.Helper()
	s.WaitTone(t, what, pt, freq, timeout)
}
