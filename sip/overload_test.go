package sip

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotline-project/hotline/media"
	"github.com/hotline-project/hotline/sip/defence"
	"github.com/hotline-project/hotline/sip/gate"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock           { return &fakeClock{t: time.Date(2026, 12, 4, 22, 0, 0, 0, time.UTC)} }
func (c *fakeClock) overload(o OverloadOptions) *Overload {
	o.Now = c.now
	return NewOverload(o)
}

// offer offers n calls and returns how many were admitted and the reasons of those shed;
// admitted set-ups take setup on the fake clock each (one after another).
func offer(c *fakeClock, o *Overload, n int, setup time.Duration) (admitted int, reasons map[string]int) {
	reasons = map[string]int{}
	for range n {
		st, reason := o.Admit()
		if st == nil {
			reasons[reason]++
			continue
		}
		admitted++
		c.add(setup)
		st.Done()
	}
	return admitted, reasons
}

// startTick moves the clock to the start of the detector's next tick, and has the detector
// judge the tick that ended.
func startTick(c *fakeClock, o *Overload) {
	o.Stats()
	c.add(overloadTick - c.t.Sub(o.tick))
	o.Stats()
}

func TestOverloadPendingCap(t *testing.T) {
	c := newFakeClock()
	o := c.overload(OverloadOptions{MaxPending: 2})
	d1, _ := o.Admit()
	d2, _ := o.Admit()
	if d1 == nil || d2 == nil {
		t.Fatal("the first two set-ups were shed")
	}
	if d, reason := o.Admit(); d != nil || reason != ShedPending {
		t.Fatalf("third set-up: admitted %v, reason %q; want shed for %q", d != nil, reason, ShedPending)
	}
	if st := o.Stats(); st.Pending != 2 || !st.Active || st.Admit != 1 {
		t.Fatalf("stats at the cap = %+v, want 2 pending, active, admit 1", st)
	}
	d1.Done()
	d1.Done() // idempotent: frees one place, not two
	if st := o.Stats(); st.Pending != 1 || st.Active {
		t.Fatalf("stats after one set-up ended = %+v, want 1 pending, not active", st)
	}
	d3, _ := o.Admit()
	if d3 == nil {
		t.Fatal("a set-up was shed below the cap")
	}
	if d, _ := o.Admit(); d != nil {
		t.Fatal("a set-up was admitted over the cap")
	}
	d2.Done()
	d3.Done()
	if st := o.Stats(); st.Pending != 0 {
		t.Fatalf("pending after every set-up ended = %d, want 0", st.Pending)
	}
}

func TestOverloadLatency(t *testing.T) {
	c := newFakeClock()
	o := c.overload(OverloadOptions{MaxSetupLatency: 50 * time.Millisecond})
	// Fast set-ups: nothing shed.
	for range 5 {
		if n, r := offer(c, o, 10, 5*time.Millisecond); n != 10 {
			t.Fatalf("fast set-ups: %d of 10 admitted (%v)", n, r)
		}
		c.add(overloadTick)
	}
	// One tick in which every set-up is slow (minSetups at once, 60 ms each): the next tick
	// admits half.
	startTick(c, o)
	var setups []*Setup
	for range minSetups {
		st, _ := o.Admit()
		setups = append(setups, st)
	}
	c.add(60 * time.Millisecond)
	for _, st := range setups {
		st.Done()
	}
	startTick(c, o)
	if st := o.Stats(); st.Admit != 0.5 || !st.Active {
		t.Fatalf("after a slow tick: %+v, want admit 0.5, active", st)
	}
	n, reasons := offer(c, o, 10, 0)
	if n != 5 || reasons[ShedLatency] != 5 {
		t.Fatalf("at half admission: %d of 10 admitted, shed %v; want 5 admitted, 5 for latency", n, reasons)
	}
	// Calm ticks: back to all admitted, by a fiftieth a tick while probing (probeTicks),
	// then a tenth.
	want := 0.5
	for i := range probeTicks + 5 {
		c.add(overloadTick)
		if i < probeTicks {
			want += probeIncrease
		} else {
			want = min(1, want+shedIncrease)
		}
		if got := o.Stats().Admit; got < want-1e-9 || got > want+1e-9 {
			t.Fatalf("calm tick %d: admit %v, want %v", i+1, got, want)
		}
	}
	if st := o.Stats(); st.Active {
		t.Fatalf("after %d calm ticks still active: %+v", probeTicks+5, st)
	}
}

