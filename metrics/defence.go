package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// refusedReasons are the reasons Refused labels (sip.RefusedBanned, RefusedRate,
// RefusedCalls); anything else is "other".
var refusedReasons = map[string]bool{"banned": true, "rate": true, "calls": true, "dialog": true,
	"untrusted": true, "unacked": true, "evicted": true}

// Defences counts what the SIP server's per-source limits refuse, and the bans they set.
// It implements sip.DefenceObserver.
type Defences struct {
	refused *prometheus.CounterVec
	bans    prometheus.Counter
}

// NewDefences registers the defences' collectors on r (nil: working, not exported).
// banned, if not nil, is read at scrape time for the number of sources banned now.
func NewDefences(r prometheus.Registerer, banned func() int) *Defences {
	f := promauto.With(r)
	d := &Defences{
		refused: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "sip", Name: "rate_limited_total",
			Help: "SIP requests refused by the per-source limits, by method and reason (banned: the source failed authentication too often; rate: over its request rate; calls: at its cap of calls in progress; dialog: a call's in-dialog requests over their rate; untrusted: the untrusted sources' share of calls is taken; unacked: the source has as many unacknowledged calls as it may; evicted: an unacknowledged call pushed out by a newer one).",
		}, []string{"method", "reason"}),
		bans: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "sip", Name: "bans_total",
			Help: "Source addresses banned for failing digest authentication too often.",
		}),
	}
	if banned != nil {
		f.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "sip", Name: "banned_sources",
			Help: "Source addresses banned now.",
		}, func() float64 { return float64(banned()) })
	}
	return d
}

// Refused counts a request refused by a limit.
func (d *Defences) Refused(meth, reason string) {
	if !refusedReasons[reason] {
		reason = "other"
	}
	d.refused.WithLabelValues(method(meth), reason).Inc()
}

// Banned counts a newly banned source.
func (d *Defences) Banned() { d.bans.Inc() }

// WatchBudget exports, read at scrape time, the calls in progress from untrusted sources
// (the untrusted sources' budget, sip/defence.Budget): acknowledged and unacknowledged.
func WatchBudget(r prometheus.Registerer, counts func() (calls, unacked int)) {
	if r == nil {
		return
	}
	r.MustRegister(budgetCollector{counts})
}

var budgetDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "sip", "untrusted_calls"),
	"Calls in progress from sources outside security.trusted_sources, by state (acknowledged, unacknowledged).",
	[]string{"state"}, nil)

type budgetCollector struct{ counts func() (calls, unacked int) }

func (c budgetCollector) Describe(ch chan<- *prometheus.Desc) { ch <- budgetDesc }

func (c budgetCollector) Collect(ch chan<- prometheus.Metric) {
	calls, unacked := c.counts()
	ch <- prometheus.MustNewConstMetric(budgetDesc, prometheus.GaugeValue, float64(calls-unacked), "acknowledged")
	ch <- prometheus.MustNewConstMetric(budgetDesc, prometheus.GaugeValue, float64(unacked), "unacknowledged")
}
