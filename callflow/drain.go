package callflow

import (
	"log/slog"
	"sync"
	"time"
)

// Drainable is the server a Drainer takes out of service (sip.Server implements it).
type Drainable interface {
	// Drain makes the server refuse new calls (503).
	Drain()
	// ActiveCalls is how many calls are in progress.
	ActiveCalls() int
}

// Drainer takes a server out of service without dropping a call: new calls get 503, the
// calls in progress go on, and Stop is called when the last one ends or Timeout passes.
type Drainer struct {
	Server   Drainable
	SetReady func(ready bool) // the readiness endpoint; nil: none
	Stop     func()           // stops the server
	Timeout  time.Duration    // 0: wait for the calls however long they take
	Clock    Clock            // nil: WallClock
	Logger   *slog.Logger

	once sync.Once
}

// drainPoll is how often a draining server checks whether its calls have ended.
const drainPoll = 100 * time.Millisecond

// Drain starts draining; calls after the first do nothing.
func (d *Drainer) Drain() {
	d.once.Do(func() {
		if d.Clock == nil {
			d.Clock = WallClock{}
		}
		d.Server.Drain()
		if d.SetReady != nil {
			d.SetReady(false)
		}
		d.Logger.Info("draining: new calls get 503; stopping when the calls in progress end",
			"calls", d.Server.ActiveCalls(), "timeout", d.Timeout)
		go d.wait()
	})
}

func (d *Drainer) wait() {
	start := d.Clock.Now()
	deadline := start.Add(d.Timeout)
	for i := 1; ; i++ {
		<-timerAt(d.Clock, start.Add(time.Duration(i)*drainPoll)).C()
		n := d.Server.ActiveCalls()
		if n == 0 {
			d.Logger.Info("drained: no calls left; stopping")
			d.Stop()
			return
		}
		if d.Timeout > 0 && !d.Clock.Now().Before(deadline) {
			d.Logger.Warn("drain timeout: stopping with calls in progress", "calls", n)
			d.Stop()
			return
		}
	}
}
