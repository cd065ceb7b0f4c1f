package prompts

import (
	"math"
	"sync"

	"github.com/hotline-project/hotline/media/g711"
)

// Hold audio: a slow I-vi-IV-V progression in C major of soft sine-tone
// chords, each held for holdChord and cross-faded into the next, at about
// -20 dBFS peak. It is synthesised, so it carries no copyright, and built
// to loop without a seam: every frequency is a whole number of cycles per
// loop and every envelope is periodic, so sample N-1 flows into sample 0
// exactly as any sample into the next, and the loop is a whole number of
// 20 ms frames, so Play can repeat it back to back.
const (
	holdChord   = 8 * sampleRate                // samples per chord
	holdLen     = 4 * holdChord                 // samples per loop: 32 s, 1600 frames
	holdFade    = 2 * sampleRate                // cross-fade between chords, in samples
	holdPeakDBF = -20.0                         // peak level, dBFS
	holdName    = "hold"                        // Prompt.Name of the hold audio
	holdStep    = float64(sampleRate) / holdLen // frequency grid: whole cycles per loop
)

// holdChords are the notes of each chord, in Hz, lowest first: voiced
// between G3 and C5, where a telephone renders them, with nothing near
// the 1 kHz and higher range where speech gets its intelligibility, so
// announcements over or between it stay clear.
var holdChords = [4][4]float64{
	{261.63, 329.63, 392.00, 523.25}, // C:  C4 E4 G4 C5
	{220.00, 261.63, 329.63, 440.00}, // Am: A3 C4 E4 A4
	{174.61, 261.63, 349.23, 440.00}, // F:  F3 C4 F4 A4
	{196.00, 246.94, 293.66, 392.00}, // G:  G3 B3 D4 G4
}

// holdVoices weights the notes of a chord: the root fullest, the top
// softest.
var holdVoices = [4]float64{1, 0.7, 0.6, 0.45}

var hold = sync.OnceValue(func() *Prompt {
	p := &Prompt{Name: holdName, Samples: holdSamples()}
	p.PCMU = g711.AppendUlaw(make([]byte, 0, holdLen), p.Samples)
	p.PCMA = g711.AppendAlaw(make([]byte, 0, holdLen), p.Samples)
	return p
})

// Hold returns the hold audio, a calm generated loop of 32 seconds, built
// on first use and shared afterwards: treat it as read-only. Its payloads
// are a whole number of frames and loop seamlessly, so a caller on hold
// hears it repeated with Play, with announcements played between loops.
func Hold() *Prompt { return hold() }

// HoldAudio returns the hold audio encoded for RTP payload type pt: PCMU
// for 0, PCMA for 8, nil for any other type. It costs nothing after the
// first call; do not modify the result.
func HoldAudio(pt uint8) []byte { return Hold().Payload(pt) }

// holdSamples synthesises one loop of the hold audio. It is deterministic:
// the same samples on every call.
func holdSamples() []int16 {
	var freqs [4][4]float64
	for c, chord := range holdChords {
		for v, f := range chord {
			// Round to the loop's frequency grid (1/32 Hz, inaudible) so
			// that every tone is periodic over the loop.
			freqs[c][v] = math.Round(f/holdStep) * holdStep
		}
	}
	x := make([]float64, holdLen)
	peak := 0.0
	for n := range x {
		var v float64
		for c := range holdChords {
			w := chordWeight(n - c*holdChord)
			if w == 0 {
				continue
			}
			for i, f := range freqs[c] {
				v += w * holdVoices[i] * math.Sin(2*math.Pi*f*float64(n)/sampleRate)
			}
		}
		// A slow swell within each chord, softest at the changes.
		v *= 0.8 - 0.2*math.Cos(2*math.Pi*float64(n)/holdChord)
		x[n] = v
		peak = max(peak, math.Abs(v))
	}
	gain := math.Pow(10, holdPeakDBF/20) * math.MaxInt16 / peak
	out := make([]int16, holdLen)
	for n, v := range x {
		out[n] = int16(math.Round(v * gain))
	}
	return out
}

// chordWeight is the envelope of a chord that starts at sample 0 of its
// own time u (taken cyclically over the loop): a raised-cosine rise over
// holdFade centred on its start, full level, and a fall centred on its
// end, so that the fall of one chord and the rise of the next always sum
// to one.
func chordWeight(u int) float64 {
	// Wrap into [-holdLen/2, holdLen/2).
	u = ((u+holdLen/2)%holdLen+holdLen)%holdLen - holdLen/2
	half := holdFade / 2
	switch {
	case u < -half || u > holdChord+half:
		return 0
	case u < half:
		return 0.5 - 0.5*math.Cos(math.Pi*float64(u+half)/holdFade)
	case u <= holdChord-half:
		return 1
	default:
		return 0.5 + 0.5*math.Cos(math.Pi*float64(u-(holdChord-half))/holdFade)
	}
}
