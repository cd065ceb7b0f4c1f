package media_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hotline-project/hotline/media"
	"github.com/hotline-project/hotline/media/g711"
	"github.com/hotline-project/hotline/prompts"
)

// payloadOf encodes 8 kHz samples as G.711 (payload type 0 or 8).
func payloadOf(pt uint8, pcm []int16) []byte {
	out := make([]byte, len(pcm))
	for i, s := range pcm {
		if pt == 8 {
			out[i] = g711.EncodeAlaw(s)
		} else {
			out[i] = g711.EncodeUlaw(s)
		}
	}
	return out
}

// synth makes d of audio at 8 kHz from f(n).
func synth(d time.Duration, f func(n int) float64) []int16 {
	pcm := make([]int16, int(d/time.Millisecond)*8)
	for n := range pcm {
		pcm[n] = int16(max(-32768, min(32767, f(n))))
	}
	return pcm
}

func sine(hz, amp float64) func(int) float64 {
	return func(n int) float64 { return amp * math.Sin(2*math.Pi*hz*float64(n)/8000) }
}

// beepAt feeds audio in 20 ms packets and returns when a beep was found (-1: never).
func beepAt(pt uint8, pcm []int16) time.Duration {
	var d media.BeepDetector
	audio := payloadOf(pt, pcm)
	for i := 0; i+160 <= len(audio); i += 160 {
		if d.FeedPayload(pt, audio[i:i+160]) {
			return time.Duration(i/8+20) * time.Millisecond
		}
	}
	return -1
}

func TestBeepDetector(t *testing.T) {
	silence := func(int) float64 { return 0 }
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		pcm  []int16
		beep bool
	}{
		{"1000 Hz beep, 500 ms", synth(500*time.Millisecond, sine(1000, 8000)), true},
		{"1400 Hz beep, 300 ms", synth(300*time.Millisecond, sine(1400, 8000)), true},
		{"440 Hz quiet beep (-25 dBm0), 400 ms", synth(400*time.Millisecond, sine(440, 1900)), true},
		{"2112 Hz off-bin beep", synth(400*time.Millisecond, sine(2112, 8000)), true},
		{"beep after silence", append(synth(time.Second, silence), synth(400*time.Millisecond, sine(1000, 8000))...), true},
		{"100 ms tone: too short", synth(100*time.Millisecond, sine(1000, 8000)), false},
		{"too quiet (-45 dBm0)", synth(time.Second, sine(1000, 200)), false},
		{"silence", synth(2*time.Second, silence), false},
		{"white noise", synth(2*time.Second, func(int) float64 { return rng.NormFloat64() * 4000 }), false},
		{"DTMF 5 (770+1336 Hz)", synth(time.Second, func(n int) float64 { return sine(770, 6000)(n) + sine(1336, 6000)(n) }), false},
		{"a sweep (siren)", synth(2*time.Second, func(n int) float64 {
			x := float64(n) / 8000
			return 8000 * math.Sin(2*math.Pi*(600*x+400*x*x))
		}), false},
	} {
		for _, pt := range []uint8{0, 8} {
			at := beepAt(pt, tc.pcm)
			if (at >= 0) != tc.beep {
				t.Errorf("%s (payload type %d): beep at %v, want beep %v", tc.name, pt, at, tc.beep)
			}
		}
	}
}

// TestBeepTalkOff: no built-in prompt (espeak-ng speech, en and es) is a beep, in PCMU and
// PCMA. (Hold music is synthesised tones and is not checked: a callee does not play it.)
func TestBeepTalkOff(t *testing.T) {
	cat, err := prompts.LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	var dur time.Duration
	for _, lang := range cat.Languages() {
		for _, name := range cat.Names(lang) {
			p, _ := cat.Get(lang, name)
			for _, pt := range []uint8{0, 8} {
				var d media.BeepDetector
				audio := p.Payload(pt)
				for i := 0; i+160 <= len(audio); i += 160 {
					if d.FeedPayload(pt, audio[i:i+160]) {
						t.Errorf("%s/%s (payload type %d): a beep at %v", lang, name, pt, time.Duration(i/8)*time.Millisecond)
						break
					}
				}
				dur += p.Duration()
			}
		}
	}
	t.Logf("speech: %v of audio checked", dur.Round(time.Second))
}

func BenchmarkBeepDetector(b *testing.B) {
	audio := payloadOf(0, synth(time.Second, func(n int) float64 { return sine(300, 3000)(n) + sine(2300, 2000)(n) }))
	var d media.BeepDetector
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		off := (i % 50) * 160
		d.FeedPayload(0, audio[off:off+160])
	}
}
