package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// IVR holds the menu collectors. Labels are configured menu names, keys, language tags and
// the fixed set of ways a call leaves the menus; a collect menu's digits never appear.
type IVR struct {
	selections *prometheus.CounterVec
	languages  *prometheus.CounterVec
	ends       *prometheus.CounterVec
}

// NewIVR registers the menu collectors on r.
func NewIVR(r prometheus.Registerer) *IVR {
	f := promauto.With(r)
	return &IVR{
		selections: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "ivr", Name: "menu_selections_total",
			Help: "What callers did in each menu: the key pressed, none (no input) or invalid.",
		}, []string{"menu", "key"}),
		languages: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "ivr", Name: "language_chosen_total",
			Help: "Calls that left the menus, by the caller's language.",
		}, []string{"language"}),
		ends: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "ivr", Name: "ends_total",
			Help: "Calls that left the menus, by how: choice, operator, no_input, invalid, limit, caller_hangup, cancelled.",
		}, []string{"end"}),
	}
}

// Selected counts what a caller did in a menu (ivr.Options.OnSelect).
func (m *IVR) Selected(menu, key string) { m.selections.WithLabelValues(menu, key).Inc() }

// Ended counts a call leaving the menus in language, the way end says.
func (m *IVR) Ended(language, end string) {
	m.ends.WithLabelValues(end).Inc()
	if language != "" {
		m.languages.WithLabelValues(language).Inc()
	}
}
