package callflow

import (
	"context"
	"sync"
	"time"

	"github.com/hotline-project/hotline/routing"
)

// Place is a waiting caller's place in line, kept after their call dropped (safety.
// keep_place): the queue they were in, when they first queued (the queue engine orders
// callers by priority, then by that time) and the routing decision (priority, overflow
// steps) and attributes they were queued with. It holds nothing of the caller's number.
type Place struct {
	Queue string
	Since time.Time
	Dec   routing.Decision
	Attrs routing.Attrs
}

// Places keeps the places of callers whose calls dropped while waiting, by the keyed
// hash of the caller's number, until their window ends. MemoryPlaces keeps them in
// memory; a store that survives a restart can replace it.
type Places interface {
	// Keep holds p for the caller hashed as key until until; a place already held for
	// key is replaced.
	Keep(ctx context.Context, key string, p Place, until time.Time) error
	// Take returns the caller's place if it is held and its window has not ended at
	// now, and forgets it: a place is used once.
	Take(ctx context.Context, key string, now time.Time) (Place, bool, error)
	// Expire forgets every place whose window ended by now and returns how many.
	Expire(ctx context.Context, now time.Time) (int, error)
}

// MaxPlaces bounds how many places MemoryPlaces holds; past it, the one whose window
// ends first is forgotten.
const MaxPlaces = 10000

// MemoryPlaces is Places in memory: a restart forgets every place.
type MemoryPlaces struct {
	mu     sync.Mutex
	places map[string]heldPlace
}

type heldPlace struct {
	p     Place
	until time.Time
}

// NewMemoryPlaces returns an empty MemoryPlaces.
func NewMemoryPlaces() *MemoryPlaces { return &MemoryPlaces{places: map[string]heldPlace{}} }

// Keep implements Places.
func (m *MemoryPlaces) Keep(_ context.Context, key string, p Place, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.places[key]; !ok && len(m.places) >= MaxPlaces {
		var first string
		for k, h := range m.places {
			if first == "" || h.until.Before(m.places[first].until) {
				first = k
			}
		}
		delete(m.places, first)
	}
	m.places[key] = heldPlace{p: p, until: until}
	return nil
}

// Take implements Places.
func (m *MemoryPlaces) Take(_ context.Context, key string, now time.Time) (Place, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.places[key]
	if !ok || !now.Before(h.until) {
		return Place{}, false, nil
	}
	delete(m.places, key)
	return h.p, true, nil
}

// Expire implements Places.
func (m *MemoryPlaces) Expire(_ context.Context, now time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k, h := range m.places {
		if !now.Before(h.until) {
			delete(m.places, k)
			n++
		}
	}
	return n, nil
}

// Len is how many places are held (expired ones included until Expire).
func (m *MemoryPlaces) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.places)
}

// expirePlaces forgets places whose window ended and counts them.
func (f *Flow) expirePlaces(ctx context.Context) {
	n, err := f.places.Expire(ctx, f.clock.Now())
	if err != nil {
		f.log.Warn("kept places not expired", "err", err)
	}
	for range n {
		f.safety.PlaceKept("expired")
	}
}

// restorePlace gives a caller who calls again within the window the place their dropped
// call held. Withheld and anonymous callers (no hash) never match.
func (c *Call) restorePlace(ctx context.Context) (Place, bool) {
	f := c.f
	if c.hash == "" || c.snap.Config.Safety.KeepPlace <= 0 {
		return Place{}, false
	}
	f.expirePlaces(ctx)
	p, ok, err := f.places.Take(ctx, c.hash, f.clock.Now())
	if err != nil {
		c.log.Warn("kept place not looked up", "err", err)
		return Place{}, false
	}
	if !ok {
		return Place{}, false
	}
	if !c.snap.hasQueue(p.Queue) {
		// A reload removed the queue meanwhile: the caller goes through the menus.
		c.log.Info("kept place dropped: its queue is gone", "queue", p.Queue)
		return Place{}, false
	}
	f.safety.PlaceKept("restored")
	return p, true
}

// keepPlace holds the place of a caller whose call dropped while waiting, for the
// window configured when it dropped. A quick exit keeps nothing.
func (c *Call) keepPlace(ctx context.Context) {
	f := c.f
	window := f.live.Load().Config.Safety.KeepPlace
	if c.hash == "" || window <= 0 || c.quitted() || f.stopping() {
		return
	}
	now := f.clock.Now()
	f.expirePlaces(ctx)
	p := Place{Queue: c.currentQueue(), Since: c.since, Dec: c.dec, Attrs: c.attrs}
	if err := f.places.Keep(ctx, c.hash, p, now.Add(window)); err != nil {
		c.log.Warn("place not kept", "err", err)
		return
	}
	c.keptOnDrop = true
	f.safety.PlaceKept("held")
	c.log.Info("the caller's call dropped while waiting; their place is kept", "queue", p.Queue, "window", window)
}

// holdWhileWaiting writes a waiting caller's place to the place store as they start to
// wait, not only when their call drops: a node that dies (SIGKILL, a power cut) reports no
// drop, and the caller who calls again (in a cluster, through another node; alone, after
// the restart) must still find their place. It reports whether it wrote one, which
// releaseWaitingPlace takes back when the wait ends other than by a drop. Not counted in
// hotline_kept_places_total: only a drop holds a place for that metric.
func (c *Call) holdWhileWaiting(ctx context.Context) bool {
	f := c.f
	window := f.live.Load().Config.Safety.KeepPlace
	if c.hash == "" || window <= 0 || c.quitted() {
		return false
	}
	p := Place{Queue: c.currentQueue(), Since: c.since, Dec: c.dec, Attrs: c.attrs}
	if err := f.places.Keep(context.WithoutCancel(ctx), c.hash, p, f.clock.Now().Add(window)); err != nil {
		c.log.Warn("waiting place not written", "err", err)
		return false
	}
	return true
}

// releaseWaitingPlace forgets the place holdWhileWaiting wrote (held) unless keepPlace
// kept it as the call dropped: the caller was answered, sent on, booked a callback, quit,
// or the server stopped.
func (c *Call) releaseWaitingPlace(held bool) {
	if !held || c.keptOnDrop {
		return
	}
	if _, _, err := c.f.places.Take(context.WithoutCancel(c.leg.Context()), c.hash, c.f.clock.Now()); err != nil {
		c.log.Warn("waiting place not released", "err", err)
	}
}
