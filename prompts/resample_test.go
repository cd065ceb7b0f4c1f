package prompts

import (
	"fmt"
	"math"
	"math/cmplx"
	"slices"
	"testing"
)

// tone returns secs seconds of a sine of freq Hz at rate, with peak amp.
func tone(rate int, freq, amp, secs float64) []int16 {
	x := make([]int16, int(float64(rate)*secs))
	for i := range x {
		x[i] = int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
	}
	return x
}

// middle drops edge samples from each end of y at 8 kHz, where the filter
// runs off the end of a finite tone: its half-length is under 30 ms.
func middle(y []int16) []int16 {
	const edge = 400 // 50 ms
	return y[edge : len(y)-edge]
}

// amplitude estimates the peak amplitude of the freq Hz component of x,
// sampled at rate, by correlating with a complex exponential over a whole
// number of periods.
func amplitude(x []int16, rate int, freq float64) float64 {
	n := len(x)
	if periods := math.Floor(float64(n) * freq / float64(rate)); periods >= 1 {
		n = int(periods * float64(rate) / freq)
	}
	var sum complex128
	for i, v := range x[:n] {
		sum += complex(float64(v), 0) * cmplx.Exp(complex(0, -2*math.Pi*freq*float64(i)/float64(rate)))
	}
	return 2 * cmplx.Abs(sum) / float64(n)
}

// rms returns the root mean square of x.
func rms(x []int16) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(x)))
}

// zeroCrossingFreq measures the frequency of a clean tone from its
// upward zero crossings, placed between samples by linear interpolation.
func zeroCrossingFreq(x []int16, rate int) float64 {
	var first, last float64
	count := 0
	for i := 1; i < len(x); i++ {
		if x[i-1] < 0 && x[i] >= 0 {
			t := float64(i-1) + float64(-x[i-1])/float64(x[i]-x[i-1])
			if count == 0 {
				first = t
			}
			last = t
			count++
		}
	}
	return float64(count-1) * float64(rate) / (last - first)
}

func db(ratio float64) float64 { return 20 * math.Log10(ratio) }

// TestResampleTone checks that a 1 kHz tone recorded at each supported rate
// comes out at 1 kHz and at the same level.
func TestResampleTone(t *testing.T) {
	const amp = 16384 // -6 dBFS
	for _, rate := range resampleRates {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			x := tone(int(rate), 1000, amp, 1)
			pp := filters[rate]()
			y := pp.resample(x)
			if want := len(x) * 8000 / int(rate); len(y) != want {
				t.Fatalf("%d samples in, %d out; want %d", len(x), len(y), want)
			}
			m := middle(y)
			if f := zeroCrossingFreq(m, 8000); math.Abs(f-1000) > 0.5 {
				t.Errorf("frequency %.3f Hz by zero crossings, want 1000", f)
			}
			// The strongest of the 8 kHz output's DFT bins near 1 kHz is
			// the 1 kHz one.
			a := amplitude(m, 8000, 1000)
			for _, f := range []float64{980, 990, 1010, 1020} {
				if b := amplitude(m, 8000, f); b >= a/10 {
					t.Errorf("component at %v Hz is %.1f dB below 1 kHz, want a clear peak at 1 kHz", f, db(a/b))
				}
			}
			if gain := db(a / amp); math.Abs(gain) > 0.5 {
				t.Errorf("level changed by %+.3f dB, want within ±0.5 dB", gain)
			}
			// Output sample k is input time k/8000 s: no delay.
			ref := tone(8000, 1000, amp, 1)
			for i := 400; i < 420; i++ {
				if d := math.Abs(float64(y[i] - ref[i])); d > 3 {
					t.Fatalf("sample %d = %d, want %d (the input time-aligned)", i, y[i], ref[i])
				}
			}
		})
	}
}

// TestResampleAlias checks that tones above the new Nyquist frequency of
// 4 kHz are removed rather than folded back into the telephone band: 5 kHz
// would alias to 3 kHz, 6 kHz to 2 kHz.
func TestResampleAlias(t *testing.T) {
	const amp = 16384
	for _, rate := range resampleRates {
		for _, freq := range []float64{5000, 6000} {
			t.Run(fmt.Sprint(rate, "/", freq), func(t *testing.T) {
				x := tone(int(rate), freq, amp, 1)
				y := middle(filters[rate]().resample(x))
				alias := 8000 - freq
				if got := db(amp / amplitude(y, 8000, alias)); got < 50 {
					t.Errorf("alias at %v Hz only %.1f dB down, want >= 50", alias, got)
				}
				// Nor anywhere else: all that comes out is rounding noise.
				if got := db(rms(tone(int(rate), freq, amp, 0.5)) / rms(y)); got < 60 {
					t.Errorf("output %.1f dB below input, want >= 60", got)
				}
			})
		}
	}
}

