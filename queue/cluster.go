package queue

import (
	"fmt"
	"slices"
	"time"
)

// The engine in a cluster of nodes (README "Cluster"). Every node runs its own engine
// with every advocate in it, and rings an advocate only after a claim committed to the
// cluster's log; the driver tells its engine three more things:
//
//   - Elsewhere: the advocate is taken by a call on another node (their claim is in the
//     log). They are not offered to this node's callers, a ring to them here is cancelled
//     without penalty, and when the claim ends they are available again.
//   - Unrung: the driver did not ring an advocate the engine chose (its claim was refused,
//     or could not be written). The ring ends without penalty; the caller tries the others
//     first, as after a miss, so a refused claim does not loop.
//   - Isolate: the node has lost the cluster's quorum, so it can claim nobody. Nobody is
//     rung, and RoutingState reports every queue unstaffed, so that callers are routed the
//     way a queue with nobody in it would route them (overflow to the backup center).

// Elsewhere reports that the advocate is (busy true) or is no longer (false) taken by a
// call on another node.
func (e *Engine) Elsewhere(id string, busy bool, now time.Time) ([]Action, error) {
	return e.locked(func() ([]Action, error) {
		a, err := e.advocate(id)
		if err != nil {
			return nil, fmt.Errorf("queue: elsewhere: %w", err)
		}
		if a.elsewhere == busy {
			return nil, nil
		}
		a.elsewhere = busy
		var acts []Action
		if r := a.ring; r != nil && busy {
			e.endRing(r)
			acts = append(acts, CancelRing{Call: r.call.ID, Advocate: a.ID})
		}
		e.settle(a, now)
		return e.dispatch(now, acts), nil
	})
}

// Unrung reports that the ring of advocate for callID was never made. It fails with
// ErrNoRing when there is no such ring (cancelled meanwhile).
func (e *Engine) Unrung(callID, advocateID string, now time.Time) ([]Action, error) {
	return e.locked(func() ([]Action, error) {
		a := e.advs[advocateID]
		if a == nil {
			return nil, fmt.Errorf("queue: unrung %q: %w %q", callID, ErrUnknownAdvocate, advocateID)
		}
		r := a.ring
		if r == nil || r.call.ID != callID {
			return nil, fmt.Errorf("queue: unrung %q for %q: %w", advocateID, callID, ErrNoRing)
		}
		c := r.call
		e.endRing(r)
		if !slices.Contains(c.missed, a) {
			c.missed = append(c.missed, a)
		}
		e.settle(a, now)
		return e.dispatch(now, nil), nil
	})
}

// Isolate stops (true) or resumes (false) ringing anyone, and reporting anyone staffed to
// routing. Resuming dispatches whoever waits.
func (e *Engine) Isolate(isolated bool, now time.Time) []Action {
	acts, _ := e.locked(func() ([]Action, error) {
		e.isolated = isolated
		return e.dispatch(now, nil), nil
	})
	return acts
}

// Isolated reports whether the engine is isolated.
func (e *Engine) Isolated() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.isolated
}

// Waiter is a waiting caller as another node of the cluster sees them (for the order of
// claims across nodes): nothing in it identifies the caller.
type Waiter struct {
	Call     string
	Queue    string
	Language string
	// QueueLanguages are the queue's languages (who may take the call).
	QueueLanguages []string
	Priority       int
	Since          time.Time // arrival, as the order uses it
	Ringing        bool      // an advocate is being rung for them
}

// Waiting returns the waiting callers in order (priority, then arrival).
func (e *Engine) Waiting() []Waiter {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Waiter, 0, len(e.waiting))
	for _, c := range e.waiting {
		var langs []string
		if q := e.queues[c.Queue]; q != nil {
			langs = slices.Clone(q.Languages)
		}
		out = append(out, Waiter{Call: c.ID, Queue: c.Queue, Language: c.Language, QueueLanguages: langs,
			Priority: c.Priority, Since: c.arrived, Ringing: len(c.rings) > 0})
	}
	return out
}
