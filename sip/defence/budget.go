package defence

import (
	"container/list"
	"errors"
	"net/netip"
	"sync"
)

// Reasons Budget.Admit refuses a call.
var (
	// ErrUntrusted means the untrusted sources' share of calls is taken by calls that have
	// been acknowledged.
	ErrUntrusted = errors.New("limit: the untrusted sources' calls are at their budget")
	// ErrUnacked means the source already has BudgetConfig.UnackedPerSource calls awaiting
	// their ACK.
	ErrUnacked = errors.New("limit: the source has too many unacknowledged calls")
)

// BudgetConfig sets what sources outside Config.Trusted may hold together. Its zero value
// limits nothing.
type BudgetConfig struct {
	// Calls is how many calls untrusted sources may have in progress together; 0 is no
	// limit. The rest of the server's calls stay for the trusted trunk.
	Calls int
	// Unacked is how many of those calls may be waiting for the ACK of their answer (or
	// still ringing) at once; 0 is no limit. When it is reached, a new call pushes out the
	// one that has waited longest.
	Unacked int
	// UnackedPerSource is how many calls one source may have waiting for their ACK; beyond
	// it the source's new calls are refused; 0 is no limit.
	UnackedPerSource int
}

// Budget bounds the calls of untrusted sources as a whole, so that INVITEs spread over many
// addresses, each under its own per-source limits, cannot take every call slot and media
// port (issue 14: 924 INVITEs from 231 addresses, never acknowledged, held all 450 ports).
//
// A call is admitted unacknowledged. A real phone acknowledges the answer within a round
// trip; an attacker who never does holds resources only until Unacked newer calls arrive,
// like the oldest half-open connection that a SYN-flood defence drops first. A call pushed
// out this way frees its place in the budget at once; its Ticket's Evicted channel tells
// the call to end. It is safe for concurrent use, and pure: no clock, no network.
type Budget struct {
	cfg BudgetConfig

	mu        sync.Mutex
	calls     int
	unacked   list.List // of *Ticket, oldest first
	perSource map[netip.Addr]int
}

// NewBudget returns a Budget for c.
func NewBudget(c BudgetConfig) (*Budget, error) {
	if c.Calls < 0 || c.Unacked < 0 || c.UnackedPerSource < 0 {
		return nil, errors.New("limit: negative budget")
	}
	return &Budget{cfg: c, perSource: map[netip.Addr]int{}}, nil
}

// Ticket is one untrusted call counted by a Budget, from Admit to Release.
type Ticket struct {
	b       *Budget
	src     netip.Addr
	elem    *list.Element // in b.unacked while unacknowledged; guarded by b.mu
	evicted chan struct{}
	counted bool // counts in b.calls; guarded by b.mu
	onEvict func()
}

// Admit counts a new call from src (a source not trusted), or refuses it with ErrUnacked
// or ErrUntrusted. It may push out the oldest unacknowledged call to make room. onEvict, if
// not nil, is called when this call is pushed out, under the Budget's lock: it must be
// quick and must not call the Budget (give back a counter, for example), so that what the
// call held is freed at once, not when its own goroutine gets round to it.
func (b *Budget) Admit(src netip.Addr, onEvict func()) (*Ticket, error) {
	k := Key(src)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cfg.UnackedPerSource > 0 && b.perSource[k] >= b.cfg.UnackedPerSource {
		return nil, ErrUnacked
	}
	if b.cfg.Unacked > 0 && b.unacked.Len() >= b.cfg.Unacked {
		b.evictOldestLocked()
	}
	if b.cfg.Calls > 0 && b.calls >= b.cfg.Calls {
		if b.unacked.Len() == 0 {
			return nil, ErrUntrusted
		}
		b.evictOldestLocked()
	}
	t := &Ticket{b: b, src: k, evicted: make(chan struct{}), counted: true, onEvict: onEvict}
	t.elem = b.unacked.PushBack(t)
	b.perSource[k]++
	b.calls++
	return t, nil
}

// evictOldestLocked pushes out the call that has waited longest for its ACK: it leaves
// the budget now, and its Evicted channel is closed.
func (b *Budget) evictOldestLocked() {
	e := b.unacked.Front()
	if e == nil {
		return
	}
	t := e.Value.(*Ticket)
	t.leaveUnackedLocked()
	if t.counted {
		t.counted = false
		b.calls--
	}
	close(t.evicted)
	if t.onEvict != nil {
		t.onEvict()
	}
}

func (t *Ticket) leaveUnackedLocked() {
	if t.elem == nil {
		return
	}
	t.b.unacked.Remove(t.elem)
	t.elem = nil
	if n := t.b.perSource[t.src]; n <= 1 {
		delete(t.b.perSource, t.src)
	} else {
		t.b.perSource[t.src] = n - 1
	}
}

// Acked records that the call was acknowledged: it can no longer be pushed out. It
// returns false, and does nothing, if the call was pushed out first (or released).
func (t *Ticket) Acked() bool {
	t.b.mu.Lock()
	defer t.b.mu.Unlock()
	if !t.counted {
		return false
	}
	t.leaveUnackedLocked()
	return true
}

// Evicted is closed when the call was pushed out of the budget by a newer one before it
// was acknowledged; the call must then end.
func (t *Ticket) Evicted() <-chan struct{} { return t.evicted }

// Release ends the call's count. It may be called more than once.
func (t *Ticket) Release() {
	t.b.mu.Lock()
	defer t.b.mu.Unlock()
	t.leaveUnackedLocked()
	if t.counted {
		t.counted = false
		t.b.calls--
	}
}

// Counts returns the untrusted calls in progress and how many of them are unacknowledged.
func (b *Budget) Counts() (calls, unacked int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls, b.unacked.Len()
}
