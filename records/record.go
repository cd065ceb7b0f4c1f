package records

import (
	"time"

	"github.com/hotline-project/hotline/outcome"
)

// Outcome is how a call ended: the one call-outcome vocabulary, outcome.Call (the package
// outcome says what each means). The names below are the same values, kept for the records'
// own code and its readers.
type Outcome = outcome.Call

// Outcomes. A record is written with OutcomeInProgress when the call starts and with one of
// the others when it ends.
const (
	OutcomeInProgress    = outcome.InProgress
	OutcomeInterrupted   = outcome.Interrupted // see RecoverInterrupted
	OutcomeCompleted     = outcome.Completed
	OutcomeAbandoned     = outcome.Abandoned
	OutcomeMenuHangup    = outcome.MenuHangup
	OutcomeMessage       = outcome.Message
	OutcomeTransferred   = outcome.Transferred
	OutcomeFailed        = outcome.Failed
	OutcomeShutdown      = outcome.Shutdown
	OutcomeShutdownFatal = outcome.ShutdownFatal // Record.EndReason says which error
	OutcomeCancelled     = outcome.Cancelled
	OutcomeNoAck         = outcome.NoAck
	OutcomeSetupFailed   = outcome.SetupFailed
	// OutcomeRefused attempts are counted per minute in call_attempts, never a row each;
	// the reason column says why.
	OutcomeRefused = outcome.Refused
	// OutcomeQuickExit is a caller who ended the call with the quick-exit key
	// (safety.quick_exit_key), wherever they were: menus, hold, ringing or bridge.
	OutcomeQuickExit = outcome.QuickExit
)

// Outcomes lists every Outcome, for validation and documentation.
var Outcomes = outcome.Calls

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
