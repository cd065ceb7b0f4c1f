package prompts

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hotline-project/hotline/media/g711"
)

// wavSpec describes a WAV file for buildWAV. The zero value of each field
// is filled in by the constructors, not by buildWAV, so a test can set any
// field to a bad value.
type wavSpec struct {
	tag      uint16 // fmt format tag
	sub      uint16 // sub-format tag when tag is waveExtensible
	channels uint16
	rate     uint32
	bits     uint16
	align    uint16
	fmtExtra []byte   // bytes appended to the 16-byte fmt body (non-extensible)
	before   [][]byte // chunks before fmt
	between  [][]byte // chunks between fmt and data
	after    [][]byte // chunks after data
	data     []byte
	noFmt    bool
	noData   bool
}

// pcmSpec is an 8 kHz mono 16-bit PCM file holding samples.
func pcmSpec(samples ...int16) wavSpec {
	return wavSpec{tag: wavePCM, channels: 1, rate: 8000, bits: 16, align: 2, data: pcm16(samples...)}
}

// g711Spec is an 8 kHz mono μ-law (waveMuLaw) or A-law (waveALaw) file.
func g711Spec(tag uint16, coded ...byte) wavSpec {
	return wavSpec{tag: tag, channels: 1, rate: 8000, bits: 8, align: 1, data: coded}
}

// extensible turns s into its WAVE_FORMAT_EXTENSIBLE equivalent.
func extensible(s wavSpec) wavSpec {
	s.sub, s.tag = s.tag, waveExtensible
	return s
}

func pcm16(samples ...int16) []byte {
	b := make([]byte, 2*len(samples))
	for i, s := range samples {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(s))
	}
	return b
}

