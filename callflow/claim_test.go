package callflow

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hotline-project/hotline/queue"
)

// TestClaimBeforeRing: in a cluster a ring waits for its claim. A refused claim (ana taken
// through another node) dials nothing and costs her nothing; the caller goes on to ben,
// whose claim is granted and who is rung. When the other node's claim on ana shows, she is
// on a call here too; an isolated flow rings nobody.
func TestClaimBeforeRing(t *testing.T) {
	h := newHarness(t, testYAML+advocatesYAML(t, "ana:en", "ben:en"))
	var mu sync.Mutex
	var asked []string
	h.flow.claim = func(_ context.Context, callID, advocate string, deadline time.Time) error {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, advocate)
		if deadline.IsZero() || callID == "" {
			t.Errorf("claim of %s for %q until %v", advocate, callID, deadline)
		}
		if advocate == "ana" {
			return errors.New("claimed for another call")
		}
		return nil
	}
	h.online("ana", "sip:ana@phone", phone{answerAfter: time.Hour})
	h.clk.Advance(time.Second)
	h.online("ben", "sip:ben@phone", phone{answerAfter: time.Hour})
	h.call(helpNow())
	eventually(t, "ben rung", func() bool { return h.net.isRinging("sip:ben@phone") })
	if n := h.net.dialled("sip:ana@phone"); n != 0 {
		t.Errorf("ana's phone dialled %d times without a claim", n)
	}
	mu.Lock()
	got := slices.Clone(asked)
	mu.Unlock()
	if !slices.Equal(got, []string{"ana", "ben"}) {
		t.Errorf("claims asked %v, want ana then ben", got)
	}
	for _, a := range h.eng.Snapshot(h.clk.Now()).Advocates {
		if a.ID == "ana" && (a.State != queue.Available || a.Misses != 0) {
			t.Errorf("ana after a refused claim: %v, %d misses", a.State, a.Misses)
		}
	}
	h.flow.Elsewhere("ana", true)
	if s := h.advocateState("ana"); s != queue.OnCall {
		t.Errorf("ana taken elsewhere is %v, want on call", s)
	}
	h.flow.Isolate(true)
	if n := h.eng.RoutingState(h.clk.Now())["en"].LoggedIn; n != 0 {
		t.Errorf("isolated: %d logged in to en", n)
	}
	h.flow.Isolate(false)
}
