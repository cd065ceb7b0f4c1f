package sip

import (
	"net"
	"net/netip"
	"testing"
)

// TestContactAddr: our Contact (and Via) name the address the listener is bound to when it
// is bound to one (a node on its own address behind Kamailio: in-dialog requests must reach
// it, not the address the kernel would pick towards the peer), else the local address.
func TestContactAddr(t *testing.T) {
	s := &Server{listenAddrs: map[string]net.Addr{
		"udp": &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 5060},
		"tcp": &net.TCPAddr{IP: net.IPv4zero, Port: 5060},
	}}
	local := netip.MustParseAddr("127.0.0.1")
	for _, tc := range []struct{ transport, want string }{
		{"UDP", "127.0.0.2"}, {"udp", "127.0.0.2"}, {"TCP", "127.0.0.1"}, {"TLS", "127.0.0.1"},
	} {
		if got := s.contactAddr(tc.transport, local); got.String() != tc.want {
			t.Errorf("contactAddr(%s) = %s, want %s", tc.transport, got, tc.want)
		}
	}
}
