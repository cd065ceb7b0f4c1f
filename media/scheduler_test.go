package media

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSchedulerManyLegs(t *testing.T) {
	t.Parallel()
	const (
		workers = 4
		stable  = 200
	)
	s := startScheduler(t, SchedulerOptions{Workers: workers})
	min, max := testRange(t, stable+40)
	ports := NewPorts(loopback, min, max)
	snk := newSink(t)
	cfg := LegConfig{Remote: addrOf(snk.conn)}

	// Add the stable legs concurrently.
	legs := make([]*Leg, stable)
	var wg sync.WaitGroup
	for g := range 10 {
		wg.Go(func() {
			for i := g; i < stable; i += 10 {
				l, err := NewLeg(s, ports, cfg)
				if err != nil {
					t.Errorf("NewLeg: %v", err)
					return
				}
				legs[i] = l
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	created := time.Now()

	// Spread: every worker has its share, and within a worker the phases
	// differ by at most one leg.
	for w, counts := range s.load() {
		total := 0
		for _, c := range counts {
			total += c
		}
		if total != stable/workers {
			t.Errorf("worker %d has %d legs, want %d", w, total, stable/workers)
		}
		if d := slices.Max(counts[:]) - slices.Min(counts[:]); d > 1 {
			t.Errorf("worker %d phases %v differ by %d, want <= 1", w, counts, d)
		}
	}

	// Churn: legs come and go while the stable ones play.
	stop := time.Now().Add(500 * time.Millisecond)
	var churned atomic.Int64
	for range 4 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				l, err := NewLeg(s, ports, cfg)
				if err != nil {
					t.Errorf("NewLeg during churn: %v", err)
					return
				}
				time.Sleep(time.Duration(rand.IntN(30)) * time.Millisecond)
				if err := l.Close(); err != nil {
					t.Errorf("Close during churn: %v", err)
				}
				churned.Add(1)
			}
		})
	}
	audio := prompt(25)
	for _, l := range legs[:20] {
		wg.Go(func() {
			if err := l.Play(context.Background(), audio); err != nil {
				t.Errorf("Play: %v", err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(created)
	if churned.Load() < 10 {
		t.Errorf("only %d legs churned", churned.Load())
	}

	want := uint64(elapsed / frameDuration * 7 / 10)
	var total uint64
	for i, l := range legs {
		n := l.Stats().PacketsSent
		total += n
		if n < want {
			t.Errorf("leg %d sent %d packets in %v, want >= %d", i, n, elapsed, want)
		}
	}
	if st := s.Stats(); st.Legs != stable || st.FramesSent < total || st.SendErrors != 0 {
		t.Errorf("Stats() = %+v, want %d legs, >= %d frames, no errors", st, stable, total)
	}
	for _, l := range legs {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	if st := s.Stats(); st.Legs != 0 {
		t.Errorf("Stats().Legs after closing all = %d, want 0", st.Legs)
	}
	if n := ports.InUse(); n != 0 {
		t.Errorf("ports in use after closing all = %d, want 0", n)
	}
	for w, counts := range s.load() {
		if slices.Max(counts[:]) != 0 {
			t.Errorf("worker %d phases %v after closing all, want zeros", w, counts)
		}
	}
	sent := s.Stats().FramesSent
	waitFor(t, 2*time.Second, "the sink to receive most packets", func() bool { return snk.packets.Load() >= sent*8/10 })
}

func TestSchedulerLateness(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		late []time.Duration
	)
	s := startScheduler(t, SchedulerOptions{Workers: 1, OnLateness: func(d time.Duration) {
		mu.Lock()
		late = append(late, d)
		mu.Unlock()
	}})
	min, max := testRange(t, 2)
	ports := NewPorts(loopback, min, max)
	snk := newSink(t)
	for range 2 {
		l, err := NewLeg(s, ports, LegConfig{Remote: addrOf(snk.conn)})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
	}
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	got := slices.Clone(late)
	mu.Unlock()
	// Two legs in two phases: two slots run per 20 ms frame.
	if len(got) < 15 || len(got) > 40 {
		t.Fatalf("OnLateness called %d times in 300 ms with 2 legs, want about 30", len(got))
	}
	slices.Sort(got)
	if got[0] < 0 {
		t.Errorf("negative lateness %v", got[0])
	}
	if med := got[len(got)/2]; med > 10*time.Millisecond {
		t.Errorf("median lateness %v, want well under a frame", med)
	}
}

func TestSchedulerSkipsAhead(t *testing.T) {
	t.Parallel()
	// Stall the worker once, as a paused process would, from inside the
	// lateness hook.
	var calls atomic.Int64
	s := startScheduler(t, SchedulerOptions{Workers: 1, OnLateness: func(time.Duration) {
		if calls.Add(1) == 5 {
			time.Sleep(250 * time.Millisecond)
		}
	}})
	min, max := testRange(t, 1)
	peer := newPeer(t)
	l, err := NewLeg(s, NewPorts(loopback, min, max), LegConfig{Remote: addrOf(peer)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	var pkts []received
	for len(pkts) < 12 {
		pkts = append(pkts, readPacket(t, peer, time.Second))
	}
	if st := s.Stats(); st.Skips == 0 || st.FramesSkipped < 5 {
		t.Fatalf("after a 250 ms stall: %d skips, %d frames skipped; want a skip of at least 5 frames", st.Skips, st.FramesSkipped)
	}
	gap := -1
	for i := 1; i < len(pkts); i++ {
		prev, cur := pkts[i-1].pkt, pkts[i].pkt
		if cur.SequenceNumber != prev.SequenceNumber+1 {
			t.Errorf("seq %d after %d, want +1", cur.SequenceNumber, prev.SequenceNumber)
		}
		if d := cur.Timestamp - prev.Timestamp; d != FrameSize {
			if gap >= 0 || d%FrameSize != 0 || d < 8*FrameSize {
				t.Errorf("timestamp +%d at packet %d, want one jump of >= %d across the stall", d, i, 8*FrameSize)
			}
			gap = i
		}
	}
	if gap < 0 {
		t.Fatal("timestamps did not jump across the stall")
	}
	// No burst of stale frames after the stall: the next packets keep
	// their 20 ms pace.
	if gap+3 < len(pkts) {
		if d := pkts[gap+3].at.Sub(pkts[gap].at); d < 40*time.Millisecond {
			t.Errorf("3 packets after the stall took %v, want about 60 ms (no burst)", d)
		}
	}
}

func TestSchedulerRunTwice(t *testing.T) {
	t.Parallel()
	s := NewScheduler(SchedulerOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitFor(t, time.Second, "Run to start", s.running.Load)
	if err := s.Run(ctx); !errors.Is(err, ErrSchedulerRunning) {
		t.Errorf("second Run() = %v, want ErrSchedulerRunning", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run() = %v, want nil", err)
	}
	// It can run again once stopped.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel2()
	if err := s.Run(ctx2); err != nil {
		t.Errorf("Run() after a stop = %v, want nil", err)
	}
}

func TestWorkerNextBusy(t *testing.T) {
	t.Parallel()
	w := &worker{}
	set := func(slot, n int) {
		legs := make([]*Leg, n)
		w.slots[slot].Store(&legs)
	}
	if _, ok := w.nextBusy(0); ok {
		t.Error("nextBusy on an empty worker reported a slot")
	}
	set(3, 1)
	set(17, 2)
	set(5, 0) // emptied
	tests := []struct {
		k, want int64
	}{
		{0, 3}, {3, 3}, {4, 17}, {17, 17}, {18, 23}, {20, 23}, {1000, 1003}, {1004, 1017},
	}
	for _, tt := range tests {
		if got, ok := w.nextBusy(tt.k); !ok || got != tt.want {
			t.Errorf("nextBusy(%d) = %d, %v; want %d, true", tt.k, got, ok, tt.want)
		}
	}
}