func le16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// chunk builds one RIFF chunk, with the pad byte an odd size needs.
func chunk(id string, body []byte) []byte {
	b := append([]byte(id), le32(uint32(len(body)))...)
	b = append(b, body...)
	if len(body)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

func fmtBody(s wavSpec) []byte {
	b := slices.Concat(le16(s.tag), le16(s.channels), le32(s.rate),
		le32(s.rate*uint32(s.align)), le16(s.align), le16(s.bits))
	if s.tag != waveExtensible {
		return append(b, s.fmtExtra...)
	}
	b = slices.Concat(b, le16(22), le16(s.bits), le32(0x4), le16(s.sub), ksDataFormatSuffix)
	return b
}

// buildWAV writes s as a RIFF/WAVE file.
func buildWAV(s wavSpec) []byte {
	body := []byte("WAVE")
	body = append(body, slices.Concat(s.before...)...)
	if !s.noFmt {
		body = append(body, chunk("fmt ", fmtBody(s))...)
	}
	body = append(body, slices.Concat(s.between...)...)
	if !s.noData {
		body = append(body, chunk("data", s.data)...)
	}
	body = append(body, slices.Concat(s.after...)...)
	return slices.Concat([]byte("RIFF"), le32(uint32(len(body))), body)
}

// setRIFFSize overwrites the RIFF size field of a built file.
func setRIFFSize(b []byte, size uint32) []byte {
	b = bytes.Clone(b)
	binary.LittleEndian.PutUint32(b[4:8], size)
	return b
}

func TestDecodeWAV(t *testing.T) {
	pcm := []int16{0, 1, -1, 32767, -32768, 1234, -4321}
	// A file whose last chunk has an odd size and no pad byte.
	noPad := buildWAV(func() wavSpec {
		s := pcmSpec(pcm...)
		s.after = [][]byte{chunk("note", []byte("abc"))}
		return s
	}())
	noPad = setRIFFSize(noPad[:len(noPad)-1], uint32(len(noPad)-1-8))
	// A file with bytes after the end the RIFF header gives.
	trailing := append(buildWAV(pcmSpec(pcm...)), "trailing junk"...)

	tests := []struct {
		name   string
		in     []byte
		format uint16
		want   []int16
		coded  []byte
	}{
		{"pcm16", buildWAV(pcmSpec(pcm...)), wavePCM, pcm, nil},
		{
			"unknown chunks with odd sizes",
			buildWAV(func() wavSpec {
				s := pcmSpec(pcm...)
				s.before = [][]byte{chunk("LIST", []byte("INFOx"))}
				s.between = [][]byte{chunk("junk", []byte{1, 2, 3}), chunk("fact", le32(7))}
				s.after = [][]byte{chunk("LIST", []byte("INFOISFT\x05\x00\x00\x00sox!\x00"))}
				return s
			}()),
			wavePCM, pcm, nil,
		},
		{"missing final pad byte", noPad, wavePCM, pcm, nil},
		{"bytes after riff end", trailing, wavePCM, pcm, nil},
		{
			"data before fmt",
			func() []byte {
				s := pcmSpec(pcm...)
				s.noData = true
				s.before = [][]byte{chunk("data", s.data)}
				return buildWAV(s)
			}(),
			wavePCM, pcm, nil,
		},
		{"fmt with cbSize", buildWAV(func() wavSpec { s := pcmSpec(pcm...); s.fmtExtra = le16(0); return s }()), wavePCM, pcm, nil},
		{
			"ulaw",
			buildWAV(g711Spec(waveMuLaw, 0xFF, 0x00, 0x80, 0x7F, 0xFE)),
			waveMuLaw, []int16{0, -32124, 32124, 0, 8}, []byte{0xFF, 0x00, 0x80, 0x7F, 0xFE},
		},
		{
			"alaw",
			buildWAV(g711Spec(waveALaw, 0xD5, 0x55, 0xAA)),
			waveALaw, []int16{8, -8, 32256}, []byte{0xD5, 0x55, 0xAA},
		},
		{"extensible pcm16", buildWAV(extensible(pcmSpec(pcm...))), wavePCM, pcm, nil},
		{"pcm16 at 16 kHz", buildWAV(func() wavSpec { s := pcmSpec(pcm...); s.rate = 16000; return s }()), wavePCM, filters[16000]().resample(pcm), nil},
		{
			"extensible pcm16 at 48 kHz",
			buildWAV(extensible(func() wavSpec { s := pcmSpec(pcm...); s.rate = 48000; return s }())),
			wavePCM, filters[48000]().resample(pcm), nil,
		},
		{
			"extensible ulaw",
			buildWAV(extensible(g711Spec(waveMuLaw, 0xFF, 0x00))),
			waveMuLaw, []int16{0, -32124}, []byte{0xFF, 0x00},
		},
		{
			"extensible alaw",
			buildWAV(extensible(g711Spec(waveALaw, 0xD5, 0x2A))),
			waveALaw, []int16{8, -32256}, []byte{0xD5, 0x2A},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := decodeWAV(tt.in)
			if err != nil {
				t.Fatalf("decodeWAV: %v", err)
			}
			if a.format != tt.format {
				t.Errorf("format = %#x, want %#x", a.format, tt.format)
			}
			if !slices.Equal(a.samples, tt.want) {
				t.Errorf("samples = %v, want %v", a.samples, tt.want)
			}
			if !bytes.Equal(a.coded, tt.coded) {
				t.Errorf("coded = % x, want % x", a.coded, tt.coded)
			}
		})
	}
}

