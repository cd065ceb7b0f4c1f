package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestConns(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := NewConns(reg, func(transport string) int { return map[string]int{"tcp": 7, "tls": 2}[transport] })
	c.ConnRefused("tcp", "total")
	c.ConnRefused("tcp", "per_source")
	c.ConnRefused("tcp", "per_source")
	c.ConnRefused("ws", "made-up")
	c.ConnClosed("tls", "first_request_timeout")
	c.AcceptError("tcp")
	want := `
# HELP hotline_sip_accept_errors_total Failed accepts on the SIP TCP and TLS listeners (out of file descriptors, usually), each followed by a short wait and a retry.
# TYPE hotline_sip_accept_errors_total counter
hotline_sip_accept_errors_total{transport="tcp"} 1
# HELP hotline_sip_connections_closed_total SIP TCP and TLS connections the server closed, by transport and reason (first_request_timeout, idle_timeout, message_timeout, too_large, malformed, write_error).
# TYPE hotline_sip_connections_closed_total counter
hotline_sip_connections_closed_total{reason="first_request_timeout",transport="tls"} 1
# HELP hotline_sip_connections_open SIP TCP and TLS connections open now, by transport.
# TYPE hotline_sip_connections_open gauge
hotline_sip_connections_open{transport="tcp"} 7
hotline_sip_connections_open{transport="tls"} 2
# HELP hotline_sip_connections_refused_total SIP TCP and TLS connections closed as soon as they were accepted, by transport and the cap they were over (total: security.max_connections; per_source: security.max_connections_per_source).
# TYPE hotline_sip_connections_refused_total counter
hotline_sip_connections_refused_total{reason="other",transport="tcp"} 1
hotline_sip_connections_refused_total{reason="per_source",transport="tcp"} 2
hotline_sip_connections_refused_total{reason="total",transport="tcp"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}
