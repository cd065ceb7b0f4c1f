package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"syscall"
	"time"
)

// Quality bar of a playing call (issue 9).
const (
	minDelivery = 0.995
	maxGapP999  = 40 * time.Millisecond
)

type scenario struct {
	c   common
	g   *gen
	log *slog.Logger
	out io.Writer
}

// windowResult is what one measurement window saw.
type windowResult struct {
	dur              time.Duration
	streams          int
	failing          int     // streams below the quality bar
	minDelivery      float64 // worst stream's packets / expected
	worstP999        time.Duration
	gaps             *hist         // every stream's inter-arrival times
	cpu              time.Duration // the server's
	genCPU           time.Duration // this generator's own
	slotsLate        float64       // share of the server's scheduler slots that started > 10 ms late
	rss              uint64
	load1            float64
	sumDin, sumDout  float64
	nD               int
	transit          *hist
	taggedPackets    int
	expectedPerAudio float64
}

// measure opens the window over streams for c.window and reads the server's CPU across it.
func (s *scenario) measure(streams []*rxStream) (windowResult, error) {
	r := windowResult{load1: loadAvg(), gaps: newHist(500*time.Microsecond, 1000), transit: newTransitHist(), minDelivery: 1}
	for _, st := range streams {
		st.resetWindow()
	}
	before, err := sampleProc(s.c.pid)
	if err != nil {
		return r, err
	}
	genBefore, err := cpuOf(syscall.RUSAGE_SELF)
	if err != nil {
		return r, err
	}
	slots0, late0, _ := pacingLate(s.c.metrics)
	s.g.pool.w.on.Store(true)
	time.Sleep(s.c.window)
	s.g.pool.w.on.Store(false)
	after, err := sampleProc(s.c.pid)
	if err != nil {
		return r, err
	}
	genAfter, err := cpuOf(syscall.RUSAGE_SELF)
	if err != nil {
		return r, err
	}
	r.genCPU = genAfter - genBefore
	if slots1, late1, err := pacingLate(s.c.metrics); err == nil && slots1 > slots0 {
		r.slotsLate = (late1 - late0) / (slots1 - slots0)
	}
	r.dur = after.at.Sub(before.at)
	r.cpu = after.cpu - before.cpu
	r.rss = after.rss
	expected := float64(r.dur) / float64(frameDur)
	r.expectedPerAudio = expected
	r.streams = len(streams)
	for _, st := range streams {
		st.mu.Lock()
		d := float64(st.n) / expected
		p := st.gaps.quantile(0.999)
		if d < minDelivery || p > maxGapP999 {
			r.failing++
		}
		r.minDelivery = min(r.minDelivery, d)
		r.worstP999 = max(r.worstP999, p)
		r.gaps.merge(st.gaps)
		r.sumDin += st.sumDin
		r.sumDout += st.sumDout
		r.nD += st.nD
		if st.transit != nil {
			r.transit.merge(st.transit)
			r.taggedPackets += int(st.transit.n)
		}
		st.mu.Unlock()
	}
	return r, nil
}

// launch starts n calls at s.c.rate per second and returns when all have been started.
func (s *scenario) launch(ctx context.Context, wg *sync.WaitGroup, n int, rate float64, o callOpts, t *tally) {
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		wg.Go(func() { s.g.call(ctx, o, t) })
	}
}

// waitUp waits until want calls are up or every started call has settled.
func (s *scenario) waitUp(ctx context.Context, t *tally, want int64, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for t.up.Load() < want && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
}

// waitIdle waits for the server to report no calls in progress and returns how long it took.
func (s *scenario) waitIdle(limit time.Duration) (time.Duration, float64) {
	start := time.Now()
	var v float64
	for time.Since(start) < limit {
		var err error
		if v, err = scrape(s.c.metrics, "hotline_calls_active"); err == nil && v == 0 {
			return time.Since(start), 0
		}
		time.Sleep(250 * time.Millisecond)
	}
	return time.Since(start), v
}

