package media

import (
	"encoding/binary"
	"fmt"
)

// Event is one RFC 4733 telephone-event block (section 2.3):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     event     |E|R| volume    |          duration             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type Event struct {
	Event    uint8  // event code: 0-9, 10 '*', 11 '#', 12-15 'A'-'D', others not digits
	End      bool   // E bit: this packet ends the event
	Volume   uint8  // power level in -dBm0, 0-63
	Duration uint16 // in timestamp units since the event's RTP timestamp
}

// eventSize is the size of one event block.
const eventSize = 4

// ParseEvent parses the first event block of a telephone-event payload.
// Further blocks, which some senders add for redundancy, are ignored.
func ParseEvent(payload []byte) (Event, error) {
	if len(payload) < eventSize {
		return Event{}, fmt.Errorf("parse telephone-event of %d bytes: %w", len(payload), ErrShortEvent)
	}
	return Event{
		Event:    payload[0],
		End:      payload[1]&0x80 != 0,
		Volume:   payload[1] & 0x3f,
		Duration: binary.BigEndian.Uint16(payload[2:4]),
	}, nil
}

// EventDigit returns the DTMF key of event code e: '0'-'9' for 0-9, '*' for
// 10, '#' for 11 and 'A'-'D' for 12-15. It returns false for every other
// code (flash, modem and line tones).
func EventDigit(e uint8) (rune, bool) {
	switch {
	case e <= 9:
		return rune('0' + e), true
	case e == 10:
		return '*', true
	case e == 11:
		return '#', true
	case e <= 15:
		return rune('A' + e - 12), true
	}
	return 0, false
}

// detectorHistory is how many recent events a DTMFDetector remembers. A
// key press lasts about 100 ms, so 16 events cover seconds of late or
// duplicated packets.
const detectorHistory = 16

// DTMFDetector turns the telephone-event packets of one RTP stream into key
// presses. RFC 4733 sends each event as several packets sharing one RTP
// timestamp (a start, updates with a growing duration, and usually three
// copies of the end), so an event is identified by its timestamp: the first
// packet seen of a new timestamp yields the digit at once, which lets a
// caller interrupt a prompt without waiting for the key's release, and
// every later packet of that timestamp is ignored, however late. Two
// presses of the same key have different timestamps and count twice.
//
// The zero value is ready to use. A DTMFDetector is not safe for concurrent
// use; the receive goroutine of a leg owns one.
type DTMFDetector struct {
	seen [detectorHistory]uint32
	n    int // valid entries in seen
	next int // where the next timestamp is written
}

// Feed records a telephone-event packet with RTP timestamp ts and returns
// the key pressed if the packet starts an event not seen before.
func (d *DTMFDetector) Feed(ts uint32, e Event) (rune, bool) {
	for _, s := range d.seen[:d.n] {
		if s == ts {
			return 0, false
		}
	}
	d.seen[d.next] = ts
	d.next = (d.next + 1) % detectorHistory
	if d.n < detectorHistory {
		d.n++
	}
	return EventDigit(e.Event)
}

// Reset forgets every event seen, for a new stream (a new SSRC), whose
// timestamps bear no relation to the old one's.
func (d *DTMFDetector) Reset() {
	*d = DTMFDetector{}
}
