package g711

// This file is a Go transcription of the Sun Microsystems reference g711.c
// (linear2ulaw, ulaw2linear, linear2alaw, alaw2linear, ulaw2alaw,
// alaw2ulaw), the code most G.711 implementations descend from. It runs only
// at init to fill the lookup tables in g711.go; keeping it in its original
// shape makes it easy to check against the reference line by line.

const (
	signBit   = 0x80 // sign bit of a μ-law or A-law byte
	quantMask = 0x0F // quantisation field
	segShift  = 4    // position of the segment field
	segMask   = 0x70 // segment field
	ulawBias  = 0x84 // bias added to the μ-law magnitude
	ulawClip  = 8159 // largest 14-bit μ-law magnitude before the bias
)

// Segment end points: the largest magnitude in each of the eight segments,
// in 13-bit (A-law) and 14-bit biased (μ-law) units.
var (
	segAEnd = [8]int{0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF}
	segUEnd = [8]int{0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF}
)

// segment returns the index of the first segment whose end is >= v, or 8
// when v is beyond the last one.
func segment(v int, ends *[8]int) int {
	for i, e := range ends {
		if v <= e {
			return i
		}
	}
	return len(ends)
}

// ulawCompress is linear2ulaw.
func ulawCompress(s int16) byte {
	v := int(s) >> 2
	mask := 0xFF
	if v < 0 {
		v = -v
		mask = 0x7F
	}
	if v > ulawClip {
		v = ulawClip
	}
	v += ulawBias >> 2
	seg := segment(v, &segUEnd)
	if seg >= 8 {
		return byte(0x7F ^ mask)
	}
	return byte((seg<<segShift | (v>>(seg+1))&quantMask) ^ mask)
}

// ulawExpand is ulaw2linear.
func ulawExpand(b byte) int16 {
	u := int(^b)
	t := ((u&quantMask)<<3 + ulawBias) << ((u & segMask) >> segShift)
	if u&signBit != 0 {
		return int16(ulawBias - t)
	}
	return int16(t - ulawBias)
}

// alawCompress is linear2alaw.
func alawCompress(s int16) byte {
	v := int(s) >> 3
	mask := 0xD5 // sign bit set for positive values, then even-bit inversion
	if v < 0 {
		mask = 0x55
		v = -v - 1
	}
	seg := segment(v, &segAEnd)
	if seg >= 8 {
		return byte(0x7F ^ mask)
	}
	a := seg << segShift
	if seg < 2 {
		a |= (v >> 1) & quantMask
	} else {
		a |= (v >> seg) & quantMask
	}
	return byte(a ^ mask)
}

// alawExpand is alaw2linear.
func alawExpand(b byte) int16 {
	a := int(b ^ 0x55)
	t := (a & quantMask) << 4
	switch seg := (a & segMask) >> segShift; seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t = (t + 0x108) << (seg - 1)
	}
	if a&signBit != 0 {
		return int16(t)
	}
	return int16(-t)
}

// u2a is the G.711 μ-law to A-law table on magnitudes: entry i is one more
// than the A-law magnitude code for μ-law magnitude code i. Entry 80 is 80,
// not the 81 of the original Sun table: the corrected value is the one in the
// G.711 conversion table (the tests check all 256 codes against it).
var u2a = [128]byte{
	1, 1, 2, 2, 3, 3, 4, 4,
	5, 5, 6, 6, 7, 7, 8, 8,
	9, 10, 11, 12, 13, 14, 15, 16,
	17, 18, 19, 20, 21, 22, 23, 24,
	25, 27, 29, 31, 33, 34, 35, 36,
	37, 38, 39, 40, 41, 42, 43, 44,
	46, 48, 49, 50, 51, 52, 53, 54,
	55, 56, 57, 58, 59, 60, 61, 62,
	64, 65, 66, 67, 68, 69, 70, 71,
	72, 73, 74, 75, 76, 77, 78, 79,
	80, 82, 83, 84, 85, 86, 87, 88,
	89, 90, 91, 92, 93, 94, 95, 96,
	97, 98, 99, 100, 101, 102, 103, 104,
	105, 106, 107, 108, 109, 110, 111, 112,
	113, 114, 115, 116, 117, 118, 119, 120,
	121, 122, 123, 124, 125, 126, 127, 128,
}

// a2u is the G.711 A-law to μ-law table on magnitudes: entry i is the μ-law
// magnitude code for A-law magnitude code i. Entry 79 is 80, not the 79 of
// the original Sun table, for the same reason as in u2a.
var a2u = [128]byte{
	1, 3, 5, 7, 9, 11, 13, 15,
	16, 17, 18, 19, 20, 21, 22, 23,
	24, 25, 26, 27, 28, 29, 30, 31,
	32, 32, 33, 33, 34, 34, 35, 35,
	36, 37, 38, 39, 40, 41, 42, 43,
	44, 45, 46, 47, 48, 48, 49, 49,
	50, 51, 52, 53, 54, 55, 56, 57,
	58, 59, 60, 61, 62, 63, 64, 64,
	65, 66, 67, 68, 69, 70, 71, 72,
	73, 74, 75, 76, 77, 78, 79, 80,
	80, 81, 82, 83, 84, 85, 86, 87,
	88, 89, 90, 91, 92, 93, 94, 95,
	96, 97, 98, 99, 100, 101, 102, 103,
	104, 105, 106, 107, 108, 109, 110, 111,
	112, 113, 114, 115, 116, 117, 118, 119,
	120, 121, 122, 123, 124, 125, 126, 127,
}

// ulawToAlawRef is ulaw2alaw.
func ulawToAlawRef(u byte) byte {
	if u&signBit != 0 {
		return 0xD5 ^ (u2a[0xFF^u] - 1)
	}
	return 0x55 ^ (u2a[0x7F^u] - 1)
}

// alawToUlawRef is alaw2ulaw.
func alawToUlawRef(a byte) byte {
	if a&signBit != 0 {
		return 0xFF ^ a2u[a^0xD5]
	}
	return 0x7F ^ a2u[a^0x55]
}
