package metrics

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/hotline-project/hotline/records"
)

// recordOps are the operations hotline_records_store_errors_total counts (records.Options
// OnError); anything else is "other".
var recordOps = map[string]bool{"open": true, "write": true, "spool": true, "recover": true, "heartbeat": true, "purge": true}

// Records are the call records' collectors: whether the store takes writes, what waits for
// it, and what was lost. The alert rules HotlineRecordsStoreDown and
// HotlineRecordsDropped watch them.
type Records struct {
	errors *prometheus.CounterVec
}

// NewRecords registers the records' collectors on r (nothing when r is nil); stats reads
// the Recorder's state at each scrape.
func NewRecords(r prometheus.Registerer, stats func() records.Stats) *Records {
	f := promauto.With(r)
	var (
		mu   sync.Mutex
		last records.Stats
		at   time.Time
	)
	// One Stats a scrape, not one per collector.
	get := func() records.Stats {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(at) > 100*time.Millisecond {
			last, at = stats(), time.Now()
		}
		return last
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "hotline_records_store_up",
		Help: "1 when the call records store takes writes, 0 while it is unavailable (records wait in the spool; calls are answered as usual)."},
		func() float64 {
			if get().StoreUp {
				return 1
			}
			return 0
		})
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "hotline_records_queued",
		Help: "Call records waiting in memory for the store."},
		func() float64 { return float64(get().Queued) })
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "hotline_records_spooled",
		Help: "Call records waiting in the spool file for the store."},
		func() float64 { return float64(get().Spooled) })
	f.NewCounterFunc(prometheus.CounterOpts{Name: "hotline_records_written_total",
		Help: "Call records (and per-minute attempt counts) written to the store."},
		func() float64 { return float64(get().Written) })
	for i, kind := range records.DropKinds {
		f.NewCounterFunc(prometheus.CounterOpts{Name: "hotline_records_dropped_total",
			Help:        "Call records lost because the store, the spool and the memory queue were all unavailable or full (kind: progress, finish, attempts).",
			ConstLabels: prometheus.Labels{"kind": kind}},
			func() float64 { return float64(get().Dropped[i]) })
	}
	m := &Records{errors: f.NewCounterVec(prometheus.CounterOpts{Name: "hotline_records_store_errors_total",
		Help: "Failed call-records store operations, by operation (open, write, spool, recover, heartbeat, purge)."}, []string{"op"})}
	for op := range recordOps {
		m.errors.WithLabelValues(op)
	}
	return m
}

// StoreError counts a failed store operation; it is records.Options.OnError.
func (m *Records) StoreError(op string) {
	if !recordOps[op] {
		op = "other"
	}
	m.errors.WithLabelValues(op).Inc()
}

// RecordsDetail is the line /readyz adds about the call records: "" while the store takes
// writes. It carries no error text, only the state and counts.
func RecordsDetail(s records.Stats) string {
	if s.StoreUp {
		return ""
	}
	since := "not yet opened"
	if !s.DownSince.IsZero() {
		since = "since " + s.DownSince.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("records: degraded: the store is unavailable (%s); calls are answered, "+
		"%d records wait in memory and %d in the spool", since, s.Queued, s.Spooled)
}
