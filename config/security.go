package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Security sets the SIP server's per-source defences: bans after failed digest
// authentication, a request rate, and a cap on calls in progress. They apply per source
// address (per /64 for IPv6), except to trusted_sources.
//
// Bans apply to what advocates' phones send (REGISTER, feature codes) and to everything
// else that is not a call, but never to a new call to a line: callers are not
// authenticated, and a caller must get through even from the address of someone
// brute-forcing passwords (in production many calls share the carrier trunk's address).
type Security struct {
	// AuthFailures failed authentications from one source within AuthWindow ban the source
	// for BanDuration; 0 never bans; 0..100.
	AuthFailures int           `yaml:"auth_failures"`
	AuthWindow   time.Duration `yaml:"auth_window"`  // >0, at most 24h
	BanDuration  time.Duration `yaml:"ban_duration"` // >0, at most 168h
	// RequestRate is how many requests a second one source may send, sustained, and
	// RequestBurst how many at once; 0 is no limit. Requests of calls in progress (ACK, BYE,
	// INFO) are not counted.
	RequestRate  float64 `yaml:"request_rate"`  // >=0
	RequestBurst int     `yaml:"request_burst"` // >=1 with a rate
	// MaxCallsPerSource is how many calls one source may have in progress; further INVITEs
	// from it get 503; 0 is no limit.
	MaxCallsPerSource int `yaml:"max_calls_per_source"` // >=0
	// TrustedSources are IP addresses and CIDR prefixes exempt from every per-source limit:
	// the carrier's SIP trunk, whose address many callers share.
	TrustedSources []string `yaml:"trusted_sources"`
	// MaxTrackedSources bounds the memory the limits use: the number of sources each of
	// their tables remembers; the least recently seen are forgotten first; 1024..10000000.
	MaxTrackedSources int `yaml:"max_tracked_sources"`

	// UntrustedCalls is how many calls all sources outside TrustedSources may have in
	// progress together; the rest of sip.max_calls stays for the trusted trunk. 0 is half
	// of max_calls, or all of it when TrustedSources is empty; at most max_calls.
	UntrustedCalls int `yaml:"untrusted_calls"`
	// UnackedCalls is how many of those calls may await the ACK of their answer (or ring)
	// at once; when it is reached, a new call pushes out the one that has waited longest.
	// 0 is a quarter of untrusted_calls (at least 16, or all of it if smaller); at most
	// untrusted_calls.
	UnackedCalls int `yaml:"unacked_calls"`
	// UnackedCallsPerSource is how many calls one untrusted source may have awaiting
	// their ACK; further INVITEs from it get 503. 0 is no limit.
	UnackedCallsPerSource int `yaml:"unacked_calls_per_source"`
	// UnackedTimeout is how long an untrusted source's call waits for its ACK, when it is
	// shorter than sip.ack_timeout; 1s..5m.
	UnackedTimeout time.Duration `yaml:"unacked_timeout"`
	// NoRTPCalls calls that never sent an RTP packet from one untrusted source within
	// NoRTPWindow make its further silent calls wait behind every other caller (the
	// silent-call policy, README "Silent calls"); 0 never does. 0..1000.
	NoRTPCalls  int           `yaml:"no_rtp_calls"`
	NoRTPWindow time.Duration `yaml:"no_rtp_window"` // >0 with no_rtp_calls, at most 24h

	// MaxConnections is how many SIP TCP and TLS connections from untrusted sources may be
	// open at once; 0 derives it at start-up from the open-file limit, leaving descriptors
	// for the RTP ports and the records store (sip/gate.MaxConnectionsFor); 0..1000000.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerSource is how many of them one source may have open; 1..100000.
	MaxConnectionsPerSource int `yaml:"max_connections_per_source"`
	// FirstRequestTimeout closes a connection that has not sent a request the server serves
	// this long after connecting (TLS handshake included); 500ms..5m.
	FirstRequestTimeout time.Duration `yaml:"first_request_timeout"`
}

