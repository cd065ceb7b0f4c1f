package media

import "math"

// BeepDetector finds an answering machine's beep in a callee's audio: one steady pure tone
// (beepMinHz to beepMaxHz) lasting beepMinFrames 20 ms frames. A callback's gate hangs up
// on it, so that nothing of the hotline is ever left as a message (issue 16, part 3).
//
// Each 160-sample frame is run through a bank of Goertzel filters beepStepHz apart; a frame
// is tonal when its strongest filter holds at least beepPurity of the frame's energy (a
// pure sine on a bin holds about all of it; speech, noise and dual tones such as DTMF hold
// far less) at beepMinLevel or louder. A beep is beepMinFrames tonal frames in a row whose
// strongest filter stays within one step of the first's (a siren's sweep is no beep). It costs about 80 filters × 160 samples per frame,
// run only while a gate plays, never on ordinary calls.
type BeepDetector struct {
	run  int // tonal frames in a row
	bin  int // the strongest filter of the run's first frame
	buf  [160]float64
	n    int
	seen bool
}

const (
	beepMinHz     = 400
	beepMaxHz     = 2400
	beepStepHz    = 25
	beepPurity    = 0.6
	beepMinLevel  = -30 // dBm0
	beepMinFrames = 8   // 160 ms: answering machines' beeps last 0.2–1 s
)

var (
	beepCoeffs = func() []float64 {
		var c []float64
		for f := float64(beepMinHz); f <= beepMaxHz; f += beepStepHz {
			c = append(c, 2*math.Cos(2*math.Pi*f/8000))
		}
		return c
	}()
	// beepMinEnergy is the frame energy (sum of squares) of a sine at beepMinLevel.
	beepMinEnergy = func() float64 {
		amp := 32767 * math.Pow(10, (beepMinLevel-inbandFullScaleDBm0)/20)
		return amp * amp / 2 * 160
	}()
)

// Feed runs 8 kHz linear samples through the detector and reports whether they complete
// a beep. After a beep it reports nothing more until Reset.
func (d *BeepDetector) Feed(samples []int16) bool {
	found := false
	for _, s := range samples {
		d.buf[d.n] = float64(s)
		if d.n++; d.n < len(d.buf) {
			continue
		}
		d.n = 0
		if d.frame() && !d.seen {
			d.seen, found = true, true
		}
	}
	return found
}

// FeedPayload decodes a G.711 payload (payload type 0 PCMU or 8 PCMA) and feeds it.
func (d *BeepDetector) FeedPayload(pt uint8, payload []byte) bool {
	var pcm [maxPacketSize]int16
	return d.Feed(decodeG711(pt, payload, pcm[:]))
}

// Reset forgets everything fed so far.
func (d *BeepDetector) Reset() { *d = BeepDetector{} }

// frame classifies the frame in buf; it reports whether a beep is complete.
func (d *BeepDetector) frame() bool {
	var energy float64
	for _, x := range d.buf {
		energy += x * x
	}
	bin, purity := -1, 0.0
	if energy >= beepMinEnergy {
		best := 0.0
		for i, c := range beepCoeffs {
			var s1, s2 float64
			for _, x := range d.buf {
				s1, s2 = x+c*s1-s2, s1
			}
			if p := s1*s1 + s2*s2 - c*s1*s2; p > best {
				best, bin = p, i
			}
		}
		// A sine of amplitude A on a bin: power (A·N/2)², energy A²·N/2.
		purity = 2 * best / (float64(len(d.buf)) * energy)
	}
	if bin < 0 || purity < beepPurity {
		d.run = 0
		return false
	}
	if d.run > 0 && (bin < d.bin-1 || bin > d.bin+1) {
		d.run = 0 // not steady: a sweep or a melody
	}
	if d.run == 0 {
		d.bin = bin
	}
	d.run++
	return d.run >= beepMinFrames
}
