package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hotline-project/hotline/registrar"
	"github.com/hotline-project/hotline/routing"
)

// Version is the encoding version of log entries and snapshots this code writes and reads.
const Version = 1

// Kind is what an Op changes.
type Kind string

// The kinds of Op. New kinds may be added; an entry with a kind
// this code does not know is refused by Decode, so that an old node never half-applies a
// newer node's entry.
const (
	// KindBindings replaces one advocate's registrations (AOR, Bindings; none removes them).
	KindBindings Kind = "bindings"
	// KindAdvocate replaces one advocate's state (Advocate).
	KindAdvocate Kind = "advocate"
	// KindOverrides replaces the set of emergency overrides (Overrides).
	KindOverrides Kind = "overrides"
	// KindSlot sets (Slot) or, with Delete, removes a caller's "keep my place" slot.
	KindSlot Kind = "slot"
	// KindClaim claims an advocate for one call on one node (Claim): granted unless the
	// advocate holds a live claim for another call; refused, the entry's answer is
	// ErrClaimed. A node rings an advocate only after its claim is committed, so that one
	// advocate is never rung for two callers at once across the cluster.
	KindClaim Kind = "claim"
	// KindRelease gives up a claim (Claim: the advocate, node and call that hold it).
	KindRelease Kind = "release"
	// KindReleaseNode gives up every claim a node holds (Claim.Node): the node restarted,
	// so its calls are gone, or it was removed from the cluster.
	KindReleaseNode Kind = "release_node"
	// KindWait says a caller waits on a node (Waiter), for the order of claims across
	// nodes; a lease, renewed while they wait. With Delete, they no longer wait.
	KindWait Kind = "wait"
	// KindCallback sets (Callback) or, with Delete, removes a pending callback.
	KindCallback Kind = "callback"
)

// Claim is an advocate taken for a call on a node until Until (a lease: a node that
// dies holding it lets it lapse; a node that restarts gives up its own at once).
type Claim struct {
	Advocate string    `json:"advocate"`
	Node     string    `json:"node"`
	Call     string    `json:"call"`
	Until    time.Time `json:"until"`
	// The call's place in line and the advocate's languages, for the order across nodes:
	// a claim with a Queue is refused while a caller ahead of it waits on another node,
	// not being rung, whom the advocate could take. Without a Queue, no order applies.
	Queue     string    `json:"queue,omitempty"`
	Priority  int       `json:"priority,omitempty"`
	Since     time.Time `json:"since,omitzero"`
	Languages []string  `json:"languages,omitempty"`
}

// Waiter is a caller waiting on a node, known by an opaque call id only.
type Waiter struct {
	Call           string    `json:"call"`
	Node           string    `json:"node"`
	Queue          string    `json:"queue"`
	Language       string    `json:"language,omitempty"`
	QueueLanguages []string  `json:"queue_languages,omitempty"`
	Priority       int       `json:"priority,omitempty"`
	Since          time.Time `json:"since"`
	Until          time.Time `json:"until"`
}

// ErrClaimed is the answer to a claim of an advocate someone else holds.
var ErrClaimed = errors.New("state: advocate claimed for another call")

