package records

import "time"

// Outcome is how a call ended.
type Outcome string

// Outcomes. A record is written with OutcomeInProgress when the call starts and with one of
// the others when it ends.
const (
	// OutcomeInProgress is a call that has not ended (or whose node has not yet restarted
	// after a crash).
	OutcomeInProgress Outcome = "in_progress"
	// OutcomeInterrupted is a call that was in progress when its node stopped without
	// ending it (kill -9, power loss); its end time is an estimate (see RecoverInterrupted).
	OutcomeInterrupted Outcome = "interrupted"
	// OutcomeCompleted is a call that was connected to an advocate.
	OutcomeCompleted Outcome = "completed"
	// OutcomeAbandoned is a caller who hung up while waiting in a queue.
	OutcomeAbandoned Outcome = "abandoned"
	// OutcomeMenuHangup is a caller who hung up in the menus, before being routed, or
	// whom the menus hung up on.
	OutcomeMenuHangup Outcome = "menu_hangup"
	// OutcomeMessage is a call routed to a message (closed, for example) and hung up.
	OutcomeMessage Outcome = "message"
	// OutcomeTransferred is a call connected to a target outside this server.
	OutcomeTransferred Outcome = "transferred"
	// OutcomeFailed is a call that could not be taken where it was routed (a target not
	// reached, a bridge that failed).
	OutcomeFailed Outcome = "failed"
	// OutcomeShutdown is a call the server ended because it was stopping.
	OutcomeShutdown Outcome = "shutdown"
	// OutcomeShutdownFatal is a call the server ended because it stopped on a fatal error
	// (a listener failed, say); Record.EndReason says which.
	OutcomeShutdownFatal Outcome = "shutdown_fatal"

	// The outcomes of call attempts that reached a line but were never answered.

	// OutcomeCancelled is a caller who hung up (CANCEL, or BYE before the ACK) before the
	// call was confirmed.
	OutcomeCancelled Outcome = "cancelled"
	// OutcomeNoAck is a call answered with 200 OK that the caller never confirmed with an
	// ACK.
	OutcomeNoAck Outcome = "no_ack"
	// OutcomeSetupFailed is a call that failed while it was being set up (the 200 OK could
	// not be sent, or the ACK carried no usable SDP answer).
	OutcomeSetupFailed Outcome = "setup_failed"
	// OutcomeRefused is an INVITE to a line that the server refused (Record.EndReason, or
	// the reason column of call_attempts, says why: capacity, draining, source_rate, ...).
	// Refused attempts are counted per minute in call_attempts, never a row each.
	OutcomeRefused Outcome = "refused"
	// OutcomeQuickExit is a caller who ended the call with the quick-exit key
	// (safety.quick_exit_key), wherever they were: menus, hold, ringing or bridge.
	OutcomeQuickExit Outcome = "quick_exit"
)

// Outcomes lists every Outcome, for validation and documentation.
var Outcomes = []Outcome{OutcomeInProgress, OutcomeInterrupted, OutcomeCompleted, OutcomeAbandoned,
	OutcomeMenuHangup, OutcomeMessage, OutcomeTransferred, OutcomeFailed, OutcomeShutdown,
	OutcomeShutdownFatal, OutcomeCancelled, OutcomeNoAck, OutcomeSetupFailed, OutcomeRefused,
	OutcomeQuickExit}

// Record is one call. Times are zero when the call never got there; durations are zero when
// they do not apply. Its JSON (the spool's) leaves zero fields out.
type Record struct {
	CallID string `json:",omitzero"` // sip.Call.ID: random, carries nothing of the caller; the primary key
	Node   string `json:",omitzero"` // the server that took the call; RecoverInterrupted touches only its own
	Line   string `json:",omitzero"` // the configured line name
	// CallerHash is Hasher.Hash of the caller's number: never the number itself.
	CallerHash string `json:",omitzero"`

	Start      time.Time `json:",omitzero"` // the INVITE arrived
	Answered   time.Time `json:",omitzero"` // the server answered (200 OK)
	QueueEnter time.Time `json:",omitzero"` // first entered a queue
	Connected  time.Time `json:",omitzero"` // an advocate (or target) answered
	End        time.Time `json:",omitzero"` // the call ended

	Language string   `json:",omitzero"` // chosen in the menus
	Reason   string   `json:",omitzero"` // chosen in the menus
	Route    string   `json:",omitzero"` // the route that decided ("menu" when a menu action did)
	Steps    []string `json:",omitzero"` // the destinations taken, in order: the first, then each overflow
	Queue    string   `json:",omitzero"` // the last queue the call was in
	Advocate string   `json:",omitzero"` // the advocate's id who took the call

	Wait   time.Duration `json:",omitzero"` // QueueEnter to Connected (or End, when never connected)
	Talk   time.Duration `json:",omitzero"` // Connected to End
	WrapUp time.Duration `json:",omitzero"` // the wrap-up time the advocate was given after the call

	Outcome Outcome `json:",omitzero"`
	// EndReason says why the call ended when the outcome alone does not: the error a
	// server stopped on (shutdown_fatal). It never holds anything of the caller.
	EndReason string `json:",omitzero"`
}

// derive fills in what follows from the times: Wait and Talk when they are zero, and an
// ended call's Outcome when it is not set.
func (r *Record) derive() {
	if r.Wait == 0 && !r.QueueEnter.IsZero() {
		switch {
		case !r.Connected.IsZero():
			r.Wait = nonNegative(r.Connected.Sub(r.QueueEnter))
		case !r.End.IsZero():
			r.Wait = nonNegative(r.End.Sub(r.QueueEnter))
		}
	}
	if r.Talk == 0 && !r.Connected.IsZero() && !r.End.IsZero() {
		r.Talk = nonNegative(r.End.Sub(r.Connected))
	}
	if r.Outcome == "" || (r.Outcome == OutcomeInProgress && !r.End.IsZero()) {
		switch {
		case r.End.IsZero():
			r.Outcome = OutcomeInProgress
		case !r.Connected.IsZero():
			r.Outcome = OutcomeCompleted
		case !r.QueueEnter.IsZero():
			r.Outcome = OutcomeAbandoned
		default:
			r.Outcome = OutcomeMenuHangup
		}
	}
}

func nonNegative(d time.Duration) time.Duration {
	return max(d, 0)
}
