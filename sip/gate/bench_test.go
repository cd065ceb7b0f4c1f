package gate

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// benchInvite is an INVITE with an SDP offer as a carrier or the load generator sends it.
var benchInvite = benchMessage(`INVITE sip:1888@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-7d3f9a2c1b
Max-Forwards: 70
From: <sip:+15550001@127.0.0.1>;tag=a8f3c2
To: <sip:1888@127.0.0.1>
Call-ID: 5f2c9a8e7d6b4c3a@127.0.0.1
CSeq: 1 INVITE
Contact: <sip:+15550001@127.0.0.1:40000>
Content-Type: application/sdp
Content-Length: %d

v=0
o=- 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 40002 RTP/AVP 0 8 101
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
`)

// benchMessage returns a message written with LF line ends, with CRLF and its body's length.
func benchMessage(s string) []byte {
	s = strings.ReplaceAll(s, "\n", "\r\n")
	body := s[strings.Index(s, "\r\n\r\n")+4:]
	return []byte(fmt.Sprintf(s, len(body)))
}

// BenchmarkCheckInvite is the gate's whole check of one INVITE (its split and raw checks,
// then sipgo's parse); BenchmarkParseInvite sipgo's parse alone (which sipgo's read loop
// does again); BenchmarkEarlyInvite what an INVITE costs before the parse, which is all a
// shed one costs (Config.Early).
func BenchmarkCheckInvite(b *testing.B) {
	p := NewParser()
	b.ReportAllocs()
	for b.Loop() {
		if v := checkMessage(p, benchInvite, 65535); v.act != Pass {
			b.Fatal(v.reason)
		}
	}
}

func BenchmarkParseInvite(b *testing.B) {
	p := NewParser()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.ParseSIP(benchInvite); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEarlyInvite(b *testing.B) {
	g := New(Config{Early: func(e Early) (Verdict, bool) { return e.Reply(503, "overload", "Retry-After: 5"), true }})
	src := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	for b.Loop() {
		if v := g.CheckAdmit(benchInvite, "udp", src); v.act != Reply {
			b.Fatal(v.reason)
		}
	}
}

// BenchmarkShedInvite is an INVITE shed after sipgo's parse (Config.Admit), as a shed
// INVITE cost before Config.Early; BenchmarkEarlyInvite the same shed before it.
func BenchmarkShedInvite(b *testing.B) {
	g := New(Config{Admit: func(in Request) Verdict { return in.Reply(503, "overload", "Retry-After: 5") }})
	src := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	for b.Loop() {
		if v := g.CheckAdmit(benchInvite, "udp", src); v.act != Reply {
			b.Fatal(v.reason)
		}
	}
}
