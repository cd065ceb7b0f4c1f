package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// shedReasons are the reasons Shed labels (sip.ShedPending, ShedLatency, ShedLateness,
// ShedCPUWait, ShedRate); anything else is "other".
var shedReasons = map[string]bool{"pending": true, "latency": true, "lateness": true, "cpu_wait": true, "rate": true}

// OverloadState is what the overload detector reports at scrape time.
type OverloadState struct {
	Pending int     // set-ups in flight
	Admit   float64 // share of new calls admitted, 0..1
	Active  bool    // new calls are being shed
	// Over are the shares of the last 100 ms's samples over their bounds, by signal
	// (latency, lateness, cpu_wait).
	Over map[string]float64
}

// Overload counts the new calls overload control sheds, and exports its signals. It
// implements sip.OverloadObserver.
type Overload struct {
	shed *prometheus.CounterVec
}

// NewOverload registers the overload collectors on r (nil: working, not exported). state,
// if not nil, is read at scrape time.
func NewOverload(r prometheus.Registerer, state func() OverloadState) *Overload {
	f := promauto.With(r)
	o := &Overload{
		shed: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "sip", Name: "overload_shed_total",
			Help: "New calls answered 503 by overload control, by reason (pending: too many set-ups in flight; latency: set-ups too slow; lateness: the media scheduler running late; cpu_wait: work waiting too long for a CPU; rate: more new calls a second offered than max_setup_rate).",
		}, []string{"reason"}),
	}
	for r := range shedReasons {
		o.shed.WithLabelValues(r) // export zeros, so rate() and alerts see the series from the start
	}
	if state != nil {
		f.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "setup_pending",
			Help: "Call set-ups in flight: INVITEs taken whose answer is not ready yet.",
		}, func() float64 { return float64(state().Pending) })
		f.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "overload_admit_ratio",
			Help: "Share of new calls overload control admits now (1: all).",
		}, func() float64 { return state().Admit })
		for _, sig := range []string{"latency", "lateness", "cpu_wait"} {
			f.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: namespace, Name: "overload_signal_over_ratio",
				Help:        "Share of the last 100 ms's samples over the signal's bound (sip.overload): set-up latency, media scheduler lateness, waits for a CPU.",
				ConstLabels: prometheus.Labels{"signal": sig},
			}, func() float64 { return state().Over[sig] })
		}
		f.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "overload_active",
			Help: "1 while overload control sheds new calls, else 0.",
		}, func() float64 {
			if state().Active {
				return 1
			}
			return 0
		})
	}
	return o
}

// Shed counts a new call shed by overload control.
func (o *Overload) Shed(reason string) {
	if !shedReasons[reason] {
		reason = "other"
	}
	o.shed.WithLabelValues(reason).Inc()
}
