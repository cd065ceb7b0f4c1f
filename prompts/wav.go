package prompts

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/hotline-project/hotline/media/g711"
)

// WAVE format tags (the wFormatTag of the fmt chunk, from mmreg.h).
const (
	wavePCM        = 0x0001
	waveFloat      = 0x0003
	waveALaw       = 0x0006
	waveMuLaw      = 0x0007
	waveExtensible = 0xFFFE
)

// ksDataFormatSuffix is the last 14 bytes shared by the KSDATAFORMAT_SUBTYPE
// GUIDs of WAVE_FORMAT_EXTENSIBLE; the first two bytes are the format tag
// the sub-format stands for.
var ksDataFormatSuffix = []byte{
	0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
}

// audio is the content of a WAV file the decoder accepted.
type audio struct {
	format  uint16  // wavePCM, waveALaw or waveMuLaw, after resolving extensible
	rate    uint32  // the file's sample rate; samples are at 8 kHz whatever it is
	samples []int16 // the recording as 8 kHz mono linear PCM
	coded   []byte  // for waveALaw and waveMuLaw, the data chunk as stored
}

// wavFormat is the part of a fmt chunk the decoder uses.
type wavFormat struct {
	tag        uint16 // format tag; the sub-format's tag for extensible
	channels   uint16
	rate       uint32
	blockAlign uint16
	bits       uint16
}

// decodeWAV parses a RIFF/WAVE file and returns its audio. It accepts mono
// 16-bit PCM, μ-law or A-law at 8 kHz, plain or as WAVE_FORMAT_EXTENSIBLE,
// and mono 16-bit PCM at 16, 44.1 or 48 kHz, which it resamples to 8 kHz
// (see resample.go). Anything else is an error that says what is wrong, for
// the loader to prefix with the file's path.
//
// Stereo is refused rather than mixed down: which channel holds the voice,
// or whether the two cancel, is the recording engineer's call, and the
// error says to export mono.
//
// The parser walks the RIFF chunks in order, skipping any it does not use
// (LIST, fact, cue and so on) and honouring the pad byte after odd-sized
// chunks; the pad byte after the last chunk may be missing, as some writers
// omit it, and the fmt chunk may follow the data chunk. Bytes past the end
// the RIFF header gives are ignored. The returned audio never aliases data.
func decodeWAV(data []byte) (*audio, error) {
	if len(data) < 12 {
		return nil, fmt.Errorf("not a wav file: %d bytes is too short for a riff header", len(data))
	}
	if id := string(data[0:4]); id != "RIFF" {
		return nil, fmt.Errorf("not a wav file: starts with %q, want \"RIFF\"", id)
	}
	if kind := string(data[8:12]); kind != "WAVE" {
		return nil, fmt.Errorf("not a wav file: riff type %q, want \"WAVE\"", kind)
	}
	riffSize := uint64(binary.LittleEndian.Uint32(data[4:8]))
	if riffSize+8 > uint64(len(data)) {
		return nil, fmt.Errorf("truncated file: riff header says %d bytes, file has %d", riffSize+8, len(data))
	}
	if riffSize < 4 {
		return nil, fmt.Errorf("invalid riff size %d", riffSize)
	}

	var (
		format    *wavFormat
		samples   []byte
		sawData   bool
		body      = data[12 : 8+riffSize]
		bodyStart = 12 // offset of body in data, for error messages
	)
	for off := 0; off < len(body); {
		if len(body)-off < 8 {
			return nil, fmt.Errorf("truncated chunk header at offset %d", bodyStart+off)
		}
		id := string(body[off : off+4])
		size := uint64(binary.LittleEndian.Uint32(body[off+4 : off+8]))
		start := off + 8
		if size > uint64(len(body)-start) {
			return nil, fmt.Errorf("truncated %q chunk: header says %d bytes, file has %d", id, size, len(body)-start)
		}
		chunk := body[start : start+int(size)]
		switch id {
		case "fmt ":
			if format != nil {
				return nil, errors.New("more than one fmt chunk")
			}
			f, err := parseFormat(chunk)
			if err != nil {
				return nil, err
			}
			format = f
		case "data":
			if sawData {
				return nil, errors.New("more than one data chunk")
			}
			sawData = true
			samples = chunk
		}
		off = start + int(size) + int(size&1)
	}
	if format == nil {
		return nil, errors.New("no fmt chunk")
	}
	if !sawData {
		return nil, errors.New("no data chunk")
	}
	if err := format.check(); err != nil {
		return nil, err
	}
	if len(samples) == 0 {
		return nil, errors.New("empty data chunk")
	}
	if len(samples)%int(format.blockAlign) != 0 {
		return nil, fmt.Errorf("data chunk of %d bytes is not a whole number of %d-byte samples", len(samples), format.blockAlign)
	}

	a := &audio{format: format.tag, rate: format.rate}
	switch format.tag {
	case wavePCM:
		a.samples = make([]int16, len(samples)/2)
		for i := range a.samples {
			a.samples[i] = int16(binary.LittleEndian.Uint16(samples[2*i:]))
		}
		if format.rate != sampleRate {
			a.samples = filters[format.rate]().resample(a.samples)
		}
	case waveMuLaw:
		a.coded = bytes.Clone(samples)
		a.samples = make([]int16, len(samples))
		for i, b := range samples {
			a.samples[i] = g711.DecodeUlaw(b)
		}
	case waveALaw:
		a.coded = bytes.Clone(samples)
		a.samples = make([]int16, len(samples))
		for i, b := range samples {
			a.samples[i] = g711.DecodeAlaw(b)
		}
	}
	return a, nil
}

