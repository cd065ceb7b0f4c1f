package media

import (
	"encoding/binary"
	"errors"
	"testing"
)

// eventBytes encodes e as a telephone-event block (R bit clear).
func eventBytes(e Event) []byte {
	b := make([]byte, eventSize)
	b[0] = e.Event
	b[1] = e.Volume & 0x3f
	if e.End {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], e.Duration)
	return b
}

func TestParseEvent(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		want    Event
		wantErr error
	}{
		{"digit 5 start", []byte{5, 10, 0, 160}, Event{Event: 5, Volume: 10, Duration: 160}, nil},
		{"hash end", []byte{11, 0x80 | 7, 0x03, 0x20}, Event{Event: 11, End: true, Volume: 7, Duration: 800}, nil},
		{"reserved bit ignored", []byte{1, 0x40 | 63, 0xff, 0xff}, Event{Event: 1, Volume: 63, Duration: 65535}, nil},
		{"redundant second block ignored", []byte{2, 0x80, 0, 1, 3, 0, 0, 2}, Event{Event: 2, End: true, Duration: 1}, nil},
		{"flash", []byte{16, 0, 0, 0}, Event{Event: 16}, nil},
		{"empty", nil, Event{}, ErrShortEvent},
		{"three bytes", []byte{1, 2, 3}, Event{}, ErrShortEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEvent(tt.payload)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseEvent(%x) error = %v, want %v", tt.payload, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseEvent(%x) = %+v, want %+v", tt.payload, got, tt.want)
			}
		})
	}
}

func TestEventDigit(t *testing.T) {
	want := "0123456789*#ABCD"
	for e := range 256 {
		d, ok := EventDigit(uint8(e))
		if e < len(want) {
			if !ok || d != rune(want[e]) {
				t.Errorf("EventDigit(%d) = %q, %v; want %q, true", e, d, ok, want[e])
			}
		} else if ok {
			t.Errorf("EventDigit(%d) = %q, true; want false", e, d)
		}
	}
}

func TestDTMFDetector(t *testing.T) {
	type pkt struct {
		ts  uint32
		ev  uint8
		end bool
		dur uint16
	}
	// press returns the packets of one key press as RFC 4733 sends them:
	// a start, two updates, three ends.
	press := func(ts uint32, ev uint8) []pkt {
		return []pkt{{ts, ev, false, 160}, {ts, ev, false, 320}, {ts, ev, false, 480},
			{ts, ev, true, 640}, {ts, ev, true, 640}, {ts, ev, true, 640}}
	}
	concat := func(ps ...[]pkt) []pkt {
		var out []pkt
		for _, p := range ps {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name    string
		packets []pkt
		want    string
	}{
		{"one press", press(1000, 1), "1"},
		{"sequence", concat(press(1000, 1), press(3000, 2), press(5000, 10)), "12*"},
		{"lost start packets", []pkt{{1000, 4, false, 480}, {1000, 4, true, 640}, {1000, 4, true, 640}}, "4"},
		{"only end packets", []pkt{{1000, 11, true, 800}, {1000, 11, true, 800}, {1000, 11, true, 800}}, "#"},
		{"retransmitted ends after the next press", concat(press(1000, 7), press(3000, 8),
			[]pkt{{1000, 7, true, 640}, {1000, 7, true, 640}}), "78"},
		{"same digit twice", concat(press(1000, 5), press(2000, 5)), "55"},
		{"interleaved", []pkt{{1000, 1, false, 160}, {3000, 2, false, 160}, {1000, 1, true, 320},
			{3000, 2, false, 320}, {1000, 1, true, 320}, {3000, 2, true, 480}}, "12"},
		{"late start of a seen event", []pkt{{1000, 3, true, 640}, {1000, 3, false, 160}}, "3"},
		{"timestamp wraps", concat(press(0xffffff00, 6), press(0x100, 6)), "66"},
		{"non-digit events are not reported", concat(press(1000, 16), press(3000, 9)), "9"},
		{"letters", concat(press(1000, 12), press(2000, 15)), "AD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d DTMFDetector
			var got []rune
			for _, p := range tt.packets {
				if r, ok := d.Feed(p.ts, Event{Event: p.ev, End: p.end, Duration: p.dur}); ok {
					got = append(got, r)
				}
			}
			if string(got) != tt.want {
				t.Errorf("digits = %q, want %q", string(got), tt.want)
			}
		})
	}
}

func TestDTMFDetectorHistory(t *testing.T) {
	var d DTMFDetector
	// More presses than the history holds: each counts once, and a
	// duplicate of a recent one is still recognised.
	for i := range uint32(3 * detectorHistory) {
		ts := 1000 + i*2000
		if _, ok := d.Feed(ts, Event{Event: 1}); !ok {
			t.Fatalf("press %d not reported", i)
		}
		if _, ok := d.Feed(ts, Event{Event: 1, End: true}); ok {
			t.Fatalf("end of press %d reported again", i)
		}
		if i > 0 {
			if _, ok := d.Feed(ts-2000, Event{Event: 1, End: true}); ok {
				t.Fatalf("late end of press %d reported again", i-1)
			}
		}
	}
	d.Reset()
	if _, ok := d.Feed(1000, Event{Event: 1}); !ok {
		t.Error("after Reset, a timestamp seen before is not reported")
	}
}

func FuzzParseEvent(f *testing.F) {
	f.Add([]byte{5, 10, 0, 160})
	f.Add([]byte{11, 0x80 | 7, 0x03, 0x20})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0, 0})
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEvent(b)
		if err != nil {
			if e != (Event{}) {
				t.Fatalf("ParseEvent(%x) returned both %+v and error %v", b, e, err)
			}
			if len(b) >= eventSize {
				t.Fatalf("ParseEvent(%x) of %d bytes failed: %v", b, len(b), err)
			}
			return
		}
		if e.Volume > 63 {
			t.Fatalf("ParseEvent(%x) volume %d > 63", b, e.Volume)
		}
		again, err := ParseEvent(eventBytes(e))
		if err != nil || again != e {
			t.Fatalf("round trip of %+v gave %+v, %v", e, again, err)
		}
	})
}

func BenchmarkParseEvent(b *testing.B) {
	payload := []byte{11, 0x80 | 7, 0x03, 0x20}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseEvent(payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDTMFDetector(b *testing.B) {
	var d DTMFDetector
	e := Event{Event: 5}
	b.ReportAllocs()
	var ts uint32
	for b.Loop() {
		ts += 1000
		for range 6 { // start, updates, ends of one press
			d.Feed(ts, e)
		}
	}
}
