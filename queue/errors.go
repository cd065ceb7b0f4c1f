package queue

import "errors"

// Errors returned by the Engine, wrapped with context; test them with errors.Is.
var (
	// ErrConfig means a Config was rejected; the engine kept its previous configuration.
	ErrConfig = errors.New("invalid queue configuration")
	// ErrUnknownQueue means no (current) queue has the name.
	ErrUnknownQueue = errors.New("unknown queue")
	// ErrUnknownAdvocate means no configured advocate has the id.
	ErrUnknownAdvocate = errors.New("unknown advocate")
	// ErrUnknownCall means no waiting or connected call has the id.
	ErrUnknownCall = errors.New("unknown call")
	// ErrDuplicateCall means a call with the id is already queued or connected.
	ErrDuplicateCall = errors.New("call already queued")
	// ErrNotWaiting means the call is connected, not waiting.
	ErrNotWaiting = errors.New("call is not waiting")
	// ErrNoRing means the advocate is not being rung for the call: the ring was cancelled,
	// timed out or already reported. If the driver's leg was answered anyway, it must hang
	// that leg up.
	ErrNoRing = errors.New("no such ring")
	// ErrBadOutcome means a RingResult carried an Outcome that is not one of the constants.
	ErrBadOutcome = errors.New("invalid ring outcome")
	// ErrNotRegistered means the advocate has no registered phone, so cannot be available.
	ErrNotRegistered = errors.New("advocate not registered")
)