// parseFormat reads a fmt chunk, resolving WAVE_FORMAT_EXTENSIBLE to the
// format tag of its sub-format. It checks only the chunk's structure;
// check says whether the format is one we accept.
func parseFormat(c []byte) (*wavFormat, error) {
	if len(c) < 16 {
		return nil, fmt.Errorf("fmt chunk too short: %d bytes, want at least 16", len(c))
	}
	f := &wavFormat{
		tag:        binary.LittleEndian.Uint16(c[0:2]),
		channels:   binary.LittleEndian.Uint16(c[2:4]),
		rate:       binary.LittleEndian.Uint32(c[4:8]),
		blockAlign: binary.LittleEndian.Uint16(c[12:14]),
		bits:       binary.LittleEndian.Uint16(c[14:16]),
	}
	if f.tag != waveExtensible {
		return f, nil
	}
	// WAVEFORMATEXTENSIBLE: cbSize, wValidBitsPerSample, dwChannelMask and
	// the 16-byte SubFormat GUID follow the 16-byte WAVEFORMAT.
	if len(c) < 40 {
		return nil, fmt.Errorf("extensible fmt chunk too short: %d bytes, want at least 40", len(c))
	}
	if cb := binary.LittleEndian.Uint16(c[16:18]); cb < 22 {
		return nil, fmt.Errorf("extensible fmt chunk: extension size %d, want at least 22", cb)
	}
	guid := c[24:40]
	if !bytes.Equal(guid[2:], ksDataFormatSuffix) {
		return nil, fmt.Errorf("unsupported extensible sub-format %x", guid)
	}
	f.tag = binary.LittleEndian.Uint16(guid[0:2])
	return f, nil
}

// check reports whether f is a format we can load: one we can send
// without conversion, or 16-bit PCM at a rate we resample from.
func (f *wavFormat) check() error {
	const want = "want 16-bit PCM, μ-law or A-law"
	var wantBits uint16
	switch f.tag {
	case wavePCM:
		wantBits = 16
		if f.bits != wantBits {
			return fmt.Errorf("unsupported sample size %d bits (%s)", f.bits, want)
		}
	case waveMuLaw, waveALaw:
		wantBits = 8
		if f.bits != wantBits {
			law := "μ-law"
			if f.tag == waveALaw {
				law = "A-law"
			}
			return fmt.Errorf("unsupported %s sample size %d bits (want 8)", law, f.bits)
		}
	case waveFloat:
		return fmt.Errorf("unsupported format: %d-bit float (%s)", f.bits, want)
	default:
		return fmt.Errorf("unsupported format tag 0x%04x (%s)", f.tag, want)
	}
	if f.channels != 1 {
		return fmt.Errorf("unsupported channel count %d (want mono)", f.channels)
	}
	if f.rate != sampleRate {
		switch {
		case f.tag == wavePCM && slices.Contains(resampleRates, f.rate):
			// Resampled after decoding.
		case f.tag == wavePCM:
			return fmt.Errorf("unsupported sample rate %d Hz (want 8000, 16000, 44100 or 48000)", f.rate)
		default:
			return fmt.Errorf("unsupported sample rate %d Hz for G.711 (want 8000)", f.rate)
		}
	}
	if f.blockAlign != wantBits/8 {
		return fmt.Errorf("invalid fmt chunk: block align %d for %d-bit mono, want %d", f.blockAlign, f.bits, wantBits/8)
	}
	return nil
}
