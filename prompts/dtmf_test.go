package prompts

import (
	"math"
	"testing"
)

// power returns the Goertzel power of x at freq (8 kHz).
func power(x []int16, freq float64) float64 {
	c := 2 * math.Cos(2*math.Pi*freq/sampleRate)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = float64(v)+c*s1-s2, s1
	}
	return (s1*s1 + s2*s2 - c*s1*s2) / float64(len(x)*len(x))
}

func TestDTMF(t *testing.T) {
	p, err := DTMF("19#,*")
	if err != nil {
		t.Fatal(err)
	}
	const key = sampleRate * (dtmfOn + dtmfOff) / 1000
	if want := 4*key + sampleRate*dtmfPause/1000; len(p.Samples) != want {
		t.Fatalf("%d samples, want %d", len(p.Samples), want)
	}
	if len(p.PCMU)%FrameSize != 0 || len(p.PCMA) != len(p.PCMU) {
		t.Errorf("payloads %d and %d bytes, want equal whole frames", len(p.PCMU), len(p.PCMA))
	}
	at := func(i int) []int16 { return p.Samples[i*key : i*key+sampleRate*dtmfOn/1000] }
	for i, k := range []rune{'1', '9', '#'} {
		x := at(i)
		f := dtmfFreqs[k]
		for _, g := range []float64{697, 770, 852, 941, 1209, 1336, 1477, 1633} {
			p := power(x, g)
			on := g == f[0] || g == f[1]
			if on && p < 1e5 || !on && p > 1e4 {
				t.Errorf("key %c: power at %v Hz %.0f (a key frequency: %v)", k, g, p, on)
			}
		}
	}
	for _, bad := range []string{"", "12x"} {
		if _, err := DTMF(bad); err == nil {
			t.Errorf("DTMF(%q) = nil error", bad)
		}
	}
}
