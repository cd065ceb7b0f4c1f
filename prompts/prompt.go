package prompts

import (
	"time"

	"github.com/hotline-project/hotline/media/g711"
)

// FrameSize is the bytes of one 20 ms G.711 frame at 8 kHz.
const FrameSize = 160

// sampleRate is the only rate prompts are stored at: G.711's.
const sampleRate = 8000

// RTP static payload types (RFC 3551) that Payload understands.
const (
	payloadPCMU = 0
	payloadPCMA = 8
)

// Prompt is one recorded message in one language, decoded once.
//
// Prompts are shared by every call that plays them: treat all fields as
// read-only.
type Prompt struct {
	Name, Lang string
	Samples    []int16 // 8 kHz mono linear PCM, as loaded
	PCMU       []byte  // μ-law, padded with μ-law silence to a multiple of FrameSize
	PCMA       []byte  // A-law, padded likewise
}

// Payload returns the prompt encoded for RTP payload type pt: PCMU for 0,
// PCMA for 8, and nil for any other type. The result is a whole number of
// FrameSize frames; slice it, do not modify it.
func (p *Prompt) Payload(pt uint8) []byte {
	switch pt {
	case payloadPCMU:
		return p.PCMU
	case payloadPCMA:
		return p.PCMA
	default:
		return nil
	}
}

// Duration returns how long the recording lasts, from its samples. Played
// out as frames it takes Duration rounded up to the next 20 ms.
func (p *Prompt) Duration() time.Duration {
	return time.Duration(len(p.Samples)) * time.Second / sampleRate
}

// newPrompt encodes decoded audio for both G.711 laws. A recording that is
// already μ-law or A-law keeps its own bytes for that law and is transcoded
// with the G.711 tables for the other, so it is not quantised twice.
func newPrompt(lang, name string, a *audio) *Prompt {
	n := len(a.samples)
	padded := (n + FrameSize - 1) / FrameSize * FrameSize
	p := &Prompt{
		Name:    name,
		Lang:    lang,
		Samples: a.samples,
		PCMU:    make([]byte, n, padded),
		PCMA:    make([]byte, n, padded),
	}
	switch a.format {
	case waveMuLaw:
		copy(p.PCMU, a.coded)
		for i, b := range a.coded {
			p.PCMA[i] = g711.UlawToAlaw(b)
		}
	case waveALaw:
		copy(p.PCMA, a.coded)
		for i, b := range a.coded {
			p.PCMU[i] = g711.AlawToUlaw(b)
		}
	default:
		p.PCMU = g711.AppendUlaw(p.PCMU[:0], a.samples)
		p.PCMA = g711.AppendAlaw(p.PCMA[:0], a.samples)
	}
	padFrames(p)
	return p
}

// padFrames pads p's payloads with silence to a whole number of frames.
func padFrames(p *Prompt) {
	for len(p.PCMU)%FrameSize != 0 {
		p.PCMU = append(p.PCMU, g711.SilenceUlaw)
	}
	for len(p.PCMA)%FrameSize != 0 {
		p.PCMA = append(p.PCMA, g711.SilenceAlaw)
	}
}
