package gate

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	sipmsg "github.com/emiago/sipgo/sip"
)

func testParser() *sipmsg.Parser {
	return NewParser()
}

const okInvite = "INVITE sip:1888@127.0.0.1 SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKabc\r\n" +
	"Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:1888@127.0.0.1>\r\n" +
	"Call-ID: x@test\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1>\r\n"

// TestCheckMessage covers the checks one case at a time; the RFC 4475 corpus runs end to end in
// cmd/hotline (TestRFC4475Torture).
func TestCheckMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		msg    string
		act    Action
		status int
	}{
		{"valid", okInvite + "Content-Length: 0\r\n\r\n", Pass, 0},
		{"keepalive", "\r\n\r\n", Pass, 0},
		{"negative content-length", okInvite + "Content-Length: -1\r\n\r\n", Reply, 400},
		{"absurd content-length", okInvite + "Content-Length: 99999999999999999999\r\n\r\n", Reply, 400},
		{"content-length over the limit", okInvite + "Content-Length: 70000\r\n\r\n", Reply, 513},
		{"content-length beyond the data", okInvite + "Content-Length: 10\r\n\r\nabc", Reply, 400},
		{"duplicate content-length, same value", okInvite + "Content-Length: 0\r\nl: 0\r\n\r\n", Reply, 400},
		{"duplicate content-length", okInvite + "Content-Length: 0\r\nContent-Length: 3\r\n\r\nabc", Reply, 400},
		{"content-length with sign", okInvite + "Content-Length: +3\r\n\r\nabc", Reply, 400},
		{"lower-case method is another method", strings.Replace(okInvite, "INVITE sip", "invite sip", 1) + "l: 0\r\n\r\n", Reply, 501},
		{"sip version 3", strings.Replace(okInvite, " SIP/2.0\r\n", " SIP/3.0\r\n", 1) + "l: 0\r\n\r\n", Reply, 505},
		{"no version", strings.Replace(okInvite, " SIP/2.0\r\n", "\r\n", 1) + "l: 0\r\n\r\n", Reply, 400},
		{"cseq too large", strings.Replace(okInvite, "CSeq: 1 ", "CSeq: 2147483648 ", 1) + "l: 0\r\n\r\n", Reply, 400},
		{"two call-ids", okInvite + "i: y@test\r\nl: 0\r\n\r\n", Reply, 400},
		{"ack is never answered", strings.ReplaceAll(okInvite, "INVITE", "ACK") + "l: -1\r\n\r\n", Drop, 0},
		{"no via", strings.Replace(okInvite, "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKabc\r\n", "", 1) + "l: -1\r\n\r\n", Drop, 0},
		{"response with bad code", "SIP/2.0 99 Low\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nl: 0\r\n\r\n", Drop, 0},
		{"tel uri", strings.Replace(okInvite, "sip:1888@127.0.0.1 SIP", "tel:+1888 SIP", 1) + "l: 0\r\n\r\n", Pass, 0},
		{"http uri", strings.Replace(okInvite, "sip:1888@127.0.0.1 SIP", "http://x SIP", 1) + "l: 0\r\n\r\n", Reply, 416},
		{"sdp with parameters", okInvite + "Content-Type: Application/SDP; charset=x\r\nl: 3\r\n\r\nv=0", Pass, 0},
		{"accept all", okInvite + "Accept: text/plain, */*\r\nl: 0\r\n\r\n", Pass, 0},
		{"header injection in a reply", strings.Replace(okInvite, "Call-ID: x@test", "Call-ID: x@test\nEvil: 1", 1) + "Content-Length: -1\r\n\r\n", Reply, 400},
	}
	p := testParser()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := checkMessage(p, []byte(tc.msg), 65535)
			if v.act != tc.act || v.status != tc.status {
				t.Fatalf("got Action %d status %d (%s), want action %d status %d", v.act, v.status, v.reason, tc.act, tc.status)
			}
			if v.act != Reply {
				return
			}
			// The reply copies the request's fields, malformed or not, so read it raw.
			r, err := splitMessage(v.reply)
			if err != nil || !r.complete || !strings.HasPrefix(r.startLine, "SIP/2.0 "+strconv.Itoa(tc.status)+" ") {
				t.Fatalf("malformed reply (%v):\n%s", err, v.reply)
			}
			for _, h := range []string{"via", "from", "to", "call-id", "cseq", "content-length"} {
				if len(r.values(h)) != 1 {
					t.Fatalf("reply has %d %s, want the one RFC 3261 8.2.6.2 copies:\n%s", len(r.values(h)), h, v.reply)
				}
			}
			if !strings.Contains(r.values("to")[0], ";tag=") {
				t.Fatalf("reply has no To tag:\n%s", v.reply)
			}
			if len(r.values("evil")) > 0 {
				t.Fatalf("a bare LF in a header value became a header:\n%s", v.reply)
			}
			if again := checkMessage(p, []byte(tc.msg), 65535); !bytes.Equal(again.reply, v.reply) {
				t.Fatalf("a retransmission gets a different reply")
			}
		})
	}
}

