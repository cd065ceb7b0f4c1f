// Package outcome is the one vocabulary of how things end, shared by sip, the call flow, the
// queue engine, the call records and the metrics. Each kind of ending is its own type, so a
// ring's outcome cannot be recorded as a call's by mistake:
//
//   - Call is how a call ended: the outcome column of its record (package records) and of
//     the CSV export. The call flow sets it where it decides (message, transferred, failed,
//     shutdown); the record derives completed, abandoned and menu_hangup from its times
//     when the flow sets none.
//   - Leg is how the caller's SIP leg ended, as the sip server sees it: who hung up, or
//     what failed (hotline_calls_total{outcome}). It is not the call's outcome: a completed
//     call's leg ends caller_hangup or server_hangup. A leg that ended before the call was
//     answered gives its call's outcome (Leg.Unanswered).
//   - Ring is how one ring of an advocate's phone ended, as the queue engine is told.
//
// How the menus ended (ivr.End: a choice, no input, the caller hung up...) is not here: it
// says how the caller left the menus, not how the call ended, and is counted as it is.
package outcome

import "fmt"

// Call is how a call ended: the outcome of its record.
type Call string

// The call outcomes. A record is written with InProgress when the call starts and with one
// of the others when it ends.
const (
	// InProgress is a call that has not ended (or whose node has not yet restarted after a
	// crash).
	InProgress Call = "in_progress"
	// Interrupted is a call that was in progress when its node stopped without ending it
	// (kill -9, power loss); its end time is an estimate.
	Interrupted Call = "interrupted"
	// Completed is a call that was connected to an advocate.
	Completed Call = "completed"
	// Abandoned is a caller who hung up while waiting in a queue.
	Abandoned Call = "abandoned"
	// MenuHangup is a caller who hung up in the menus, before being routed, or whom the
	// menus hung up on.
	MenuHangup Call = "menu_hangup"
	// Message is a call routed to a message (closed, for example) and hung up.
	Message Call = "message"
	// Transferred is a call connected to a target outside this server.
	Transferred Call = "transferred"
	// Failed is a call that could not be taken where it was routed (a target not reached,
	// a bridge that failed).
	Failed Call = "failed"
	// Shutdown is a call the server ended because it was stopping.
	Shutdown Call = "shutdown"
	// ShutdownFatal is a call the server ended because it stopped on a fatal error (a
	// listener failed, say); the record's end reason says which.
	ShutdownFatal Call = "shutdown_fatal"

	// The outcomes of call attempts that reached a line but were never answered.

	// Cancelled is a caller who hung up (CANCEL, or BYE before the ACK) before the call was
	// confirmed.
	Cancelled Call = "cancelled"
	// NoAck is a call answered with 200 OK that the caller never confirmed with an ACK.
	NoAck Call = "no_ack"
	// SetupFailed is a call that failed while it was being set up (the 200 OK could not be
	// sent, or the ACK carried no usable SDP answer).
	SetupFailed Call = "setup_failed"
	// Refused is an INVITE to a line that the server refused (capacity, draining,
	// source_rate, ...). Refused attempts are counted per minute, never a record each.
	Refused Call = "refused"
	// QuickExit is a caller who ended the call with the quick-exit key
	// (safety.quick_exit_key), wherever they were: menus, hold, ringing or bridge.
	QuickExit Call = "quick_exit"
	// Callback is a caller who asked, by key press, to be called back instead of waiting
	// (queues[].callback); the callback's own attempts are records of their own.
	Callback Call = "callback"
	// CallbackMissed is a callback attempt that did not reach the caller (busy, no
	// answer, nobody pressed 1 at the gate); it is tried again later within its window.
	CallbackMissed Call = "callback_missed"
)

// Calls lists every Call outcome, for validation and documentation.
var Calls = []Call{InProgress, Interrupted, Completed, Abandoned, MenuHangup, Message, Transferred,
	Failed, Shutdown, ShutdownFatal, Cancelled, NoAck, SetupFailed, Refused, QuickExit, Callback, CallbackMissed}

// Leg is how the caller's SIP leg ended, as the sip server sees it.
type Leg string

// The leg outcomes.
const (
	// LegCompleted is a leg whose handler returned with the call still up (the server
	// then hangs up); the usual value until something more precise is known.
	LegCompleted Leg = "completed"
	// LegCallerHangup is a leg the caller hung up (BYE).
	LegCallerHangup Leg = "caller_hangup"
	// LegServerHangup is a leg the server hung up.
	LegServerHangup Leg = "server_hangup"
	// LegCancelled is a leg the caller cancelled before it was confirmed.
	LegCancelled Leg = "cancelled"
	// LegNoAck is a leg whose 200 OK was never acknowledged.
	LegNoAck Leg = "no_ack"
	// LegEvicted is an unacknowledged leg pushed out by a newer call from the untrusted
	// sources' budget.
	LegEvicted Leg = "evicted"
	// LegFailed is a leg whose set-up failed (the 200 could not be sent, no usable answer).
	LegFailed Leg = "failed"
	// LegShutdown is a leg ended before it was answered because the server was stopping.
	LegShutdown Leg = "shutdown"
	// LegMediaTimeout is a leg ended because no RTP arrived for the inactivity timeout.
	LegMediaTimeout Leg = "media_timeout"
	// LegMediaFailed is a leg ended because its media failed.
	LegMediaFailed Leg = "media_failed"
)

// Legs lists every Leg outcome.
var Legs = []Leg{LegCompleted, LegCallerHangup, LegServerHangup, LegCancelled, LegNoAck, LegEvicted,
	LegFailed, LegShutdown, LegMediaTimeout, LegMediaFailed}

// Unanswered is the outcome of a call whose leg ended with l before the call was answered:
// a caller who hung up first cancelled it, a leg never acknowledged (or pushed out while
// unacknowledged) is no_ack, a stopping server's is shutdown, anything else setup_failed.
func (l Leg) Unanswered() Call {
	switch l {
	case LegCancelled, LegCallerHangup:
		return Cancelled
	case LegNoAck, LegEvicted:
		return NoAck
	case LegShutdown:
		return Shutdown
	}
	return SetupFailed
}

// Ring is how one ring of an advocate's phone ended. The zero Ring is invalid.
type Ring uint8

// The ring outcomes.
const (
	RingAnswered Ring = iota + 1 // the advocate answered: the call is theirs
	RingNoAnswer                 // the phone rang out on its own (the engine's timeout is usually first)
	RingBusy                     // 486/600 or the like
	RingRejected                 // the advocate declined (603)
	RingFailed                   // the phone could not be reached
)

// String returns the ring outcome's name, such as "no_answer".
func (o Ring) String() string {
	switch o {
	case RingAnswered:
		return "answered"
	case RingNoAnswer:
		return "no_answer"
	case RingBusy:
		return "busy"
	case RingRejected:
		return "rejected"
	case RingFailed:
		return "failed"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// MarshalText names the outcome, so that JSON reads "no_answer".
func (o Ring) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// Valid reports whether o is one of the constants.
func (o Ring) Valid() bool { return o >= RingAnswered && o <= RingFailed }
