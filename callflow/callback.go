package callflow

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hotline-project/hotline/callback"
	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/queue"
	"github.com/hotline-project/hotline/routing"
)

// Safe callbacks (issue 16, part 3; README "Safe callbacks"). A waiting caller whose
// queue offers it (queues[].callback) may ask, by key press, to be called back instead of
// waiting (callback_dialog.go). The request is kept here, and in a CallbackStore that
// survives a restart, with the number sealed (AES-256-GCM, package callback): it is opened
// only to be dialled and to be masked for the admin API, and never logged or counted.
//
// Within its window, a request whose next try is due joins its queue in the queue engine
// as a call of its own kind (an id starting "cb-"), with callback.priority against live
// callers, and is served like them by advocates who speak its language. Advocate first:
// the advocate's phone rings; on answer they hear a whisper ("callback, Spanish, needs
// help now") and the server dials the number (callback_attempt.go).

// CallbackRequest is a pending callback. Its fields are those of state.Callback, so that
// the store converts one to the other.
type CallbackRequest struct {
	ID       string
	Queue    string
	Line     string
	Language string
	Reason   string
	Priority int
	Hash     string // the caller's keyed hash (as records keep it); "" when withheld
	KeyID    string // the key that sealed the number
	Sealed   []byte // the number, sealed for ID under KeyID
	Consent  bool   // the caller agreed that the hotline may be named
	Created  time.Time
	Opens    time.Time // the window's start
	Expires  time.Time // the window's end
	Next     time.Time // the next try, not before
	Attempts int
	Last     string // how the last try ended
}

// due is when the request may next be tried.
func (r *CallbackRequest) due() time.Time {
	if r.Next.After(r.Opens) {
		return r.Next
	}
	return r.Opens
}

// CallbackStore keeps pending callbacks across a restart; nil keeps them in memory only.
type CallbackStore interface {
	Put(r CallbackRequest)
	Delete(id string)
}

// Sealer seals and opens callbacks' numbers (callback.Keyring implements it).
type Sealer interface {
	Seal(id, number string) (keyID string, sealed []byte)
	Open(id, keyID string, sealed []byte) (string, error)
}

// CallbackMetrics counts callbacks by queue and event: offered, accepted, attempted,
// reached, expired, failed, cancelled. Never anything of the number.
type CallbackMetrics interface {
	Callback(queue, event string)
}

// The callback events counted.
const (
	cbOffered   = "offered"
	cbAccepted  = "accepted"
	cbAttempted = "attempted"
	cbReached   = "reached"
	cbExpired   = "expired"
	cbFailed    = "failed" // every try used up
	cbCancelled = "cancelled"
)

// MaxCallbacks bounds how many callbacks may be pending: past it, no more are offered
// (the callers keep waiting in their queues).
const MaxCallbacks = 10000

// callbackPrefix starts the queue-engine id of every callback.
const callbackPrefix = "cb-"

// callbacks holds the pending callbacks of a Flow.
type callbacks struct {
	mu       sync.Mutex
	pending  map[string]*pendingCallback
	wake     chan struct{}
	draining bool // no new tries: the server is draining (DrainCallbacks)
}

// pendingCallback is a request and, while it is in the queues or being tried, its call.
type pendingCallback struct {
	req    CallbackRequest
	active *Call              // queued or being tried; nil otherwise
	cancel context.CancelFunc // ends the active try's wait in the queue
}

func newCallbacks() *callbacks {
	return &callbacks{pending: map[string]*pendingCallback{}, wake: make(chan struct{}, 1)}
}

func (f *Flow) pokeCallbacks() {
	select {
	case f.cb.wake <- struct{}{}:
	default:
	}
}

// newCallbackID returns a random id that carries nothing of the caller.
func newCallbackID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return callbackPrefix + hex.EncodeToString(b)
}

// isCallback reports whether an engine call id is a callback's.
func isCallback(id string) bool { return strings.HasPrefix(id, callbackPrefix) }

// RestoreCallbacks puts back the callbacks pending before a restart (from the store);
// call it before RunCallbacks. Those whose window has ended are dropped.
func (f *Flow) RestoreCallbacks(rs []CallbackRequest) int {
	now := f.clock.Now()
	f.cb.mu.Lock()
	defer f.cb.mu.Unlock()
	n := 0
	for _, r := range rs {
		if !now.Before(r.Expires) {
			continue
		}
		f.cb.pending[r.ID] = &pendingCallback{req: r}
		n++
	}
	return n
}

// book keeps a new request: sealed, stored and counted.
func (f *Flow) book(r CallbackRequest, number string) {
	r.KeyID, r.Sealed = f.sealer.Seal(r.ID, number)
	f.cb.mu.Lock()
	f.cb.pending[r.ID] = &pendingCallback{req: r}
	f.cb.mu.Unlock()
	f.cbStore.Put(r)
	f.cbMetrics.Callback(r.Queue, cbAccepted)
	f.pokeCallbacks()
}

