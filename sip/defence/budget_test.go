package defence

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func addr(i int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("127.0.%d.%d", i/250, 1+i%250)) }

func evicted(t *Ticket) bool {
	select {
	case <-t.Evicted():
		return true
	default:
		return false
	}
}

// The attack: INVITEs from many addresses, a few each, never acknowledged. They
// hold at most Unacked places, pushing each other out oldest first; a real caller who
// acknowledges keeps its place; a full budget of acknowledged calls refuses.
func TestBudgetUnackedFlood(t *testing.T) {
	b, err := NewBudget(BudgetConfig{Calls: 40, Unacked: 10, UnackedPerSource: 4})
	if err != nil {
		t.Fatal(err)
	}
	var flood []*Ticket
	for i := range 231 * 4 {
		tk, err := b.Admit(addr(i/4), nil)
		if err != nil {
			t.Fatalf("INVITE %d refused: %v", i, err)
		}
		flood = append(flood, tk)
	}
	if calls, unacked := b.Counts(); calls != 10 || unacked != 10 {
		t.Fatalf("after the flood: %d calls, %d unacknowledged; want 10 and 10", calls, unacked)
	}
	for i, tk := range flood {
		if want := i < len(flood)-10; evicted(tk) != want {
			t.Fatalf("flood call %d evicted %v, want %v", i, evicted(tk), want)
		}
	}
	real, err := b.Admit(netip.MustParseAddr("192.0.2.7"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !real.Acked() {
		t.Fatal("Acked on a call in the budget: false")
	}
	for i := range 100 {
		if _, err := b.Admit(addr(1000+i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if evicted(real) {
		t.Fatal("an acknowledged call was pushed out")
	}
	real.Release()
	real.Release() // twice is harmless
	if calls, unacked := b.Counts(); calls != 10 || unacked != 10 {
		t.Fatalf("%d calls, %d unacknowledged; want 10 and 10", calls, unacked)
	}
}

func TestBudgetLimits(t *testing.T) {
	b, _ := NewBudget(BudgetConfig{Calls: 3, Unacked: 3, UnackedPerSource: 2})
	a := netip.MustParseAddr("198.51.100.1")
	t1, _ := b.Admit(a, nil)
	t2, _ := b.Admit(a, nil)
	if _, err := b.Admit(a, nil); !errors.Is(err, ErrUnacked) {
		t.Fatalf("third unacknowledged call from one source: %v, want ErrUnacked", err)
	}
	t1.Acked()
	t3, err := b.Admit(a, nil) // one of a's is acknowledged now
	if err != nil {
		t.Fatal(err)
	}
	t2.Acked()
	t3.Acked()
	if _, err := b.Admit(netip.MustParseAddr("198.51.100.2"), nil); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("budget full of acknowledged calls: %v, want ErrUntrusted", err)
	}
	t2.Release()
	gaveBack := 0
	t4, err := b.Admit(netip.MustParseAddr("198.51.100.2"), func() { gaveBack++ })
	if err != nil {
		t.Fatal(err)
	}
	// Full again, but t4 is unacknowledged: a new call pushes it out.
	if _, err := b.Admit(netip.MustParseAddr("198.51.100.3"), nil); err != nil || !evicted(t4) || gaveBack != 1 {
		t.Fatalf("new call with an unacknowledged one to push out: %v, evicted %v, onEvict called %d times", err, evicted(t4), gaveBack)
	}
	if t4.Acked() { // too late: nothing happens
		t.Fatal("Acked on a call pushed out: true")
	}
	if calls, _ := b.Counts(); calls != 3 {
		t.Fatalf("%d calls, want 3", calls)
	}
	if _, err := NewBudget(BudgetConfig{Calls: -1}); err == nil {
		t.Fatal("negative budget accepted")
	}
}

// An untrusted source that sends calls without RTP is flooding after NoRTPCalls of them
// within the window; trusted sources never are; the count forgets old calls.
func TestNoRTPCall(t *testing.T) {
	trunk := netip.MustParsePrefix("203.0.113.0/24")
	l := mustNew(t, Config{NoRTPCalls: 3, NoRTPWindow: 10 * time.Minute, Trusted: []netip.Prefix{trunk}})
	src := netip.MustParseAddr("198.51.100.7")
	now := t0
	for i := range 3 {
		if l.NoRTPCall(now, src, true) {
			t.Fatalf("flooding after %d calls", i)
		}
		now = now.Add(time.Second)
	}
	if !l.NoRTPCall(now, src, false) {
		t.Fatal("a silent call with RTP after 3 without: not flooding")
	}
	if !l.NoRTPCall(now, src, true) {
		t.Fatal("a fourth call without RTP: not flooding")
	}
	if l.NoRTPCall(now.Add(11*time.Minute), src, false) {
		t.Fatal("still flooding after the window")
	}
	tr := netip.MustParseAddr("203.0.113.9")
	for range 10 {
		if l.NoRTPCall(now, tr, true) {
			t.Fatal("the trusted trunk counted as flooding")
		}
	}
	off := mustNew(t, Config{})
	for range 10 {
		if off.NoRTPCall(now, src, true) {
			t.Fatal("flooding with no_rtp_calls 0")
		}
	}
	if _, err := New(Config{NoRTPCalls: 2}); err == nil {
		t.Fatal("no_rtp_calls without a window accepted")
	}
}