// TestResampleSweep checks the whole response with tones: flat to within
// 0.1 dB across the telephone band, and 60 dB down from 4 kHz to the input's
// Nyquist frequency.
func TestResampleSweep(t *testing.T) {
	if testing.Short() {
		t.Skip("sweep takes a few seconds")
	}
	const amp = 16384
	for _, rate := range resampleRates {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			pp := filters[rate]()
			worstPass, worstStop := 0.0, math.Inf(1)
			for f := 300.0; f <= filterPass; f += 100 {
				y := middle(pp.resample(tone(int(rate), f, amp, 0.25)))
				g := db(amplitude(y, 8000, f) / amp)
				worstPass = max(worstPass, math.Abs(g))
			}
			for f := filterStop; f < float64(rate)/2; f += 250 {
				x := tone(int(rate), f, amp, 0.25)
				y := middle(pp.resample(x))
				worstStop = min(worstStop, db(rms(x)/rms(y)))
			}
			t.Logf("%d Hz: passband 300-3400 Hz within ±%.3f dB, 4 kHz and up at least %.1f dB down", rate, worstPass, worstStop)
			if worstPass > 0.1 {
				t.Errorf("passband deviates by %.3f dB, want <= 0.1", worstPass)
			}
			if worstStop < 60 {
				t.Errorf("stopband only %.1f dB down, want >= 60", worstStop)
			}
		})
	}
}

// TestFilterResponse measures the designed filter itself, free of the
// rounding to 16 bits: the ripple up to 3.4 kHz and the attenuation from
// 4 kHz to half the upsampled rate (everything that could alias).
func TestFilterResponse(t *testing.T) {
	for _, rate := range resampleRates {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			pp := filters[rate]()
			h := prototype(pp)
			fsUp := float64(rate) * float64(pp.up)
			response := func(f float64) float64 {
				// Zero-phase response about the centre tap; cos(w·i) by
				// rotation, which stays accurate to ~1e-12 over the taps.
				w := 2 * math.Pi * f / fsUp
				c1, s1 := math.Cos(w), math.Sin(w)
				c, sn := 1.0, 0.0
				sum := h[pp.delay]
				for _, v := range h[pp.delay+1:] {
					c, sn = c*c1-sn*s1, sn*c1+c*s1
					sum += 2 * v * c
				}
				return math.Abs(sum) / float64(pp.up)
			}
			ripple := 0.0
			for f := 0.0; f <= filterPass; f += 25 {
				ripple = max(ripple, math.Abs(db(response(f))))
			}
			// Fine steps near the band edge, coarser beyond, where the
			// Kaiser sidelobes only fall.
			atten := math.Inf(1)
			scale := 1.0
			if testing.Short() {
				scale = 10
			}
			for f := filterStop; f <= fsUp/2; {
				atten = min(atten, -db(response(f)))
				switch {
				case f < filterStop+500:
					f += 2 * scale
				case f < float64(rate):
					f += 20 * scale
				default:
					f += 500 * scale
				}
			}
			t.Logf("%d Hz: %d taps (%d per output sample), ripple ±%.5f dB to 3.4 kHz, >= %.1f dB down from 4 kHz",
				rate, len(h), len(pp.phases[0]), ripple, atten)
			if ripple > 0.01 {
				t.Errorf("passband ripple %.4f dB, want <= 0.01", ripple)
			}
			if atten < 70 {
				t.Errorf("stopband %.1f dB, want >= 70", atten)
			}
		})
	}
}

// prototype reassembles the prototype filter from its phases.
func prototype(pp *polyphase) []float64 {
	h := make([]float64, 2*pp.delay+1)
	for p, ph := range pp.phases {
		for i := range ph {
			h[p+pp.up*(len(ph)-1-i)] = ph[i]
		}
	}
	return h
}

func TestResampleEdges(t *testing.T) {
	for _, rate := range resampleRates {
		pp := filters[rate]()
		for _, n := range []int{0, 1, 2, 5, 441, 1000} {
			x := make([]int16, n)
			for i := range x {
				x[i] = 20000
			}
			y := pp.resample(x)
			if len(y) != pp.outLen(n) {
				t.Errorf("%d Hz, %d samples: %d out, want %d", rate, n, len(y), pp.outLen(n))
			}
			if n == 0 && len(y) != 0 {
				t.Errorf("%d Hz: samples out of nothing", rate)
			}
		}
	}
}

// TestResampleClip checks that the overshoot of a filtered full-scale
// square wave (Gibbs' 9 %) clips instead of wrapping round to the other
// sign.
func TestResampleClip(t *testing.T) {
	for _, rate := range resampleRates {
		pp := filters[rate]()
		half := int(rate) / 100 // 50 Hz square wave
		x := make([]int16, 10*half)
		for i := range x {
			x[i] = math.MaxInt16
			if i/half%2 == 1 {
				x[i] = math.MinInt16
			}
		}
		y := pp.resample(x)
		peak := int16(0)
		for k, v := range y[80 : len(y)-80] {
			k += 80
			i := k * int(rate) / 8000
			if d := min(i%half, half-i%half); d < 2*int(rate)/8000 {
				continue // within two output samples of a transition
			}
			if (v < 0) != (x[i] < 0) {
				t.Fatalf("%d Hz: output sample %d = %d, input there %d", rate, k, v, x[i])
			}
			peak = max(peak, v)
		}
		if peak != math.MaxInt16 {
			t.Errorf("%d Hz: peak %d, want the overshoot clipped at %d", rate, peak, math.MaxInt16)
		}
	}
	if got := filters[44100]().outLen(441); got != 80 {
		t.Errorf("441 samples at 44.1 kHz give %d, want 80", got)
	}
}

