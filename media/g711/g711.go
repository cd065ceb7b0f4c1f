package g711

import "slices"

// SilenceUlaw is the μ-law code for a zero sample (positive zero).
const SilenceUlaw = 0xFF

// SilenceAlaw is the A-law code for the smallest positive sample, which
// G.711 uses as silence because A-law has no exact zero.
const SilenceAlaw = 0xD5

// Tables built at init from the reference algorithms below. The encoders
// only look at the top 14 (μ-law) or 13 (A-law) bits of a sample, so the
// encode tables are indexed by the sample shifted right by 2 or 3, read as
// an unsigned two's complement value.
var (
	ulawDecode [256]int16
	alawDecode [256]int16
	ulawEncode [1 << 14]byte
	alawEncode [1 << 13]byte
	ulawToAlaw [256]byte
	alawToUlaw [256]byte
)

func init() {
	for i := range 256 {
		ulawDecode[i] = ulawExpand(byte(i))
		alawDecode[i] = alawExpand(byte(i))
		ulawToAlaw[i] = ulawToAlawRef(byte(i))
		alawToUlaw[i] = alawToUlawRef(byte(i))
	}
	for i := range len(ulawEncode) {
		ulawEncode[i] = ulawCompress(int16(uint16(i) << 2))
	}
	for i := range len(alawEncode) {
		alawEncode[i] = alawCompress(int16(uint16(i) << 3))
	}
}

// EncodeUlaw returns the μ-law code for the linear sample s.
func EncodeUlaw(s int16) byte {
	return ulawEncode[uint16(s)>>2]
}

// DecodeUlaw returns the linear sample that the μ-law code b stands for, in
// the range -32124..32124.
func DecodeUlaw(b byte) int16 {
	return ulawDecode[b]
}

// EncodeAlaw returns the A-law code for the linear sample s.
func EncodeAlaw(s int16) byte {
	return alawEncode[uint16(s)>>3]
}

// DecodeAlaw returns the linear sample that the A-law code b stands for, in
// the range -32256..32256.
func DecodeAlaw(b byte) int16 {
	return alawDecode[b]
}

// UlawToAlaw transcodes one μ-law code to A-law with the G.711 conversion
// table, without a detour through linear PCM.
func UlawToAlaw(b byte) byte {
	return ulawToAlaw[b]
}

// AlawToUlaw transcodes one A-law code to μ-law with the G.711 conversion
// table, without a detour through linear PCM.
func AlawToUlaw(b byte) byte {
	return alawToUlaw[b]
}

// AppendUlaw appends the μ-law encoding of pcm to dst and returns the
// extended slice. It does not allocate when cap(dst)-len(dst) >= len(pcm).
func AppendUlaw(dst []byte, pcm []int16) []byte {
	n := len(dst)
	dst = slices.Grow(dst, len(pcm))[:n+len(pcm)]
	out := dst[n:]
	for i, s := range pcm {
		out[i] = ulawEncode[uint16(s)>>2]
	}
	return dst
}

// AppendAlaw appends the A-law encoding of pcm to dst and returns the
// extended slice. It does not allocate when cap(dst)-len(dst) >= len(pcm).
func AppendAlaw(dst []byte, pcm []int16) []byte {
	n := len(dst)
	dst = slices.Grow(dst, len(pcm))[:n+len(pcm)]
	out := dst[n:]
	for i, s := range pcm {
		out[i] = alawEncode[uint16(s)>>3]
	}
	return dst
}
