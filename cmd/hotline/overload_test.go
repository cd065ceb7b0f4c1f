package main

import (
	"math"
	"runtime/metrics"
	"testing"
)

func TestCountOver(t *testing.T) {
	h := &metrics.Float64Histogram{
		Buckets: []float64{math.Inf(-1), 0, 0.001, 0.01, 0.02, 0.05, math.Inf(1)},
		Counts:  []uint64{0, 900, 50, 30, 15, 5},
	}
	for _, tt := range []struct {
		bound       float64
		total, over uint64
	}{{0.02, 1000, 20}, {0.015, 1000, 20}, {0.03, 1000, 5}, {0.001, 1000, 100}, {1, 1000, 0}} {
		total, over := countOver(h, tt.bound)
		if total != tt.total || over != tt.over {
			t.Errorf("countOver(%v) = %d, %d; want %d, %d", tt.bound, total, over, tt.total, tt.over)
		}
	}
}
