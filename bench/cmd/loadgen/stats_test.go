package main

import (
	"testing"
	"time"
)

func TestHistQuantile(t *testing.T) {
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.99, 0},
		{"one", []time.Duration{20 * time.Millisecond}, 0.5, 20 * time.Millisecond},
		{"bucket upper bound", []time.Duration{19_200 * time.Microsecond, 20_100 * time.Microsecond}, 0.5, 19_500 * time.Microsecond},
		{"tail", append(repeat(20*time.Millisecond, 999), 61*time.Millisecond), 0.999, 20_500 * time.Microsecond},
		{"tail caught", append(repeat(20*time.Millisecond, 998), 61*time.Millisecond, 61*time.Millisecond), 0.999, 61 * time.Millisecond},
		{"overflow reports the max", []time.Duration{3 * time.Second}, 0.5, 3 * time.Second},
		{"negative counts as zero", []time.Duration{-time.Millisecond}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHist(500*time.Microsecond, 1000)
			for _, v := range tt.values {
				h.add(v)
			}
			if got := h.quantile(tt.q); got != tt.want {
				t.Errorf("quantile(%v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

func TestHistMerge(t *testing.T) {
	a, b := newHist(time.Millisecond, 10), newHist(time.Millisecond, 10)
	a.add(2 * time.Millisecond)
	b.add(7 * time.Millisecond)
	b.add(7 * time.Millisecond)
	a.merge(b)
	if a.n != 3 || a.max != 7*time.Millisecond || a.quantile(0.5) != 7*time.Millisecond {
		t.Fatalf("merged: n=%d max=%v p50=%v, want 3, 7ms, 7ms", a.n, a.max, a.quantile(0.5))
	}
	a.reset()
	if a.n != 0 || a.quantile(0.5) != 0 {
		t.Fatalf("after reset: n=%d", a.n)
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}