// TestOverloadProbes: at twice the load the server can take, the admitted share settles
// near what it can take instead of swinging past it: after a cut it grows back in small
// steps, so each overshoot is small; halving on a cut costs a quarter of the capacity on
// average (the sawtooth between half of it and it; issue 15: the tenth-a-tick recovery admitted 1,469 calls/s at 2,000
// offered to a server that takes about 1,000, and every set-up queued).
func TestOverloadProbes(t *testing.T) {
	c := newFakeClock()
	o := c.overload(OverloadOptions{MaxSetupLatency: 50 * time.Millisecond})
	const capacity = 0.5 // of the calls offered: what the "server" sets up in time
	over, sum := 0, 0.0
	const ticks = 300
	for range ticks {
		admit := o.Stats().Admit
		sum += admit
		// The set-ups of a tick over capacity are slow (the signal sees them at once: the
		// real lag of a tick or two only makes overshoots longer).
		slow := admit > capacity
		if slow {
			over++
		}
		for range 5 * minSetups {
			st, _ := o.Admit()
			if st == nil {
				continue
			}
			if slow {
				c.add(time.Millisecond)
				st.start = st.start.Add(-60 * time.Millisecond)
			}
			st.Done()
		}
		startTick(c, o)
	}
	avg := sum / ticks
	t.Logf("average admitted share %.3f (capacity %.2f), %d of %d ticks over it", avg, capacity, over, ticks)
	if avg > capacity || avg < 0.7*capacity {
		t.Errorf("average admitted share %.3f, want between 0.7 and 1 times the capacity %.2f", avg, capacity)
	}
	if over > ticks/10 {
		t.Errorf("%d of %d ticks over the capacity, want at most a tenth", over, ticks)
	}
}

func TestOverloadLatencyNeedsSamples(t *testing.T) {
	c := newFakeClock()
	o := c.overload(OverloadOptions{MaxSetupLatency: 10 * time.Millisecond})
	// Slow set-ups, but too few in the tick to judge.
	for range minSetups - 1 {
		st, _ := o.Admit()
		c.add(20 * time.Millisecond)
		st.Done()
	}
	c.add(overloadTick)
	if st := o.Stats(); st.Admit != 1 {
		t.Fatalf("judged on %d samples: admit %v", minSetups-1, st.Admit)
	}
}

func TestOverloadLateness(t *testing.T) {
	tests := []struct {
		name        string
		slots, late int
		want        float64
	}{
		{"1 % late is the bound", 200, 2, 1},
		{"2 % late", 200, 4, 0.5},
		{"every slot late", minSlots, minSlots, 0.5},
		{"too few slots", minSlots - 1, minSlots - 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeClock()
			o := c.overload(OverloadOptions{MaxLateness: 20 * time.Millisecond})
			for tick := range lateTicks {
				for i := range tt.slots {
					late := time.Millisecond
					if i < tt.late {
						late = 25 * time.Millisecond
					}
					o.ObserveLateness(late)
				}
				c.add(overloadTick)
				if got := o.Stats().Admit; tick < lateTicks-1 && got != 1 {
					t.Fatalf("after %d late ticks: admit = %v, want 1 (a stall is not overload)", tick+1, got)
				}
			}
			if got := o.Stats().Admit; got != tt.want {
				t.Fatalf("admit = %v, want %v", got, tt.want)
			}
			if tt.want < 1 {
				if _, reason := offer(c, o, 1, 0); reason[ShedLateness] != 1 {
					t.Fatalf("first call at half admission: shed %v, want 1 for lateness", reason)
				}
			}
		})
	}
}

// TestOverloadStall: one tick of lateness between calm ones (a stall of the machine) sheds
// nothing.
func TestOverloadStall(t *testing.T) {
	c := newFakeClock()
	o := c.overload(OverloadOptions{MaxLateness: 20 * time.Millisecond, MaxCPUWait: 20 * time.Millisecond})
	for i := range 10 {
		late := time.Millisecond
		if i%2 == 0 {
			late = time.Second
		}
		for range minSlots {
			o.ObserveLateness(late)
		}
		o.ObserveCPUWaits(minWaits, uint64(late/time.Second)*minWaits)
		c.add(overloadTick)
		if st := o.Stats(); st.Admit != 1 {
			t.Fatalf("tick %d: %+v, want everything admitted", i, st)
		}
	}
}

