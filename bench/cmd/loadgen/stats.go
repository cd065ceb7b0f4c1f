package main

import (
	"time"
)

// hist is a histogram of durations in fixed-width buckets from 0; the last bucket holds
// everything at or above its lower bound.
type hist struct {
	width  time.Duration
	counts []uint32
	n      uint64
	max    time.Duration
}

func newHist(width time.Duration, buckets int) *hist {
	return &hist{width: width, counts: make([]uint32, buckets)}
}

func (h *hist) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	i := int(d / h.width)
	if i >= len(h.counts) {
		i = len(h.counts) - 1
	}
	h.counts[i]++
	h.n++
	h.max = max(h.max, d)
}

// merge adds o's counts to h; o must have the same bucket width and count.
func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the upper bound of the bucket holding quantile q (0..1), which errs
// on the pessimistic side by at most one bucket width; an empty histogram gives 0. The
// overflow bucket reports the largest value seen.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += uint64(c)
		if seen >= rank {
			if i == len(h.counts)-1 {
				return h.max
			}
			return min(time.Duration(i+1)*h.width, h.max)
		}
	}
	return h.max
}

func (h *hist) reset() {
	clear(h.counts)
	h.n, h.max = 0, 0
}
