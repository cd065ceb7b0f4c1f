package state

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hotline-project/hotline/registrar"
	"github.com/hotline-project/hotline/routing"
)

// State is the replicated state: what a restarted node starts from.
type State struct {
	Version   int                            `json:"v"`
	At        time.Time                      `json:"at"` // of the last entry applied
	Bindings  map[string][]registrar.Binding `json:"bindings"`
	Advocates map[string]Advocate            `json:"advocates"`
	Overrides []routing.Override             `json:"overrides"`
	Slots     map[string]Slot                `json:"slots"`
	Claims    map[string]Claim               `json:"claims,omitempty"`  // by advocate
	Waiting   map[string]Waiter              `json:"waiting,omitempty"` // by call
	Callbacks map[string]Callback            `json:"callbacks"`
	// CallbackNodes names the node that booked each callback (the entry's), which alone
	// runs it: another node of a cluster restarting does not call the caller back too.
	CallbackNodes map[string]string `json:"callback_nodes,omitempty"`
}

// newState returns an empty State.
func newState() State {
	return State{Version: Version, Bindings: map[string][]registrar.Binding{},
		Advocates: map[string]Advocate{}, Slots: map[string]Slot{}, Claims: map[string]Claim{}, Waiting: map[string]Waiter{},
		Callbacks: map[string]Callback{}, CallbackNodes: map[string]string{}}
}

// clone copies s; slices held in it are never changed in place, so they are shared.
func (s State) clone() State {
	c := s
	c.Bindings = maps.Clone(s.Bindings)
	c.Advocates = maps.Clone(s.Advocates)
	c.Slots = maps.Clone(s.Slots)
	c.Claims = maps.Clone(s.Claims)
	c.Waiting = maps.Clone(s.Waiting)
	c.Callbacks = maps.Clone(s.Callbacks)
	c.CallbackNodes = maps.Clone(s.CallbackNodes)
	c.Overrides = slices.Clone(s.Overrides)
	return c
}

// apply applies e to s. It is deterministic: the only time it knows is e.At, and what has
// ended by then (bindings, overrides, slots, claims) is dropped. refused reports a claim
// of e's not granted.
func (s *State) apply(e Entry) (refused bool) {
	if e.At.After(s.At) {
		s.At = e.At
	}
	if s.Claims == nil {
		s.Claims = map[string]Claim{}
	}
	if s.Waiting == nil {
		s.Waiting = map[string]Waiter{}
	}
	s.expire(s.At)
	for _, op := range e.Ops {
		switch op.Kind {
		case KindBindings:
			if len(op.Bindings) == 0 {
				delete(s.Bindings, op.AOR)
			} else {
				s.Bindings[op.AOR] = slices.Clone(op.Bindings)
			}
		case KindAdvocate:
			s.Advocates[op.Advocate.ID] = *op.Advocate
		case KindOverrides:
			s.Overrides = slices.Clone(op.Overrides)
		case KindSlot:
			if op.Delete {
				delete(s.Slots, op.Slot.Key)
			} else {
				s.Slots[op.Slot.Key] = *op.Slot
			}
		case KindClaim:
			c := *op.Claim
			old, held := s.Claims[c.Advocate]
			if held && (old.Node != c.Node || old.Call != c.Call) {
				refused = true
				continue
			}
			if !held && s.aheadElsewhere(c) {
				refused = true
				continue
			}
			if c.Until.After(s.At) {
				s.Claims[c.Advocate] = c
			}
		case KindRelease:
			c := *op.Claim
			if old, ok := s.Claims[c.Advocate]; ok && old.Node == c.Node && old.Call == c.Call {
				delete(s.Claims, c.Advocate)
			}
		case KindReleaseNode:
			node := op.Claim.Node
			maps.DeleteFunc(s.Claims, func(_ string, c Claim) bool { return c.Node == node })
			maps.DeleteFunc(s.Waiting, func(_ string, w Waiter) bool { return w.Node == node })
		case KindWait:
			if op.Delete {
				if w, ok := s.Waiting[op.Waiter.Call]; ok && w.Node == op.Waiter.Node {
					delete(s.Waiting, op.Waiter.Call)
				}
			} else {
				s.Waiting[op.Waiter.Call] = *op.Waiter
			}
		case KindCallback:
			if op.Delete {
				delete(s.Callbacks, op.Callback.ID)
				delete(s.CallbackNodes, op.Callback.ID)
			} else {
				s.Callbacks[op.Callback.ID] = *op.Callback
				if e.Node != "" {
					if s.CallbackNodes == nil {
						s.CallbackNodes = map[string]string{}
					}
					s.CallbackNodes[op.Callback.ID] = e.Node
				}
			}
		}
	}
	s.expire(s.At)
	return refused
}

