package sip

import (
	"hash/fnv"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/hotline-project/hotline/sip/gate"
)

// Reasons OverloadObserver.Shed is given.
const (
	ShedPending  = "pending"  // too many set-ups in flight
	ShedLatency  = "latency"  // set-ups are taking longer than the bound
	ShedLateness = "lateness" // the media scheduler is running late
	ShedCPUWait  = "cpu_wait" // runnable work waits too long for a CPU
	ShedRate     = "rate"     // more new calls a second are offered than MaxSetupRate
)

// Overload control: what the detector watches and how it reacts (see OverloadOptions).
const (
	// overloadTick is how often the signals are judged and the admitted share adjusted.
	overloadTick = 100 * time.Millisecond
	// latencyShare is the share of one tick's set-ups that may take longer than
	// MaxSetupLatency before it counts as overloaded (so: their 90th percentile is over it).
	latencyShare = 0.10
	// latenessShare is the same for the media scheduler's slots against MaxLateness (their
	// 99th percentile), and cpuWaitShare for the Go scheduler's waits against MaxCPUWait.
	latenessShare = 0.01
	cpuWaitShare  = 0.01
	// minSetups, minSlots and minWaits are the fewest samples a tick needs to be judged on
	// them: overload is a matter of hundreds of set-ups a second (200/s here) and of tens of
	// calls playing (100 of a tick's 200 slots in use), and a few slow samples are not.
	minSetups = 20
	minSlots  = 100
	minWaits  = 1000
	// shedDecrease multiplies the admitted share each overloaded tick; shedIncrease is added
	// back each tick without overload (AIMD, as TCP and RFC 7339's loss-based overload
	// control do): from everything admitted to a tenth in 400 ms.
	shedDecrease = 0.5
	shedIncrease = 0.1
	// For probeTicks ticks after a cut the share grows by probeIncrease a tick instead (as
	// TCP's congestion avoidance probes after a loss): near the load the server can take,
	// each overshoot admits set-ups the CPU cannot keep up with until a signal sees it a
	// tick or two later, and they and everything behind them (the 503s too) wait. A tenth
	// a tick overshot by up to 200 calls/s at twice the capacity (admitted p99 141 ms, 503
	// p99 200 ms in the quiet bench/run surge, issue 15); a fiftieth overshoots by 40. After
	// a passing stall everything is admitted again within about 2.5 s.
	probeIncrease = 0.02
	probeTicks    = 20
	// minAdmit is the admitted share below which nothing is admitted.
	minAdmit = 0.01
	// lateTicks is how many ticks in a row the scheduler lateness or the CPU waits must be
	// over their bounds before they count: a single stall of the machine (a neighbour's
	// burst, a pause) is not overload, and shedding would not shorten it.
	lateTicks = 2
	// The offered rate MaxSetupRate is held against is counted in rateSlots slots of
	// rateSlot: over the last 100 ms, brought up to date every 10 ms, so that a surge is
	// met within a few milliseconds rather than at the next tick.
	rateSlot  = 10 * time.Millisecond
	rateSlots = 10
	// rateSlack is how far over MaxSetupRate the calls of the last 100 ms may be before any
	// is shed: a steady rate at the ceiling arrives a little bunched (the socket, the
	// reader), and shedding that jitter would fail calls at a rate the server takes. A
	// pause of the reader still bunches more than that now and then: at exactly the
	// ceiling, 0 to 2 calls in 10,000 were shed (bench/run rate with max_setup_rate at
	// the rate offered); set the ceiling above the rate that must pass without loss.
	rateSlack = 1.10
	// surgeFactor is how far over the ceiling the calls of the last 20 ms must be to count
	// before the window shows them (setRateShare).
	surgeFactor = 1.5
)