func TestDecodeWAVErrors(t *testing.T) {
	good := buildWAV(pcmSpec(1, 2, 3, 4))
	with := func(f func(*wavSpec)) []byte {
		s := pcmSpec(1, 2, 3, 4)
		f(&s)
		return buildWAV(s)
	}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty file", nil, "not a wav file: 0 bytes is too short for a riff header"},
		{"short file", []byte("RIFF\x04\x00\x00\x00WAV"), "not a wav file: 11 bytes is too short for a riff header"},
		{"big-endian riff", append([]byte("RIFX"), good[4:]...), `not a wav file: starts with "RIFX", want "RIFF"`},
		{"avi", slices.Concat(good[:8], []byte("AVI "), good[12:]), `not a wav file: riff type "AVI ", want "WAVE"`},
		{"truncated file", good[:len(good)-3], "truncated file: riff header says 52 bytes, file has 49"},
		{"riff size too small", setRIFFSize(good, 2), "invalid riff size 2"},
		{"no chunks", setRIFFSize(good, 4), "no fmt chunk"},
		{
			"truncated chunk header",
			setRIFFSize(append(bytes.Clone(good), "LIS"...), uint32(len(good)+3-8)),
			"truncated chunk header at offset 52",
		},
		{
			"truncated data",
			func() []byte {
				b := bytes.Clone(good)
				binary.LittleEndian.PutUint32(b[40:44], 100) // the data chunk's size
				return b
			}(),
			`truncated "data" chunk: header says 100 bytes, file has 8`,
		},
		{"no fmt", with(func(s *wavSpec) { s.noFmt = true }), "no fmt chunk"},
		{"no data", with(func(s *wavSpec) { s.noData = true }), "no data chunk"},
		{"two fmt", with(func(s *wavSpec) { s.before = [][]byte{chunk("fmt ", fmtBody(*s))} }), "more than one fmt chunk"},
		{"two data", with(func(s *wavSpec) { s.after = [][]byte{chunk("data", s.data)} }), "more than one data chunk"},
		{
			"fmt too short",
			with(func(s *wavSpec) { s.noFmt = true; s.before = [][]byte{chunk("fmt ", fmtBody(*s)[:14])} }),
			"fmt chunk too short: 14 bytes, want at least 16",
		},
		{
			"extensible fmt too short",
			with(func(s *wavSpec) {
				s.tag, s.noFmt = waveExtensible, true
				s.before = [][]byte{chunk("fmt ", fmtBody(*s)[:24])}
			}),
			"extensible fmt chunk too short: 24 bytes, want at least 40",
		},
		{
			"extensible cbSize",
			with(func(s *wavSpec) {
				*s = extensible(*s)
				s.noFmt = true
				b := fmtBody(*s)
				binary.LittleEndian.PutUint16(b[16:18], 0)
				s.before = [][]byte{chunk("fmt ", b)}
			}),
			"extensible fmt chunk: extension size 0, want at least 22",
		},
		{
			"extensible unknown guid",
			with(func(s *wavSpec) {
				*s = extensible(*s)
				s.noFmt = true
				b := fmtBody(*s)
				b[39] = 0
				s.before = [][]byte{chunk("fmt ", b)}
			}),
			"unsupported extensible sub-format 0100000000001000800000aa00389b00",
		},
		{"stereo", with(func(s *wavSpec) { s.channels, s.align = 2, 4 }), "unsupported channel count 2 (want mono)"},
		{"22.05 kHz", with(func(s *wavSpec) { s.rate = 22050 }), "unsupported sample rate 22050 Hz (want 8000, 16000, 44100 or 48000)"},
		{"16 kHz ulaw", with(func(s *wavSpec) { s.tag, s.bits, s.align, s.rate = waveMuLaw, 8, 1, 16000 }), "unsupported sample rate 16000 Hz for G.711 (want 8000)"},
		{"48 kHz alaw", with(func(s *wavSpec) { s.tag, s.bits, s.align, s.rate = waveALaw, 8, 1, 48000 }), "unsupported sample rate 48000 Hz for G.711 (want 8000)"},
		{"48 kHz stereo", with(func(s *wavSpec) { s.channels, s.align, s.rate = 2, 4, 48000 }), "unsupported channel count 2 (want mono)"},
		{"8-bit pcm", with(func(s *wavSpec) { s.bits, s.align = 8, 1 }), "unsupported sample size 8 bits (want 16-bit PCM, μ-law or A-law)"},
		{"float", with(func(s *wavSpec) { s.tag, s.bits, s.align = waveFloat, 32, 4 }), "unsupported format: 32-bit float (want 16-bit PCM, μ-law or A-law)"},
		{"mp3", with(func(s *wavSpec) { s.tag = 0x55 }), "unsupported format tag 0x0055 (want 16-bit PCM, μ-law or A-law)"},
		{"extensible float", with(func(s *wavSpec) { s.tag, s.bits, s.align = waveFloat, 32, 4; *s = extensible(*s) }), "unsupported format: 32-bit float (want 16-bit PCM, μ-law or A-law)"},
		{"16-bit ulaw", with(func(s *wavSpec) { s.tag = waveMuLaw }), "unsupported μ-law sample size 16 bits (want 8)"},
		{"block align", with(func(s *wavSpec) { s.align = 4 }), "invalid fmt chunk: block align 4 for 16-bit mono, want 2"},
		{"empty data", with(func(s *wavSpec) { s.data = nil }), "empty data chunk"},
		{"odd pcm data", with(func(s *wavSpec) { s.data = []byte{1, 2, 3} }), "data chunk of 3 bytes is not a whole number of 2-byte samples"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := decodeWAV(tt.in)
			if err == nil {
				t.Fatalf("decodeWAV = %d samples, want error %q", len(a.samples), tt.want)
			}
			if a != nil {
				t.Errorf("decodeWAV returned audio and error %v", err)
			}
			if err.Error() != tt.want {
				t.Errorf("error = %q, want %q", err, tt.want)
			}
		})
	}
}

