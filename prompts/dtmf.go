package prompts

import (
	"fmt"
	"math"

	"github.com/hotline-project/hotline/media/g711"
)

// DTMF tone timing: each key sounds this long, with this much silence after it, and a
// comma pauses for dtmfPause (what interpreter services' menus expect between fields).
const (
	dtmfOn    = 100 // ms
	dtmfOff   = 100 // ms
	dtmfPause = 1000
	dtmfLevel = 0.3 * 32767 / 2 // each of the two tones; -13 dBFS together, within Q.24
)

// dtmfFreqs are the low and high frequencies of each key (ITU-T Q.23).
var dtmfFreqs = map[rune][2]float64{
	'1': {697, 1209}, '2': {697, 1336}, '3': {697, 1477}, 'A': {697, 1633},
	'4': {770, 1209}, '5': {770, 1336}, '6': {770, 1477}, 'B': {770, 1633},
	'7': {852, 1209}, '8': {852, 1336}, '9': {852, 1477}, 'C': {852, 1633},
	'*': {941, 1209}, '0': {941, 1336}, '#': {941, 1477}, 'D': {941, 1633},
}

// DTMF returns the in-band DTMF tones of keys (0-9 * # A-D, and "," for a one-second
// pause) as a prompt, such as the access code sent to an interpreter service once its
// line answers. Tones go in the audio, so they reach an answering machine or menu
// whatever the far end negotiated.
func DTMF(keys string) (*Prompt, error) {
	var s []int16
	for _, k := range keys {
		if k == ',' {
			s = append(s, make([]int16, sampleRate*dtmfPause/1000)...)
			continue
		}
		f, ok := dtmfFreqs[k]
		if !ok {
			return nil, fmt.Errorf("dtmf: %q is not a key", k)
		}
		n := sampleRate * dtmfOn / 1000
		for i := range n {
			t := float64(i) / sampleRate
			s = append(s, int16(dtmfLevel*(math.Sin(2*math.Pi*f[0]*t)+math.Sin(2*math.Pi*f[1]*t))))
		}
		s = append(s, make([]int16, sampleRate*dtmfOff/1000)...)
	}
	if len(s) == 0 {
		return nil, fmt.Errorf("dtmf: no keys")
	}
	p := &Prompt{Name: "dtmf", Samples: s, PCMU: g711.AppendUlaw(nil, s), PCMA: g711.AppendAlaw(nil, s)}
	padFrames(p)
	return p, nil
}
