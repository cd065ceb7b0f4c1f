package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// connReasons are the reasons Conns labels (the sip/gate.ConnRefused* and sip/gate.ConnClosed*
// constants); anything else is "other".
var connReasons = map[string]bool{
	"total": true, "per_source": true,
	"first_request_timeout": true, "idle_timeout": true, "message_timeout": true,
	"too_large": true, "malformed": true, "write_error": true,
}

// Conns counts what the SIP stream listeners refuse and close. It implements
// sip/gate.ConnObserver.
type Conns struct {
	refused      *prometheus.CounterVec
	closed       *prometheus.CounterVec
	acceptErrors *prometheus.CounterVec
}

// NewConns registers the stream listeners' collectors on r (nil: working, not exported).
// open, if not nil, is read at scrape time for the connections open over a transport
// ("tcp", "tls").
func NewConns(r prometheus.Registerer, open func(transport string) int) *Conns {
	f := promauto.With(r)
	c := &Conns{
		refused: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "sip", Name: "connections_refused_total",
			Help: "SIP TCP and TLS connections closed as soon as they were accepted, by transport and the cap they were over (total: security.max_connections; per_source: security.max_connections_per_source).",
		}, []string{"transport", "reason"}),
		closed: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "sip", Name: "connections_closed_total",
			Help: "SIP TCP and TLS connections the server closed, by transport and reason (first_request_timeout, idle_timeout, message_timeout, too_large, malformed, write_error).",
		}, []string{"transport", "reason"}),
		acceptErrors: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "sip", Name: "accept_errors_total",
			Help: "Failed accepts on the SIP TCP and TLS listeners (out of file descriptors, usually), each followed by a short wait and a retry.",
		}, []string{"transport"}),
	}
	if open != nil {
		for _, t := range []string{"tcp", "tls"} {
			f.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: namespace, Subsystem: "sip", Name: "connections_open",
				Help:        "SIP TCP and TLS connections open now, by transport.",
				ConstLabels: prometheus.Labels{"transport": t},
			}, func() float64 { return float64(open(t)) })
		}
	}
	return c
}

func connReason(r string) string {
	if connReasons[r] {
		return r
	}
	return "other"
}

func connTransport(t string) string {
	if t == "tls" {
		return t
	}
	return "tcp"
}

// ConnRefused counts a connection refused over a cap.
func (c *Conns) ConnRefused(transport, reason string) {
	c.refused.WithLabelValues(connTransport(transport), connReason(reason)).Inc()
}

// ConnClosed counts a connection the server closed.
func (c *Conns) ConnClosed(transport, reason string) {
	c.closed.WithLabelValues(connTransport(transport), connReason(reason)).Inc()
}

// AcceptError counts a failed accept.
func (c *Conns) AcceptError(transport string) {
	c.acceptErrors.WithLabelValues(connTransport(transport)).Inc()
}
