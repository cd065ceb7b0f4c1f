package media

import (
	"math"

	"github.com/hotline-project/hotline/media/g711"
)

// InbandMode says when a Leg detects key presses sent as tones in the audio.
type InbandMode uint8

// The in-band detection modes.
const (
	InbandOff    InbandMode = iota // never
	InbandAuto                     // on legs that negotiated no telephone-event
	InbandAlways                   // on every leg (with telephone-event too)
)

// In-band DTMF: key presses sent as tones in the audio, by carriers and gateways that
// negotiate no telephone-event (issue 16, part 4). InbandDetector finds them with the
// Goertzel algorithm, one filter per DTMF frequency, on blocks of inbandBlock samples
// (12.75 ms at 8 kHz, as in spandsp), and applies ITU-T Q.24's tests:
//
//   - timing: a digit is accepted once it fills two consecutive blocks (at least 25.5 ms
//     of tone; Q.24 lets receivers reject anything under 23 ms and requires accepting
//     40 ms), and a new key press needs a pause of at least two blocks in between
//     (a 40 ms interdigit pause always has one);
//   - twist: the high-group tone may be up to inbandNormalTwist (8 dB) weaker than the
//     low-group tone, or up to inbandReverseTwist (4 dB) stronger;
//   - level: each tone at least inbandMinLevel (-36 dBm0);
//   - purity, against talk-off by speech and music: the two tones together carry at
//     least inbandPurity of the block's energy, and each stands inbandPeak (8 dB) above
//     the other frequencies of its group.
//
// The README ("In-band DTMF") gives the talk-off figures against speech and the hold
// music, and the CPU cost per call.
type InbandDetector struct {
	buf     [inbandBlock]float64
	n       int
	last    rune // the previous block's digit, or 0
	current rune // the digit reported and still held, or 0
	quiet   int  // blocks without a digit since current was reported
}

const (
	inbandBlock        = 102
	inbandNormalTwist  = 8.0  // dB: high group weaker than low
	inbandReverseTwist = 4.0  // dB: high group stronger than low
	inbandMinLevel     = -36  // dBm0, each tone
	inbandPurity       = 0.70 // share of the block's energy in the two tones
	inbandPeak         = 8.0  // dB above the group's other frequencies
	// dBm0 of a full-scale 16-bit sine from G.711 (G.711's +3.17 dBm0 maximum).
	inbandFullScaleDBm0 = 3.17
)

var (
	inbandRows = [4]float64{697, 770, 852, 941}
	inbandCols = [4]float64{1209, 1336, 1477, 1633}
	inbandKeys = [4][4]rune{
		{'1', '2', '3', 'A'},
		{'4', '5', '6', 'B'},
		{'7', '8', '9', 'C'},
		{'*', '0', '#', 'D'},
	}
	inbandRowCoeff, inbandColCoeff = coeffs(inbandRows), coeffs(inbandCols)
	// inbandMinEnergy is the block energy (sum of squares, 16-bit samples) of a sine at
	// inbandMinLevel.
	inbandMinEnergy = func() float64 {
		amp := 32767 * math.Pow(10, (inbandMinLevel-inbandFullScaleDBm0)/20)
		return amp * amp / 2 * inbandBlock
	}()
	inbandNormalRatio  = math.Pow(10, inbandNormalTwist/10)
	inbandReverseRatio = math.Pow(10, inbandReverseTwist/10)
	inbandPeakRatio    = math.Pow(10, inbandPeak/10)
)

func coeffs(fs [4]float64) [4]float64 {
	var c [4]float64
	for i, f := range fs {
		c[i] = 2 * math.Cos(2*math.Pi*f/8000)
	}
	return c
}

// Feed runs 8 kHz linear samples through the detector and returns a key press that
// they complete ('0'-'9', '*', '#', 'A'-'D'); at most one per call (a 20 ms frame holds
// less than two blocks, so it cannot complete two).
func (d *InbandDetector) Feed(samples []int16) (rune, bool) {
	var out rune
	for _, s := range samples {
		d.buf[d.n] = float64(s)
		if d.n++; d.n < inbandBlock {
			continue
		}
		d.n = 0
		if k, ok := d.block(); ok {
			out = k
		}
	}
	return out, out != 0
}

