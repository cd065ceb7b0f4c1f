package queue

import (
	"fmt"
	"time"

	"github.com/hotline-project/hotline/outcome"
)

// State is an advocate's state.
type State uint8

// The advocate states.
const (
	Offline   State = iota // no registered phone, or logged out
	Available              // may be rung
	Ringing                // being rung for a call
	OnCall                 // connected to a caller
	WrapUp                 // finishing after a call; available when it ends
	Paused                 // logged in but not taking calls, with a reason
)

// States lists every State, for metrics that report all of them.
var States = [...]State{Offline, Available, Ringing, OnCall, WrapUp, Paused}

// String returns the state's name as used in metrics and the admin API, such as "on_call".
func (s State) String() string {
	switch s {
	case Offline:
		return "offline"
	case Available:
		return "available"
	case Ringing:
		return "ringing"
	case OnCall:
		return "on_call"
	case WrapUp:
		return "wrap_up"
	case Paused:
		return "paused"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Outcome is how a ring ended, as the driver reports it: outcome.Ring, the ring outcomes of
// the one vocabulary (package outcome). The zero Outcome is invalid.
type Outcome = outcome.Ring

// The ring outcomes, by their names in the engine.
const (
	Answered = outcome.RingAnswered // the advocate answered: the call is theirs
	NoAnswer = outcome.RingNoAnswer // the phone rang out on its own (the engine's timeout is usually first)
	Busy     = outcome.RingBusy     // 486/600 or the like
	Rejected = outcome.RingRejected // the advocate declined (603)
	Failed   = outcome.RingFailed   // the phone could not be reached
)

// Action is something the driver must do, outside the engine's lock: Ring, CancelRing or
// Connect. Execute a call's actions in the order returned.
type Action interface{ action() }

// Ring asks the driver to ring Advocate's phone for Call. The driver reports exactly one
// RingResult, unless the engine cancels the ring first (CancelRing), after which it must
// not. Deadline is when the engine will give up (Tick); the driver need not time it.
type Ring struct {
	Call, Advocate, Queue string
	Deadline              time.Time
}

// CancelRing asks the driver to stop ringing Advocate's phone for Call. The ring is over
// for the engine: a later RingResult for it returns ErrNoRing.
type CancelRing struct {
	Call, Advocate string
}

// Connect tells the driver that Advocate answered Call: bridge the two legs. When the
// call ends, on either side, report CallEnded.
type Connect struct {
	Call, Advocate, Queue string
	Waited                time.Duration // from arrival to answer
}

func (Ring) action()       {}
func (CancelRing) action() {}
func (Connect) action()    {}

// Caller is a call to put in a queue.
type Caller struct {
	ID       string // the driver's opaque id for the call; unique among live calls
	Queue    string // a queue's name
	Language string // the caller's language, such as "es"; "" for any
	Priority int    // higher is answered first
	// Since is when the caller first queued, for a caller coming back to the queues
	// (their wait counts from then). Zero means the time of Enqueue.
	Since time.Time
	// Advocate, when set, is the only advocate who may take the call, whatever the queue's
	// languages (a warm transfer to a named advocate); the queue gives the ring timeout and
	// wrap-up.
	Advocate string
}

// Config is the engine's configuration: queues and advocates, and how estimates are made.
type Config struct {
	Queues    []QueueConfig
	Advocates []AdvocateConfig
	// HandleTimeSamples is how many of a queue's recent calls the handle time (talk plus
	// wrap-up) behind EstimatedWait is averaged over; 0 means 20.
	HandleTimeSamples int
}

// QueueConfig configures one queue.
type QueueConfig struct {
	Name      string
	Languages []string // at least one; an advocate who speaks one of them serves the queue
	RingAll   bool     // ring every eligible advocate at once, instead of the longest idle
	// RingTimeout is how long an advocate is rung before the engine gives up; over 0.
	RingTimeout time.Duration
	// WrapUp is how long an advocate stays in wrap-up after a call of this queue; 0 for none.
	WrapUp time.Duration
	// MaxMisses is how many misses in a row (no answer, busy, rejected, failed) pause an
	// advocate; 0 never pauses.
	MaxMisses int
}

// AdvocateConfig configures one advocate.
type AdvocateConfig struct {
	ID        string // how SIP registrations, feature codes and the admin API name them
	Name      string // display name
	Languages []string
}

// defaultHandleTimeSamples is HandleTimeSamples when 0.
const defaultHandleTimeSamples = 20

// check validates c, reporting the first problem by position and name.
func (c *Config) check() error {
	if c.HandleTimeSamples < 0 {
		return fmt.Errorf("%w: handle time samples must not be negative, got %d", ErrConfig, c.HandleTimeSamples)
	}
	queues := make(map[string]bool, len(c.Queues))
	for i, q := range c.Queues {
		where := fmt.Sprintf("queues[%d] %q", i, q.Name)
		switch {
		case q.Name == "":
			return fmt.Errorf("%w: queues[%d]: name required", ErrConfig, i)
		case queues[q.Name]:
			return fmt.Errorf("%w: %s: duplicate name", ErrConfig, where)
		case q.RingTimeout <= 0:
			return fmt.Errorf("%w: %s: ring timeout must be more than 0, got %v", ErrConfig, where, q.RingTimeout)
		case q.WrapUp < 0:
			return fmt.Errorf("%w: %s: wrap-up must not be negative, got %v", ErrConfig, where, q.WrapUp)
		case q.MaxMisses < 0:
			return fmt.Errorf("%w: %s: max misses must not be negative, got %d", ErrConfig, where, q.MaxMisses)
		}
		if err := checkLanguages(q.Languages); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrConfig, where, err)
		}
		queues[q.Name] = true
	}
	advocates := make(map[string]bool, len(c.Advocates))
	for i, a := range c.Advocates {
		where := fmt.Sprintf("advocates[%d] %q", i, a.ID)
		switch {
		case a.ID == "":
			return fmt.Errorf("%w: advocates[%d]: id required", ErrConfig, i)
		case advocates[a.ID]:
			return fmt.Errorf("%w: %s: duplicate id", ErrConfig, where)
		}
		if err := checkLanguages(a.Languages); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrConfig, where, err)
		}
		advocates[a.ID] = true
	}
	return nil
}

func checkLanguages(langs []string) error {
	if len(langs) == 0 {
		return fmt.Errorf("at least one language required")
	}
	for _, l := range langs {
		if l == "" {
			return fmt.Errorf("empty language")
		}
	}
	return nil
}
