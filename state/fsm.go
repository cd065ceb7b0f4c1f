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
	Callbacks map[string]Callback            `json:"callbacks"`
}

// newState returns an empty State.
func newState() State {
	return State{Version: Version, Bindings: map[string][]registrar.Binding{},
		Advocates: map[string]Advocate{}, Slots: map[string]Slot{}, Callbacks: map[string]Callback{}}
}

// clone copies s; slices held in it are never changed in place, so they are shared.
func (s State) clone() State {
	c := s
	c.Bindings = maps.Clone(s.Bindings)
	c.Advocates = maps.Clone(s.Advocates)
	c.Slots = maps.Clone(s.Slots)
	c.Callbacks = maps.Clone(s.Callbacks)
	c.Overrides = slices.Clone(s.Overrides)
	return c
}

// apply applies e to s. It is deterministic: the only time it knows is e.At, and what has
// ended by then (bindings, overrides, slots) is dropped.
func (s *State) apply(e Entry) {
	if e.At.After(s.At) {
		s.At = e.At
	}
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
		case KindCallback:
			if op.Delete {
				delete(s.Callbacks, op.Callback.ID)
			} else {
				s.Callbacks[op.Callback.ID] = *op.Callback
			}
		}
	}
	s.expire(s.At)
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
	for k, sl := range s.Slots {
		if !sl.Expires.After(now) {
			delete(s.Slots, k)
		}
	}
	for id, cb := range s.Callbacks {
		if !cb.Expires.After(now) {
			delete(s.Callbacks, id)
		}
	}
}

// FSM is the raft state machine over State. Its methods are safe for concurrent use.
type FSM struct {
	mu    sync.Mutex
	st    State
	index uint64 // of the last log entry applied
	// onErr is told of an entry that did not decode (it is skipped, on every node alike).
	onErr func(index uint64, err error)
}

// NewFSM returns an FSM with an empty State.
func NewFSM() *FSM { return &FSM{st: newState()} }

// State returns a copy of the state and the index of the last entry applied.
func (f *FSM) State() (State, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.clone(), f.index
}

// Apply applies a committed log entry; it returns nil or the entry's decoding error.
func (f *FSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index = l.Index
	if l.Type != raft.LogCommand {
		return nil
	}
	e, err := Decode(l.Data)
	if err != nil {
		if f.onErr != nil {
			f.onErr(l.Index, err)
		}
		return err
	}
	f.st.apply(e)
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
	if st.Callbacks == nil {
		st.Callbacks = map[string]Callback{}
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
