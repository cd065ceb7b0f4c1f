package media

import "github.com/hotline-project/hotline/media/g711"

const (
	// jitterSlots is the ring's size in frames; a power of two, larger than
	// jitterMax.
	jitterSlots = 8
	// jitterDepth is how many frames a participant's buffer holds before it
	// starts playing (and again after the stream paused): what absorbs the
	// uneven arrival of relayed packets, at the cost of that many frames of
	// delay at most.
	jitterDepth = 2
	// jitterMax is the most frames a buffer keeps: a packet further ahead
	// than this of the next one to play drops the oldest, so that a sender
	// whose clock runs fast, or a burst after a stall, cannot build up delay.
	jitterMax = 4
	// fadeFrames is how many frames a loss is concealed for after the
	// repeated frame, halving the level each frame; after that the stream is
	// taken as paused (silence suppression, hold) and the buffer fills again
	// before it plays.
	fadeFrames = 4
	// jitterReset is how far a sequence number may jump, either way, before
	// the packet is taken as the start of a new stream rather than a late or
	// early one of this stream.
	jitterReset = 100
)

// jitterBuffer orders one participant's frames by RTP sequence number and
// hands out one 20 ms frame of linear audio per mix, concealing a lost
// frame by repeating the last one and then fading it out. It is not safe for
// concurrent use: the conference's lock guards it.
type jitterBuffer struct {
	slots    [jitterSlots]jitterSlot
	anchored bool   // next is valid
	playing  bool   // the buffer has filled and hands out frames
	next     uint16 // sequence number of the next frame to play
	buffered int    // full slots
	lost     int    // frames concealed in a row

	// out is the frame handed out by the last pop, kept for concealment.
	out [FrameSize]int16

	played, concealed, late, dropped uint64
}

type jitterSlot struct {
	full bool
	seq  uint16
	pcm  [FrameSize]int16
}

// JitterStats are the counters of one participant's jitter buffer.
type JitterStats struct {
	Played    uint64 // frames played as received
	Concealed uint64 // frames lost or late, replaced by the repeated or faded last frame
	Late      uint64 // packets that arrived after their frame was played or concealed, or twice
	Dropped   uint64 // frames dropped because the buffer was full
}

func (j *jitterBuffer) stats() JitterStats {
	return JitterStats{Played: j.played, Concealed: j.concealed, Late: j.late, Dropped: j.dropped}
}

// reset forgets everything buffered; the next packet anchors the stream.
func (j *jitterBuffer) reset() {
	for i := range j.slots {
		j.slots[i].full = false
	}
	j.anchored, j.playing, j.buffered, j.lost = false, false, 0, 0
}

// push stores the audio of the packet with sequence number seq, G.711 of
// payload type pt (decoded here, once). A payload shorter than a frame is
// padded with silence, a longer one cut to a frame.
func (j *jitterBuffer) push(seq uint16, pt uint8, payload []byte) {
	if !j.anchored {
		j.anchored, j.next = true, seq
	}
	d := int16(seq - j.next)
	if d <= -jitterReset || d >= jitterReset {
		// A new stream (the phone restarted it): start over.
		j.reset()
		j.anchored, j.next, d = true, seq, 0
	}
	if d < 0 && !j.playing && d > -jitterMax {
		// Earlier than the packet that anchored the stream, before any was
		// played: it arrived out of order, and plays first. Frames now
		// beyond the window are dropped.
		for k := seq + jitterMax; k != j.next+jitterMax; k++ {
			if s := &j.slots[k%jitterSlots]; s.full && s.seq == k {
				s.full = false
				j.buffered--
				j.dropped++
			}
		}
		j.next, d = seq, 0
	}
	if d < 0 {
		j.late++
		return
	}
	for int(d) >= jitterMax {
		// Full: drop the oldest frame to make room.
		if s := &j.slots[j.next%jitterSlots]; s.full && s.seq == j.next {
			s.full = false
			j.buffered--
			j.dropped++
		}
		j.next++
		d--
	}
	s := &j.slots[seq%jitterSlots]
	if s.full && s.seq == seq {
		j.late++ // a duplicate
		return
	}
	s.full, s.seq = true, seq
	decodeInto(&s.pcm, pt, payload)
	j.buffered++
}

// pop returns the next frame to mix, or nil when the participant has
// nothing to be heard (not started, filling, or paused). The frame is valid
// until the next call.
func (j *jitterBuffer) pop() *[FrameSize]int16 {
	if !j.anchored {
		return nil
	}
	if !j.playing {
		if j.buffered < jitterDepth {
			return nil
		}
		j.playing = true
		// Start at the oldest frame held.
		for j.buffered > 0 {
			if s := &j.slots[j.next%jitterSlots]; s.full && s.seq == j.next {
				break
			}
			j.next++
		}
	}
	s := &j.slots[j.next%jitterSlots]
	if s.full && s.seq == j.next {
		j.out = s.pcm
		s.full = false
		j.buffered--
		j.next++
		j.lost = 0
		j.played++
		return &j.out
	}
	j.next++
	j.lost++
	switch {
	case j.lost == 1:
		// Repeat the last frame as it was.
	case j.lost <= 1+fadeFrames:
		for i := range j.out {
			j.out[i] /= 2
		}
	default:
		// The stream paused: fill again before playing what comes next,
		// anchored on it.
		j.reset()
		return nil
	}
	j.concealed++
	return &j.out
}

// decodeInto decodes a G.711 payload of type pt into dst, padding with
// silence.
func decodeInto(dst *[FrameSize]int16, pt uint8, payload []byte) {
	n := min(len(payload), FrameSize)
	if pt == PayloadPCMA {
		for i, c := range payload[:n] {
			dst[i] = g711.DecodeAlaw(c)
		}
	} else {
		for i, c := range payload[:n] {
			dst[i] = g711.DecodeUlaw(c)
		}
	}
	clear(dst[n:])
}
