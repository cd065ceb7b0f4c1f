package callflow

import (
	"context"
	"time"
)

// Clock tells the time and makes timers; the flow never reads the wall clock otherwise,
// so its tests drive every ring timeout, overflow step and announcement with a fake one.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once d has passed (at once for d <= 0).
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

// WallClock is the Clock of a running server.
type WallClock struct{}

// Now returns time.Now().
func (WallClock) Now() time.Time { return time.Now() }

// NewTimer returns a time.Timer.
func (WallClock) NewTimer(d time.Duration) Timer { return wallTimer{time.NewTimer(d)} }

type wallTimer struct{ t *time.Timer }

func (w wallTimer) C() <-chan time.Time { return w.t.C }
func (w wallTimer) Stop() bool          { return w.t.Stop() }

// timerAt returns a timer firing at t on clk, or nil for a zero t.
func timerAt(clk Clock, t time.Time) Timer {
	if t.IsZero() {
		return nil
	}
	return clk.NewTimer(t.Sub(clk.Now()))
}

// chanOf is t's channel, or nil (never ready) for a nil t.
func chanOf(t Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C()
}

func stopTimer(t Timer) {
	if t != nil {
		t.Stop()
	}
}

// withDeadline is context.WithDeadline on clk's time.
func withDeadline(ctx context.Context, clk Clock, at time.Time) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	t := timerAt(clk, at)
	go func() {
		defer t.Stop()
		select {
		case <-t.C():
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
