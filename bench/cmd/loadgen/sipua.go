package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
)

var errTimeout = errors.New("timed out")

// endpoint is one SIP UDP socket shared by many calls (and advocates): it sends what they
// build and routes what arrives to them by Call-ID.
type endpoint struct {
	conn     *net.UDPConn
	server   *net.UDPAddr
	local    string // host:port of conn, for Via and Contact
	dialogs  sync.Map
	onInvite func(req *sipmsg.Request) // a new INVITE from the server (advocates)
	stray    atomic.Uint64
}

func newEndpoint(server string) (*endpoint, error) {
	saddr, err := net.ResolveUDPAddr("udp4", server)
	if err != nil {
		return nil, fmt.Errorf("server address: %w", err)
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(generatorAddr)})
	if err != nil {
		return nil, fmt.Errorf("sip socket: %w", err)
	}
	_ = c.SetReadBuffer(4 << 20)
	_ = c.SetWriteBuffer(4 << 20)
	return &endpoint{conn: c, server: saddr, local: c.LocalAddr().String()}, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// dialog returns the channel on which messages of callID arrive; forget it with drop.
func (e *endpoint) dialog(callID string) chan sipmsg.Message {
	ch := make(chan sipmsg.Message, 16)
	e.dialogs.Store(callID, ch)
	return ch
}

func (e *endpoint) drop(callID string) { e.dialogs.Delete(callID) }

func (e *endpoint) deliver(callID string, m sipmsg.Message) {
	v, ok := e.dialogs.Load(callID)
	if !ok {
		e.stray.Add(1)
		return
	}
	select {
	case v.(chan sipmsg.Message) <- m:
	default:
		e.stray.Add(1)
	}
}

func (e *endpoint) send(b []byte) error {
	if _, err := e.conn.WriteToUDP(b, e.server); err != nil {
		return fmt.Errorf("sip send: %w", err)
	}
	return nil
}

func (e *endpoint) readLoop() {
	buf := make([]byte, 65535)
	for {
		n, err := e.conn.Read(buf)
		if err != nil {
			return
		}
		m, err := sipmsg.ParseMessage(append([]byte(nil), buf[:n]...))
		if err != nil {
			e.stray.Add(1)
			continue
		}
		id := ""
		if h := m.CallID(); h != nil {
			id = h.Value()
		}
		switch m := m.(type) {
		case *sipmsg.Response:
			e.deliver(id, m)
		case *sipmsg.Request:
			switch m.Method {
			case sipmsg.ACK:
				e.deliver(id, m)
			case sipmsg.INVITE:
				if _, known := e.dialogs.Load(id); known {
					continue // a retransmission
				}
				if e.onInvite == nil {
					_ = e.reply(m, 480, "Unavailable", "", "lg"+randHex(3), "")
					continue
				}
				go e.onInvite(m)
			case sipmsg.BYE:
				_ = e.reply(m, 200, "OK", "", "", "")
				e.deliver(id, m)
			default: // OPTIONS, CANCEL, NOTIFY: acknowledge
				_ = e.reply(m, 200, "OK", "", "", "")
			}
		}
	}
}

// reply answers req; toTag and contact are added when given, and body as SDP.
func (e *endpoint) reply(req *sipmsg.Request, code int, reason, body, toTag, contact string) error {
	res := sipmsg.NewResponseFromRequest(req, code, reason, nil)
	if toTag != "" {
		if to := res.To(); to != nil {
			if _, has := to.Params.Get("tag"); !has {
				to.Params.Add("tag", toTag)
			}
		}
	}
	if contact != "" {
		res.AppendHeader(sipmsg.NewHeader("Contact", "<"+contact+">"))
	}
	if body != "" {
		res.AppendHeader(sipmsg.NewHeader("Content-Type", "application/sdp"))
		res.SetBody([]byte(body))
	}
	return e.send([]byte(res.String()))
}

// req is a request to build.
type req struct {
	method, ruri   string
	from, fromTag  string
	to, toTag      string
	callID, branch string
	cseq           int
	contact        string
	hdrs           []string
	body           string
}

func (e *endpoint) build(r req) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", r.method, r.ruri)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=%s;rport\r\n", e.local, r.branch)
	b.WriteString("Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: <%s>;tag=%s\r\n", r.from, r.fromTag)
	if r.toTag != "" {
		fmt.Fprintf(&b, "To: <%s>;tag=%s\r\n", r.to, r.toTag)
	} else {
		fmt.Fprintf(&b, "To: <%s>\r\n", r.to)
	}
	fmt.Fprintf(&b, "Call-ID: %s\r\n", r.callID)
	fmt.Fprintf(&b, "CSeq: %d %s\r\n", r.cseq, r.method)
	if r.contact != "" {
		fmt.Fprintf(&b, "Contact: <%s>\r\n", r.contact)
	}
	for _, h := range r.hdrs {
		b.WriteString(h + "\r\n")
	}
	if r.body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(r.body), r.body)
	return []byte(b.String())
}

// transact sends msg and waits for its final response, retransmitting as RFC 3261's
// timers A/E do (from 500 ms, doubling, up to 4 s) until a provisional response arrives.
// Requests of the dialog that arrive meanwhile (a BYE from the server) go to other.
func (e *endpoint) transact(ch chan sipmsg.Message, msg []byte, method string, timeout time.Duration, other func(*sipmsg.Request)) (*sipmsg.Response, error) {
	if err := e.send(msg); err != nil {
		return nil, err
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	rt := 500 * time.Millisecond
	retrans := time.NewTimer(rt)
	defer retrans.Stop()
	for {
		select {
		case m := <-ch:
			switch m := m.(type) {
			case *sipmsg.Response:
				if m.CSeq() == nil || string(m.CSeq().MethodName) != method {
					continue
				}
				if m.StatusCode < 200 {
					retrans.Stop()
					continue
				}
				return m, nil
			case *sipmsg.Request:
				if other != nil {
					other(m)
				}
			}
		case <-retrans.C:
			if err := e.send(msg); err != nil {
				return nil, err
			}
			rt = min(2*rt, 4*time.Second)
			retrans.Reset(rt)
		case <-deadline.C:
			return nil, fmt.Errorf("%s: no final response in %v: %w", method, timeout, errTimeout)
		}
	}
}

// sdpOffer is a caller's or advocate's audio description: PCMU and telephone-event.
func sdpOffer(port int) string {
	return "v=0\r\no=loadgen 1 1 IN IP4 127.0.0.1\r\ns=loadgen\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		fmt.Sprintf("m=audio %d RTP/AVP 0 101\r\n", port) +
		"a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
}
