package media

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// frameDuration is the packetization time of every leg.
	frameDuration = 20 * time.Millisecond
	// slotsPerFrame is the number of phases a frame is divided into; each
	// leg is sent in one of them.
	slotsPerFrame = 20
	// slotDuration is the length of one phase.
	slotDuration = frameDuration / slotsPerFrame
	// maxLateness is how far behind a worker may fall before it gives up
	// catching up slot by slot and skips to the present. Below it, late
	// frames go out in quick succession, which jitter buffers absorb; above
	// it (a paused process, a stalled VM) a burst of stale frames would only
	// overflow them.
	maxLateness = 5 * frameDuration
)

// SchedulerOptions configures a Scheduler.
type SchedulerOptions struct {
	// Workers is the number of sending goroutines; 0 means
	// runtime.GOMAXPROCS(0).
	Workers int
	// Logger receives the scheduler's logs; nil discards them.
	Logger *slog.Logger
	// OnLateness, when set, is called by a worker after each slot it runs
	// with how late the slot started against its deadline on the monotonic
	// clock. It runs on the sending path, so it must be quick and safe for
	// concurrent use (a Prometheus histogram's Observe is).
	OnLateness func(time.Duration)
}

// SchedulerStats are totals since the scheduler was created, across every
// leg that used it, including legs since closed.
type SchedulerStats struct {
	Legs            int    // legs registered now
	FramesSent      uint64 // RTP packets handed to the kernel
	SendErrors      uint64 // packets the kernel refused
	Skips           uint64 // times a worker fell more than 100 ms behind and skipped ahead
	FramesSkipped   uint64 // frames never sent because of those skips (late)
	PacketsReceived uint64 // valid RTP packets accepted from the learned source
	DroppedForeign  uint64 // packets from a source other than the learned one
	DroppedLearning uint64 // valid packets not used while a leg was learning its source
	LearnResets     uint64 // probations restarted by another stream's packet (attempted takeovers)
	DroppedInvalid  uint64 // packets that were not valid RTP version 2
	Digits          uint64 // DTMF key presses detected
}

// Scheduler paces the outgoing frames of every leg from one clock. Each
// worker owns a shard of the legs, divided into slotsPerFrame phases; it
// wakes at start+k*slotDuration on the monotonic clock (deadlines are
// computed, never accumulated, so pacing does not drift) and sends one
// frame for each leg of phase k%slotsPerFrame. A leg is placed in the
// least-loaded worker and, within it, the least-loaded phase, so that a
// tick's packets are spread over the whole frame rather than sent in one
// burst.
type Scheduler struct {
	log        *slog.Logger
	onLateness func(time.Duration)
	start      time.Time // slot 0 of frame 0, fixed for the scheduler's life
	workers    []*worker
	running    atomic.Bool

	mu   sync.Mutex // guards the placement of legs
	legs int

	skips atomic.Uint64
	// framesSkipped counts the frames not sent because a worker skipped ahead.
	framesSkipped atomic.Uint64
	received      atomic.Uint64
	foreign       atomic.Uint64
	learning      atomic.Uint64
	learnResets   atomic.Uint64
	invalid       atomic.Uint64
	digits        atomic.Uint64
}

// worker is one sending goroutine and the legs it owns.
type worker struct {
	// slots holds each phase's legs. The worker reads them without a lock;
	// placement replaces a phase's list wholesale (copy on write) under
	// Scheduler.mu.
	slots  [slotsPerFrame]atomic.Pointer[[]*Leg]
	counts [slotsPerFrame]int // guarded by Scheduler.mu
	legs   int                // guarded by Scheduler.mu
	// wake is signalled when a leg is added, so that an idle worker, or one
	// sleeping towards a later phase, looks again.
	wake chan struct{}

	framesSent atomic.Uint64
	sendErrors atomic.Uint64
	_          [64]byte // keep workers' counters off each other's cache lines
}

// NewScheduler returns a scheduler; legs can be added at once, and frames
// flow while Run runs.
func NewScheduler(opts SchedulerOptions) *Scheduler {
	n := opts.Workers
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{
		log:        log,
		onLateness: opts.OnLateness,
		start:      time.Now(),
		workers:    make([]*worker, n),
	}
	for i := range s.workers {
		s.workers[i] = &worker{wake: make(chan struct{}, 1)}
	}
	return s
}

// Run sends frames until ctx is done, then returns nil. It returns
// ErrSchedulerRunning if the scheduler is already running. Legs keep their
// place while the scheduler is stopped and resume on the next Run, their
// timestamps advanced by the time that passed.
func (s *Scheduler) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrSchedulerRunning
	}
	defer s.running.Store(false)
	s.log.Info("rtp scheduler started", "workers", len(s.workers))
	var wg sync.WaitGroup
	for _, w := range s.workers {
		wg.Go(func() { s.runWorker(ctx, w) })
	}
	wg.Wait()
	s.log.Info("rtp scheduler stopped", "legs", s.Stats().Legs)
	return nil
}