func TestOverloadSustained(t *testing.T) {
	c := newFakeClock()
	o := c.overload(OverloadOptions{MaxLateness: 20 * time.Millisecond})
	// Lateness tick after tick: from the second, the share halves each time and reaches
	// nothing.
	want := 1.0
	for i := range 9 {
		for range minSlots {
			o.ObserveLateness(30 * time.Millisecond)
		}
		c.add(overloadTick)
		if i >= lateTicks-1 {
			want *= shedDecrease
		}
		if want < minAdmit {
			want = 0
		}
		if got := o.Stats().Admit; got != want {
			t.Fatalf("admit = %v, want %v", got, want)
		}
	}
	if n, r := offer(c, o, 100, 0); n != 0 || r[ShedLateness] != 100 {
		t.Fatalf("at admit 0: %d admitted, shed %v", n, r)
	}
	// A long quiet (or a clock jump) counts as calm ticks.
	c.add(time.Hour)
	if st := o.Stats(); st.Admit != 1 || st.Active {
		t.Fatalf("after an hour of quiet: %+v", st)
	}
	if n, _ := offer(c, o, 100, 0); n != 100 {
		t.Fatalf("after the quiet: %d of 100 admitted", n)
	}
}

func TestOverloadCPUWait(t *testing.T) {
	tests := []struct {
		name        string
		total, late uint64
		want        float64
	}{
		{"1 % late is the bound", 2000, 20, 1},
		{"2 % late", 2000, 40, 0.5},
		{"too few waits", minWaits - 1, minWaits - 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeClock()
			o := c.overload(OverloadOptions{MaxCPUWait: 20 * time.Millisecond})
			for range lateTicks {
				o.ObserveCPUWaits(tt.total/2, tt.late/2)
				o.ObserveCPUWaits(tt.total-tt.total/2, tt.late-tt.late/2)
				c.add(overloadTick)
			}
			st := o.Stats()
			if st.Admit != tt.want {
				t.Fatalf("admit = %v, want %v", st.Admit, tt.want)
			}
			if tt.total >= minWaits && st.Over[ShedCPUWait] != float64(tt.late)/float64(tt.total) {
				t.Fatalf("over = %v, want %v", st.Over, float64(tt.late)/float64(tt.total))
			}
			if tt.want < 1 {
				if _, reason := offer(c, o, 1, 0); reason[ShedCPUWait] != 1 {
					t.Fatalf("first call at half admission: shed %v, want 1 for cpu_wait", reason)
				}
			}
			c.add(2 * overloadTick)
			if over := o.Stats().Over[ShedCPUWait]; over != 0 {
				t.Fatalf("over after ticks without samples = %v, want 0", over)
			}
		})
	}
}