// genShare is the generator's CPU over the window as a share of one core.
func (r windowResult) genShare() string {
	if r.dur == 0 {
		return "?"
	}
	return fmt.Sprintf("%.0f %%", 100*r.genCPU.Seconds()/r.dur.Seconds())
}

func cpuPerCallSecond(r windowResult, calls int) float64 {
	if calls == 0 || r.dur == 0 {
		return 0
	}
	return float64(r.cpu.Microseconds()) / r.dur.Seconds() / float64(calls)
}

func (s *scenario) floorMultiple(perCallSecond, sendPPS, recvPPS float64) string {
	if s.c.floorSend == 0 {
		return "n/a"
	}
	floor := sendPPS*s.c.floorSend + recvPPS*s.c.floorRecv
	return fmt.Sprintf("%.2f× (floor %.0f µs)", perCallSecond/floor, floor)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// play holds playing calls at each step and reports the largest that meets the quality bar.
func (s *scenario) play(ctx context.Context, steps []int, every int64) error {
	base, err := sampleProc(s.c.pid)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	t := newTally()
	o := callOpts{every: every}
	fmt.Fprintf(s.out, "\n### Playing calls (callers send %.0f packets/s each; window %v per step)\n\n", 50/float64(every), s.c.window)
	fmt.Fprintln(s.out, "| calls | up | failing streams | worst delivery | worst stream p99.9 gap | all p99.9 / max gap | server CPU per call | vs floor | RSS per call | server slots > 10 ms late | generator CPU | load1 | result |")
	fmt.Fprintln(s.out, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	best := 0
	placed := 0
	for _, n := range steps {
		s.launch(cctx, &wg, n-placed, s.c.rate, o, t)
		placed = n
		s.waitUp(cctx, t, int64(n), time.Duration(float64(n)/s.c.rate*float64(time.Second))+20*time.Second)
		time.Sleep(s.c.settle)
		t.mu.Lock()
		streams := append([]*rxStream(nil), t.rx...)
		t.mu.Unlock()
		up := int(t.up.Load())
		r, err := s.measure(streams)
		if err != nil {
			cancel()
			return err
		}
		per := cpuPerCallSecond(r, up)
		pass := up == n && r.failing == 0 && t.failures() == 0
		res := "pass"
		if !pass {
			res = "FAIL " + t.summary()
		} else {
			best = n
		}
		var rssPer float64
		if up > 0 && r.rss > base.rss {
			rssPer = float64(r.rss-base.rss) / float64(up) / 1024
		}
		fmt.Fprintf(s.out, "| %d | %d | %d | %.2f %% | %s | %s / %s | %.0f µs/s (%.2f %% of a core) | %s | %.1f KiB | %.3f %% | %s | %.2f | %s |\n",
			n, up, r.failing, 100*r.minDelivery, ms(r.worstP999), ms(r.gaps.quantile(0.999)), ms(r.gaps.max),
			per, per/1e4, s.floorMultiple(per, 50, 50/float64(every)), rssPer, 100*r.slotsLate, r.genShare(), r.load1, res)
		if !pass {
			break
		}
	}
	fmt.Fprintf(s.out, "\nLargest step at the quality bar (every stream ≥ %.1f %% of 50 packets/s, p99.9 gap ≤ %v): **%d calls**.\n", 100*minDelivery, maxGapP999, best)
	cancel()
	wg.Wait()
	_, left := s.waitIdle(40 * time.Second)
	if left != 0 {
		s.log.Warn("calls still active after the run", "calls", left)
	}
	return nil
}

// Bars of the setup-rate steps (issue 15).
const (
	maxSetupP99   = 20 * time.Millisecond // INVITE→200 of answered calls
	maxRefusalP99 = 50 * time.Millisecond // INVITE→503 of shed calls, in a surge
)

// rateSteps offers each rate for stepDur; each call holds for hold then hangs up. In a rate
// step every call must be answered; in a surge (more than the server can take) the excess
// may be refused with 503, which must come fast, while the calls answered keep their
// set-up time.
func (s *scenario) rateSteps(ctx context.Context, rates []int, hold, stepDur time.Duration, surge bool) error {
	if surge {
		fmt.Fprintf(s.out, "\n### Set-up surge (each call: INVITE → 200 → ACK, greeting playing, BYE after %v; %v per rate; the excess may get 503)\n\n", hold, stepDur)
	} else {
		fmt.Fprintf(s.out, "\n### Call setup rate (each call: INVITE → 200 → ACK, greeting playing, BYE after %v; %v per rate)\n\n", hold, stepDur)
	}
	fmt.Fprintln(s.out, "| offered | calls | answered | 503 | 503 p99 | other failures | INVITE→200 p50 | p99 | max | server CPU per call | generator CPU | load1 | result |")
	fmt.Fprintln(s.out, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	best := 0
	for _, rate := range rates {
		t := newTally()
		var wg sync.WaitGroup
		load := loadAvg()
		before, err := sampleProc(s.c.pid)
		if err != nil {
			return err
		}
		genBefore, err := cpuOf(syscall.RUSAGE_SELF)
		if err != nil {
			return err
		}
		n := int(float64(rate) * stepDur.Seconds())
		s.launch(ctx, &wg, n, float64(rate), callOpts{hold: hold}, t)
		wg.Wait()
		after, err := sampleProc(s.c.pid)
		if err != nil {
			return err
		}
		genAfter, err := cpuOf(syscall.RUSAGE_SELF)
		if err != nil {
			return err
		}
		genShare := 100 * (genAfter - genBefore).Seconds() / after.at.Sub(before.at).Seconds()
		t.mu.Lock()
		answered, refused := t.status[200], t.status[503]
		t.mu.Unlock()
		fails := t.failures()
		other := fails - refused
		p99, r99 := t.setup.quantile(0.99), t.refusal.quantile(0.99)
		var pass bool
		if surge {
			pass = answered > 0 && other == 0 && p99 <= maxSetupP99 && (refused == 0 || r99 <= maxRefusalP99)
		} else {
			pass = fails == 0 && p99 <= maxSetupP99
		}
		res := "pass"
		if !pass {
			res = "FAIL " + t.summary()
		} else {
			best = rate
		}
		refusedP99 := "–"
		if refused > 0 {
			refusedP99 = ms(r99)
		}
		fmt.Fprintf(s.out, "| %d/s | %d | %d | %d | %s | %d | %s | %s | %s | %.0f µs | %.0f %% | %.2f | %s |\n", rate, n, answered, refused, refusedP99, other,
			ms(t.setup.quantile(0.5)), ms(p99), ms(t.setup.max), float64((after.cpu-before.cpu).Microseconds())/float64(max(1, answered)), genShare, load, res)
		s.waitIdle(40 * time.Second)
		if !pass && !surge {
			break
		}
	}
	if surge {
		fmt.Fprintf(s.out, "\nServer CPU per call is per answered call. Bar: answered INVITE→200 p99 ≤ %v, 503 p99 ≤ %v, no other failure.\n", maxSetupP99, maxRefusalP99)
	} else {
		fmt.Fprintf(s.out, "\nHighest rate with 0 failures and setup p99 ≤ %v: **%d calls/s**.\n", maxSetupP99, best)
	}
	return nil
}

// bridge registers n advocates, sends n callers through the menu ("11": English, help now)
// to them, and measures the relay.
func (s *scenario) bridge(ctx context.Context, n int) error {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 50)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			id := advocateID(i + 1)
			if err := s.g.register(&advocate{id: id, pw: advocatePassword(id)}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	time.Sleep(time.Second)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t := newTally()
	s.launch(cctx, &wg, n, s.c.rate, callOpts{every: 1, tagged: true, digits: "11"}, t)
	s.waitUp(cctx, t, int64(n), 90*time.Second)
	time.Sleep(s.c.settle)
	s.g.mu.Lock()
	streams := append([]*rxStream(nil), s.g.advRx...)
	s.g.mu.Unlock()
	t.mu.Lock()
	streams = append(streams, t.rx...)
	t.mu.Unlock()
	up := int(t.up.Load())
	r, err := s.measure(streams)
	if err != nil {
		return err
	}
	cancel()
	wg.Wait()
	per := cpuPerCallSecond(r, up)
	var jin, jout float64
	if r.nD > 0 {
		jin, jout = r.sumDin/float64(r.nD)/1e3, r.sumDout/float64(r.nD)/1e3
	}
	res := "pass"
	if up != n || t.failures() != 0 || r.failing != 0 || jout-jin > 1000 {
		res = "FAIL " + t.summary()
	}
	fmt.Fprintf(s.out, "\n### Bridged calls (caller ↔ advocate relay, both sides 50 packets/s PCMU; window %v)\n\n", s.c.window)
	fmt.Fprintln(s.out, "| bridges | bridged | failing streams | worst delivery | server CPU per bridge | vs floor | jitter in | jitter out | added | relay transit p50 / p99.9 / max | generator CPU | load1 | result |")
	fmt.Fprintln(s.out, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	fmt.Fprintf(s.out, "| %d | %d | %d | %.2f %% | %.0f µs/s (%.2f %% of a core) | %s | %.0f µs | %.0f µs | %.0f µs | %s / %s / %s | %s | %.2f | %s |\n",
		n, up, r.failing, 100*r.minDelivery, per, per/1e4, s.floorMultiple(per, 100, 100), jin, jout, jout-jin,
		ms(r.transit.quantile(0.5)), ms(r.transit.quantile(0.999)), ms(r.transit.max), r.genShare(), r.load1, res)
	fmt.Fprintln(s.out, "\nJitter is RFC 3550's mean |D| against the generator's nominal 20 ms schedule: in at the generator's send, out at arrival after the relay, over the same packets.")
	s.waitIdle(40 * time.Second)
	return nil
}

// overload offers twice max calls, checks the server refuses the excess with 503 and keeps
// the calls it took, then drops every call without BYE and times how long the server takes
// to be back to 0 calls.
func (s *scenario) overload(ctx context.Context, max int, every int64) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	abandon := make(chan struct{})
	t := newTally()
	var wg sync.WaitGroup
	s.launch(cctx, &wg, 2*max, s.c.rate, callOpts{every: every, abandon: abandon}, t)
	s.waitUp(cctx, t, int64(max), 20*time.Second)
	time.Sleep(s.c.settle)
	t.mu.Lock()
	streams := append([]*rxStream(nil), t.rx...)
	answered, refused := t.status[200], t.status[503]
	t.mu.Unlock()
	r, err := s.measure(streams)
	if err != nil {
		return err
	}
	up := int(t.up.Load())
	lost := t.byServer.Load()
	close(abandon)
	stopped := time.Now()
	wg.Wait()
	took, left := s.waitIdle(60 * time.Second)
	took += time.Since(stopped) - took // from the moment the load stopped
	other := t.failures() - refused
	res := "pass"
	if answered > max || refused+answered != 2*max || other != 0 || lost != 0 || r.failing != 0 || left != 0 || took > 35*time.Second {
		res = "FAIL " + t.summary()
	}
	fmt.Fprintf(s.out, "\n### Overload (sip.max_calls %d, %d calls offered at %.0f/s; callers then vanish without BYE)\n\n", max, 2*max, s.c.rate)
	fmt.Fprintln(s.out, "| offered | answered | 503 | other failures | still up after the window | hung up by the server meanwhile | failing streams | back to 0 calls after | load1 | result |")
	fmt.Fprintln(s.out, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	fmt.Fprintf(s.out, "| %d | %d | %d | %d | %d | %d | %d | %.1f s | %.2f | %s |\n",
		2*max, answered, refused, other, up, lost, r.failing, took.Seconds(), r.load1, res)
	return nil
}
