package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Conferences holds the collectors of the advocates' mid-call conferences (interpreters,
// 911, partners). Labels are the kind of party and how the attempt ended, from fixed
// sets; never anything of a caller.
type Conferences struct {
	active       prometheus.Gauge
	participants prometheus.Gauge
	joins        *prometheus.CounterVec
}

// NewConferences registers the conference collectors on r; a nil r gives working
// collectors that are not exported.
func NewConferences(r prometheus.Registerer) *Conferences {
	f := promauto.With(r)
	return &Conferences{
		active: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "conferences_active",
			Help: "Calls whose media is mixed in a conference now (a party being added, or three or more talking).",
		}),
		participants: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "conference_participants",
			Help: "Legs in conferences now: callers, advocates and the parties they added.",
		}),
		joins: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "conference_joins_total",
			Help: "Attempts to add a party mid-call, by kind (interpreter, emergency, partner, other, supervisor, transfer) and result (answered, busy, no_answer, failed, unknown; for transfers also none_available, completed, cancelled, left).",
		}, []string{"kind", "result"}),
	}
}

// Conferences changes the number of conferences in progress by delta.
func (m *Conferences) Conferences(delta int) { m.active.Add(float64(delta)) }

// Participants changes the number of legs in conferences by delta.
func (m *Conferences) Participants(delta int) { m.participants.Add(float64(delta)) }

// Joined counts an attempt to add a party.
func (m *Conferences) Joined(kind, result string) { m.joins.WithLabelValues(kind, result).Inc() }
