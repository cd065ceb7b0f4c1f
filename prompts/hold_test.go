package prompts

import (
	"bytes"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/hotline-project/hotline/media/g711"
)

func dBFS(v float64) float64 { return 20 * math.Log10(v/math.MaxInt16) }

func TestHoldShape(t *testing.T) {
	t.Parallel()
	p := Hold()
	if p != Hold() {
		t.Error("Hold() built the audio twice")
	}
	if p.Name != "hold" || p.Duration() != 32*time.Second || len(p.Samples) != 32*sampleRate {
		t.Errorf("Hold() = %q, %v, %d samples; want \"hold\", 32s, %d", p.Name, p.Duration(), len(p.Samples), 32*sampleRate)
	}
	tests := []struct {
		pt   uint8
		want []byte
	}{
		{payloadPCMU, g711.AppendUlaw(nil, p.Samples)},
		{payloadPCMA, g711.AppendAlaw(nil, p.Samples)},
		{9, nil},
		{101, nil},
	}
	for _, tt := range tests {
		got := HoldAudio(tt.pt)
		if !bytes.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
			t.Errorf("HoldAudio(%d): %d bytes, not the encoding of Samples (%d bytes)", tt.pt, len(got), len(tt.want))
		}
		if len(got)%FrameSize != 0 {
			t.Errorf("HoldAudio(%d) is %d bytes, not a whole number of frames", tt.pt, len(got))
		}
	}
}

func TestHoldDeterministic(t *testing.T) {
	t.Parallel()
	if !slices.Equal(holdSamples(), holdSamples()) || !slices.Equal(holdSamples(), Hold().Samples) {
		t.Error("holdSamples differs between calls")
	}
}

func TestHoldLevel(t *testing.T) {
	t.Parallel()
	x := Hold().Samples
	peak, sum := 0.0, 0.0
	for _, s := range x {
		v := float64(s)
		peak = max(peak, math.Abs(v))
		sum += v * v
	}
	if p := dBFS(peak); p < -20.5 || p > -19.5 {
		t.Errorf("peak %.1f dBFS, want -20 ± 0.5", p)
	}
	if r := dBFS(math.Sqrt(sum / float64(len(x)))); r < -32 || r > -22 {
		t.Errorf("rms %.1f dBFS, want between -32 and -22", r)
	}
	// Decoded as a phone hears it, still bounded.
	for _, pt := range []uint8{payloadPCMU, payloadPCMA} {
		for i, c := range HoldAudio(pt) {
			v := g711.DecodeUlaw(c)
			if pt == payloadPCMA {
				v = g711.DecodeAlaw(c)
			}
			if dBFS(math.Abs(float64(v))) > -19 {
				t.Fatalf("payload %d sample %d decodes to %d, above -19 dBFS", pt, i, v)
			}
		}
	}
}

// TestHoldLoopsSeamlessly: played back to back, the last sample flows into
// the first like any sample into the next (no step, no kink), and the
// level never jumps from one 20 ms frame to the next, across the loop
// point included.
func TestHoldLoopsSeamlessly(t *testing.T) {
	t.Parallel()
	x := Hold().Samples
	n := len(x)
	at := func(i int) float64 { return float64(x[(i%n+n)%n]) }
	maxStep, maxKink := 0.0, 0.0
	for i := 1; i < n-1; i++ {
		maxStep = max(maxStep, math.Abs(at(i)-at(i-1)))
		maxKink = max(maxKink, math.Abs(at(i+1)-2*at(i)+at(i-1)))
	}
	if step := math.Abs(at(n) - at(n-1)); step > maxStep {
		t.Errorf("loop point step %v, more than any inside the loop (%v)", step, maxStep)
	}
	for _, i := range []int{n - 1, n} {
		if kink := math.Abs(at(i+1) - 2*at(i) + at(i-1)); kink > maxKink+2 {
			t.Errorf("second difference at %d is %v, more than any inside the loop (%v)", i, kink, maxKink)
		}
	}

	// 100 ms windows: short enough to catch a click or a jump, long
	// enough to average out the beating of neighbouring notes while two
	// chords cross-fade.
	const win = 800
	windows := n / win
	level := func(w int) float64 {
		w = (w%windows + windows) % windows
		s := 0.0
		for _, v := range x[w*win : (w+1)*win] {
			s += float64(v) * float64(v)
		}
		return 10 * math.Log10(s/win+1)
	}
	worst := 0.0
	for w := range windows {
		d := math.Abs(level(w) - level(w-1))
		worst = max(worst, d)
		if d > 1.5 {
			t.Errorf("window %d level changes by %.1f dB from the one before, want at most 1.5", w, d)
		}
	}
	t.Logf("largest level change between 100 ms windows: %.2f dB", worst)
}

// TestHoldSpectrum: the energy lies below 1 kHz, checked with a DFT of
// 200 ms windows across the loop.
func TestHoldSpectrum(t *testing.T) {
	t.Parallel()
	x := Hold().Samples
	const win = 1600 // 200 ms: 5 Hz bins
	for start := 0; start+win <= len(x); start += 10 * win {
		var below, above float64
		bestBin, bestP := 0, 0.0
		for k := 1; k < win/2; k++ {
			var re, im float64
			for i, s := range x[start : start+win] {
				a := 2 * math.Pi * float64(k*i) / win
				re += float64(s) * math.Cos(a)
				im -= float64(s) * math.Sin(a)
			}
			p := re*re + im*im
			if hz := k * sampleRate / win; hz < 1000 {
				below += p
			} else {
				above += p
			}
			if p > bestP {
				bestBin, bestP = k, p
			}
		}
		if hz := bestBin * sampleRate / win; hz >= 1000 {
			t.Errorf("window at %d: dominant frequency %d Hz, want below 1 kHz", start, hz)
		}
		if frac := above / (above + below); frac > 0.01 {
			t.Errorf("window at %d: %.2f%% of the energy above 1 kHz, want under 1%%", start, 100*frac)
		}
	}
}

func BenchmarkHoldSamples(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		holdSamples()
	}
}
