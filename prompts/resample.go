package prompts

import (
	"math"
	"sync"
)

// The resampler turns 16-bit PCM recorded at 16, 44.1 or 48 kHz into the
// 8 kHz the prompts are stored at, once at load time.
//
// It is a rational polyphase FIR: conceptually the input is upsampled by L
// (zeros stuffed between samples), low-pass filtered, and every M-th sample
// kept, with L/M = 8000/rate reduced (1/2, 80/441, 1/6). Only the products
// that are not with a stuffed zero are computed: each output sample is one
// dot product of about 400 input samples with one of L phases of the
// filter.
//
// The filter is a windowed sinc with a Kaiser window (Kaiser's design
// formulas for the length and β): passband to 3.4 kHz, the top of the
// telephone band; stopband from 4 kHz, the new Nyquist frequency, at
// filterAtten dB, so what would alias into the 0–4 kHz band is removed
// before the rate drops. It is linear-phase and its group delay is
// compensated, so output sample k is the input at time k/8000 s and the
// output has ceil(n·L/M) samples.
//
// We wrote this rather than take a library: the pure-Go ones we found
// either interpolate without a designed anti-alias filter, are cgo
// bindings (libsoxr, libsamplerate), or are new single-author projects
// larger than this file; three fixed ratios do not need a general
// converter.
const (
	filterPass  = 3400.0 // Hz: passband edge
	filterStop  = 4000.0 // Hz: stopband edge, the output's Nyquist frequency
	filterAtten = 80.0   // dB: design attenuation in the stopband
)

// resampleRates are the input rates the decoder resamples from.
var resampleRates = []uint32{16000, 44100, 48000}

// polyphase is the filter for one input rate, split into its phases.
type polyphase struct {
	up, down int // L and M: out rate / in rate = up/down, in lowest terms
	delay    int // group delay of the prototype filter, in upsampled samples
	// phases[p] holds the prototype taps p, p+L, p+2L, ... in reverse
	// order, so that the dot product runs forwards over the input.
	phases [][]float64
}

// filters holds the polyphase filter per input rate, designed on first use
// (the 44.1 kHz one has about 30,000 taps) and shared thereafter.
var filters = map[uint32]func() *polyphase{
	16000: sync.OnceValue(func() *polyphase { return design(16000, sampleRate) }),
	44100: sync.OnceValue(func() *polyphase { return design(44100, sampleRate) }),
	48000: sync.OnceValue(func() *polyphase { return design(48000, sampleRate) }),
}

// design builds the anti-alias filter for converting from rate in to rate
// out (out < in).
func design(in, out int) *polyphase {
	g := gcd(in, out)
	up, down := out/g, in/g
	fsUp := float64(in) * float64(up)

	// Kaiser: length from the transition width and attenuation, β from the
	// attenuation. The cutoff sits in the middle of the transition band.
	dw := 2 * math.Pi * (filterStop - filterPass) / fsUp
	n := int(math.Ceil((filterAtten-7.95)/(2.285*dw))) + 1
	n |= 1 // odd, so the delay is a whole number of samples
	beta := 0.1102 * (filterAtten - 8.7)
	fc := (filterPass + filterStop) / 2 / fsUp // cycles per upsampled sample
	delay := (n - 1) / 2

	h := make([]float64, n)
	i0b := besselI0(beta)
	var sum float64
	for i := range h {
		x := float64(i - delay)
		r := x / float64(delay) // -1..1 across the window
		w := besselI0(beta*math.Sqrt(max(0, 1-r*r))) / i0b
		h[i] = 2 * fc * sinc(2*fc*x) * w
		sum += h[i]
	}
	// Unity gain at DC after zero-stuffing, which divides the level by L.
	for i := range h {
		h[i] *= float64(up) / sum
	}

	pp := &polyphase{up: up, down: down, delay: delay, phases: make([][]float64, up)}
	for p := range up {
		k := (n - p + up - 1) / up // taps p, p+L, ... below n
		ph := make([]float64, k)
		for i := range k {
			ph[k-1-i] = h[p+up*i]
		}
		pp.phases[p] = ph
	}
	return pp
}

// outLen returns the number of output samples for n input samples.
func (pp *polyphase) outLen(n int) int {
	return (n*pp.up + pp.down - 1) / pp.down
}

// resample converts x and returns a new slice of outLen(len(x)) samples.
// Samples before and after x count as silence.
func (pp *polyphase) resample(x []int16) []int16 {
	y := make([]int16, pp.outLen(len(x)))
	var scratch []int16
	for k := range y {
		t := k*pp.down + pp.delay // position in the upsampled signal
		p := t % pp.up
		ph := pp.phases[p]
		start := t/pp.up - len(ph) + 1 // input index of ph[0]
		var win []int16
		if start >= 0 && start+len(ph) <= len(x) {
			win = x[start : start+len(ph)]
		} else {
			// Near either end: copy what exists into a zeroed window, so
			// the sum runs over the same terms in the same order as in the
			// middle (a zero term leaves a float sum unchanged).
			if cap(scratch) < len(ph) {
				scratch = make([]int16, len(ph))
			}
			win = scratch[:len(ph)]
			clear(win)
			lo, hi := max(start, 0), min(start+len(ph), len(x))
			if lo < hi {
				copy(win[lo-start:], x[lo:hi])
			}
		}
		y[k] = toInt16(dot(ph, win))
	}
	return y
}

// dot returns the dot product of h and x, which have the same length. Four
// accumulators let the additions overlap.
func dot(h []float64, x []int16) float64 {
	x = x[:len(h)]
	var a0, a1, a2, a3 float64
	i := 0
	for ; i+4 <= len(h); i += 4 {
		a0 += h[i] * float64(x[i])
		a1 += h[i+1] * float64(x[i+1])
		a2 += h[i+2] * float64(x[i+2])
		a3 += h[i+3] * float64(x[i+3])
	}
	for ; i < len(h); i++ {
		a0 += h[i] * float64(x[i])
	}
	return (a0 + a1) + (a2 + a3)
}

// toInt16 rounds v to the nearest sample, clipping at full scale (a full
// scale input can overshoot slightly after filtering).
func toInt16(v float64) int16 {
	v = math.Round(v)
	switch {
	case v > math.MaxInt16:
		return math.MaxInt16
	case v < math.MinInt16:
		return math.MinInt16
	}
	return int16(v)
}

// sinc is the normalised sinc function, sin(πx)/(πx).
func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// besselI0 is the zeroth-order modified Bessel function of the first kind,
// by its power series (which converges quickly for the β used here).
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	q := x * x / 4
	for k := 1; term > sum*1e-17; k++ {
		term *= q / float64(k*k)
		sum += term
	}
	return sum
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