// TestDecodeWAVTestdata runs the decoder over files written by sox (see
// testdata/README.md), so the headers are another writer's, not ours.
func TestDecodeWAVTestdata(t *testing.T) {
	bad := []struct {
		file string
		want string
	}{
		{"stereo.wav", "unsupported channel count 2 (want mono)"},
		{"rate22050.wav", "unsupported sample rate 22050 Hz (want 8000, 16000, 44100 or 48000)"},
		{"pcm8.wav", "unsupported sample size 8 bits (want 16-bit PCM, μ-law or A-law)"},
		{"pcm24.wav", "unsupported sample size 24 bits (want 16-bit PCM, μ-law or A-law)"},
		{"float32.wav", "unsupported format: 32-bit float (want 16-bit PCM, μ-law or A-law)"},
		{"empty.wav", "empty data chunk"},
		{"truncated.wav", "truncated file: riff header says 34062 bytes, file has 2000"},
		{"nofmt.wav", "no fmt chunk"},
	}
	for _, tt := range bad {
		t.Run(tt.file, func(t *testing.T) {
			a, err := decodeWAV(readTestdata(t, tt.file))
			if err == nil || a != nil {
				t.Fatalf("decodeWAV = %v, %v; want error %q", a, err, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error = %q, want %q", err, tt.want)
			}
		})
	}
	good := []struct {
		file, raw string
		format    uint16
	}{
		{"ulaw.wav", "ulaw.s16", waveMuLaw},
		{"alaw.wav", "alaw.s16", waveALaw},
	}
	for _, tt := range good {
		t.Run(tt.file, func(t *testing.T) {
			a, err := decodeWAV(readTestdata(t, tt.file))
			if err != nil {
				t.Fatalf("decodeWAV: %v", err)
			}
			raw := readTestdata(t, tt.raw)
			want := make([]int16, len(raw)/2)
			for i := range want {
				want[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
			}
			if a.format != tt.format {
				t.Errorf("format = %#x, want %#x", a.format, tt.format)
			}
			if !slices.Equal(a.samples, want) {
				t.Errorf("samples differ from sox's decoding\n got %v\nwant %v", a.samples, want)
			}
			if len(a.coded) != len(want) {
				t.Errorf("coded has %d bytes, want %d", len(a.coded), len(want))
			}
		})
	}
}

// TestDecodeWAVResampledBySox compares our resampling of sox-written 1 kHz
// tones at 16, 44.1 and 48 kHz with sox's own (rate -v 8000; see
// testdata/README.md). The two filters differ in detail, so allow a few
// steps of 16-bit quantisation, away from the ends where each pads
// differently.
func TestDecodeWAVResampledBySox(t *testing.T) {
	for _, rate := range resampleRates {
		name := fmt.Sprintf("tone%d", rate)
		t.Run(name, func(t *testing.T) {
			a, err := decodeWAV(readTestdata(t, name+".wav"))
			if err != nil {
				t.Fatalf("decodeWAV: %v", err)
			}
			if a.rate != rate || a.format != wavePCM {
				t.Errorf("rate %d format %#x, want %d and pcm", a.rate, a.format, rate)
			}
			raw := readTestdata(t, name+".s16")
			if len(a.samples) != len(raw)/2 {
				t.Fatalf("%d samples, sox made %d", len(a.samples), len(raw)/2)
			}
			const edge = 40 // 5 ms
			for i := edge; i < len(a.samples)-edge; i++ {
				want := int(int16(binary.LittleEndian.Uint16(raw[2*i:])))
				if d := int(a.samples[i]) - want; d < -8 || d > 8 {
					t.Fatalf("sample %d = %d, sox gives %d", i, a.samples[i], want)
				}
			}
		})
	}
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzDecodeWAV checks that the decoder never panics, returns audio or an
// error but not both, and that whatever it accepts survives being written
// out as 16-bit PCM and read again. It is seeded with default prompt
// files, the sox-written files in testdata (some at rates that are
// resampled) and a few built ones.
func FuzzDecodeWAV(f *testing.F) {
	// Two of the default files: the other hundred-odd take the same path
	// and would only slow the fuzzer's start.
	for _, p := range []string{"default/en/goodbye.wav", "default/es/num_and.wav"} {
		b, err := defaultFS.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "*.wav"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(buildWAV(extensible(g711Spec(waveMuLaw, 1, 2, 3))))
	f.Add(buildWAV(func() wavSpec {
		s := pcmSpec(1, -1)
		s.before = [][]byte{chunk("LIST", []byte("odd"))}
		return s
	}()))

	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := decodeWAV(data)
		if (a == nil) == (err == nil) {
			t.Fatalf("decodeWAV = %v, %v: want exactly one of audio and error", a, err)
		}
		if err != nil {
			return
		}
		if len(a.samples) == 0 {
			t.Fatal("accepted a file with no samples")
		}
		switch a.format {
		case wavePCM:
			if a.coded != nil {
				t.Fatal("pcm audio has coded bytes")
			}
		case waveMuLaw, waveALaw:
			decode := g711.DecodeUlaw
			if a.format == waveALaw {
				decode = g711.DecodeAlaw
			}
			if len(a.coded) != len(a.samples) {
				t.Fatalf("%d coded bytes for %d samples", len(a.coded), len(a.samples))
			}
			for i, b := range a.coded {
				if decode(b) != a.samples[i] {
					t.Fatalf("sample %d = %d, coded %#02x decodes to %d", i, a.samples[i], b, decode(b))
				}
			}
		default:
			t.Fatalf("accepted format %#x", a.format)
		}
		again, err := decodeWAV(buildWAV(pcmSpec(a.samples...)))
		if err != nil {
			t.Fatalf("re-decoding as pcm: %v", err)
		}
		if !slices.Equal(again.samples, a.samples) {
			t.Fatal("samples changed when written as pcm and read again")
		}
		p := newPrompt("xx", "fuzz", a)
		if len(p.PCMU)%FrameSize != 0 || len(p.PCMA) != len(p.PCMU) || len(p.PCMU) < len(a.samples) {
			t.Fatalf("payload lengths %d, %d for %d samples", len(p.PCMU), len(p.PCMA), len(a.samples))
		}
	})
}