func TestOverloadOff(t *testing.T) {
	c := newFakeClock()
	o := c.overload(OverloadOptions{})
	var setups []*Setup
	for range 1000 {
		st, _ := o.Admit()
		if st == nil {
			t.Fatal("a call was shed with every signal off")
		}
		setups = append(setups, st)
		o.ObserveLateness(time.Second)
		o.ObserveCPUWaits(1000, 1000)
	}
	c.add(10 * time.Second)
	for _, st := range setups {
		st.Done()
	}
	c.add(overloadTick)
	if st := o.Stats(); st.Active || st.Pending != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

// TestOverloadRinging: a ringing call is pending until Done, but its latency is measured
// to Ready.
func TestOverloadRinging(t *testing.T) {
	c := newFakeClock()
	o := c.overload(OverloadOptions{MaxPending: 10, MaxSetupLatency: 50 * time.Millisecond})
	startTick(c, o)
	var setups []*Setup
	for range 10 {
		st, _ := o.Admit()
		c.add(time.Millisecond)
		st.Ready()
		st.Ready()
		setups = append(setups, st)
	}
	if st, reason := o.Admit(); st != nil || reason != ShedPending {
		t.Fatalf("with 10 ringing: admitted %v, reason %q", st != nil, reason)
	}
	c.add(2 * time.Second) // the ring delay
	for _, st := range setups {
		st.Done()
	}
	if st := o.Stats(); st.Pending != 0 || st.Admit != 1 {
		t.Fatalf("after the calls were answered: %+v, want nothing pending, admit 1", st)
	}
	var zero Setup // a server without overload control
	zero.Ready()
	zero.Done()
}

func TestOverloadRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{{0, "1"}, {time.Second, "1"}, {1500 * time.Millisecond, "2"}, {5 * time.Second, "5"}} {
		if got := NewOverload(OverloadOptions{RetryAfter: tt.d}).RetryAfter(); got != tt.want {
			t.Errorf("RetryAfter(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// shedCounter counts Shed calls.
type shedCounter struct {
	mu      sync.Mutex
	reasons map[string]int
}

func (s *shedCounter) Shed(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reasons[reason]++
}

// TestShedEarly: while overload control sheds, the gate answers a share of new calls to a
// line 503 with Retry-After itself, statelessly; re-INVITEs, other methods and INVITEs to no
// line are not shed.
func TestShedEarly(t *testing.T) {
	c := newFakeClock()
	ov := c.overload(OverloadOptions{MaxCPUWait: 20 * time.Millisecond, RetryAfter: 3 * time.Second})
	sheds := &shedCounter{reasons: map[string]int{}}
	srv, err := NewServer(Options{
		Lines:            func(d string) (string, bool) { return "main", d == "18883737888" },
		Handler:          func(context.Context, *Call) {},
		Scheduler:        media.NewScheduler(media.SchedulerOptions{Workers: 1}),
		Ports:            media.NewPorts(netip.MustParseAddr("127.0.0.1"), 40000, 40010),
		Overload:         ov,
		OverloadObserver: sheds,
	})
	if err != nil {
		t.Fatal(err)
	}
	invite := func(user, to string) []byte {
		return []byte("INVITE sip:" + user + "@127.0.0.1 SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK1\r\nMax-Forwards: 70\r\n" +
			"From: <sip:a@127.0.0.1>;tag=1\r\nTo: " + to + "\r\nCall-ID: x@y\r\nCSeq: 1 INVITE\r\n" +
			"Contact: <sip:a@127.0.0.1:5999>\r\nContent-Length: 0\r\n\r\n")
	}
	// shed passes b through the gate as a UDP datagram from 127.0.0.1, and returns the 503
	// it got, or nil.
	shed := func(b []byte) []byte {
		v := srv.gate.CheckAdmit(b, "udp", netip.MustParseAddr("127.0.0.1"))
		if v.Action() == gate.Reply && v.Status() == 503 {
			return v.Response()
		}
		return nil
	}
	call := invite("18883737888", "<sip:18883737888@127.0.0.1>")
	if r := shed(call); r != nil {
		t.Fatalf("shed while everything is admitted: %s", r)
	}
	for range lateTicks {
		ov.ObserveCPUWaits(2000, 2000)
		c.add(overloadTick)
	}
	if st := ov.Stats(); st.Admit != 0.5 {
		t.Fatalf("admit = %v, want 0.5", st.Admit)
	}
	for _, b := range [][]byte{
		invite("18883737888", "<sip:18883737888@127.0.0.1>;tag=abc"), // re-INVITE
		invite("999", "<sip:999@127.0.0.1>"),                         // no such line
		[]byte(strings.Replace(string(call), "INVITE", "OPTIONS", 2)),
	} {
		if r := shed(b); r != nil {
			t.Fatalf("shed %q:\n%s", b[:20], r)
		}
	}
	// The same server with per-source limits, the source not trusted: its INVITEs are not
	// shed before sipgo's parse (shedEarlier) but after it (shedEarly), by the same key.
	limits, err := defence.New(defence.Config{Rate: 1e6, Burst: 1e6, AuthFailures: 1, AuthWindow: time.Minute, BanFor: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	full, err := NewServer(Options{
		Lines:     func(d string) (string, bool) { return "main", d == "18883737888" },
		Handler:   func(context.Context, *Call) {},
		Scheduler: media.NewScheduler(media.SchedulerOptions{Workers: 1}),
		Ports:     media.NewPorts(netip.MustParseAddr("127.0.0.1"), 40000, 40010),
		Overload:  ov,
		Defences:  limits,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Half of the new calls, by Call-ID: of many, about half are shed; a retransmission gets
	// the same answer, and so does the same call judged after the parse.
	n := 0
	for i := range 1000 {
		b := []byte(strings.Replace(string(call), "Call-ID: x@y", fmt.Sprintf("Call-ID: %d@y", i), 1))
		r1, r2 := shed(b), shed(b)
		if (r1 == nil) != (r2 == nil) {
			t.Fatalf("call %d: its retransmission got another answer", i)
		}
		v := full.gate.CheckAdmit(b, "udp", netip.MustParseAddr("127.0.0.1"))
		if shedLate := v.Action() == gate.Reply && v.Status() == 503; shedLate != (r1 != nil) {
			t.Fatalf("call %d: shed %v before the parse, %v after it", i, r1 != nil, shedLate)
		}
		if r1 != nil {
			n++
		}
	}
	if n < 400 || n > 600 {
		t.Fatalf("%d of 1000 calls shed at admit 0.5", n)
	}
	if sheds.reasons[ShedCPUWait] != 2*n {
		t.Fatalf("shed counted %v, want %d for cpu_wait", sheds.reasons, 2*n)
	}
	var r []byte
	for i := 0; r == nil; i++ {
		r = shed([]byte(strings.Replace(string(call), "Call-ID: x@y", fmt.Sprintf("Call-ID: x%d@y", i), 1)))
	}
	res := string(r)
	for _, want := range []string{"SIP/2.0 503 Service Unavailable\r\n", "\r\nRetry-After: 3\r\n", "\r\nCall-ID: x", "\r\nTo: <sip:18883737888@127.0.0.1>;tag="} {
		if !strings.Contains(res, want) {
			t.Errorf("503 without %q:\n%s", want, res)
		}
	}
}

// offerAt offers n new calls evenly over d on the fake clock (keys spread over [0, 1), as
// Call-ID hashes are) and returns how many were admitted and the reasons of those shed.
func offerAt(c *fakeClock, o *Overload, n int, d time.Duration, seq *int) (admitted int, reasons map[string]int) {
	reasons = map[string]int{}
	step := d / time.Duration(n)
	for range n {
		*seq++
		key := shedKey(strconv.Itoa(*seq) + "@host")
		if reason, shed := o.Offer(key); shed {
			reasons[reason]++
		} else {
			admitted++
		}
		c.add(step)
	}
	return admitted, reasons
}

func TestOverloadRateCeiling(t *testing.T) {
	c := newFakeClock()
	o := c.overload(OverloadOptions{MaxSetupRate: 1000})
	seq := 0
	// At the ceiling and under it, every call is admitted.
	for _, rate := range []int{500, 1000} {
		if got, reasons := offerAt(c, o, rate, time.Second, &seq); got != rate {
			t.Fatalf("%d/s for 1 s: admitted %d, shed %v; want all", rate, got, reasons)
		}
	}
	// Twice the ceiling: the first few milliseconds of the surge are admitted, then about
	// the ceiling; what is shed says why.
	first, _ := offerAt(c, o, 40, 20*time.Millisecond, &seq)
	if first < 25 {
		t.Errorf("surge's first 20 ms: admitted %d of 40; want most (the window held 1000/s)", first)
	}
	got, reasons := offerAt(c, o, 4000, 2*time.Second, &seq)
	if got < 1800 || got > 2200 || reasons[ShedRate] != 4000-got {
		t.Errorf("2000/s for 2 s: admitted %d, shed %v; want about 2000, all for %q", got, reasons, ShedRate)
	}
	if st := o.Stats(); !st.Active || st.Admit > 0.6 || st.Admit < 0.4 {
		t.Errorf("stats during the surge: %+v; want active, admit about 0.5", st)
	}
	// The share follows the offered rate within 100 ms of the surge ending.
	c.add(100 * time.Millisecond)
	if got, reasons := offerAt(c, o, 800, time.Second, &seq); got != 800 {
		t.Errorf("800/s after the surge: admitted %d, shed %v; want all", got, reasons)
	}
	if st := o.Stats(); st.Active || st.Admit != 1 {
		t.Errorf("stats after the surge: %+v; want inactive, admit 1", st)
	}
}

// A retransmitted INVITE (the same Call-ID) gets the answer its first copy got while the
// offered rate holds: a stateless 503 must not contradict a call that went on.
func TestOverloadRateCeilingSameKey(t *testing.T) {
	c := newFakeClock()
	o := c.overload(OverloadOptions{MaxSetupRate: 1000})
	seq := 0
	offerAt(c, o, 400, 200*time.Millisecond, &seq) // 2000/s: the share is about half
	answers := map[string]bool{}
	for i := range 100 {
		id := "retrans" + strconv.Itoa(i)
		_, shed := o.Offer(shedKey(id))
		answers[id] = shed
		c.add(500 * time.Microsecond) // still 2000/s
	}
	changed := 0
	for id, first := range answers {
		if _, shed := o.Offer(shedKey(id)); shed != first {
			changed++
		}
		c.add(500 * time.Microsecond)
	}
	if changed > 5 {
		t.Errorf("%d of 100 retransmissions got another answer than their first copy; want at most a few (the share moves a little with the offered rate)", changed)
	}
}

func TestOverloadRateCeilingOff(t *testing.T) {
	c := newFakeClock()
	o := c.overload(OverloadOptions{})
	seq := 0
	if got, reasons := offerAt(c, o, 5000, time.Second, &seq); got != 5000 {
		t.Fatalf("no ceiling, 5000/s: admitted %d, shed %v", got, reasons)
	}
	if o.RateLimited() {
		t.Fatal("RateLimited with MaxSetupRate 0")
	}
}