// Callback is a pending safe callback (issue 16, part 3). The number to call is only
// ever here encrypted (Sealed, AES-256-GCM under the key KeyID, the callback's ID as
// additional data); the caller is known by Hash, the keyed hash records keep. It is
// dropped once Expires has passed, and deleted when done or failed for good.
type Callback struct {
	ID       string `json:"id"`
	Queue    string `json:"queue"`
	Line     string `json:"line,omitempty"`
	Language string `json:"language,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Priority int    `json:"priority,omitempty"`
	Hash     string `json:"hash,omitempty"`
	// KeyID names the key of the callback key file that sealed the number.
	KeyID  string `json:"key_id"`
	Sealed []byte `json:"sealed"`
	// Consent: the caller agreed that the hotline may be named when they are called.
	Consent  bool      `json:"consent,omitempty"`
	Created  time.Time `json:"created"`
	Opens    time.Time `json:"opens"`   // the window's start
	Expires  time.Time `json:"expires"` // the window's end
	Next     time.Time `json:"next"`    // the next try, not before
	Attempts int       `json:"attempts,omitempty"`
	// Last is how the last try ended (busy, no_answer, no_key...), for the admin API.
	Last string `json:"last,omitempty"`
}

// Advocate is the part of an advocate's state that outlives a restart.
type Advocate struct {
	ID string `json:"id"`
	// Paused with PauseReason: not taking calls, and not when their phone registers again.
	Paused      bool   `json:"paused,omitempty"`
	PauseReason string `json:"pause_reason,omitempty"`
	// LoggedOut: registered but logged out (a feature code or the admin API).
	LoggedOut bool `json:"logged_out,omitempty"`
	// WrapUpEnds is when a wrap-up in progress ends; zero when none.
	WrapUpEnds time.Time `json:"wrap_up_ends,omitzero"`
}

// Slot is a caller's place in line kept across a restart ("keep my place"): the caller is
// known only by Key, a keyed hash, never by number.
type Slot struct {
	Key      string    `json:"key"`
	Queue    string    `json:"queue"`
	Priority int       `json:"priority,omitempty"`
	Since    time.Time `json:"since"`   // when they first queued
	Expires  time.Time `json:"expires"` // the place is given up after this
	// Place is the call flow's whole record of the place (its routing decision and
	// attributes), opaque here.
	Place json.RawMessage `json:"place,omitempty"`
}

// Op is one change.
type Op struct {
	Kind      Kind                `json:"kind"`
	AOR       string              `json:"aor,omitempty"`
	Bindings  []registrar.Binding `json:"bindings,omitempty"`
	Advocate  *Advocate           `json:"advocate,omitempty"`
	Overrides []routing.Override  `json:"overrides,omitempty"`
	Slot      *Slot               `json:"slot,omitempty"`
	Claim     *Claim              `json:"claim,omitempty"`
	Waiter    *Waiter             `json:"waiter,omitempty"`
	Callback  *Callback           `json:"callback,omitempty"`
	Delete    bool                `json:"delete,omitempty"`
}

// Entry is one log entry: changes made together, and when (the FSM's only clock).
type Entry struct {
	Version int       `json:"v"`
	At      time.Time `json:"at"`
	Node    string    `json:"node,omitempty"` // the node that wrote it
	Ops     []Op      `json:"ops"`
}

// Decoding errors.
var (
	ErrVersion = errors.New("state: unknown entry version")
	ErrEntry   = errors.New("state: malformed entry")
)

// Encode returns e's bytes for the log.
func Encode(e Entry) ([]byte, error) {
	e.Version = Version
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("state: encode entry: %w", err)
	}
	return b, nil
}

// Decode parses and checks a log entry; whatever it accepts, Apply can apply.
func Decode(b []byte) (Entry, error) {
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		return Entry{}, fmt.Errorf("%w: %w", ErrEntry, err)
	}
	if e.Version != Version {
		return Entry{}, fmt.Errorf("%w %d", ErrVersion, e.Version)
	}
	if e.At.IsZero() {
		return Entry{}, fmt.Errorf("%w: no time", ErrEntry)
	}
	for i, op := range e.Ops {
		if err := op.check(); err != nil {
			return Entry{}, fmt.Errorf("%w: ops[%d]: %w", ErrEntry, i, err)
		}
	}
	return e, nil
}

func (op Op) check() error {
	switch op.Kind {
	case KindBindings:
		if op.AOR == "" {
			return errors.New("bindings without an aor")
		}
		for _, b := range op.Bindings {
			if b.AOR != op.AOR || b.Contact == "" {
				return errors.New("binding of another aor, or without a contact")
			}
		}
	case KindAdvocate:
		if op.Advocate == nil || op.Advocate.ID == "" {
			return errors.New("advocate without an id")
		}
	case KindOverrides:
		for _, o := range op.Overrides {
			if err := o.Check(); err != nil {
				return fmt.Errorf("override: %w", err)
			}
		}
	case KindSlot:
		if op.Slot == nil || op.Slot.Key == "" || (!op.Delete && op.Slot.Queue == "") {
			return errors.New("slot without a key or queue")
		}
	case KindClaim, KindRelease:
		if op.Claim == nil || op.Claim.Advocate == "" || op.Claim.Node == "" || op.Claim.Call == "" {
			return errors.New("claim without an advocate, node or call")
		}
	case KindWait:
		if op.Waiter == nil || op.Waiter.Call == "" || op.Waiter.Node == "" || (!op.Delete && op.Waiter.Queue == "") {
			return errors.New("waiter without a call, node or queue")
		}
	case KindReleaseNode:
		if op.Claim == nil || op.Claim.Node == "" {
			return errors.New("release of no node")
		}
	case KindCallback:
		if op.Callback == nil || op.Callback.ID == "" || (!op.Delete && (op.Callback.Queue == "" || len(op.Callback.Sealed) == 0)) {
			return errors.New("callback without an id, queue or number")
		}
	default:
		return fmt.Errorf("unknown kind %q", op.Kind)
	}
	return nil
}
