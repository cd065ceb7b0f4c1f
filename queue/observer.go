package queue

import "time"

// Observer receives counts and durations for metrics. The engine calls it after releasing
// its lock, in the order things happened within one event, so an Observer may call back
// into the Engine (Snapshot, say). Calls from concurrent events may interleave. Nothing
// passed identifies a caller: queues are configured names and advocates' ids are staff ids.
type Observer interface {
	// Answered: an advocate answered a caller who had waited for waited.
	Answered(queue, advocate string, waited time.Duration)
	// Abandoned: a caller hung up while waiting, after waited.
	Abandoned(queue string, waited time.Duration)
	// RingMissed: a ring to the advocate ended in a miss (no answer, busy, rejected,
	// failed); a ring timed out by Tick reports NoAnswer.
	RingMissed(queue, advocate string, outcome Outcome)
	// Talked: a connected call ended after talk.
	Talked(queue, advocate string, talk time.Duration)
	// WrappedUp: an advocate's wrap-up after a call of queue ended after wrap.
	WrappedUp(queue, advocate string, wrap time.Duration)
	// StateChanged: an advocate went from one state to another. An advocate added by
	// Reconfigure starts offline without a call; one removed ends with a change to offline.
	StateChanged(advocate string, from, to State)
}
