package sip

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hotline-project/hotline/media"
	"github.com/hotline-project/hotline/sip/defence"
	"github.com/hotline-project/hotline/sip/gate"
)

// admitServer is a Server whose gate can be driven directly: per-source rate 1/s with a burst
// of burst, line 1888 configured, 192.0.2.1 trusted.
func admitServer(t testing.TB, burst int) *Server {
	t.Helper()
	l, err := defence.New(defence.Config{Rate: 1, Burst: burst, AuthFailures: 1, AuthWindow: time.Minute, BanFor: time.Hour,
		Trusted: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(Options{
		Lines:     func(d string) (string, bool) { return "main", d == "1888" },
		Handler:   func(context.Context, *Call) {},
		Scheduler: media.NewScheduler(media.SchedulerOptions{Workers: 1}),
		Ports:     media.NewPorts(netip.MustParseAddr("127.0.0.1"), 40000, 40010),
		Defences:  l,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// floodMsg is an out-of-dialog request with its own Call-ID and branch.
func floodMsg(method, user string, i int, extra ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s sip:%s@127.0.0.1 SIP/2.0\r\n", method, user)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK%d\r\n", i)
	fmt.Fprintf(&b, "Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=%d\r\nTo: <sip:%s@127.0.0.1>\r\n", i, user)
	fmt.Fprintf(&b, "Call-ID: %d@test\r\nCSeq: 1 %s\r\nContact: <sip:a@127.0.0.1>\r\n", i, method)
	for _, e := range extra {
		b.WriteString(e + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return []byte(b.String())
}

// TestAdmit: what the gate answers itself, statelessly, and what it drops or passes on to a
// transaction (issue 14 part 4).
func TestAdmit(t *testing.T) {
	attacker := netip.MustParseAddr("203.0.113.5")
	trusted := netip.MustParseAddr("192.0.2.1")
	type step struct {
		msg    []byte
		src    netip.Addr
		act    gate.Action
		status int
		header string // a line the reply must carry
	}
	tests := []struct {
		name     string
		draining bool
		steps    []step
	}{
		{"options answered without a transaction", false, []step{
			{msg: floodMsg("OPTIONS", "1888", 1), src: attacker, act: gate.Reply, status: 200, header: "Allow: INVITE, ACK"},
			{msg: floodMsg("OPTIONS", "1888", 2, "Require: 100rel"), src: attacker, act: gate.Pass},
		}},
		{"unknown line 404, known line passes", false, []step{
			{msg: floodMsg("INVITE", "999", 1), src: attacker, act: gate.Reply, status: 404},
			{msg: floodMsg("INVITE", "1888", 2), src: attacker, act: gate.Pass},
		}},
		{"over the rate: INVITE 503, the rest dropped", false, []step{
			{msg: floodMsg("REGISTER", "maria", 1), src: attacker, act: gate.Pass},
			{msg: floodMsg("REGISTER", "maria", 2), src: attacker, act: gate.Pass},
			{msg: floodMsg("INVITE", "1888", 3), src: attacker, act: gate.Reply, status: 503, header: "Retry-After: 1"},
			{msg: floodMsg("INVITE", "999", 4), src: attacker, act: gate.Reply, status: 503},
			{msg: floodMsg("OPTIONS", "1888", 5), src: attacker, act: gate.Drop},
			{msg: floodMsg("REGISTER", "maria", 6), src: attacker, act: gate.Drop},
			{msg: floodMsg("OPTIONS", "1888", 7), src: trusted, act: gate.Reply, status: 200},
			{msg: floodMsg("OPTIONS", "1888", 8), src: trusted, act: gate.Reply, status: 200},
			{msg: floodMsg("OPTIONS", "1888", 9), src: trusted, act: gate.Reply, status: 200},
		}},
		{"draining", true, []step{
			{msg: floodMsg("OPTIONS", "1888", 1), src: attacker, act: gate.Reply, status: 503, header: "Retry-After: 300"},
			{msg: floodMsg("INVITE", "1888", 2), src: attacker, act: gate.Reply, status: 503, header: "Retry-After: 300"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := admitServer(t, 2)
			if tc.draining {
				s.Drain()
			}
			for i, st := range tc.steps {
				v := s.gate.CheckAdmit(st.msg, "udp", st.src)
				if v.Action() != st.act || v.Status() != st.status {
					t.Fatalf("step %d: act %d status %d (%s), want act %d status %d", i, v.Action(), v.Status(), v.Reason(), st.act, st.status)
				}
				if st.header != "" && !strings.Contains(string(v.Response()), "\r\n"+st.header) {
					t.Fatalf("step %d: reply lacks %q:\n%s", i, st.header, v.Response())
				}
				if v.Action() == gate.Reply && !strings.Contains(string(v.Response()), ";tag=") {
					t.Fatalf("step %d: reply without a To tag:\n%s", i, v.Response())
				}
			}
		})
	}
}

// BenchmarkGateFlood is the gate's work per request of a flood from many sources: OPTIONS
// and INVITEs to an unknown number answered, REGISTER passed or dropped.
func BenchmarkGateFlood(b *testing.B) {
	s := admitServer(b, 5)
	msgs := [][]byte{floodMsg("OPTIONS", "1888", 1), floodMsg("INVITE", "999", 2), floodMsg("REGISTER", "maria", 3), floodMsg("INVITE", "1888", 4)}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		src := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		s.gate.CheckAdmit(msgs[i%len(msgs)], "udp", src)
		i++
	}
}

// sipgo records every UDP source it is handed and forgets none while its read loop runs; the
// gate restarts the loop after rotateAfter new sources, so the records stay bounded under a
// flood from many ports, and every request is still answered (issue 14 part 4).
func TestUDPSourcesForgotten(t *testing.T) {
	s := admitServer(t, 1000)
	s.gate.SetUDPRotateAfter(50)
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, conn, nil) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	pool := s.ua.TransportLayer().Pool("udp")
	maxPool := 0
	for i := range 300 {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		// A BYE outside any dialog reaches sipgo (a transaction) and is answered 481.
		if _, err := c.WriteTo(floodMsg("BYE", "1888", i), conn.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		n, _, err := c.ReadFrom(buf)
		c.Close()
		if err != nil {
			t.Fatalf("request %d unanswered: %v", i, err)
		}
		if !strings.HasPrefix(string(buf[:n]), "SIP/2.0 481 ") {
			t.Fatalf("request %d: %q", i, buf[:n])
		}
		maxPool = max(maxPool, pool.Size())
	}
	t.Logf("300 sources: sipgo's udp pool peaked at %d entries", maxPool)
	if maxPool > 50+2 {
		t.Errorf("sipgo's udp pool grew to %d entries, want at most the rotation's 50 (+ the listener)", maxPool)
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v during the rotations", err)
	default:
	}
}