// Stats returns the scheduler's totals.
func (s *Scheduler) Stats() SchedulerStats {
	s.mu.Lock()
	legs := s.legs
	s.mu.Unlock()
	st := SchedulerStats{
		Legs:            legs,
		Skips:           s.skips.Load(),
		FramesSkipped:   s.framesSkipped.Load(),
		PacketsReceived: s.received.Load(),
		DroppedForeign:  s.foreign.Load(),
		DroppedLearning: s.learning.Load(),
		LearnResets:     s.learnResets.Load(),
		DroppedInvalid:  s.invalid.Load(),
		Digits:          s.digits.Load(),
	}
	for _, w := range s.workers {
		st.FramesSent += w.framesSent.Load()
		st.SendErrors += w.sendErrors.Load()
	}
	return st
}

// slotAt returns the index of the slot in progress at t.
func (s *Scheduler) slotAt(t time.Time) int64 {
	return int64(t.Sub(s.start) / slotDuration)
}

// frameNow returns the number of the frame in progress on the scheduler's
// clock: the frame whose packets the workers are sending now.
func (s *Scheduler) frameNow() uint64 {
	return uint64(max(0, s.slotAt(time.Now())) / slotsPerFrame)
}

// runWorker is the loop of one worker: sleep until the next phase that has
// legs, send their frames, repeat.
func (s *Scheduler) runWorker(ctx context.Context, w *worker) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	k := s.slotAt(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		default:
		}
		next, ok := w.nextBusy(k)
		if !ok {
			// No legs at all: sleep until one is added, then resume at the
			// present rather than replaying the idle time.
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
			}
			k = s.slotAt(time.Now())
			continue
		}
		k = next
		deadline := s.start.Add(time.Duration(k) * slotDuration)
		if d := time.Until(deadline); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
				// A leg may have joined an earlier phase: look again.
				continue
			case <-timer.C:
			}
		}
		late := time.Since(deadline)
		if late > maxLateness {
			// Skip ahead instead of bursting stale frames. Frame numbers,
			// and with them the legs' timestamps, follow the clock.
			skipped := s.slotAt(time.Now()) - k
			s.skips.Add(1)
			// Every leg of this worker loses the frames of the skipped span.
			var legs int64
			for i := range w.slots {
				if l := w.slots[i].Load(); l != nil {
					legs += int64(len(*l))
				}
			}
			s.framesSkipped.Add(uint64(legs * skipped / slotsPerFrame))
			s.log.Warn("rtp scheduler fell behind, skipping ahead", "late", late, "slots", skipped)
			k += skipped
			continue
		}
		w.runSlot(int(k%slotsPerFrame), uint64(k/slotsPerFrame))
		if s.onLateness != nil {
			s.onLateness(late)
		}
		k++
	}
}

// nextBusy returns the first slot index at or after k whose phase has legs.
func (w *worker) nextBusy(k int64) (int64, bool) {
	for i := range int64(slotsPerFrame) {
		if l := w.slots[(k+i)%slotsPerFrame].Load(); l != nil && len(*l) > 0 {
			return k + i, true
		}
	}
	return 0, false
}

// runSlot sends frame number frame of every leg in phase slot.
func (w *worker) runSlot(slot int, frame uint64) {
	legs := w.slots[slot].Load()
	if legs == nil {
		return
	}
	for _, l := range *legs {
		w.send(l, frame)
	}
}

// send sends one leg's frame; a panic ends that leg only, never the worker and its other legs.
func (w *worker) send(l *Leg, frame uint64) {
	defer func() {
		if r := recover(); r != nil {
			l.log.Error("panic sending rtp", "panic", r, "stack", string(debug.Stack()))
			go l.shutdown(ErrFailed) // not here: shutdown takes locks the panic may have left
		}
	}()
	l.sendFrame(frame, w)
}

// add places l in the least-loaded worker and phase.
func (s *Scheduler) add(l *Leg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wi := 0
	for i, w := range s.workers {
		if w.legs < s.workers[wi].legs {
			wi = i
		}
	}
	w := s.workers[wi]
	si := 0
	for i, c := range w.counts {
		if c < w.counts[si] {
			si = i
		}
	}
	var legs []*Leg
	if old := w.slots[si].Load(); old != nil {
		legs = make([]*Leg, 0, len(*old)+1)
		legs = append(legs, *old...)
	}
	legs = append(legs, l)
	w.slots[si].Store(&legs)
	w.counts[si]++
	w.legs++
	s.legs++
	l.worker, l.slot = w, si
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// remove takes l out of its phase. A worker that loaded the old list may
// still call l.sendFrame once more; sendFrame checks that the leg is open.
func (s *Scheduler) remove(l *Leg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := l.worker
	if w == nil {
		return
	}
	old := w.slots[l.slot].Load()
	legs := make([]*Leg, 0, len(*old))
	for _, o := range *old {
		if o != l {
			legs = append(legs, o)
		}
	}
	w.slots[l.slot].Store(&legs)
	w.counts[l.slot]--
	w.legs--
	s.legs--
	l.worker = nil
}

// load returns how many legs each worker has in each phase, for tests.
func (s *Scheduler) load() [][slotsPerFrame]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][slotsPerFrame]int, len(s.workers))
	for i, w := range s.workers {
		out[i] = w.counts
	}
	return out
}
