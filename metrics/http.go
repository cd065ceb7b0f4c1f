package metrics

import (
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Health tracks readiness for /readyz: listeners up, prompts loaded, not draining.
type Health struct {
	ready  atomic.Bool
	detail atomic.Pointer[func() string]
}

// SetDetail sets what /readyz adds below its status: a degraded part that does not stop
// the server taking calls (the call records store, say), "" when all is well. It does not
// change the status, which load balancers act on.
func (h *Health) SetDetail(f func() string) { h.detail.Store(&f) }

// SetReady marks the server ready (or not) to take calls.
func (h *Health) SetReady(ok bool) { h.ready.Store(ok) }

// Ready reports whether the server takes calls.
func (h *Health) Ready() bool { return h.ready.Load() }

// Handler serves /metrics from g, /healthz (the process is alive) and /readyz (it takes calls).
// Answers carry no internal detail: /readyz adds at most a fixed-phrase line about a
// degraded part (SetDetail).
func Handler(g prometheus.Gatherer, h *Health) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !h.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
		if f := h.detail.Load(); f != nil {
			if d := (*f)(); d != "" {
				_, _ = w.Write([]byte(d + "\n"))
			}
		}
	})
	return mux
}
