// Package queue holds the hotline's waiting callers and its advocates, and decides who is
// rung for whom. It has no network code, no goroutines and no clock of its own: the driver
// (cmd/hotline, with sip) feeds it events with the time they happened, executes the
// Actions it returns (ring a phone, cancel a ring, bridge a caller to an advocate) outside
// the engine's lock, and calls Tick at NextDeadline so ring timeouts and wrap-up ends happen.
//
// The rules:
//
//   - Callers wait in order of priority (higher first), then arrival. Each waiting caller
//     is offered to the longest-idle available advocate who can take the call: one who
//     serves the caller's queue (shares a language with it) and speaks the caller's
//     language. A caller whose language is not one of the queue's (routing sent them there
//     anyway, say by overflow) may go to any advocate who serves the queue, so that the
//     call still reaches a person. A caller who cannot be served yet does not hold up the
//     callers behind them.
//   - In a ring-all queue every eligible available advocate is rung at once, and an
//     advocate who becomes available while the caller still waits is rung too; the first
//     to answer wins and the other rings are cancelled.
//   - The engine owns ring timeouts: Tick turns a ring past its deadline into a no-answer
//     and returns a CancelRing for it. No-answer, busy, rejected and failed are misses: the
//     call moves on to the next advocate (the one who missed goes to the back of the idle
//     order), and MaxMisses misses in a row pause the advocate with the reason
//     "missed calls". An answer resets the count, and so does SetAvailable.
//   - A ring cancelled for reasons that are not the advocate's (the caller hung up, another
//     advocate answered, the call moved) costs the advocate nothing: they keep their place
//     in the idle order. An advocate who goes offline or pauses while ringing is not
//     counted as missing either; the caller keeps their place in the queue.
//   - After a call the advocate wraps up for the queue's WrapUp and is then available
//     again; SetAvailable ends wrap-up early. Pause and Logout during a call take effect
//     when the call ends (after wrap-up for Pause); during wrap-up, at once.
//   - Registration (AdvocateOnline) makes an advocate available, or paused if they were
//     paused; losing the last binding (AdvocateOffline) or Logout makes them offline.
//
// Events that do not fit the state (a RingResult for a ring already cancelled or timed
// out, an unknown call or advocate) return an error and change nothing. The driver must
// then tidy up on its side: for example, hang up an advocate's leg whose answer came too
// late (ErrNoRing).
//
// Files: types.go (Config, Caller, State, Outcome, Actions), engine.go (events and
// dispatch), reconfigure.go (hot reload), snapshot.go (Snapshot, RoutingState, Position,
// EstimatedWait), observer.go (the metrics hook), errors.go.
//
// Call ids are the driver's choice and appear in Actions and errors; use an opaque id,
// not a SIP Call-ID or anything that carries the caller's number.
package queue
