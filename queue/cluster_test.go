package queue_test

import (
	"errors"
	"testing"

	"github.com/hotline-project/hotline/queue"
)

// TestElsewhere: an advocate taken by a call on another node is not rung here; a ring
// here is cancelled without penalty when another node's claim wins; the end of the claim
// makes them available and rings them for who waits.
func TestElsewhere(t *testing.T) {
	e := newEngine(t, queue.Config{Queues: []queue.QueueConfig{q("en", "en")},
		Advocates: []queue.AdvocateConfig{adv("ana", "en"), adv("ben", "en")}})
	online(t, e, at(0), "ana")
	acts, err := e.Elsewhere("ana", true, at(sec))
	want(t, "ana elsewhere", acts, err, "")
	wantState(t, e, "ana", queue.OnCall)
	acts, err = e.Enqueue(queue.Caller{ID: "c1", Queue: "en", Since: at(2 * sec)}, at(2*sec))
	want(t, "enqueue", acts, err, "")
	acts, err = e.Elsewhere("ana", false, at(3*sec))
	want(t, "ana back", acts, err, "ring c1>ana")
	// Another node's claim on ana won the race: the ring here ends, and costs her nothing.
	acts, err = e.Elsewhere("ana", true, at(4*sec))
	want(t, "ana claimed elsewhere while rung here", acts, err, "cancel c1>ana")
	if m := state(t, e, "ana").Misses; m != 0 {
		t.Errorf("misses %d", m)
	}
	// ben comes online: rung for c1.
	acts, err = e.AdvocateOnline("ben", at(5*sec))
	want(t, "ben online", acts, err, "ring c1>ben")
	// A paused advocate taken elsewhere is not available when the claim ends.
	if _, err := e.Pause("ana", "meal", at(6*sec)); err != nil {
		t.Fatal(err)
	}
	acts, err = e.Elsewhere("ana", false, at(7*sec))
	want(t, "ana back, paused", acts, err, "")
	wantState(t, e, "ana", queue.Paused)
	if _, err := e.Elsewhere("nobody", true, at(8*sec)); !errors.Is(err, queue.ErrUnknownAdvocate) {
		t.Errorf("unknown advocate: %v", err)
	}
}

// TestUnrung: a ring the driver could not make (its claim refused) ends without a miss,
// and the caller goes on to the next advocate first.
func TestUnrung(t *testing.T) {
	e := newEngine(t, queue.Config{Queues: []queue.QueueConfig{q("en", "en")},
		Advocates: []queue.AdvocateConfig{adv("ana", "en"), adv("ben", "en")}})
	online(t, e, at(0), "ana")
	online(t, e, at(sec), "ben")
	acts, err := e.Enqueue(queue.Caller{ID: "c1", Queue: "en", Since: at(2 * sec)}, at(2*sec))
	want(t, "enqueue", acts, err, "ring c1>ana")
	acts, err = e.Unrung("c1", "ana", at(3*sec))
	want(t, "unrung", acts, err, "ring c1>ben")
	if a := state(t, e, "ana"); a.Misses != 0 || a.State != queue.Available {
		t.Errorf("ana after an unrung ring: %+v", a)
	}
	if _, err := e.Unrung("c1", "ana", at(4*sec)); !errors.Is(err, queue.ErrNoRing) {
		t.Errorf("second unrung: %v", err)
	}
}

// TestIsolate: an isolated engine rings nobody and reports its queues unstaffed; back,
// it rings who waits.
func TestIsolate(t *testing.T) {
	e := newEngine(t, queue.Config{Queues: []queue.QueueConfig{q("en", "en")},
		Advocates: []queue.AdvocateConfig{adv("ana", "en")}})
	online(t, e, at(0), "ana")
	if n := e.RoutingState(at(0))["en"].LoggedIn; n != 1 {
		t.Fatalf("logged in %d", n)
	}
	want(t, "isolate", e.Isolate(true, at(sec)), nil, "")
	if !e.Isolated() {
		t.Error("not isolated")
	}
	if n := e.RoutingState(at(sec))["en"].LoggedIn; n != 0 {
		t.Errorf("isolated, logged in %d", n)
	}
	acts, err := e.Enqueue(queue.Caller{ID: "c1", Queue: "en", Since: at(2 * sec)}, at(2*sec))
	want(t, "enqueue while isolated", acts, err, "")
	want(t, "rejoin", e.Isolate(false, at(3*sec)), nil, "ring c1>ana")
}

func TestWaiting(t *testing.T) {
	e := newEngine(t, queue.Config{Queues: []queue.QueueConfig{q("en", "en"), q("es", "es")},
		Advocates: []queue.AdvocateConfig{adv("ana", "en")}})
	if _, err := e.Enqueue(queue.Caller{ID: "c1", Queue: "es", Language: "es", Since: at(0)}, at(0)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Enqueue(queue.Caller{ID: "c2", Queue: "en", Priority: 5, Since: at(sec)}, at(sec)); err != nil {
		t.Fatal(err)
	}
	online(t, e, at(2*sec)) // nobody
	if _, err := e.AdvocateOnline("ana", at(2*sec)); err != nil {
		t.Fatal(err)
	}
	w := e.Waiting()
	if len(w) != 2 || w[0].Call != "c2" || !w[0].Ringing || w[0].Priority != 5 || w[1].Call != "c1" || w[1].Ringing ||
		w[1].Language != "es" || len(w[1].QueueLanguages) != 1 || !w[1].Since.Equal(at(0)) {
		t.Errorf("waiting %+v", w)
	}
}