// TestResampleShift checks the indexing: delaying the input by M samples
// delays the output by exactly L samples, bit for bit, including the
// samples computed near the ends.
func TestResampleShift(t *testing.T) {
	for _, rate := range resampleRates {
		pp := filters[rate]()
		x := tone(int(rate), 440, 10000, 0.05)
		checkShift(t, pp, x)
	}
}

func checkShift(t *testing.T, pp *polyphase, x []int16) {
	t.Helper()
	y := pp.resample(x)
	shifted := pp.resample(append(make([]int16, pp.down), x...))
	if !slices.Equal(shifted[pp.up:], y) {
		t.Fatalf("%d/%d: delaying the input by %d samples does not delay the output by %d", pp.up, pp.down, pp.down, pp.up)
	}
}

func TestDesign(t *testing.T) {
	tests := []struct {
		rate     int
		up, down int
	}{
		{16000, 1, 2},
		{44100, 80, 441},
		{48000, 1, 6},
	}
	for _, tt := range tests {
		pp := design(tt.rate, 8000)
		if pp.up != tt.up || pp.down != tt.down {
			t.Errorf("design(%d) ratio %d/%d, want %d/%d", tt.rate, pp.up, pp.down, tt.up, tt.down)
		}
		var sum float64
		for _, ph := range pp.phases {
			for _, c := range ph {
				sum += c
			}
		}
		if math.Abs(sum-float64(pp.up)) > 1e-9 {
			t.Errorf("design(%d): taps sum to %v, want %d (unity gain)", tt.rate, sum, pp.up)
		}
	}
}

func TestBesselI0(t *testing.T) {
	// Values from Abramowitz and Stegun, table 9.8.
	for _, tt := range []struct{ x, want float64 }{
		{0, 1},
		{1, 1.266065878},
		{5, 27.23987182},
		{10, 2815.716628},
	} {
		if got := besselI0(tt.x); math.Abs(got-tt.want)/tt.want > 1e-8 {
			t.Errorf("besselI0(%v) = %v, want %v", tt.x, got, tt.want)
		}
	}
}

// BenchmarkResample converts one second of audio from each rate.
func BenchmarkResample(b *testing.B) {
	for _, rate := range resampleRates {
		b.Run(fmt.Sprint(rate), func(b *testing.B) {
			x := tone(int(rate), 1000, 10000, 1)
			pp := filters[rate]()
			b.ReportAllocs()
			b.SetBytes(int64(2 * len(x)))
			for b.Loop() {
				pp.resample(x)
			}
		})
	}
}

// BenchmarkDesign is the one-off cost of designing each filter.
func BenchmarkDesign(b *testing.B) {
	for _, rate := range resampleRates {
		b.Run(fmt.Sprint(rate), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				design(int(rate), 8000)
			}
		})
	}
}

// FuzzResample checks the resampler on arbitrary input through the WAV
// path: any 16-bit mono file at a supported rate decodes, to the length
// the ratio gives, to the same samples as resampling directly, and
// delaying the input by M samples delays the output by L.
func FuzzResample(f *testing.F) {
	f.Add(uint8(0), pcm16(tone(16000, 1000, 30000, 0.01)...))
	f.Add(uint8(1), pcm16(tone(44100, 5000, 30000, 0.01)...))
	f.Add(uint8(2), pcm16(-32768, 32767, -32768, 32767, 0, 1))
	f.Add(uint8(1), []byte{0x00, 0x80})
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		rate := resampleRates[int(which)%len(resampleRates)]
		data = data[:len(data)&^1]
		s := pcmSpec()
		s.rate, s.data = rate, data
		a, err := decodeWAV(buildWAV(s))
		if len(data) == 0 {
			if err == nil {
				t.Fatal("accepted an empty data chunk")
			}
			return
		}
		if err != nil {
			t.Fatalf("decodeWAV of %d Hz pcm: %v", rate, err)
		}
		pp := filters[rate]()
		x := make([]int16, len(data)/2)
		for i := range x {
			x[i] = int16(uint16(data[2*i]) | uint16(data[2*i+1])<<8)
		}
		if len(a.samples) != pp.outLen(len(x)) {
			t.Fatalf("%d samples at %d Hz gave %d, want %d", len(x), rate, len(a.samples), pp.outLen(len(x)))
		}
		if !slices.Equal(a.samples, pp.resample(x)) {
			t.Fatal("decoded samples differ from resampling the data directly")
		}
		if a.format != wavePCM || a.rate != rate || a.coded != nil {
			t.Fatalf("audio format %#x rate %d coded %d bytes", a.format, a.rate, len(a.coded))
		}
		checkShift(t, pp, x)
	})
}