// RunCallbacks puts each pending callback in its queue when its next try is due, and
// forgets those whose window ends first, until ctx ends.
func (f *Flow) RunCallbacks(ctx context.Context) error {
	for {
		next := f.callbackTick(ctx, f.clock.Now())
		t := timerAt(f.clock, next)
		select {
		case <-ctx.Done():
			stopTimer(t)
			f.cb.cancelWaits(false)
			return nil
		case <-f.cb.wake:
		case <-chanOf(t):
		}
		stopTimer(t)
	}
}

// callbackTick expires and activates what is due at now and returns when to look again
// (zero: when woken).
func (f *Flow) callbackTick(ctx context.Context, now time.Time) time.Time {
	f.cb.mu.Lock()
	var next time.Time
	var expired []CallbackRequest
	var due []*pendingCallback
	for id, p := range f.cb.pending {
		if p.active != nil {
			continue // its try watches the window's end itself
		}
		if f.cb.draining && now.Before(p.req.Expires) {
			continue // kept in the store for after the restart
		}
		switch {
		case !now.Before(p.req.Expires):
			delete(f.cb.pending, id)
			expired = append(expired, p.req)
			continue
		case !now.Before(p.req.due()):
			due = append(due, p)
			continue
		}
		at := p.req.due()
		if next.IsZero() || at.Before(next) {
			next = at
		}
		if p.req.Expires.Before(next) {
			next = p.req.Expires
		}
	}
	f.cb.mu.Unlock()
	for _, r := range expired {
		f.callbackGone(r, cbExpired, "the callback's window ended before the caller was reached")
	}
	// Oldest first, so that the engine's order among equal priorities is theirs.
	slices.SortFunc(due, func(a, b *pendingCallback) int { return a.req.Created.Compare(b.req.Created) })
	for _, p := range due {
		f.activate(ctx, p)
	}
	return next
}

// callbackGone forgets a request for good: deleted from the store and counted.
func (f *Flow) callbackGone(r CallbackRequest, event, why string) {
	f.cbStore.Delete(r.ID)
	f.cbMetrics.Callback(r.Queue, event)
	f.log.Info("callback "+event, "callback", r.ID, "queue", r.Queue, "attempts", r.Attempts, "why", why)
}

// activate puts a due request in its queue, as a call with no leg yet, and starts its
// try on its own goroutine.
func (f *Flow) activate(ctx context.Context, p *pendingCallback) {
	snap := f.live.Load()
	r := p.req
	if !snap.hasQueue(r.Queue) {
		f.cb.mu.Lock()
		delete(f.cb.pending, r.ID)
		f.cb.mu.Unlock()
		f.callbackGone(r, cbFailed, "its queue is no longer configured")
		return
	}
	now := f.clock.Now()
	c := &Call{
		f: f, ID: r.ID, rec: noRecord{}, snap: snap, hash: r.Hash,
		log:      f.log.With("callback", r.ID, "line", r.Line),
		attrs:    routingAttrs(r),
		since:    r.Created,
		rings:    map[string]*ringHandle{},
		lastRing: map[string]time.Time{},
		answered: make(chan answer, 1),
		rerouted: make(chan *reroute, 1),
	}
	c.dec.Priority = r.Priority
	tctx, cancel := context.WithCancel(ctx)
	f.cb.mu.Lock()
	if f.cb.pending[r.ID] != p || p.active != nil || f.cb.draining {
		// Cancelled (or the server began draining) since the tick found it due.
		f.cb.mu.Unlock()
		cancel()
		return
	}
	p.active, p.cancel = c, cancel
	f.cb.mu.Unlock()
	if f.records != nil {
		// Each try is a record of its own (route "callback"); it holds no number, and not
		// even the caller's hash (records hash what they are given: nothing here).
		c.rec = f.records.Begin(fmt.Sprintf("%s-%d", r.ID, r.Attempts+1), r.Line, "", now)
		c.rec.Menus(r.Language, r.Reason)
		c.rec.Routed("callback", r.Queue)
	}
	f.mu.Lock()
	c.queue = r.Queue
	f.calls[c.ID] = c
	f.mu.Unlock()
	c.rec.Queued(r.Queue, now)
	acts, err := f.eng.Enqueue(queue.Caller{ID: c.ID, Queue: r.Queue, Language: r.Language, Priority: r.Priority, Since: r.Created}, now)
	if err != nil {
		c.log.Error("cannot queue the callback", "queue", r.Queue, "err", err)
	}
	c.log.Info("callback queued", "queue", r.Queue, "priority", r.Priority, "attempt", r.Attempts+1)
	f.exec(acts)
	go f.try(tctx, p, c)
}