// OverloadOptions configure an Overload detector. A zero bound turns its signal off.
type OverloadOptions struct {
	// MaxPending is the most set-ups in flight (admitted INVITEs not yet answered, ringing
	// ones included); beyond it a new INVITE is shed at once.
	MaxPending int
	// MaxSetupLatency bounds the time from an INVITE's admission to its answer being ready
	// (Setup.Ready; ringing is not counted): when more than 10 % of a tick's set-ups take
	// longer, the admitted share is halved.
	MaxSetupLatency time.Duration
	// MaxLateness bounds the media scheduler's lateness: when more than 1 % of the slots of
	// each of two ticks in a row start later than this, the admitted share is halved.
	MaxLateness time.Duration
	// MaxCPUWait bounds how long runnable goroutines wait for a CPU (the Go scheduler's
	// latency, ObserveCPUWaits): an INVITE waits there, unseen by MaxSetupLatency, before
	// its handler runs. When more than 1 % of the waits of each of two ticks in a row are
	// longer, the admitted share is halved.
	MaxCPUWait time.Duration
	// MaxSetupRate is the most new calls a second admitted: while more are offered (over
	// the last 100 ms, by more than 10 %: the jitter of a steady rate at the ceiling), the
	// share admitted is MaxSetupRate over the rate offered, on top of
	// the signals above. It is the capacity the machine was measured to take (bench/run
	// rate): admitting more than that only makes every set-up wait, and the adaptive
	// signals see that only after the fact. 0 is off.
	MaxSetupRate float64
	// RetryAfter is what the 503 asks the caller's side to wait; whole seconds, at least 1 s.
	RetryAfter time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// OverloadObserver receives the detector's events for metrics. Implementations must be cheap
// and concurrency safe.
type OverloadObserver interface {
	// Shed counts a new call refused by overload control (ShedPending, ShedLatency,
	// ShedLateness, ShedCPUWait).
	Shed(reason string)
}

// OverloadStats is the detector's state now, for metrics.
type OverloadStats struct {
	Pending int     // set-ups in flight
	Admit   float64 // share of new calls admitted, 0..1 (pending aside)
	Active  bool    // new calls are being shed: Admit < 1, or pending at MaxPending
	// Over are the shares of the last tick's samples over their bound, by signal
	// (ShedLatency, ShedLateness, ShedCPUWait); a signal off or without samples is 0.
	Over map[string]float64
}

// Overload decides whether a new call can be set up in time. It watches four signals: set-ups
// in flight (a hard cap), set-up latency, the media scheduler's lateness and the time
// runnable work waits for a CPU (the last three judged every 100 ms over that tick's
// samples). While any of the last three is over its bound, the share of new calls admitted
// is halved each tick, and grows back once none is (a fiftieth a tick for probeTicks, then a
// tenth); admitted calls are spread evenly among those offered. It is pure apart from its
// clock, and safe for concurrent use.
type Overload struct {
	opts OverloadOptions
	// shedding mirrors admit < 1, for the gate to read without the lock.
	shedding atomic.Bool

	mu      sync.Mutex
	pending int
	admit   float64 // share admitted
	credit  float64 // admitted share accumulated since the last admission
	reason  string  // the signal that last cut admit
	tick    time.Time
	// The current tick's samples.
	setups, slowSetups int
	slots, lateSlots   int
	waits, lateWaits   uint64
	over               [3]float64 // the last tick's shares over the bounds: latency, lateness, cpu wait
	streak             [3]int     // ticks in a row each signal has been over its bound
	calm               int        // calm ticks since the last cut (probeTicks: probing over)
	// The offered rate, for MaxSetupRate: new calls offered in each of the last rateSlots
	// slots (slot is the current one's index, slotAt its start), their sum, and the share
	// admitted under the ceiling (1 when under it).
	offered   [rateSlots]int
	slot      int
	slotAt    time.Time
	offeredN  int
	rateShare float64
}

// NewOverload returns a detector with nothing pending, admitting every call.
func NewOverload(opts OverloadOptions) *Overload {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RetryAfter < time.Second {
		opts.RetryAfter = time.Second
	}
	now := opts.Now()
	return &Overload{opts: opts, admit: 1, tick: now, calm: probeTicks, slotAt: now, rateShare: 1}
}

// Setup is one admitted call set-up; the zero Setup counts nothing. Ready and Done may each
// be called any number of times, from any goroutine; only the first call of each counts.
type Setup struct {
	o     *Overload
	start time.Time
	ready bool // guarded by o.mu
	done  bool // guarded by o.mu
}

// Admit decides on a new call: an admitted call gets its Setup and "", a shed one nil and the
// reason.
func (o *Overload) Admit() (*Setup, string) { return o.admitCall(false) }

// admitCall is Admit; with judged, the call already passed ShedByShare, and only the cap on
// set-ups in flight applies.
func (o *Overload) admitCall(judged bool) (*Setup, string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.opts.Now()
	o.advance(now)
	if o.opts.MaxPending > 0 && o.pending >= o.opts.MaxPending {
		return nil, ShedPending
	}
	if !judged && o.shedShare() {
		return nil, o.reason
	}
	o.pending++
	return &Setup{o: o, start: now}, ""
}

// ShedByShare decides on a new call by the admitted share alone, as the gate does before
// sipgo parses the INVITE: it reports whether to shed it, and why. The call is placed by key
// (a hash of its Call-ID, uniform in [0, 1)) against the share, not by turn, so that a
// retransmission of the INVITE gets the same answer while the share holds: a stateless 503
// for a call whose first INVITE went on to be answered would contradict it. It takes no
// lock while everything is admitted.
func (o *Overload) ShedByShare(key float64) (string, bool) {
	if !o.shedding.Load() {
		return "", false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.judge(key, o.opts.Now())
}

// Offer is ShedByShare for a new call offered: it counts the call against MaxSetupRate
// first. Every new call to a line is offered once (shedEarly), or counted by Offered when
// shedEarlier sheds it instead.
func (o *Overload) Offer(key float64) (string, bool) {
	if o.opts.MaxSetupRate <= 0 {
		return o.ShedByShare(key)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.opts.Now()
	o.count(now)
	return o.judge(key, now)
}

// Offered counts a new call that was shed before Offer saw it (shedEarlier).
func (o *Overload) Offered() {
	if o.opts.MaxSetupRate <= 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.count(o.opts.Now())
}

// RateLimited reports whether MaxSetupRate is set: every new call is then offered.
func (o *Overload) RateLimited() bool { return o.opts.MaxSetupRate > 0 }

// judge places a call's key against the admitted share and the rate ceiling's. o.mu is
// held.
func (o *Overload) judge(key float64, now time.Time) (string, bool) {
	o.advance(now)
	o.slide(now)
	switch {
	case key >= o.admit:
		return o.reason, true
	case key >= o.rateShare:
		return ShedRate, true
	}
	return "", false
}

// count counts a call offered now and sets the rate ceiling's share. o.mu is held.
func (o *Overload) count(now time.Time) {
	o.slide(now)
	o.offered[o.slot]++
	o.offeredN++
	o.setRateShare()
}

// slide moves the offered rate's window up to now. o.mu is held.
func (o *Overload) slide(now time.Time) {
	if o.opts.MaxSetupRate <= 0 {
		return
	}
	n := int(now.Sub(o.slotAt) / rateSlot)
	if n <= 0 {
		return
	}
	for i := 0; i < n && i < rateSlots; i++ {
		o.slot = (o.slot + 1) % rateSlots
		o.offeredN -= o.offered[o.slot]
		o.offered[o.slot] = 0
	}
	o.slotAt = o.slotAt.Add(time.Duration(n) * rateSlot)
	o.setRateShare()
}

// setRateShare sets the share admitted under MaxSetupRate from the rate offered over the
// window. o.mu is held.
func (o *Overload) setRateShare() {
	allowed := o.opts.MaxSetupRate * (rateSlot * rateSlots).Seconds()
	offered := float64(o.offeredN)
	// A surge shows in the last 20 ms before it fills the window: taken as the rate
	// offered once it is well over the ceiling (20 ms holds too few calls to judge by
	// more finely), so that a surge's first 100 ms do not admit up to 1.7 times the
	// ceiling while the window fills.
	prev := (o.slot + rateSlots - 1) % rateSlots
	if recent := float64(o.offered[o.slot]+o.offered[prev]) * rateSlots / 2; recent > allowed*surgeFactor && recent > offered {
		offered = recent
	}
	o.rateShare = 1
	if offered > allowed*rateSlack {
		o.rateShare = allowed / offered
	}
	o.shedding.Store(o.admit < 1 || o.rateShare < 1)
}

// shedShare spreads the admitted share evenly over the calls offered: it reports whether
// this one is shed. o.mu is held.
func (o *Overload) shedShare() bool {
	if o.admit >= 1 {
		return false
	}
	o.credit += o.admit
	if o.credit < 1 {
		return true
	}
	o.credit--
	return false
}

// Ready says the answer is ready (before any ringing, sip.answer_delay): the set-up's latency
// is measured to here.
func (s *Setup) Ready() {
	o := s.o
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	s.ready1(o.opts.Now())
}

func (s *Setup) ready1(now time.Time) {
	o := s.o
	if s.ready {
		return
	}
	s.ready = true
	o.advance(now)
	o.setups++
	if o.opts.MaxSetupLatency > 0 && now.Sub(s.start) > o.opts.MaxSetupLatency {
		o.slowSetups++
	}
}

// Done ends the set-up: the call was answered, or failed. It is Ready too, if it was not yet.
func (s *Setup) Done() {
	o := s.o
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	s.ready1(o.opts.Now())
	if !s.done {
		s.done = true
		o.pending--
	}
}

// ObserveLateness takes how late one of the media scheduler's slots started
// (media.SchedulerOptions.OnLateness).
func (o *Overload) ObserveLateness(late time.Duration) {
	if o.opts.MaxLateness <= 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.advance(o.opts.Now())
	o.slots++
	if late > o.opts.MaxLateness {
		o.lateSlots++
	}
}

// ObserveCPUWaits takes, for the time since its last call, how many times goroutines
// became runnable and waited for a CPU, and how many of them waited longer than
// MaxCPUWait (from runtime/metrics' /sched/latencies:seconds).
func (o *Overload) ObserveCPUWaits(total, late uint64) {
	if o.opts.MaxCPUWait <= 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.advance(o.opts.Now())
	o.waits += total
	o.lateWaits += late
}

// MaxCPUWait is the bound ObserveCPUWaits counts waits against; 0 is off.
func (o *Overload) MaxCPUWait() time.Duration { return o.opts.MaxCPUWait }

// Stats returns the detector's state now.
func (o *Overload) Stats() OverloadStats {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.advance(o.opts.Now())
	o.slide(o.opts.Now())
	full := o.opts.MaxPending > 0 && o.pending >= o.opts.MaxPending
	admit := min(o.admit, o.rateShare)
	return OverloadStats{Pending: o.pending, Admit: admit, Active: admit < 1 || full,
		Over: map[string]float64{ShedLatency: o.over[0], ShedLateness: o.over[1], ShedCPUWait: o.over[2]}}
}

// RetryAfter is the Retry-After header value for a shed call, in whole seconds.
func (o *Overload) RetryAfter() string {
	return strconv.Itoa(int((o.opts.RetryAfter + time.Second - 1) / time.Second))
}

// advance judges the tick that has ended, if one has, on its samples, and counts the ticks
// after it (without samples: nothing happened, or the clock jumped) as calm.
func (o *Overload) advance(now time.Time) {
	n := int64(now.Sub(o.tick) / overloadTick)
	if n <= 0 {
		return
	}
	o.over = [3]float64{}
	if o.opts.MaxSetupLatency > 0 && o.setups >= minSetups {
		o.over[0] = float64(o.slowSetups) / float64(o.setups)
	}
	if o.opts.MaxLateness > 0 && o.slots >= minSlots {
		o.over[1] = float64(o.lateSlots) / float64(o.slots)
	}
	if o.opts.MaxCPUWait > 0 && o.waits >= minWaits {
		o.over[2] = float64(o.lateWaits) / float64(o.waits)
	}
	for i, share := range [3]float64{latencyShare, latenessShare, cpuWaitShare} {
		if o.over[i] > share {
			o.streak[i]++
		} else {
			o.streak[i] = 0
		}
	}
	reason := ""
	switch {
	case o.streak[0] >= 1:
		reason = ShedLatency
	case o.streak[1] >= lateTicks:
		reason = ShedLateness
	case o.streak[2] >= lateTicks:
		reason = ShedCPUWait
	}
	if n > 1 {
		o.over, o.streak = [3]float64{}, [3]int{} // the last tick had no samples
	}
	calm := n
	if reason != "" {
		calm--
		o.admit *= shedDecrease
		if o.admit < minAdmit {
			o.admit = 0
		}
		o.reason = reason
		o.calm = 0
	}
	for ; calm > 0 && o.admit < 1; calm-- {
		if o.calm < probeTicks {
			o.admit += probeIncrease
			o.calm++
		} else {
			o.admit += shedIncrease
		}
	}
	if o.admit > 1-1e-9 { // floating point: ten tenths are not quite 1
		o.admit, o.credit = 1, 0
	}
	o.shedding.Store(o.admit < 1 || o.rateShare < 1)
	o.setups, o.slowSetups, o.slots, o.lateSlots, o.waits, o.lateWaits = 0, 0, 0, 0, 0, 0
	o.tick = o.tick.Add(time.Duration(n) * overloadTick)
}

// admitSetup applies overload control's cap on set-ups in flight to a new call (the admitted
// share was applied by the gate, shedEarly). It returns the call's Setup, or nil when the
// INVITE was shed: answered 503 with Retry-After here, so the carrier tries again later or
// elsewhere instead of waiting, and counted with the call attempts. Without
// Options.Overload every call is admitted, with a Setup that counts nothing.
func (s *Server) admitSetup(req *sipmsg.Request, tx sipmsg.ServerTransaction, line string) *Setup {
	o := s.opts.Overload
	if o == nil {
		return &Setup{} // counts nothing
	}
	setup, reason := o.admitCall(true)
	if setup != nil {
		return setup
	}
	if s.opts.OverloadObserver != nil {
		s.opts.OverloadObserver.Shed(reason)
	}
	s.respond(tx, req, 503, "Service Unavailable", nil, sipmsg.NewHeader("Retry-After", o.RetryAfter()))
	s.attemptRefused(line, RefuseOverload)
	return nil
}

// shedEarly applies overload control's admitted share to a new call to line as the gate
// admits it (admit, defence.go), before sipgo makes a transaction and a goroutine for it: a
// shed call gets its 503 with Retry-After statelessly, so at twice the rate the server can
// take, half the INVITEs cost little more than the gate's checks. The cap on set-ups in
// flight is applied later, in the handler (admitSetup).
func (s *Server) shedEarly(in gate.Request, line string) (gate.Verdict, bool) {
	o := s.opts.Overload
	if o == nil || !o.shedding.Load() && !o.RateLimited() {
		return gate.Verdict{}, false
	}
	id := ""
	if h := in.Req.CallID(); h != nil {
		id = h.Value()
	}
	reason, shed := o.Offer(shedKey(id))
	if !shed {
		return gate.Verdict{}, false
	}
	s.countShed(reason, line)
	return in.Reply(503, "overload", "Retry-After: "+o.RetryAfter()), true
}

// shedEarlier is shedEarly before sipgo's parse (gate.Config.Early): while calls are being
// shed, a new call to a line from a trusted source (the carrier's trunk) that the share
// sheds is answered from the raw text of its INVITE, which saves the parse, half of what
// the gate's checks cost. Anything else, and whatever it cannot read simply, goes on to
// the full checks and admit, which decide as before: an untrusted source's INVITE is
// judged against its limits first; an INVITE to no line gets 404, a re-INVITE, a feature
// code or one with Require is never shed. The decision is shedEarly's, by the same key,
// so a retransmission gets the same answer either way.
func (s *Server) shedEarlier(in gate.Early) (gate.Verdict, bool) {
	o := s.opts.Overload
	if o == nil || !o.shedding.Load() || in.Method != "INVITE" || in.InDialog || in.Require ||
		in.User == "" || in.CallID == "" || s.draining.Load() {
		return gate.Verdict{}, false
	}
	if l := s.opts.Defences; l != nil && (!in.Src.IsValid() || !l.Trusted(in.Src)) {
		return gate.Verdict{}, false
	}
	if _, feature := featureCode(in.User); feature && s.authEnabled() {
		return gate.Verdict{}, false
	}
	line, ok := s.opts.Lines(in.User)
	if !ok {
		return gate.Verdict{}, false
	}
	reason, shed := o.ShedByShare(shedKey(in.CallID))
	if !shed {
		return gate.Verdict{}, false
	}
	o.Offered() // shedEarly, which counts the others, does not see it
	s.countShed(reason, line)
	return in.Reply(503, "overload", "Retry-After: "+o.RetryAfter()), true
}

// shedKey places a call against the admitted share by its Call-ID, uniformly in [0, 1).
func shedKey(callID string) float64 {
	h := fnv.New64a()
	h.Write([]byte(callID))
	return float64(h.Sum64()%1_000_000) / 1_000_000
}

// countShed counts a new call to line shed by overload control.
func (s *Server) countShed(reason, line string) {
	if s.opts.OverloadObserver != nil {
		s.opts.OverloadObserver.Shed(reason)
	}
	s.attemptRefused(line, RefuseOverload)
}
