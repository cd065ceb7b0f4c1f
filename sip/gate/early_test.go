package gate

import (
	"net/netip"
	"strings"
	"testing"
)

// TestEarly: Config.Early sees a request that passed the raw checks, with its fields read
// simply, before sipgo's parse, and its answer is the message's; what fails the raw checks
// never reaches it; the ACK of a stateless answer is dropped before the parse.
func TestEarly(t *testing.T) {
	var seen []Early
	g := New(Config{Early: func(e Early) (Verdict, bool) {
		seen = append(seen, e)
		if e.Method == "INVITE" && !e.InDialog {
			return e.Reply(503, "overload", "Retry-After: 5"), true
		}
		return Verdict{}, false
	}})
	src := netip.MustParseAddr("192.0.2.1")
	v := g.CheckAdmit(benchInvite, "udp", src)
	if v.act != Reply || v.status != 503 || !strings.Contains(string(v.reply), "\r\nRetry-After: 5\r\n") {
		t.Fatalf("early answer not the verdict: %+v\n%s", v, v.reply)
	}
	if len(seen) != 1 {
		t.Fatalf("Early saw %d requests, want 1", len(seen))
	}
	e := seen[0]
	if e.Method != "INVITE" || e.User != "1888" || e.InDialog || e.CallID != "5f2c9a8e7d6b4c3a@127.0.0.1" || e.Require || e.Src != src || e.Transport != "udp" {
		t.Errorf("Early = %+v", e)
	}
	// The ACK of that 503 carries its To tag: dropped before the parse, Early not asked.
	tag, ok := toTag(headerOf(t, v.reply, "To"))
	if !ok || !strings.HasPrefix(tag, statelessTagPrefix) {
		t.Fatalf("503's To tag %q", tag)
	}
	ack := strings.Replace(string(benchInvite), "INVITE sip", "ACK sip", 1)
	ack = strings.Replace(ack, "CSeq: 1 INVITE", "CSeq: 1 ACK", 1)
	ack = strings.Replace(ack, "To: <sip:1888@127.0.0.1>", "To: <sip:1888@127.0.0.1>;tag="+tag, 1)
	if v := g.CheckAdmit([]byte(ack), "udp", src); v.act != Drop || v.reason != "ack of a stateless answer" {
		t.Errorf("ack of the 503: %+v", v)
	}
	// An ACK in a dialog (sipgo's tags) goes on; so does a malformed INVITE's check.
	dialogAck := strings.Replace(ack, ";tag="+tag, ";tag=a8F3c2x9", 1)
	if v := g.CheckAdmit([]byte(dialogAck), "udp", src); v.act != Pass {
		t.Errorf("ack in a dialog: %+v", v)
	}
	bad := strings.Replace(string(benchInvite), "CSeq: 1 INVITE", "CSeq: 1 BYE", 1)
	if v := g.CheckAdmit([]byte(bad), "udp", src); v.act != Reply || v.status != 400 {
		t.Errorf("malformed invite: %+v", v)
	}
	if len(seen) != 2 || seen[1].Method != "ACK" {
		t.Errorf("Early saw %d requests (the dialog's ACK second), want 2", len(seen))
	}
}

func headerOf(t *testing.T, msg []byte, name string) string {
	t.Helper()
	for _, l := range strings.Split(string(msg), "\r\n") {
		if v, ok := strings.CutPrefix(l, name+": "); ok {
			return v
		}
	}
	t.Fatalf("no %s in\n%s", name, msg)
	return ""
}

func TestEarlyFields(t *testing.T) {
	for _, tc := range []struct {
		uri, user string
	}{
		{"sip:1888@example.org", "1888"},
		{"SIPS:1888@example.org;transport=tls", "1888"},
		{"sip:example.org", ""},
		{"sip:1888;phone-context=x@example.org", ""},
		{"sip:a:secret@example.org", ""},
		{"sip:%2A11@example.org", ""},
		{"tel:+15550001", ""},
	} {
		if got := uriUser(tc.uri); got != tc.user {
			t.Errorf("uriUser(%q) = %q, want %q", tc.uri, got, tc.user)
		}
	}
	for _, tc := range []struct {
		to  string
		tag string
		ok  bool
	}{
		{"<sip:1888@h>", "", false},
		{"<sip:1888@h>;tag=sl-abc", "sl-abc", true},
		{"<sip:1888@h;tag=x>", "", false}, // a URI parameter, not the header's
		{"sip:1888@h ; TAG = y", "y", true},
		{`"a;tag=z" <sip:1888@h>`, "", false},
	} {
		tag, ok := toTag(tc.to)
		if tag != tc.tag || ok != tc.ok {
			t.Errorf("toTag(%q) = %q, %v; want %q, %v", tc.to, tag, ok, tc.tag, tc.ok)
		}
	}
}
