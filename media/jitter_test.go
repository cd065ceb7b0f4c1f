package media

import (
	"testing"

	"github.com/hotline-project/hotline/media/g711"
)

// frameOf returns a PCMU frame whose every sample decodes to about v.
func frameOf(v int16) []byte {
	f := make([]byte, FrameSize)
	for i := range f {
		f[i] = g711.EncodeUlaw(v)
	}
	return f
}

// level returns the first sample of a popped frame, or 0 for nil.
func level(f *[FrameSize]int16) int16 {
	if f == nil {
		return 0
	}
	return f[0]
}

func TestJitterBuffer(t *testing.T) {
	t.Parallel()
	d := func(v int16) int16 { return g711.DecodeUlaw(g711.EncodeUlaw(v)) }
	type step struct {
		push []uint16 // sequence numbers pushed before the pop; frame value = 1000*(seq%10+1)
		want int16    // level of the popped frame (0: nothing to play)
	}
	val := func(seq uint16) int16 { return int16(1000 * (int(seq)%10 + 1)) }
	tests := []struct {
		name      string
		steps     []step
		wantStats JitterStats
	}{
		{
			name: "fills to the depth, then plays in order",
			steps: []step{
				{push: []uint16{10}, want: 0},
				{push: []uint16{11}, want: d(val(10))},
				{push: []uint16{12}, want: d(val(11))},
				{want: d(val(12))},
			},
			wantStats: JitterStats{Played: 3},
		},
		{
			name: "reorders by sequence number",
			steps: []step{
				{push: []uint16{21, 20}, want: d(val(20))},
				{push: []uint16{23, 22}, want: d(val(21))},
				{want: d(val(22))},
				{want: d(val(23))},
			},
			wantStats: JitterStats{Played: 4},
		},
		{
			name: "a lost frame is repeated, then faded, then the stream pauses",
			steps: []step{
				{push: []uint16{30, 31}, want: d(val(30))},
				{want: d(val(31))},
				{want: d(val(31))},     // repeated
				{want: d(val(31)) / 2}, // fading
				{want: d(val(31)) / 4},
				{want: d(val(31)) / 8},
				{want: d(val(31)) / 16},
				{want: 0}, // paused: fills again
				{push: []uint16{50}, want: 0},
				{push: []uint16{51}, want: d(val(50))},
			},
			wantStats: JitterStats{Played: 3, Concealed: 5},
		},
		{
			name: "a frame that arrives after its turn is late; the gap was concealed",
			steps: []step{
				{push: []uint16{40, 41}, want: d(val(40))},
				{want: d(val(41))},
				{push: []uint16{43}, want: d(val(41))}, // 42 missing: repeat 41
				{push: []uint16{42, 44}, want: d(val(43))},
				{want: d(val(44))},
			},
			wantStats: JitterStats{Played: 4, Concealed: 1, Late: 1},
		},
		{
			name: "duplicates are dropped",
			steps: []step{
				{push: []uint16{60, 60, 61}, want: d(val(60))},
				{push: []uint16{60}, want: d(val(61))},
			},
			wantStats: JitterStats{Played: 2, Late: 2},
		},
		{
			name: "a burst beyond the maximum drops the oldest frames",
			steps: []step{
				{push: []uint16{70, 71, 72, 73, 74, 75}, want: d(val(72))},
				{want: d(val(73))},
			},
			wantStats: JitterStats{Played: 2, Dropped: 2},
		},
		{
			name: "a new stream restarts the buffer",
			steps: []step{
				{push: []uint16{80, 81}, want: d(val(80))},
				{push: []uint16{5000}, want: 0},
				{push: []uint16{5001}, want: d(val(5000))},
			},
			wantStats: JitterStats{Played: 2},
		},
		{
			name: "sequence numbers wrap",
			steps: []step{
				{push: []uint16{65535, 0}, want: d(val(65535))},
				{push: []uint16{1}, want: d(val(0))},
				{want: d(val(1))},
			},
			wantStats: JitterStats{Played: 3},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var j jitterBuffer
			for i, s := range tc.steps {
				for _, seq := range s.push {
					j.push(seq, PayloadPCMU, frameOf(val(seq)))
				}
				if got := level(j.pop()); got != s.want {
					t.Fatalf("step %d: popped level %d, want %d", i, got, s.want)
				}
			}
			if got := j.stats(); got != tc.wantStats {
				t.Errorf("stats %+v, want %+v", got, tc.wantStats)
			}
		})
	}
}

func TestDecodeIntoPads(t *testing.T) {
	t.Parallel()
	var dst [FrameSize]int16
	for i := range dst {
		dst[i] = 99
	}
	decodeInto(&dst, PayloadPCMA, []byte{g711.EncodeAlaw(4000), g711.EncodeAlaw(-4000)})
	if dst[0] <= 3000 || dst[1] >= -3000 || dst[2] != 0 || dst[FrameSize-1] != 0 {
		t.Errorf("decoded %v..., want the two samples then silence", dst[:4])
	}
	long := make([]byte, 2*FrameSize)
	decodeInto(&dst, PayloadPCMU, long) // cut to a frame, no panic
}

// FuzzJitterBuffer pushes arbitrary sequence numbers and payloads: the
// buffer never panics, never holds more than jitterMax frames, and its
// count of buffered frames matches its slots.
func FuzzJitterBuffer(f *testing.F) {
	f.Add([]byte{0, 1, 0, 2, 1, 0, 0, 3, 200, 0})
	f.Add([]byte{255, 255, 0, 0, 1, 0, 0, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var j jitterBuffer
		payload := frameOf(1234)
		for i := 0; i+1 < len(ops); i += 2 {
			seq := uint16(ops[i])<<8 | uint16(ops[i+1])
			if ops[i]&1 == 1 {
				j.pop()
			} else {
				j.push(seq, PayloadPCMU, payload[:int(ops[i+1])%(FrameSize+1)])
			}
			full := 0
			for _, s := range j.slots {
				if s.full {
					full++
					if d := s.seq - j.next; d >= jitterMax {
						t.Fatalf("after op %d: frame %d held outside the window from %d", i/2, s.seq, j.next)
					}
				}
			}
			if full != j.buffered || full > jitterMax {
				t.Fatalf("after op %d: %d slots full, buffered %d, max %d", i/2, full, j.buffered, jitterMax)
			}
		}
	})
}
