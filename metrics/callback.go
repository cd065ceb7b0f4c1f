package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Callbacks counts safe callbacks (issue 16, part 3) by queue and event. It never
// carries anything of the number or the caller.
type Callbacks struct {
	events *prometheus.CounterVec
}

// CallbackEvents are the events counted: offered (a waiting caller heard the offer),
// accepted (booked), attempted (an advocate answered and the number was dialled), reached
// (the person called back pressed 1 and was connected), expired (the window ended first),
// failed (every try used up), cancelled (through the admin API).
var CallbackEvents = []string{"offered", "accepted", "attempted", "reached", "expired", "failed", "cancelled"}

// NewCallbacks registers hotline_callbacks_total on r, every event at zero for each of
// queues, and hotline_callbacks_pending, read from pending at each scrape.
func NewCallbacks(r prometheus.Registerer, queues []string, pending func() int) *Callbacks {
	f := promauto.With(r)
	c := &Callbacks{events: f.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "callbacks_total",
		Help: "Safe callbacks by queue and event: offered, accepted, attempted, reached, expired, failed, cancelled.",
	}, []string{"queue", "event"})}
	for _, q := range queues {
		for _, e := range CallbackEvents {
			c.events.WithLabelValues(q, e)
		}
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "callbacks_pending",
		Help: "Callbacks booked and not yet done, failed or expired.",
	}, func() float64 { return float64(pending()) })
	return c
}

// Callback counts one event of a callback for queue.
func (c *Callbacks) Callback(queue, event string) { c.events.WithLabelValues(queue, event).Inc() }