// FeedPayload decodes a G.711 payload (payload type 0 PCMU or 8 PCMA) and feeds it.
func (d *InbandDetector) FeedPayload(pt uint8, payload []byte) (rune, bool) {
	var pcm [maxPacketSize]int16
	return d.Feed(decodeG711(pt, payload, pcm[:]))
}

// decodeG711 decodes a G.711 payload (payload type 8 PCMA, anything else PCMU) into pcm,
// as much as fits, and returns the samples written.
func decodeG711(pt uint8, payload []byte, pcm []int16) []int16 {
	n := min(len(payload), len(pcm))
	for i := range n {
		if pt == 8 {
			pcm[i] = g711.DecodeAlaw(payload[i])
		} else {
			pcm[i] = g711.DecodeUlaw(payload[i])
		}
	}
	return pcm[:n]
}

// Reset forgets everything fed so far.
func (d *InbandDetector) Reset() { *d = InbandDetector{} }

// block classifies the block in buf and applies the timing rules; it returns a digit
// when one is accepted now.
func (d *InbandDetector) block() (rune, bool) {
	k := d.classify()
	prev := d.last
	d.last = k
	switch {
	case k == 0 || k != prev:
		if d.current != 0 {
			if d.quiet++; d.quiet >= 2 {
				d.current, d.quiet = 0, 0
			}
		}
		return 0, false
	case k == d.current:
		d.quiet = 0
		return 0, false
	case d.current != 0:
		// Another digit with no pause: a change of tone within one press (talk-off) or a
		// sender that ignores Q.23's pause; accepted only after a pause.
		return 0, false
	}
	d.current, d.quiet = k, 0
	return k, true
}

// classify returns the digit the block holds by itself, or 0.
func (d *InbandDetector) classify() rune {
	var total float64
	for _, x := range d.buf {
		total += x * x
	}
	if total < 2*inbandMinEnergy {
		return 0
	}
	rows := goertzel4(&d.buf, &inbandRowCoeff)
	cols := goertzel4(&d.buf, &inbandColCoeff)
	r, rowE := peak(rows)
	c, colE := peak(cols)
	switch {
	case rowE < inbandMinEnergy || colE < inbandMinEnergy:
		return 0
	case colE*inbandNormalRatio < rowE || rowE*inbandReverseRatio < colE:
		return 0
	case rowE+colE < inbandPurity*total:
		return 0
	}
	for i := range 4 {
		if (i != r && rows[i]*inbandPeakRatio > rowE) || (i != c && cols[i]*inbandPeakRatio > colE) {
			return 0
		}
	}
	return inbandKeys[r][c]
}

// goertzel4 returns the energy of the block at four frequencies: 2|X(f)|²/N, which for a
// sine at f is its energy in the block (the sum of its squares).
func goertzel4(x *[inbandBlock]float64, coeff *[4]float64) [4]float64 {
	var s1, s2 [4]float64
	c0, c1, c2, c3 := coeff[0], coeff[1], coeff[2], coeff[3]
	for _, v := range x {
		s1[0], s2[0] = v+c0*s1[0]-s2[0], s1[0]
		s1[1], s2[1] = v+c1*s1[1]-s2[1], s1[1]
		s1[2], s2[2] = v+c2*s1[2]-s2[2], s1[2]
		s1[3], s2[3] = v+c3*s1[3]-s2[3], s1[3]
	}
	var e [4]float64
	for i := range 4 {
		e[i] = 2 * (s1[i]*s1[i] + s2[i]*s2[i] - coeff[i]*s1[i]*s2[i]) / inbandBlock
	}
	return e
}

func peak(e [4]float64) (int, float64) {
	best := 0
	for i := 1; i < 4; i++ {
		if e[i] > e[best] {
			best = i
		}
	}
	return best, e[best]
}
