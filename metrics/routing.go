package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/hotline-project/hotline/routing"
)

// Routing holds the routing collectors: decisions made, and the emergency overrides in
// force. Labels are configured route, schedule and kind names, never anything of a caller.
type Routing struct {
	decisions *prometheus.CounterVec
	demoted   *prometheus.CounterVec
}

// NewRouting registers the routing collectors on r; a nil r gives working collectors that
// are not exported. overrides returns the emergency overrides in force
// (routing.Overrides.Active at the current time); it is called on every scrape.
func NewRouting(r prometheus.Registerer, overrides func() []routing.Override) *Routing {
	f := promauto.With(r)
	m := &Routing{
		decisions: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "route_decisions_total",
			Help: "Routing decisions, by route and kind of destination (queue, target, message).",
		}, []string{"route", "kind"}),
		demoted: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "route", Name: "demoted_total",
			Help: "Silent calls not routed as urgent, by reason (no_rtp: no RTP packet ever arrived; source: the source sent several such calls).",
		}, []string{"reason"}),
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Subsystem: "routing", Name: "overrides_active",
		Help: "Emergency overrides in force; 0 in normal operation.",
	}, func() float64 { return float64(len(overrides())) })
	if r != nil {
		r.MustRegister(overrideCollector{overrides})
	}
	return m
}

// Decision counts a decision made for a call (not for an explanation).
func (m *Routing) Decision(d routing.Decision) {
	m.decisions.WithLabelValues(d.Route, d.Kind()).Inc()
	if d.Demoted != "" {
		m.demoted.WithLabelValues(d.Demoted).Inc()
	}
}

var overrideDesc = prometheus.NewDesc(
	prometheus.BuildFQName(namespace, "routing", "override_active"),
	"1 for each emergency override in force: kind closed (name is the schedule forced closed) or route (name is the route all calls are forced to).",
	[]string{"kind", "name"}, nil,
)

// overrideCollector exports one series per override in force, read at scrape time, so the
// series of a cleared override disappears.
type overrideCollector struct {
	overrides func() []routing.Override
}

func (c overrideCollector) Describe(ch chan<- *prometheus.Desc) { ch <- overrideDesc }

func (c overrideCollector) Collect(ch chan<- prometheus.Metric) {
	for _, o := range c.overrides() {
		ch <- prometheus.MustNewConstMetric(overrideDesc, prometheus.GaugeValue, 1, string(o.Kind), o.Name())
	}
}
