package config

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

func TestSecurityErrors(t *testing.T) {
	checkLoadErrors(t, []loadErrorCase{{"security-bad.yaml", `testdata/security-bad.yaml:2: security.auth_failures: must be 0 (never ban) or up to 100, got 500
testdata/security-bad.yaml:3: security.auth_window: must be greater than 0 and at most 24h, got 0s
testdata/security-bad.yaml:4: security.ban_duration: must be greater than 0 and at most 168h, got 200h0m0s
testdata/security-bad.yaml:5: security.request_rate: must be 0 (no limit) or more, got -1
testdata/security-bad.yaml:7: security.max_calls_per_source: must be 0 (no limit) or more, got -3
testdata/security-bad.yaml:8: security.trusted_sources[1]: "10.0.0.300" is not an IP address or CIDR prefix like 203.0.113.0/24
testdata/security-bad.yaml:8: security.trusted_sources[2]: "2001:db8::/200" is not an IP address or CIDR prefix like 203.0.113.0/24
testdata/security-bad.yaml:9: security.max_tracked_sources: must be between 1024 and 10000000, got 10
testdata/security-bad.yaml:10: security.max_connections: must be 0 (derived from the open-file limit) or up to 1000000, got -1
testdata/security-bad.yaml:11: security.max_connections_per_source: must be between 1 and 100000, got 0
testdata/security-bad.yaml:12: security.first_request_timeout: must be between 500ms and 5m, got 50ms`},
	})
}

func TestSecurity(t *testing.T) {
	c, err := Load("testdata/security.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := defaultSecurity()
	want.AuthFailures = 3
	want.RequestRate = 2.5
	want.TrustedSources = []string{"203.0.113.7", "198.51.100.9/24", "2001:db8::/32", "::ffff:192.0.2.1"}
	if !reflect.DeepEqual(c.Security, want) {
		t.Errorf("security = %+v, want %+v", c.Security, want)
	}
	if c.Security.AuthWindow != 10*time.Minute {
		t.Errorf("auth_window default = %v", c.Security.AuthWindow)
	}
	wantPrefixes := []netip.Prefix{
		netip.MustParsePrefix("203.0.113.7/32"),
		netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("192.0.2.1/32"),
	}
	if got := c.Security.TrustedPrefixes(); !reflect.DeepEqual(got, wantPrefixes) {
		t.Errorf("TrustedPrefixes = %v, want %v", got, wantPrefixes)
	}
}

// The call limits that follow from the port range and the trusted sources (issue 14).
func TestCallLimits(t *testing.T) {
	tests := []struct {
		name             string
		portMin, portMax int
		maxCalls         int
		trusted          []string
		untrusted, unack int
		want             CallLimits
	}{
		{name: "defaults", portMin: 10000, portMax: 20000, want: CallLimits{2000, 2000, 500}},
		{name: "a trunk listed: half for it", portMin: 10000, portMax: 20000, trusted: []string{"203.0.113.7"}, want: CallLimits{2000, 1000, 250}},
		{name: "the issue's 450 ports", portMin: 10000, portMax: 10899, want: CallLimits{180, 180, 45}},
		{name: "small: at least 16 unacknowledged", portMin: 10000, portMax: 10199, want: CallLimits{40, 40, 16}},
		{name: "tiny", portMin: 10000, portMax: 10002, want: CallLimits{1, 1, 1}},
		{name: "set", portMin: 10000, portMax: 20000, maxCalls: 100, untrusted: 30, unack: 5, want: CallLimits{100, 30, 5}},
	}
	for _, tt := range tests {
		c := defaults()
		c.Media.PortMin, c.Media.PortMax = tt.portMin, tt.portMax
		c.SIP.MaxCalls = tt.maxCalls
		c.Security.TrustedSources = tt.trusted
		c.Security.UntrustedCalls, c.Security.UnackedCalls = tt.untrusted, tt.unack
		if got := c.CallLimits(); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
