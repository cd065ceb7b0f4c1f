package prompts

import (
	"bytes"
	"testing"
	"time"

	"github.com/hotline-project/hotline/media/g711"
)

func TestNewPromptPadding(t *testing.T) {
	tests := []struct {
		samples, wantLen int
	}{
		{1, 160},
		{159, 160},
		{160, 160},
		{161, 320},
		{8000, 8000},
	}
	for _, tt := range tests {
		samples := make([]int16, tt.samples)
		for i := range samples {
			samples[i] = 1000
		}
		p := newPrompt("en", "x", &audio{format: wavePCM, samples: samples})
		if len(p.PCMU) != tt.wantLen || len(p.PCMA) != tt.wantLen {
			t.Errorf("%d samples: payload lengths %d, %d, want %d", tt.samples, len(p.PCMU), len(p.PCMA), tt.wantLen)
			continue
		}
		pad := tt.wantLen - tt.samples
		if !bytes.Equal(p.PCMU[tt.samples:], bytes.Repeat([]byte{g711.SilenceUlaw}, pad)) {
			t.Errorf("%d samples: PCMU padding % x, want μ-law silence", tt.samples, p.PCMU[tt.samples:])
		}
		if !bytes.Equal(p.PCMA[tt.samples:], bytes.Repeat([]byte{g711.SilenceAlaw}, pad)) {
			t.Errorf("%d samples: PCMA padding % x, want A-law silence", tt.samples, p.PCMA[tt.samples:])
		}
		if p.PCMU[0] != g711.EncodeUlaw(1000) || p.PCMA[0] != g711.EncodeAlaw(1000) {
			t.Errorf("%d samples: first bytes %#02x, %#02x, want the encoding of 1000", tt.samples, p.PCMU[0], p.PCMA[0])
		}
	}
}

// TestNewPromptG711Source checks that a G.711 recording keeps its own bytes
// for its law and is transcoded by table for the other.
func TestNewPromptG711Source(t *testing.T) {
	coded := []byte{0x00, 0x7F, 0xFF, 0x80, 0x2A, 0x55}
	tests := []struct {
		name         string
		format       uint16
		decode       func(byte) int16
		wantU, wantA func(byte) byte
	}{
		{"ulaw", waveMuLaw, g711.DecodeUlaw, func(b byte) byte { return b }, g711.UlawToAlaw},
		{"alaw", waveALaw, g711.DecodeAlaw, g711.AlawToUlaw, func(b byte) byte { return b }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			samples := make([]int16, len(coded))
			for i, b := range coded {
				samples[i] = tt.decode(b)
			}
			p := newPrompt("en", "x", &audio{format: tt.format, samples: samples, coded: coded})
			for i, b := range coded {
				if p.PCMU[i] != tt.wantU(b) || p.PCMA[i] != tt.wantA(b) {
					t.Errorf("byte %d (%#02x): PCMU %#02x, PCMA %#02x; want %#02x, %#02x",
						i, b, p.PCMU[i], p.PCMA[i], tt.wantU(b), tt.wantA(b))
				}
			}
		})
	}
}

func TestPayload(t *testing.T) {
	p := newPrompt("en", "x", &audio{format: wavePCM, samples: []int16{1, 2, 3}})
	tests := []struct {
		pt   uint8
		want []byte
	}{
		{0, p.PCMU},
		{8, p.PCMA},
		{9, nil},   // G.722
		{18, nil},  // G.729
		{101, nil}, // a typical telephone-event type
	}
	for _, tt := range tests {
		got := p.Payload(tt.pt)
		if (got == nil) != (tt.want == nil) || !bytes.Equal(got, tt.want) {
			t.Errorf("Payload(%d) = % x, want % x", tt.pt, got, tt.want)
		}
	}
	if bytes.Equal(p.PCMU, p.PCMA) {
		t.Error("PCMU and PCMA are identical")
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		samples int
		want    time.Duration
	}{
		{1, 125 * time.Microsecond},
		{160, 20 * time.Millisecond},
		{8000, time.Second},
		{12345, 1543125 * time.Microsecond},
	}
	for _, tt := range tests {
		p := newPrompt("en", "x", &audio{format: wavePCM, samples: make([]int16, tt.samples)})
		if got := p.Duration(); got != tt.want {
			t.Errorf("%d samples: Duration() = %v, want %v", tt.samples, got, tt.want)
		}
	}
}
