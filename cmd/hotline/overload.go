package main

import (
	"context"
	"runtime/metrics"
	"time"

	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/sip"
)

// newOverload builds overload control for call set-up from sip.overload. It is read at
// start-up only (the whole sip section is): a reload does not change it.
func newOverload(c config.Overload) *sip.Overload {
	return sip.NewOverload(sip.OverloadOptions{MaxPending: c.MaxPending, MaxSetupLatency: c.MaxSetupLatency,
		MaxLateness: c.MaxSchedulerLateness, MaxCPUWait: c.MaxCPUWait, MaxSetupRate: float64(c.MaxSetupRate),
		RetryAfter: c.RetryAfter})
}

// schedLatencies is the Go runtime's histogram of how long goroutines waited, runnable,
// for a CPU.
const schedLatencies = "/sched/latencies:seconds"

// watchCPUWaits feeds ov the Go scheduler's waits every 100 ms until ctx ends: how many
// there were, and how many were longer than ov's bound.
func watchCPUWaits(ctx context.Context, ov *sip.Overload) {
	bound := ov.MaxCPUWait()
	if bound <= 0 {
		return
	}
	s := []metrics.Sample{{Name: schedLatencies}}
	var prevTotal, prevLate uint64
	read := func() (total, late uint64) {
		metrics.Read(s)
		if s[0].Value.Kind() != metrics.KindFloat64Histogram {
			return 0, 0
		}
		return countOver(s[0].Value.Float64Histogram(), bound.Seconds())
	}
	prevTotal, prevLate = read()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		total, late := read()
		ov.ObserveCPUWaits(total-prevTotal, late-prevLate)
		prevTotal, prevLate = total, late
	}
}

// countOver returns the samples of h and those in buckets that start at or above bound
// (seconds): a bucket that straddles the bound is not counted as over it.
func countOver(h *metrics.Float64Histogram, bound float64) (total, over uint64) {
	for i, c := range h.Counts {
		total += c
		if h.Buckets[i] >= bound {
			over += c
		}
	}
	return total, over
}
