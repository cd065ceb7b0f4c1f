package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/hotline-project/hotline/metrics"
	"github.com/hotline-project/hotline/sip"
)

// drainer takes a server out of service without dropping a call: new calls get 503, the
// calls in progress go on, and the server stops when the last one ends or the timeout
// passes.
type drainer struct {
	srv     *sip.Server
	health  *metrics.Health
	stop    context.CancelFunc
	timeout time.Duration
	log     *slog.Logger
	once    sync.Once
}

// drainPoll is how often a draining server checks whether its calls have ended.
const drainPoll = 100 * time.Millisecond

func (d *drainer) drain() {
	d.once.Do(func() {
		d.srv.Drain()
		d.health.SetReady(false)
		d.log.Info("draining: new calls get 503; stopping when the calls in progress end",
			"calls", d.srv.ActiveCalls(), "timeout", d.timeout)
		go d.wait()
	})
}

func (d *drainer) wait() {
	deadline := time.Now().Add(d.timeout)
	t := time.NewTicker(drainPoll)
	defer t.Stop()
	for range t.C {
		n := d.srv.ActiveCalls()
		if n == 0 {
			d.log.Info("drained: no calls left; stopping")
			d.stop()
			return
		}
		if d.timeout > 0 && time.Now().After(deadline) {
			d.log.Warn("drain timeout: stopping with calls in progress", "calls", n)
			d.stop()
			return
		}
	}
}
