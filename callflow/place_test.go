package callflow

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hotline-project/hotline/ivr"
	"github.com/hotline-project/hotline/records"
)

// callFrom places a call from caller whose menus end with res.
func (h *harness) callFrom(caller string, res ivr.Result) *testCall {
	h.t.Helper()
	h.seq++
	c := &testCall{id: fmt.Sprintf("call%d", h.seq), leg: newLeg(h.clk, "caller"), done: make(chan struct{})}
	menus.set(c.leg, res)
	go func() {
		defer close(c.done)
		h.flow.Handle(context.Background(), &Inbound{ID: c.id, Line: "main", Caller: caller, Arrived: h.clk.Now(), Leg: c.leg})
	}()
	eventually(h.t, c.id+" handed over", func() bool { return h.recs.get(c.id) != nil })
	return c
}

// keepPlaceHarness is a harness whose callers are recognised by a keyed hash, with
// nobody to answer: every caller waits.
func keepPlaceHarness(t *testing.T, extra string) *harness {
	h := newHarness(t, testYAML+extra)
	hasher, err := records.NewHasher([]byte("0123456789abcdef0123"), "1")
	if err != nil {
		t.Fatal(err)
	}
	h.flow.hash = hasher.Hash
	return h
}

func (h *harness) position(c *testCall) int {
	p, _ := h.eng.Position(c.id)
	return p
}

// TestKeepPlace: a caller whose call drops while waiting calls again from the same number
// within the window: they skip the menus, hear place_kept, and are back in the same queue
// ahead of a caller who queued after them, with their own priority; the place is used
// once. Callers who queued later are not overtaken by the first call's own record.
func TestKeepPlace(t *testing.T) {
	h := keepPlaceHarness(t, "")
	const ana = "sip:+15550001@carrier.test"
	tip := ivr.Result{Language: "en", Reason: "other", End: ivr.EndChoice} // priority 10

	a := h.callFrom(ana, tip)
	eventually(t, "a queued", func() bool { return h.waiting(a, "en") })
	h.clk.Advance(30 * time.Second)
	b := h.callFrom("sip:+15550002@carrier.test", tip)
	eventually(t, "b queued", func() bool { return h.waiting(b, "en") })
	h.clk.Advance(10 * time.Second)

	a.leg.remoteHangup() // the line drops
	if r := h.record(a); r.Outcome != "" && r.Outcome != records.OutcomeAbandoned {
		t.Errorf("dropped call's outcome %q, want abandoned", r.Outcome)
	}
	if !h.safety.has("place:held") {
		t.Fatalf("no place held: %v", h.safety.list())
	}
	h.clk.Advance(time.Minute)
	cc := h.callFrom("sip:+15550003@carrier.test", tip)
	eventually(t, "c queued", func() bool { return h.waiting(cc, "en") })

	// Back within the window, dialling as 15550001 (national form): the same caller.
	again := h.callFrom("tel:5550001", ivr.Result{Language: "es", Reason: "help_now"}) // menus not run
	eventually(t, "a back in en", func() bool { return h.waiting(again, "en") })
	if p := h.position(again); p != 1 {
		t.Errorf("the caller who called back is number %d in line, want 1 (ahead of those who came after)", p)
	}
	if p := h.position(cc); p != 3 {
		t.Errorf("the later caller is number %d, want 3", p)
	}
	eventually(t, "place_kept played", func() bool { return again.leg.hasPlayed("place_kept") })
	if !h.safety.has("place:restored") {
		t.Errorf("metrics %v", h.safety.list())
	}
	r, _ := h.recs.get(again.id).get()
	if r.Route != "kept_place" || r.Reason != "other" || r.Language != "en" {
		t.Errorf("record route %q reason %q language %q, want kept_place, other, en", r.Route, r.Reason, r.Language)
	}
	if !r.QueueEnter.Equal(h.clk.Now()) {
		t.Errorf("record's queue enter %v, want this call's own (%v)", r.QueueEnter, h.clk.Now())
	}
	// The used place is gone; the three callers waiting now (again, b, cc) each have
	// theirs written while they wait, for a node that dies without reporting the drop.
	if n := h.flow.places.(*MemoryPlaces).Len(); n != 3 {
		t.Errorf("%d places held, want 3 (those of the callers waiting; the used one gone)", n)
	}
	for _, c := range []*testCall{again, b, cc} {
		c.leg.remoteHangup()
		h.record(c)
	}
	if h.logs.String() != "" && (strings.Contains(h.logs.String(), "5550001") || strings.Contains(h.logs.String(), "15550001")) {
		t.Error("the caller's number is in the logs")
	}
}

