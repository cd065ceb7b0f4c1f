package state

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the store's Prometheus metrics.
type Metrics struct {
	commit prometheus.Histogram
	errors prometheus.Counter
}

// NewMetrics registers the store's metrics with reg; store gives the store once open
// (nil before, and when the state is kept in memory only).
func NewMetrics(reg prometheus.Registerer, store func() *Store) *Metrics {
	m := &Metrics{
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hotline_state_commit_seconds",
			Help:    "Time to commit a state change (registration, advocate state, override) to the raft log, fsync included.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5},
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hotline_state_write_errors_total",
			Help: "State changes not saved (a restart would lose them); see the log.",
		}),
	}
	status := func(f func(Status) float64) func() float64 {
		return func() float64 {
			s := store()
			if s == nil {
				return 0
			}
			return f(s.Status())
		}
	}
	reg.MustRegister(m.commit, m.errors,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hotline_state_leader",
			Help: "1 when this node leads its raft cluster (a single node always does once started)."},
			status(func(s Status) float64 {
				if s.State == "Leader" {
					return 1
				}
				return 0
			})),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hotline_state_applied_index",
			Help: "Index of the last raft log entry applied to this node's state."},
			status(func(s Status) float64 { return float64(s.AppliedIndex) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hotline_state_leader_changes_total",
			Help: "Changes of the raft cluster's leader this node has seen (one at start)."},
			func() float64 {
				if s := store(); s != nil {
					return float64(s.LeaderChanges())
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hotline_state_pending_changes",
			Help: "State changes submitted and not yet written to the log."},
			status(func(s Status) float64 { return float64(s.Pending) })),
	)
	return m
}

// OnCommit is for Options.OnCommit.
func (m *Metrics) OnCommit(d time.Duration, err error) {
	if err != nil {
		m.errors.Inc()
		return
	}
	m.commit.Observe(d.Seconds())
}
