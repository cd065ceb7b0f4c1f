package callflow

import (
	"errors"

	"github.com/hotline-project/hotline/queue"
)

// Outcomes come from one vocabulary, package outcome; this file maps only where the concepts
// truly differ:
//
//   - A call's outcome is an outcome.Call (records.Outcome is the same type; Call.Outcome,
//     the record's outcome column): the flow sets message, transferred, failed, shutdown and
//     quick_exit (the caller pressed the quick-exit key: safety.go) itself; completed,
//     abandoned and menu_hangup are derived by the record from its times when the flow sets
//     none.
//   - A ring's outcome is an outcome.Ring (queue.Outcome is the same type), from the
//     Dialer's error (ringOutcome): ErrBusy is busy, ErrRejected rejected, ErrNoAnswer
//     no_answer, anything else failed.
//   - How the menus ended is an ivr.End: how the caller left the menus (a choice, no input,
//     a hang-up), not how the call ended. It is counted as it is (MenuMetrics); the record
//     derives menu_hangup when the menus hung up or the caller did.
//   - The SIP server's own call counter (hotline_calls_total{outcome}) counts an
//     outcome.Leg: how the caller's SIP leg ended (who hung up). It is not the call's
//     outcome; a leg that ended before it was answered gives one (outcome.Leg.Unanswered).

// worse picks the outcome to report when several phones failed: a decline by the advocate
// says the most, then busy, then no answer; failure only when every phone failed.
func worse(a, b queue.Outcome) queue.Outcome {
	rank := func(o queue.Outcome) int {
		switch o {
		case queue.Rejected:
			return 3
		case queue.Busy:
			return 2
		case queue.NoAnswer:
			return 1
		}
		return 0
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// ringOutcome classifies a failed dial for the queue engine.
func ringOutcome(err error) queue.Outcome {
	switch {
	case errors.Is(err, ErrBusy):
		return queue.Busy
	case errors.Is(err, ErrRejected):
		return queue.Rejected
	case errors.Is(err, ErrNoAnswer):
		return queue.NoAnswer
	}
	return queue.Failed
}