// CallbackInfo is a pending callback as the admin API shows it: the number masked to
// its last two digits at most.
type CallbackInfo struct {
	ID       string    `json:"id"`
	Queue    string    `json:"queue"`
	Language string    `json:"language"`
	Number   string    `json:"number"` // masked
	Consent  bool      `json:"consent"`
	Created  time.Time `json:"created"`
	Opens    time.Time `json:"opens"`
	Expires  time.Time `json:"expires"`
	Next     time.Time `json:"next"`
	Attempts int       `json:"attempts"`
	Last     string    `json:"last,omitempty"`
	State    string    `json:"state"` // scheduled, queued or calling
}

// Callbacks lists the pending callbacks, oldest first, numbers masked.
func (f *Flow) Callbacks() []CallbackInfo {
	f.cb.mu.Lock()
	defer f.cb.mu.Unlock()
	out := make([]CallbackInfo, 0, len(f.cb.pending))
	for _, p := range f.cb.pending {
		r := p.req
		masked := "••"
		if n, err := f.sealer.Open(r.ID, r.KeyID, r.Sealed); err == nil {
			masked = callback.Mask(n)
		}
		st := "scheduled"
		if p.active != nil {
			st = "queued"
			f.mu.Lock()
			if p.active.talking.leg != nil {
				st = "calling"
			}
			f.mu.Unlock()
		}
		out = append(out, CallbackInfo{ID: r.ID, Queue: r.Queue, Language: r.Language, Number: masked,
			Consent: r.Consent, Created: r.Created, Opens: r.Opens, Expires: r.Expires, Next: r.due(),
			Attempts: r.Attempts, Last: r.Last, State: st})
	}
	slices.SortFunc(out, func(a, b CallbackInfo) int { return a.Created.Compare(b.Created) })
	return out
}

// ErrNoCallback means no pending callback has the id.
var ErrNoCallback = errors.New("no such callback")

// CancelCallback forgets a pending callback (the admin API): one waiting in its queue
// leaves it; one being tried is not cut off, but is not tried again.
func (f *Flow) CancelCallback(id string) error {
	return f.cancelCallback(id, "cancelled through the admin API")
}

// cancelCallback forgets a pending callback for good, counted as cancelled.
func (f *Flow) cancelCallback(id, why string) error {
	f.cb.mu.Lock()
	p, ok := f.cb.pending[id]
	if ok {
		delete(f.cb.pending, id)
	}
	f.cb.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoCallback, id)
	}
	if p.cancel != nil {
		p.cancel()
	}
	f.callbackGone(p.req, cbCancelled, why)
	f.pokeCallbacks()
	return nil
}

// callbackSettings are the callback section of the configuration in force.
func (f *Flow) callbackSettings() *config.Callback { return &f.live.Load().Config.Callback }

// noCallbackStore keeps nothing: the callbacks pending live in memory only.
type noCallbackStore struct{}

func (noCallbackStore) Put(CallbackRequest) {}
func (noCallbackStore) Delete(string)       {}

// routingAttrs are a callback's attributes as routing and the whisper see them.
func routingAttrs(r CallbackRequest) routing.Attrs {
	return routing.Attrs{Line: r.Line, Language: r.Language, Reason: r.Reason}
}

// forgetCallback drops a callback booked by a caller who was put through to an advocate
// as it was booked (id "" does nothing): it is not counted as cancelled.
func (f *Flow) forgetCallback(id string) {
	if id == "" {
		return
	}
	f.cb.mu.Lock()
	delete(f.cb.pending, id)
	f.cb.mu.Unlock()
	f.cbStore.Delete(id)
}

// PendingCallbacks is how many callbacks are pending, for the metrics.
func (f *Flow) PendingCallbacks() int {
	f.cb.mu.Lock()
	defer f.cb.mu.Unlock()
	return len(f.cb.pending)
}

// DrainCallbacks stops making callbacks, for a server that is draining: no new try
// starts, those still waiting in their queue leave it (they stay pending, in the store,
// for after the restart), and those in a call go on (CallbacksInProgress counts them).
func (f *Flow) DrainCallbacks() { f.cb.cancelWaits(true) }

// cancelWaits ends the wait in its queue of every callback being tried (a try whose
// advocate has answered is not cut off by it); drain also stops new tries.
func (cb *callbacks) cancelWaits(drain bool) {
	cb.mu.Lock()
	if drain {
		cb.draining = true
	}
	var waiting []context.CancelFunc
	for _, p := range cb.pending {
		if p.cancel != nil {
			waiting = append(waiting, p.cancel)
		}
	}
	cb.mu.Unlock()
	for _, cancel := range waiting {
		cancel()
	}
}

// CallbacksInProgress is how many callbacks are queued or in a call now.
func (f *Flow) CallbacksInProgress() int {
	f.cb.mu.Lock()
	defer f.cb.mu.Unlock()
	n := 0
	for _, p := range f.cb.pending {
		if p.active != nil {
			n++
		}
	}
	return n
}