// expire drops what has ended by now.
func (s *State) expire(now time.Time) {
	for aor, bs := range s.Bindings {
		live := slices.DeleteFunc(slices.Clone(bs), func(b registrar.Binding) bool { return !b.Expires.After(now) })
		if len(live) == 0 {
			delete(s.Bindings, aor)
		} else if len(live) != len(bs) {
			s.Bindings[aor] = live
		}
	}
	s.Overrides = slices.DeleteFunc(s.Overrides, func(o routing.Override) bool {
		return !o.Until.IsZero() && !now.Before(o.Until)
	})
	maps.DeleteFunc(s.Slots, func(_ string, sl Slot) bool { return !sl.Expires.After(now) })
	maps.DeleteFunc(s.Claims, func(_ string, c Claim) bool { return !c.Until.After(now) })
	maps.DeleteFunc(s.Waiting, func(_ string, w Waiter) bool { return !w.Until.After(now) })
	for id, cb := range s.Callbacks {
		if !cb.Expires.After(now) {
			delete(s.Callbacks, id)
			delete(s.CallbackNodes, id)
		}
	}
}

// aheadElsewhere reports whether a caller waits on another node ahead of c's call
// (higher priority, or as high and earlier), not being rung, whom c's advocate could take
// (serves their queue, and speaks their language when it is one of the queue's): then the
// advocate is theirs first. A claim without a queue has no place in line.
func (s *State) aheadElsewhere(c Claim) bool {
	if c.Queue == "" || len(s.Bindings[c.Advocate]) == 0 {
		// No place in line; or an advocate with no registration in the log (a phone in
		// the console's page, say), whom the other nodes cannot ring: no order to keep.
		return false
	}
	rung := map[string]bool{}
	for _, h := range s.Claims {
		rung[h.Call] = true
	}
	for _, w := range s.Waiting {
		if w.Node == c.Node || w.Call == c.Call || rung[w.Call] {
			continue
		}
		if w.Priority < c.Priority || (w.Priority == c.Priority && !w.Since.Before(c.Since)) {
			continue
		}
		if !slices.ContainsFunc(c.Languages, func(l string) bool { return slices.Contains(w.QueueLanguages, l) }) {
			continue
		}
		if w.Language != "" && slices.Contains(w.QueueLanguages, w.Language) && !slices.Contains(c.Languages, w.Language) {
			continue
		}
		return true
	}
	return false
}

// FSM is the raft state machine over State. Its methods are safe for concurrent use.
type FSM struct {
	mu    sync.Mutex
	st    State
	index uint64 // of the last log entry applied
	// onErr is told of an entry that did not decode (it is skipped, on every node alike).
	onErr func(index uint64, err error)
	// onApply, if set, is told of each entry applied, after the state has changed and
	// outside the lock, in log order (raft applies entries one at a time). It must not wait
	// for the store (Sync, Claim).
	onApply func(e Entry, index uint64)
}

// NewFSM returns an FSM with an empty State.
func NewFSM() *FSM { return &FSM{st: newState()} }

// State returns a copy of the state and the index of the last entry applied.
func (f *FSM) State() (State, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.clone(), f.index
}

// Bindings returns aor's bindings in the state (lapsed ones included until an entry's
// time passes them).
func (f *FSM) Bindings(aor string) []registrar.Binding {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.Bindings[aor]
}

// Claims returns a copy of the state's claims, by advocate (lapsed ones included until
// an entry's time passes them).
func (f *FSM) Claims() map[string]Claim {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.st.Claims)
}

// Apply applies a committed log entry; it returns nil or the entry's decoding error.
func (f *FSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	f.index = l.Index
	if l.Type != raft.LogCommand {
		f.mu.Unlock()
		return nil
	}
	e, err := Decode(l.Data)
	if err != nil {
		if f.onErr != nil {
			f.onErr(l.Index, err)
		}
		f.mu.Unlock()
		return err
	}
	refused := f.st.apply(e)
	f.mu.Unlock()
	if f.onApply != nil {
		f.onApply(e, l.Index)
	}
	if refused {
		return ErrClaimed
	}
	return nil
}

// Snapshot returns a copy of the state to persist.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return snapshot{f.st.clone()}, nil
}

// Restore replaces the state with a snapshot's.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st, err := decodeSnapshot(rc)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.st = st
	f.mu.Unlock()
	return nil
}

// decodeSnapshot reads a snapshot written by snapshot.Persist.
func decodeSnapshot(r io.Reader) (State, error) {
	st := newState()
	st.Version = 0 // a snapshot must say its version
	if err := json.NewDecoder(r).Decode(&st); err != nil {
		return State{}, fmt.Errorf("state: restore snapshot: %w", err)
	}
	if st.Version != Version {
		return State{}, fmt.Errorf("state: restore snapshot: %w %d", ErrVersion, st.Version)
	}
	if st.Bindings == nil {
		st.Bindings = map[string][]registrar.Binding{}
	}
	if st.Advocates == nil {
		st.Advocates = map[string]Advocate{}
	}
	if st.Slots == nil {
		st.Slots = map[string]Slot{}
	}
	if st.Claims == nil {
		st.Claims = map[string]Claim{}
	}
	if st.Waiting == nil {
		st.Waiting = map[string]Waiter{}
	}
	if st.Callbacks == nil {
		st.Callbacks = map[string]Callback{}
	}
	if st.CallbackNodes == nil {
		st.CallbackNodes = map[string]string{}
	}
	return st, nil
}

type snapshot struct{ st State }

// Persist writes the state as JSON.
func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(s.st); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("state: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (snapshot) Release() {}