// TestKeepPlaceNot: no place is kept or given for a withheld number, after a quick exit,
// once the window ended (the slot is forgotten and counted as expired), or with
// keep_place 0.
func TestKeepPlaceNot(t *testing.T) {
	tip := ivr.Result{Language: "en", Reason: "other", End: ivr.EndChoice}
	dropAndReturn := func(t *testing.T, h *harness, from string, drop func(*testCall), wait time.Duration) *testCall {
		first := h.callFrom(from, tip)
		eventually(t, "queued", func() bool { return h.waiting(first, "en") })
		h.clk.Advance(5 * time.Second)
		other := h.callFrom("sip:+15550009@carrier.test", tip)
		eventually(t, "other queued", func() bool { return h.waiting(other, "en") })
		drop(first)
		h.record(first)
		h.clk.Advance(wait)
		again := h.callFrom(from, tip)
		eventually(t, "queued again", func() bool { return h.waiting(again, "en") })
		if p := h.position(again); p != 2 {
			t.Errorf("number %d in line, want 2 (behind the caller who waited)", p)
		}
		if again.leg.hasPlayed("place_kept") {
			t.Error("place_kept played")
		}
		return again
	}
	hangup := func(c *testCall) { c.leg.remoteHangup() }
	t.Run("anonymous", func(t *testing.T) {
		h := keepPlaceHarness(t, "")
		dropAndReturn(t, h, "sip:anonymous@anonymous.invalid", hangup, time.Second)
		if h.safety.has("place:held") {
			t.Error("a place was kept for a withheld number")
		}
	})
	t.Run("quick exit", func(t *testing.T) {
		h := keepPlaceHarness(t, "")
		dropAndReturn(t, h, "sip:+15550001@carrier.test", func(c *testCall) { press(t, c.leg, '#') }, time.Second)
		if h.safety.has("place:held") {
			t.Error("a place was kept after a quick exit")
		}
	})
	t.Run("expired", func(t *testing.T) {
		h := keepPlaceHarness(t, "safety: {keep_place: 2m}\n")
		dropAndReturn(t, h, "sip:+15550001@carrier.test", hangup, 2*time.Minute)
		if !h.safety.has("place:held") || !h.safety.has("place:expired") || h.safety.has("place:restored") {
			t.Errorf("metrics %v, want held and expired", h.safety.list())
		}
	})
	t.Run("off", func(t *testing.T) {
		h := keepPlaceHarness(t, "safety: {keep_place: 0s}\n")
		dropAndReturn(t, h, "sip:+15550001@carrier.test", hangup, time.Second)
		if h.safety.has("place:held") {
			t.Error("a place was kept with keep_place 0")
		}
	})
}

// TestMemoryPlaces: a place is taken once, not after its window, expired places are
// counted and forgotten, and the store is bounded.
func TestMemoryPlaces(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryPlaces()
	p := Place{Queue: "en", Since: t0}
	_ = m.Keep(ctx, "a", p, t0.Add(time.Minute))
	_ = m.Keep(ctx, "b", p, t0.Add(2*time.Minute))
	if _, ok, _ := m.Take(ctx, "a", t0.Add(time.Minute)); ok {
		t.Error("taken at the end of its window")
	}
	if got, ok, _ := m.Take(ctx, "b", t0.Add(time.Minute)); !ok || got.Queue != "en" {
		t.Errorf("take b: %v %v", got, ok)
	}
	if _, ok, _ := m.Take(ctx, "b", t0.Add(time.Minute)); ok {
		t.Error("taken twice")
	}
	if n, _ := m.Expire(ctx, t0.Add(time.Minute)); n != 1 || m.Len() != 0 {
		t.Errorf("expired %d, %d left; want 1 and 0", n, m.Len())
	}
	for i := range MaxPlaces + 5 {
		_ = m.Keep(ctx, fmt.Sprint(i), p, t0.Add(time.Duration(i)*time.Second))
	}
	if m.Len() != MaxPlaces {
		t.Errorf("%d places held, want at most %d", m.Len(), MaxPlaces)
	}
	if _, ok, _ := m.Take(ctx, "0", t0); ok {
		t.Error("the place ending first was not the one forgotten")
	}
}

// TestWaitingPlaceWritten: a waiting caller's place is in the place store while they wait
// (a node that dies reports no drop, so it must be there already; not counted as held),
// and while they talk to the advocate (a node dying mid-call puts them back in front);
// when the call ends, it is gone.
func TestWaitingPlaceWritten(t *testing.T) {
	h := keepPlaceHarness(t, advocatesYAML(t, "ana:en"))
	tip := ivr.Result{Language: "en", Reason: "other", End: ivr.EndChoice}
	a := h.callFrom("sip:+15550001@carrier.test", tip)
	eventually(t, "a queued", func() bool { return h.waiting(a, "en") })
	places := h.flow.places.(*MemoryPlaces)
	eventually(t, "a's place written", func() bool { return places.Len() == 1 })
	if h.safety.has("place:held") {
		t.Errorf("a place counted as held before any drop: %v", h.safety.list())
	}
	h.online("ana", "sip:ana@phone", phone{answerAfter: time.Second})
	eventually(t, "ana rung", func() bool { return h.net.isRinging("sip:ana@phone") })
	h.clk.Advance(time.Second)
	eventually(t, "ana answered", func() bool { return h.net.leg("sip:ana@phone") != nil })
	if n := places.Len(); n != 1 {
		t.Errorf("%d places held while the caller talks, want theirs", n)
	}
	a.leg.remoteHangup()
	h.record(a)
	if n := places.Len(); n != 0 {
		t.Errorf("%d places held after an answered call ended", n)
	}
	if h.safety.has("place:held") {
		t.Errorf("an answered call's end held a place: %v", h.safety.list())
	}
}
