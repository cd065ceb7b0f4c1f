package callflow

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeServer struct {
	draining atomic.Bool
	calls    atomic.Int32
}

func (s *fakeServer) Drain()           { s.draining.Store(true) }
func (s *fakeServer) ActiveCalls() int { return int(s.calls.Load()) }

// TestDrain: a drain refuses new calls and stops the server when the last call ends, or
// at the timeout with calls still in progress.
func TestDrain(t *testing.T) {
	for _, tc := range []struct {
		name      string
		timeout   time.Duration
		hangUpAt  time.Duration // when the last call ends
		stoppedAt time.Duration
	}{
		{"last call ends", 0, 12 * time.Second, 12 * time.Second},
		{"timeout", 20 * time.Second, time.Hour, 20 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			srv := &fakeServer{}
			srv.calls.Store(2)
			var mu sync.Mutex
			var stopped time.Time
			ready := true
			d := &Drainer{Server: srv, Timeout: tc.timeout, Clock: clk, Logger: slog.New(slog.DiscardHandler),
				SetReady: func(r bool) { ready = r },
				Stop: func() {
					mu.Lock()
					defer mu.Unlock()
					if stopped.IsZero() {
						stopped = clk.Now()
					}
				}}
			d.Drain()
			d.Drain() // a second SIGTERM's drain does nothing more
			if !srv.draining.Load() || ready {
				t.Fatal("draining without refusing calls or while ready")
			}
			isStopped := func() bool {
				mu.Lock()
				defer mu.Unlock()
				return !stopped.IsZero()
			}
			for !isStopped() && clk.Now().Sub(t0) < time.Minute {
				if clk.Now().Sub(t0) >= tc.hangUpAt {
					srv.calls.Store(0)
				}
				clk.Advance(drainPoll)
			}
			mu.Lock()
			defer mu.Unlock()
			// The server is polled every drainPoll: it stops at the first poll after.
			if got := stopped.Sub(t0); got < tc.stoppedAt || got > tc.stoppedAt+2*drainPoll {
				t.Errorf("stopped at %v, want %v", got, tc.stoppedAt)
			}
		})
	}
}