// CallLimits are the call counts that follow from the configuration (Config.CallLimits).
type CallLimits struct {
	MaxCalls       int // sip.max_calls, or what the port range carries
	UntrustedCalls int // security.untrusted_calls, or its default
	UnackedCalls   int // security.unacked_calls, or its default
}

// MediaPorts returns how many RTP ports the media range holds: its even ports.
func (m *Media) MediaPorts() int {
	hi := m.PortMax &^ 1
	if hi < m.PortMin {
		return 0
	}
	return (hi-m.PortMin)/2 + 1
}

// DefaultMaxCalls is max_calls's default for a range of ports: every call may be bridged
// to an advocate (two ports), and a fifth of the range stays for further legs (an
// advocate's several phones ringing at once, a target being dialled).
func DefaultMaxCalls(ports int) int { return max(1, ports*2/5) }

// CallLimits returns the call limits in force, with the defaults of the fields left 0.
func (c *Config) CallLimits() CallLimits {
	l := CallLimits{MaxCalls: c.SIP.MaxCalls, UntrustedCalls: c.Security.UntrustedCalls,
		UnackedCalls: c.Security.UnackedCalls}
	if l.MaxCalls == 0 {
		l.MaxCalls = DefaultMaxCalls(c.Media.MediaPorts())
	}
	if l.UntrustedCalls == 0 {
		l.UntrustedCalls = l.MaxCalls
		if len(c.Security.TrustedSources) > 0 {
			l.UntrustedCalls = max(1, l.MaxCalls/2)
		}
	}
	if l.UnackedCalls == 0 {
		l.UnackedCalls = max(l.UntrustedCalls/4, min(l.UntrustedCalls, 16))
	}
	return l
}

// defaultSecurity are the security section's defaults.
func defaultSecurity() Security {
	return Security{
		AuthFailures:      5,
		AuthWindow:        10 * time.Minute,
		BanDuration:       15 * time.Minute,
		RequestRate:       20,
		RequestBurst:      100,
		MaxCallsPerSource: 100,
		TrustedSources:    []string{},
		MaxTrackedSources: 65536,

		UnackedCallsPerSource: 4,
		UnackedTimeout:        8 * time.Second,
		NoRTPCalls:            3,
		NoRTPWindow:           10 * time.Minute,

		MaxConnections:          0,
		MaxConnectionsPerSource: 32,
		FirstRequestTimeout:     10 * time.Second,
	}
}

// securityWholeNumbers are the security section's int fields, for checkWholeNumbers.
var securityWholeNumbers = []string{"security.auth_failures", "security.request_burst",
	"security.max_calls_per_source", "security.max_tracked_sources", "security.untrusted_calls",
	"security.unacked_calls", "security.unacked_calls_per_source", "security.no_rtp_calls",
	"security.max_connections", "security.max_connections_per_source"}

