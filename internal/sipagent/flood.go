package sipagent

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	sipmsg "github.com/emiago/sipgo/sip"
)

// Flooder is one source of a flood: a UDP socket on its own loopback address that sends
// out-of-dialog requests, each with a fresh Call-ID and branch, as fast as the test asks,
// and counts the final responses it gets per request.
type Flooder struct {
	tb     testing.TB
	Conn   *net.UDPConn
	Server *net.UDPAddr

	mu     sync.Mutex
	got    map[string]map[string]bool // "METHOD status" -> Call-IDs answered so
	finals map[string][]int           // Call-ID -> final statuses, retransmissions included
	done   chan struct{}
}

// NewFlooder is a flooder at ip (any of 127.0.0.0/8) sending to server (host:port).
func NewFlooder(tb testing.TB, ip net.IP, server string) *Flooder {
	tb.Helper()
	saddr, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		tb.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		tb.Fatal(err)
	}
	_ = conn.SetReadBuffer(4 << 20)
	f := &Flooder{tb: tb, Conn: conn, Server: saddr, got: map[string]map[string]bool{},
		finals: map[string][]int{}, done: make(chan struct{})}
	go f.read()
	tb.Cleanup(func() { conn.Close(); <-f.done })
	return f
}

func (f *Flooder) read() {
	defer close(f.done)
	buf := make([]byte, 65535)
	for {
		n, _, err := f.Conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		m, err := sipmsg.ParseMessage(append([]byte(nil), buf[:n]...))
		if err != nil {
			continue
		}
		res, ok := m.(*sipmsg.Response)
		if !ok || res.CSeq() == nil || res.CallID() == nil {
			continue
		}
		key := fmt.Sprintf("%s %d", res.CSeq().MethodName, res.StatusCode)
		id := res.CallID().Value()
		f.mu.Lock()
		if f.got[key] == nil {
			f.got[key] = map[string]bool{}
		}
		f.got[key][id] = true
		if res.StatusCode >= 200 {
			f.finals[id] = append(f.finals[id], res.StatusCode)
		}
		f.mu.Unlock()
	}
}

// Request builds an out-of-dialog request for user with Call-ID (and branch) id; an
// INVITE carries an SDP offer of PCMU on the discard port.
func (f *Flooder) Request(method, user, id string) []byte {
	local := f.Conn.LocalAddr().String()
	var b strings.Builder
	fmt.Fprintf(&b, "%s sip:%s@%s SIP/2.0\r\n", method, user, f.Server)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n", local, id)
	fmt.Fprintf(&b, "Max-Forwards: 70\r\nFrom: <sip:flood@%s>;tag=%s\r\nTo: <sip:%s@%s>\r\n", local, id[:min(6, len(id))], user, f.Server)
	fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: 1 %s\r\nContact: <sip:flood@%s>\r\n", id, method, local)
	body := ""
	if method == "INVITE" {
		body = Offer(9, "0", "")
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return []byte(b.String())
}

// Send sends one request for user with a fresh Call-ID and reports whether it went out.
func (f *Flooder) Send(method, user string) bool {
	_, err := f.Conn.WriteToUDP(f.Request(method, user, RandHex(8)), f.Server)
	return err == nil
}

// Count returns how many requests got a response with key ("METHOD status", provisional
// ones too); each request has its own Call-ID, so retransmitted responses count once.
func (f *Flooder) Count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got[key])
}

// Finals returns, per request (Call-ID), the final statuses received, retransmissions
// included.
func (f *Flooder) Finals() map[string][]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string][]int, len(f.finals))
	for id, s := range f.finals {
		out[id] = append([]int(nil), s...)
	}
	return out
}
