package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Safety holds the caller-safety collectors (README "Caller safety"). Labels are fixed
// sets; nothing of a caller is in them.
type Safety struct {
	quickExits *prometheus.CounterVec
	places     *prometheus.CounterVec
}

// NewSafety registers the caller-safety collectors on r, every label value at zero.
func NewSafety(r prometheus.Registerer) *Safety {
	f := promauto.With(r)
	s := &Safety{
		quickExits: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "quick_exits_total",
			Help: "Calls ended by the quick-exit key, by where the caller was: menus, waiting, ringing, bridge.",
		}, []string{"phase"}),
		places: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "kept_places_total",
			Help: "Keep-one's-place slots: held (a call dropped while waiting), restored (the caller called back in time), expired.",
		}, []string{"result"}),
	}
	for _, p := range []string{"menus", "waiting", "ringing", "bridge"} {
		s.quickExits.WithLabelValues(p)
	}
	for _, r := range []string{"held", "restored", "expired"} {
		s.places.WithLabelValues(r)
	}
	return s
}

// QuickExit counts a call ended by the quick-exit key in phase.
func (s *Safety) QuickExit(phase string) { s.quickExits.WithLabelValues(phase).Inc() }

// PlaceKept counts what happened to a keep-one's-place slot.
func (s *Safety) PlaceKept(result string) { s.places.WithLabelValues(result).Inc() }
