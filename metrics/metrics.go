// Package metrics holds the hotline's Prometheus collectors and its HTTP endpoints (/metrics,
// /healthz, /readyz). Collectors are built on an injected Registerer, never the global one, and
// no label ever carries anything that identifies a caller: labels come from small fixed sets
// (configured line names, SIP methods we know, status codes, outcomes).
package metrics

import (
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/hotline-project/hotline/outcome"
)

const namespace = "hotline"

// methods are the SIP methods that get their own label value; anything else a client sends
// (method names are free tokens) is counted as "other" so a scanner cannot grow our series.
var methods = map[string]bool{
	"INVITE": true, "ACK": true, "BYE": true, "CANCEL": true, "OPTIONS": true, "INFO": true,
	"REGISTER": true, "SUBSCRIBE": true, "NOTIFY": true, "REFER": true, "MESSAGE": true,
	"PRACK": true, "UPDATE": true, "PUBLISH": true,
}

// Metrics is the set of collectors the server updates.
type Metrics struct {
	callsTotal   *prometheus.CounterVec
	callsActive  *prometheus.GaugeVec
	sipRequests  *prometheus.CounterVec
	sipResponses *prometheus.CounterVec
	pacingError  prometheus.Histogram
	authFailures *prometheus.CounterVec
	registered   prometheus.Gauge
	reg          prometheus.Registerer
}

// New registers the collectors on r. A nil r gives working collectors that are not exported.
func New(r prometheus.Registerer) *Metrics {
	f := promauto.With(r)
	m := &Metrics{
		reg: r,
		callsTotal: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "calls_total",
			Help: "Calls that ended, by line and outcome.",
		}, []string{"line", "outcome"}),
		callsActive: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "calls_active",
			Help: "Calls in progress, by line.",
		}, []string{"line"}),
		sipRequests: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "sip", Name: "requests_total",
			Help: "SIP requests received, by method.",
		}, []string{"method"}),
		sipResponses: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "sip", Name: "responses_total",
			Help: "SIP responses sent, by request method and status code.",
		}, []string{"method", "status"}),
		authFailures: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "sip", Name: "auth_failures_total",
			Help: "SIP requests whose digest credentials were refused, by reason (bad_credentials covers unknown users and wrong passwords alike; at_limit: not checked, the source being at its limit of failures with the checks in progress).",
		}, []string{"reason"}),
		registered: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "sip", Name: "registrations",
			Help: "Registered contacts of advocates' phones.",
		}),
		pacingError: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "rtp", Name: "pacing_error_seconds",
			Help:    "How late the media scheduler ran each send slot.",
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05},
		}),
	}
	version := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		version = bi.Main.Version
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help:        "Build information; always 1.",
		ConstLabels: prometheus.Labels{"version": version},
	}, func() float64 { return 1 })
	return m
}

func method(m string) string {
	if methods[m] {
		return m
	}
	return "other"
}

// Request counts a SIP request received.
func (m *Metrics) Request(meth string) { m.sipRequests.WithLabelValues(method(meth)).Inc() }

// Response counts a SIP response sent.
func (m *Metrics) Response(meth string, status int) {
	m.sipResponses.WithLabelValues(method(meth), strconv.Itoa(status)).Inc()
}

// CallStarted counts a call in progress on a configured line.
func (m *Metrics) CallStarted(line string) { m.callsActive.WithLabelValues(line).Inc() }

// CallEnded records the end of a call's SIP leg and its outcome.
func (m *Metrics) CallEnded(line string, end outcome.Leg) {
	m.callsActive.WithLabelValues(line).Dec()
	m.callsTotal.WithLabelValues(line, string(end)).Inc()
}

// authReasons are the reasons AuthFailure labels; anything else is "other".
var authReasons = map[string]bool{
	"malformed": true, "mismatch": true, "bad_nonce": true, "stale": true, "replay": true,
	"bad_credentials": true, "at_limit": true,
}

// AuthFailure counts refused credentials by reason (digest.Reason).
func (m *Metrics) AuthFailure(reason string) {
	if !authReasons[reason] {
		reason = "other"
	}
	m.authFailures.WithLabelValues(reason).Inc()
}

// Registrations sets the number of registered contacts.
func (m *Metrics) Registrations(n int) { m.registered.Set(float64(n)) }

// ObservePacing records how late a media send slot ran.
func (m *Metrics) ObservePacing(late time.Duration) { m.pacingError.Observe(late.Seconds()) }

// RTPTotals are the media layer's running packet counters.
type RTPTotals struct {
	Sent, Received, DroppedForeign, DroppedInvalid uint64
	// DroppedLate are outgoing frames never sent because the pacing fell behind.
	DroppedLate uint64
	// DroppedLearning are received packets not used while a leg learned its source; LearnResets
	// count learning probations another stream interrupted (attempted takeovers, issue 14).
	DroppedLearning, LearnResets uint64
}

// WatchRTP exports the media layer's counters, read at scrape time from totals.
func (m *Metrics) WatchRTP(totals func() RTPTotals) {
	f := promauto.With(m.reg)
	f.NewCounterFunc(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "rtp", Name: "packets_sent_total",
		Help: "RTP packets sent.",
	}, func() float64 { return float64(totals().Sent) })
	f.NewCounterFunc(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "rtp", Name: "packets_received_total",
		Help: "RTP packets received and accepted.",
	}, func() float64 { return float64(totals().Received) })
	dropped := func(reason string, get func(RTPTotals) uint64) {
		f.NewCounterFunc(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "rtp", Name: "packets_dropped_total",
			Help:        "RTP packets dropped, by reason: foreign_source, learning and invalid are received packets refused (from a source other than the learned one; not used while the source was being learned; malformed); late are outgoing frames skipped because sending fell behind.",
			ConstLabels: prometheus.Labels{"reason": reason},
		}, func() float64 { return float64(get(totals())) })
	}
	dropped("foreign_source", func(t RTPTotals) uint64 { return t.DroppedForeign })
	dropped("invalid", func(t RTPTotals) uint64 { return t.DroppedInvalid })
	dropped("late", func(t RTPTotals) uint64 { return t.DroppedLate })
	dropped("learning", func(t RTPTotals) uint64 { return t.DroppedLearning })
	f.NewCounterFunc(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "rtp", Name: "learning_resets_total",
		Help: "Times a stream on probation to become a call's RTP source was interrupted by another source's packets: attempted takeovers, or two sources competing for a port.",
	}, func() float64 { return float64(totals().LearnResets) })
}
