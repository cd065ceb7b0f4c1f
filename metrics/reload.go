package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Reloads holds the configuration reload collectors.
type Reloads struct {
	total       *prometheus.CounterVec
	lastSuccess prometheus.Gauge
	lastOK      prometheus.Gauge
}

// NewReloads registers the reload collectors on r. started is when the running
// configuration was loaded at start-up: the first "successful load".
func NewReloads(r prometheus.Registerer, started time.Time) *Reloads {
	f := promauto.With(r)
	m := &Reloads{
		total: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "config", Name: "reloads_total",
			Help: "Configuration reloads, by result: success or failure (the running configuration stayed in force).",
		}, []string{"result"}),
		lastSuccess: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "config", Name: "last_reload_success_timestamp_seconds",
			Help: "When the configuration in force was loaded (start-up or the last successful reload), as a Unix time.",
		}),
		lastOK: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "config", Name: "last_reload_successful",
			Help: "1 if the last configuration reload succeeded (or none was tried), 0 if it failed.",
		}),
	}
	m.total.WithLabelValues("success")
	m.total.WithLabelValues("failure")
	m.lastSuccess.Set(float64(started.UnixNano()) / 1e9)
	m.lastOK.Set(1)
	return m
}

// Reloaded records a reload attempt at t.
func (m *Reloads) Reloaded(ok bool, t time.Time) {
	if !ok {
		m.total.WithLabelValues("failure").Inc()
		m.lastOK.Set(0)
		return
	}
	m.total.WithLabelValues("success").Inc()
	m.lastOK.Set(1)
	m.lastSuccess.Set(float64(t.UnixNano()) / 1e9)
}