// TestRFC2543Branch: a request without branch or From tag (RFC 4475 3.4.1) gets one branch for
// the INVITE and its ACK and CANCEL, so sipgo keys all three to one transaction.
func TestRFC2543Branch(t *testing.T) {
	t.Parallel()
	p := testParser()
	msg := func(method string) []byte {
		return []byte(method + " sip:u@h SIP/2.0\r\nVia: SIP/2.0/UDP gw.example.com\r\nFrom: <sip:a@h>\r\n" +
			"To: <sip:u@h>\r\nCall-ID: 1@h\r\nCSeq: 5 " + method + "\r\nl: 0\r\n\r\n")
	}
	branch := func(method string) string {
		v := checkMessage(p, msg(method), 65535)
		if v.act != Pass || v.msg == nil {
			t.Fatalf("%s: Action %d (%s), want a rewritten pass", method, v.act, v.reason)
		}
		m, err := p.ParseSIP(v.msg)
		if err != nil {
			t.Fatalf("%s: rewritten message does not parse: %v", method, err)
		}
		b, _ := m.Via().Params.Get("branch")
		return b
	}
	inv := branch("INVITE")
	if !strings.HasPrefix(inv, "z9hG4bK") {
		t.Fatalf("branch %q lacks the magic cookie", inv)
	}
	for _, m := range []string{"ACK", "CANCEL"} {
		if b := branch(m); b != inv {
			t.Errorf("%s branch %q, INVITE's %q", m, b, inv)
		}
	}
	if v := checkMessage(p, []byte(okInvite+"l: 0\r\n\r\n"), 65535); v.msg != nil {
		t.Errorf("an RFC 3261 request was rewritten")
	}
}

// FuzzHandleMessage runs the message checks on any input, seeded with the RFC 4475 torture
// messages: they never panic, a reply is given only to a request, and it parses; a message
// passed to sipgo parses.
func FuzzHandleMessage(f *testing.F) {
	files, err := filepath.Glob("testdata/rfc4475/*.dat")
	if err != nil || len(files) != 50 {
		f.Fatalf("torture corpus: %d files, %v", len(files), err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(okInvite + "Content-Length: 0\r\n\r\n"))
	p := testParser()
	f.Fuzz(func(t *testing.T, b []byte) {
		v := checkMessage(p, b, 65535)
		switch v.act {
		case Reply:
			if v.status < 400 || v.status > 599 {
				t.Fatalf("reply status %d", v.status)
			}
			if !bytes.HasPrefix(v.reply, []byte("SIP/2.0 ")) || !bytes.HasSuffix(v.reply, []byte("\r\n\r\n")) {
				t.Fatalf("malformed reply %q", v.reply)
			}
			if v.method == "ACK" {
				t.Fatalf("replied to an ACK")
			}
		case Pass:
			if m, _ := splitMessage(b); m.startLine == "" {
				return // keep-alive
			}
			out := b
			if v.msg != nil {
				out = v.msg
			}
			if _, err := p.ParseSIP(out); err != nil {
				t.Fatalf("passed a message sipgo cannot parse: %v", err)
			}
		}
	})
}
