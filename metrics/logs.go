package metrics

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Logs counts the log lines the log limiter (package logs) dropped.
type Logs struct {
	suppressed *prometheus.CounterVec
}

// NewLogs registers the collector on r (nil: working, not exported).
func NewLogs(r prometheus.Registerer) *Logs {
	return &Logs{suppressed: promauto.With(r).NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "log", Name: "suppressed_total",
		Help: "Log lines dropped because the same line repeated too often (per call or in total), by level.",
	}, []string{"level"})}
}

// Suppressed counts one dropped line of level l.
func (m *Logs) Suppressed(l slog.Level) {
	var name string
	switch {
	case l < slog.LevelInfo:
		name = "debug"
	case l < slog.LevelWarn:
		name = "info"
	case l < slog.LevelError:
		name = "warn"
	default:
		name = "error"
	}
	m.suppressed.WithLabelValues(name).Inc()
}
