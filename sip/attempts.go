package sip

import "github.com/hotline-project/hotline/outcome"

// Reasons AttemptObserver.CallRefused is given.
const (
	RefuseDraining      = "draining"       // the server is draining
	RefuseCapacity      = "capacity"       // sip.max_calls calls are in progress
	RefuseSourceCalls   = "source_calls"   // the source has as many calls as it may
	RefuseSourceRate    = "source_rate"    // the source is over its request rate
	RefuseNoMediaPort   = "no_media_port"  // no RTP port was free
	RefuseNotAcceptable = "not_acceptable" // no usable media in the offer (488, 415)
	RefuseUntrusted     = "untrusted"      // the untrusted sources' budget is full (defence.go)
	RefuseSourceUnacked = "source_unacked" // the source has as many unacknowledged calls as it may
	RefuseOverload      = "overload"       // overload control shed it (overload.go)
)

// AttemptObserver, when the Observer implements it, hears of every call attempt to a line
// that never reached the Handler, for the call records: refused at once, or set up and
// ended before it was answered. Implementations must be cheap and concurrency safe: a
// flood arrives through here.
type AttemptObserver interface {
	// CallRefused is an INVITE to line refused before a call was set up, and why (one of
	// the Refuse reasons).
	CallRefused(line, reason string)
	// CallUnanswered is a call set up on a line that ended before the Handler took it;
	// end is the leg outcome CallEnded gets (cancelled, no_ack, evicted, failed, shutdown,
	// caller_hangup).
	CallUnanswered(c *Call, end outcome.Leg)
}

// attemptRefused tells the AttemptObserver of a refused INVITE to line.
func (s *Server) attemptRefused(line, reason string) {
	if o, ok := s.opts.Observer.(AttemptObserver); ok && line != featureLine {
		o.CallRefused(line, reason)
	}
}

// attemptUnanswered tells the AttemptObserver of a call that ended unanswered.
func (s *Server) attemptUnanswered(c *Call, end outcome.Leg) {
	if o, ok := s.opts.Observer.(AttemptObserver); ok && c.Feature == "" {
		o.CallUnanswered(c, end)
	}
}
