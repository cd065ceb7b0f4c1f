package g711

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

func TestDecodeUlaw(t *testing.T) {
	tests := []struct {
		in   byte
		want int16
	}{
		{0xFF, 0},      // positive zero, the silence code
		{0x7F, 0},      // negative zero
		{0x00, -32124}, // most negative
		{0x80, 32124},  // most positive
		{0xFE, 8},
		{0x7E, -8},
		{0xF0, 120}, // top of segment 0
		{0xEF, 132}, // bottom of segment 1
		{0xDF, 396}, // bottom of segment 2
		{0xCE, 988},
	}
	for _, tt := range tests {
		if got := DecodeUlaw(tt.in); got != tt.want {
			t.Errorf("DecodeUlaw(%#02x) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestDecodeAlaw(t *testing.T) {
	tests := []struct {
		in   byte
		want int16
	}{
		{0xD5, 8}, // the silence code
		{0x55, -8},
		{0xAA, 32256}, // most positive
		{0x2A, -32256},
		{0xD4, 24},
		{0xC5, 264}, // bottom of segment 1
		{0xF5, 528}, // bottom of segment 2
		{0xFA, 1008},
	}
	for _, tt := range tests {
		if got := DecodeAlaw(tt.in); got != tt.want {
			t.Errorf("DecodeAlaw(%#02x) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestEncodeUlaw(t *testing.T) {
	tests := []struct {
		in   int16
		want byte
	}{
		{0, 0xFF},
		{3, 0xFF}, // below the 14-bit resolution
		{4, 0xFE},
		{8, 0xFE},
		// The reference shifts before taking the magnitude, so -1 becomes a
		// magnitude of 1 (the smallest negative code), not 0.
		{-1, 0x7E},
		{-4, 0x7E},
		{1000, 0xCE},
		{32124, 0x80},
		{32767, 0x80},  // clipped
		{-32768, 0x00}, // clipped
	}
	for _, tt := range tests {
		if got := EncodeUlaw(tt.in); got != tt.want {
			t.Errorf("EncodeUlaw(%d) = %#02x, want %#02x", tt.in, got, tt.want)
		}
	}
}

func TestEncodeAlaw(t *testing.T) {
	tests := []struct {
		in   int16
		want byte
	}{
		{0, 0xD5},
		{8, 0xD5},
		{16, 0xD4},
		{-1, 0x55},
		{1000, 0xFA},
		{32767, 0xAA},
		{-32768, 0x2A},
	}
	for _, tt := range tests {
		if got := EncodeAlaw(tt.in); got != tt.want {
			t.Errorf("EncodeAlaw(%d) = %#02x, want %#02x", tt.in, got, tt.want)
		}
	}
}

func TestSilence(t *testing.T) {
	if got := EncodeUlaw(0); got != SilenceUlaw {
		t.Errorf("EncodeUlaw(0) = %#02x, want SilenceUlaw %#02x", got, SilenceUlaw)
	}
	if got := EncodeAlaw(0); got != SilenceAlaw {
		t.Errorf("EncodeAlaw(0) = %#02x, want SilenceAlaw %#02x", got, SilenceAlaw)
	}
	if got := UlawToAlaw(SilenceUlaw); got != SilenceAlaw {
		t.Errorf("UlawToAlaw(SilenceUlaw) = %#02x, want %#02x", got, SilenceAlaw)
	}
	// A-law silence is +8, not 0, so the table maps it to μ-law +8.
	if got := AlawToUlaw(SilenceAlaw); got != 0xFE {
		t.Errorf("AlawToUlaw(SilenceAlaw) = %#02x, want 0xfe", got)
	}
}

// TestRoundTripAllCodes checks every code: decoding, re-encoding and decoding
// again gives the same value, and re-encoding gives the same code except for
// μ-law negative zero, which encodes back as positive zero.
func TestRoundTripAllCodes(t *testing.T) {
	for i := range 256 {
		b := byte(i)
		if d := DecodeUlaw(b); DecodeUlaw(EncodeUlaw(d)) != d {
			t.Errorf("μ-law %#02x: decode(encode(%d)) = %d", b, d, DecodeUlaw(EncodeUlaw(d)))
		}
		wantU := b
		if b == 0x7F {
			wantU = 0xFF
		}
		if got := EncodeUlaw(DecodeUlaw(b)); got != wantU {
			t.Errorf("EncodeUlaw(DecodeUlaw(%#02x)) = %#02x, want %#02x", b, got, wantU)
		}
		if d := DecodeAlaw(b); DecodeAlaw(EncodeAlaw(d)) != d {
			t.Errorf("A-law %#02x: decode(encode(%d)) = %d", b, d, DecodeAlaw(EncodeAlaw(d)))
		}
		if got := EncodeAlaw(DecodeAlaw(b)); got != b {
			t.Errorf("EncodeAlaw(DecodeAlaw(%#02x)) = %#02x, want %#02x", b, got, b)
		}
	}
}

// TestTablesMatchReference checks the lookup tables against the reference
// functions for every 16-bit input.
func TestTablesMatchReference(t *testing.T) {
	for i := range 1 << 16 {
		s := int16(uint16(i))
		if got, want := EncodeUlaw(s), ulawCompress(s); got != want {
			t.Fatalf("EncodeUlaw(%d) = %#02x, reference %#02x", s, got, want)
		}
		if got, want := EncodeAlaw(s), alawCompress(s); got != want {
			t.Fatalf("EncodeAlaw(%d) = %#02x, reference %#02x", s, got, want)
		}
	}
}

// ulawHalfStep and alawHalfStep give half the quantisation step, in 16-bit
// units, of the segment that code b is in.
func ulawHalfStep(b byte) int {
	seg := (^b & segMask) >> segShift
	return 4 << seg
}

func alawHalfStep(b byte) int {
	seg := ((b ^ 0x55) & segMask) >> segShift
	if seg == 0 {
		return 8
	}
	return 8 << (seg - 1)
}

// TestQuantisation checks the encoders over every 16-bit input: the decoded
// value never goes down as the input goes up, every code is used, and the
// error is at most half a step of the chosen segment plus the resolution
// lost by dropping the low bits (2 for μ-law, 3 for A-law), except beyond
// the largest level where the encoder clips.
func TestQuantisation(t *testing.T) {
	laws := []struct {
		name     string
		enc      func(int16) byte
		dec      func(byte) int16
		halfStep func(byte) int
		slack    int
		unused   []byte // codes the encoder never produces
	}{
		{"μ-law", EncodeUlaw, DecodeUlaw, ulawHalfStep, 4, []byte{0x7F}},
		{"A-law", EncodeAlaw, DecodeAlaw, alawHalfStep, 8, nil},
	}
	for _, law := range laws {
		t.Run(law.name, func(t *testing.T) {
			maxLevel := int(law.dec(law.enc(32767)))
			var used [256]bool
			prev := -1 << 20
			for i := -32768; i <= 32767; i++ {
				b := law.enc(int16(i))
				used[b] = true
				d := int(law.dec(b))
				if d < prev {
					t.Fatalf("not monotonic: %d -> %d, previous %d", i, d, prev)
				}
				prev = d
				err := max(d-i, i-d)
				limit := law.halfStep(b) + law.slack
				if i > maxLevel || i < -maxLevel {
					limit = max(i-maxLevel, -maxLevel-i)
				}
				if err > limit {
					t.Fatalf("%d -> %#02x -> %d: error %d, want <= %d", i, b, d, err, limit)
				}
			}
			for c, ok := range used {
				if ok == bytes.Contains(law.unused, []byte{byte(c)}) {
					t.Errorf("code %#02x used = %v", c, ok)
				}
			}
		})
	}
}

// g711UlawToAlaw and g711AlawToUlaw are the G.711 transcoding tables in
// wire codes, as published with the standard (and reproduced by SpanDSP);
// they are written out independently of the magnitude tables in
// reference.go so that the two can be checked against each other.
var g711UlawToAlaw = [256]byte{
	42, 43, 40, 41, 46, 47, 44, 45, 34, 35, 32, 33, 38, 39, 36, 37,
	58, 59, 56, 57, 62, 63, 60, 61, 50, 51, 48, 49, 54, 55, 52, 53,
	10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 26,
	27, 24, 25, 30, 31, 28, 29, 18, 19, 16, 17, 22, 23, 20, 21, 106,
	104, 105, 110, 111, 108, 109, 98, 99, 96, 97, 102, 103, 100, 101, 122, 120,
	126, 127, 124, 125, 114, 115, 112, 113, 118, 119, 116, 117, 75, 73, 79, 77,
	66, 67, 64, 65, 70, 71, 68, 69, 90, 91, 88, 89, 94, 95, 92, 93,
	82, 82, 83, 83, 80, 80, 81, 81, 86, 86, 87, 87, 84, 84, 85, 85,
	170, 171, 168, 169, 174, 175, 172, 173, 162, 163, 160, 161, 166, 167, 164, 165,
	186, 187, 184, 185, 190, 191, 188, 189, 178, 179, 176, 177, 182, 183, 180, 181,
	138, 139, 136, 137, 142, 143, 140, 141, 130, 131, 128, 129, 134, 135, 132, 154,
	155, 152, 153, 158, 159, 156, 157, 146, 147, 144, 145, 150, 151, 148, 149, 234,
	232, 233, 238, 239, 236, 237, 226, 227, 224, 225, 230, 231, 228, 229, 250, 248,
	254, 255, 252, 253, 242, 243, 240, 241, 246, 247, 244, 245, 203, 201, 207, 205,
	194, 195, 192, 193, 198, 199, 196, 197, 218, 219, 216, 217, 222, 223, 220, 221,
	210, 210, 211, 211, 208, 208, 209, 209, 214, 214, 215, 215, 212, 212, 213, 213,
}

var g711AlawToUlaw = [256]byte{
	42, 43, 40, 41, 46, 47, 44, 45, 34, 35, 32, 33, 38, 39, 36, 37,
	57, 58, 55, 56, 61, 62, 59, 60, 49, 50, 47, 48, 53, 54, 51, 52,
	10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5,
	26, 27, 24, 25, 30, 31, 28, 29, 18, 19, 16, 17, 22, 23, 20, 21,
	98, 99, 96, 97, 102, 103, 100, 101, 93, 93, 92, 92, 95, 95, 94, 94,
	116, 118, 112, 114, 124, 126, 120, 122, 106, 107, 104, 105, 110, 111, 108, 109,
	72, 73, 70, 71, 76, 77, 74, 75, 64, 65, 63, 63, 68, 69, 66, 67,
	86, 87, 84, 85, 90, 91, 88, 89, 79, 79, 78, 78, 82, 83, 80, 81,
	170, 171, 168, 169, 174, 175, 172, 173, 162, 163, 160, 161, 166, 167, 164, 165,
	185, 186, 183, 184, 189, 190, 187, 188, 177, 178, 175, 176, 181, 182, 179, 180,
	138, 139, 136, 137, 142, 143, 140, 141, 130, 131, 128, 129, 134, 135, 132, 133,
	154, 155, 152, 153, 158, 159, 156, 157, 146, 147, 144, 145, 150, 151, 148, 149,
	226, 227, 224, 225, 230, 231, 228, 229, 221, 221, 220, 220, 223, 223, 222, 222,
	244, 246, 240, 242, 252, 254, 248, 250, 234, 235, 232, 233, 238, 239, 236, 237,
	200, 201, 198, 199, 204, 205, 202, 203, 192, 193, 191, 191, 196, 197, 194, 195,
	214, 215, 212, 213, 218, 219, 216, 217, 207, 207, 206, 206, 210, 211, 208, 209,
}

func TestTranscode(t *testing.T) {
	for i := range 256 {
		b := byte(i)
		if got, want := UlawToAlaw(b), g711UlawToAlaw[i]; got != want {
			t.Errorf("UlawToAlaw(%#02x) = %#02x, want %#02x", b, got, want)
		}
		if got, want := AlawToUlaw(b), g711AlawToUlaw[i]; got != want {
			t.Errorf("AlawToUlaw(%#02x) = %#02x, want %#02x", b, got, want)
		}
		// Transcoding never flips the sign (bit 7 means positive in both).
		if UlawToAlaw(b)&signBit != b&signBit || AlawToUlaw(b)&signBit != b&signBit {
			t.Errorf("%#02x: transcoding changed the sign", b)
		}
	}
}

func TestAppend(t *testing.T) {
	pcm := []int16{0, 8, -8, 1000, -1000, 32767, -32768}
	tests := []struct {
		name   string
		append func([]byte, []int16) []byte
		enc    func(int16) byte
	}{
		{"ulaw", AppendUlaw, EncodeUlaw},
		{"alaw", AppendAlaw, EncodeAlaw},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := []byte{0xAB, 0xCD}
			for _, s := range pcm {
				want = append(want, tt.enc(s))
			}
			if got := tt.append([]byte{0xAB, 0xCD}, pcm); !bytes.Equal(got, want) {
				t.Errorf("append to prefix = % x, want % x", got, want)
			}
			if got := tt.append(nil, nil); len(got) != 0 {
				t.Errorf("append(nil, nil) = % x, want empty", got)
			}
			dst := make([]byte, 0, frameSamples)
			frame := make([]int16, frameSamples)
			allocs := testing.AllocsPerRun(100, func() {
				dst = tt.append(dst[:0], frame)
			})
			if allocs != 0 {
				t.Errorf("append with capacity: %v allocations, want 0", allocs)
			}
		})
	}
}

// frameSamples is one 20 ms frame at 8 kHz, the unit the media path encodes.
const frameSamples = 160

// FuzzAppend checks that the bulk encoders agree with the per-sample ones on
// arbitrary input and keep whatever dst already held.
func FuzzAppend(f *testing.F) {
	f.Add([]byte{0, 0, 0xFF, 0x7F, 0x00, 0x80}, []byte{1})
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, raw, prefix []byte) {
		pcm := make([]int16, len(raw)/2)
		for i := range pcm {
			pcm[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
		}
		u := AppendUlaw(bytes.Clone(prefix), pcm)
		a := AppendAlaw(bytes.Clone(prefix), pcm)
		if !bytes.HasPrefix(u, prefix) || !bytes.HasPrefix(a, prefix) {
			t.Fatalf("prefix lost")
		}
		if len(u) != len(prefix)+len(pcm) || len(a) != len(prefix)+len(pcm) {
			t.Fatalf("lengths %d, %d, want %d", len(u), len(a), len(prefix)+len(pcm))
		}
		for i, s := range pcm {
			if u[len(prefix)+i] != EncodeUlaw(s) || a[len(prefix)+i] != EncodeAlaw(s) {
				t.Fatalf("sample %d (%d) encoded differently in bulk", i, s)
			}
		}
	})
}

func BenchmarkEncodeUlaw(b *testing.B) {
	b.ReportAllocs()
	var sink byte
	s := int16(0)
	for b.Loop() {
		sink ^= EncodeUlaw(s)
		s += 257
	}
	_ = sink
}

func BenchmarkAppend(b *testing.B) {
	frame := make([]int16, frameSamples)
	for i := range frame {
		frame[i] = int16(i * 199)
	}
	for _, bm := range []struct {
		name   string
		append func([]byte, []int16) []byte
	}{
		{"ulaw", AppendUlaw},
		{"alaw", AppendAlaw},
	} {
		b.Run(fmt.Sprintf("%s/reused", bm.name), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(frameSamples)
			dst := make([]byte, 0, frameSamples)
			for b.Loop() {
				dst = bm.append(dst[:0], frame)
			}
		})
		b.Run(fmt.Sprintf("%s/new", bm.name), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(frameSamples)
			for b.Loop() {
				_ = bm.append(nil, frame)
			}
		})
	}
}