// TrustedPrefixes returns TrustedSources as prefixes; a bare address is a /32 (or /128).
// Validation guarantees every entry parses.
func (s *Security) TrustedPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, v := range s.TrustedSources {
		if p, err := parsePrefix(v); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func parsePrefix(v string) (netip.Prefix, error) {
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return p, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (p *parser) validateSecurity(s *Security) {
	const path = "security"
	if s.AuthFailures < 0 || s.AuthFailures > 100 {
		p.errorf(path+".auth_failures", "must be 0 (never ban) or up to 100, got %d", s.AuthFailures)
	}
	if s.AuthFailures > 0 {
		if s.AuthWindow <= 0 || s.AuthWindow > 24*time.Hour {
			p.errorf(path+".auth_window", "must be greater than 0 and at most 24h, got %v", s.AuthWindow)
		}
		if s.BanDuration <= 0 || s.BanDuration > 7*24*time.Hour {
			p.errorf(path+".ban_duration", "must be greater than 0 and at most 168h, got %v", s.BanDuration)
		}
	}
	if s.RequestRate < 0 {
		p.errorf(path+".request_rate", "must be 0 (no limit) or more, got %v", s.RequestRate)
	}
	if s.RequestRate > 0 && s.RequestBurst < 1 {
		p.errorf(path+".request_burst", "must be at least 1 with a request_rate, got %d", s.RequestBurst)
	}
	if s.MaxCallsPerSource < 0 {
		p.errorf(path+".max_calls_per_source", "must be 0 (no limit) or more, got %d", s.MaxCallsPerSource)
	}
	if s.MaxTrackedSources < 1024 || s.MaxTrackedSources > 10_000_000 {
		p.errorf(path+".max_tracked_sources", "must be between 1024 and 10000000, got %d", s.MaxTrackedSources)
	}
	for i, v := range s.TrustedSources {
		if _, err := parsePrefix(v); err != nil {
			p.errorf(fmt.Sprintf("%s.trusted_sources[%d]", path, i), "%q is not an IP address or CIDR prefix like 203.0.113.0/24", v)
		}
	}
	if s.UnackedCallsPerSource < 0 {
		p.errorf(path+".unacked_calls_per_source", "must be 0 (no limit) or more, got %d", s.UnackedCallsPerSource)
	}
	if s.NoRTPCalls < 0 || s.NoRTPCalls > 1000 {
		p.errorf(path+".no_rtp_calls", "must be 0 (off) or up to 1000, got %d", s.NoRTPCalls)
	}
	if s.NoRTPCalls > 0 && (s.NoRTPWindow <= 0 || s.NoRTPWindow > 24*time.Hour) {
		p.errorf(path+".no_rtp_window", "must be greater than 0 and at most 24h, got %v", s.NoRTPWindow)
	}
	if s.MaxConnections < 0 || s.MaxConnections > 1_000_000 {
		p.errorf(path+".max_connections", "must be 0 (derived from the open-file limit) or up to 1000000, got %d", s.MaxConnections)
	}
	if s.MaxConnectionsPerSource < 1 || s.MaxConnectionsPerSource > 100_000 {
		p.errorf(path+".max_connections_per_source", "must be between 1 and 100000, got %d", s.MaxConnectionsPerSource)
	}
	if s.FirstRequestTimeout < 500*time.Millisecond || s.FirstRequestTimeout > 5*time.Minute {
		p.errorf(path+".first_request_timeout", "must be between 500ms and 5m, got %v", s.FirstRequestTimeout)
	}
}

// validateCallLimits checks max_calls against the port range and the untrusted sources'
// budget against max_calls: what the configuration accepts, the server must be able to do.
func (p *parser) validateCallLimits(c *Config) {
	ports := c.Media.MediaPorts()
	switch m := c.SIP.MaxCalls; {
	case m < 0:
		p.errorf("sip.max_calls", "must be 0 (follow the port range) or more, got %d", m)
		return
	case ports > 0 && m > ports/2:
		p.errorf("sip.max_calls", "%d calls need up to %d RTP ports (a call bridged to an advocate takes two), but media.port_min..port_max holds %d; at most %d, or 0 for %d",
			m, 2*m, ports, ports/2, DefaultMaxCalls(ports))
	}
	s := &c.Security
	l := c.CallLimits()
	switch {
	case s.UntrustedCalls < 0:
		p.errorf("security.untrusted_calls", "must be 0 (the default share) or more, got %d", s.UntrustedCalls)
	case s.UntrustedCalls > l.MaxCalls:
		p.errorf("security.untrusted_calls", "must be at most max_calls (%d), got %d", l.MaxCalls, s.UntrustedCalls)
	}
	switch {
	case s.UnackedCalls < 0:
		p.errorf("security.unacked_calls", "must be 0 (the default) or more, got %d", s.UnackedCalls)
	case s.UnackedCalls > l.UntrustedCalls:
		p.errorf("security.unacked_calls", "must be at most untrusted_calls (%d), got %d", l.UntrustedCalls, s.UnackedCalls)
	}
	if s.UnackedTimeout < time.Second || s.UnackedTimeout > 5*time.Minute {
		p.errorf("security.unacked_timeout", "must be between 1s and 5m, got %v", s.UnackedTimeout)
	}
}
