package sip

import (
	"net/netip"
	"testing"

	sipmsg "github.com/emiago/sipgo/sip"
)

// TestFromPeer: re-INVITEs, ACKs with SDP and INFOs are accepted only from the dialog's own
// peer address, whatever the port (https://github.com/hotline-project/hotline/issues/14).
func TestFromPeer(t *testing.T) {
	peer := netip.MustParseAddr("127.0.0.3")
	tests := []struct {
		name   string
		peer   netip.Addr
		source string
		want   bool
	}{
		{"same address and port", peer, "127.0.0.3:5060", true},
		{"same address, another port (NAT rebinding, TCP reconnect)", peer, "127.0.0.3:61000", true},
		{"IPv4-mapped IPv6 form of the same address", peer, "[::ffff:127.0.0.3]:5060", true},
		{"a third address", peer, "127.0.0.66:5060", false},
		{"an IPv6 address", peer, "[::1]:5060", false},
		{"no usable source", peer, "nonsense", false},
		{"unknown peer", netip.Addr{}, "127.0.0.3:5060", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := sipmsg.NewRequest(sipmsg.INVITE, sipmsg.Uri{Scheme: "sip", User: "x", Host: "127.0.0.1"})
			req.SetSource(tt.source)
			c := &Call{peer: tt.peer}
			if got := c.fromPeer(req); got != tt.want {
				t.Errorf("fromPeer(source %s, peer %v) = %v, want %v", tt.source, tt.peer, got, tt.want)
			}
		})
	}
}
