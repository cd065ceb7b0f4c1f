package records

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Recorder.
type Options struct {
	// Hasher hashes callers' numbers; required.
	Hasher *Hasher
	// Node names this server in the records; required, unique among the servers that
	// share a database.
	Node string
	// Timeout bounds each write; default 5s. A write that takes longer is given up,
	// logged and counted: the call goes on.
	Timeout time.Duration
	// Retention is how long records are kept; 0 keeps them for ever. Run purges older
	// ones.
	Retention time.Duration
	// Heartbeat is how often Run records that the node is alive (the estimated end of
	// calls cut off by a crash; see DB.RecoverInterrupted); default 30s.
	Heartbeat time.Duration
	// PurgeEvery is how often Run purges; default 1h.
	PurgeEvery time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger logs store errors; nil means slog.Default().
	Logger *slog.Logger
	// OnError, if set, is called with the operation ("start", "finish", "heartbeat",
	// "purge") each time a write fails, for a metric.
	OnError func(op string)
}

// Recorder writes the call path's records to a Store. Its methods are safe for concurrent
// use, and a nil *Recorder records nothing (records.driver: none).
//
// A slow or failed database never holds up or drops a call: the start of a call is written
// in the background, the end synchronously (so that it is committed before the call's
// goroutine moves on, and a kill -9 afterwards cannot lose it) but after the caller has
// hung up, both bounded by Options.Timeout; failures are logged and counted.
type Recorder struct {
	store    Store
	opts     Options
	log      *slog.Logger
	failures atomic.Uint64
	wg       sync.WaitGroup // background starts
}

// NewRecorder returns a Recorder that writes to store.
func NewRecorder(store Store, opts Options) *Recorder {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 30 * time.Second
	}
	if opts.PurgeEvery <= 0 {
		opts.PurgeEvery = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Recorder{store: store, opts: opts, log: log}
}

// Failures returns how many writes have failed.
func (r *Recorder) Failures() uint64 {
	if r == nil {
		return 0
	}
	return r.failures.Load()
}

func (r *Recorder) failed(op, callID string, err error) {
	r.failures.Add(1)
	r.log.Error("call record not written", "op", op, "call", callID, "err", err)
	if r.opts.OnError != nil {
		r.opts.OnError(op)
	}
}

// Begin starts the record of a call that arrived at start on line from caller (a SIP URI
// or number: only its hash is kept), and writes it as in progress in the background.
func (r *Recorder) Begin(callID, line, caller string, start time.Time) *Call {
	if r == nil {
		return nil
	}
	c := &Call{r: r, rec: Record{
		CallID: callID, Node: r.opts.Node, Line: line, CallerHash: r.opts.Hasher.Hash(caller),
		Start: start, Outcome: OutcomeInProgress,
	}}
	rec := c.rec
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
		defer cancel()
		if err := r.store.Start(ctx, rec); err != nil {
			r.failed("start", rec.CallID, err)
		}
	}()
	return c
}

// Wait waits for the background writes of calls' starts.
func (r *Recorder) Wait() {
	if r != nil {
		r.wg.Wait()
	}
}

// Run records the node's heartbeat every Options.Heartbeat and purges records older than
// Options.Retention at once and every Options.PurgeEvery, until ctx ends. It always
// returns nil: failures are logged and counted.
func (r *Recorder) Run(ctx context.Context) error {
	if r == nil {
		return nil
	}
	r.heartbeat(ctx)
	r.Purge(ctx)
	hb := time.NewTicker(r.opts.Heartbeat)
	defer hb.Stop()
	purge := time.NewTicker(r.opts.PurgeEvery)
	defer purge.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hb.C:
			r.heartbeat(ctx)
		case <-purge.C:
			r.Purge(ctx)
		}
	}
}

func (r *Recorder) heartbeat(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	if err := r.store.Heartbeat(ctx, r.opts.Node, r.opts.Now()); err != nil && ctx.Err() == nil {
		r.failed("heartbeat", "", err)
	}
}

// Purge deletes the records older than Options.Retention (none when it is 0) and returns
// how many it deleted.
func (r *Recorder) Purge(ctx context.Context) int {
	if r == nil || r.opts.Retention <= 0 {
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute) // a first purge may be large
	defer cancel()
	n, err := r.store.Purge(ctx, r.opts.Now().Add(-r.opts.Retention))
	if err != nil {
		if ctx.Err() == nil {
			r.failed("purge", "", err)
		}
		return 0
	}
	if n > 0 {
		r.log.Info("old call records purged", "records", n, "retention", r.opts.Retention)
	}
	return n
}

// Call is the record of one call as it goes along. Its methods are safe for concurrent use
// and do nothing on a nil *Call; each sets what the call path knows at that point.
type Call struct {
	r        *Recorder
	mu       sync.Mutex
	rec      Record
	finished bool
}

func (c *Call) update(f func(*Record)) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.finished {
		f(&c.rec)
	}
}

// Answered records when the server answered the call.
func (c *Call) Answered(t time.Time) { c.update(func(r *Record) { r.Answered = t }) }

// Menus records what the caller chose in the menus.
func (c *Call) Menus(language, reason string) {
	c.update(func(r *Record) { r.Language, r.Reason = language, reason })
}

// Routed records the route that decided and the first destination (a queue's or target's
// name).
func (c *Call) Routed(route, destination string) {
	c.update(func(r *Record) {
		r.Route = route
		r.Steps = append(r.Steps, destination)
	})
}

// Overflowed records that the call moved on to destination (a queue's or target's name).
func (c *Call) Overflowed(destination string) {
	c.update(func(r *Record) { r.Steps = append(r.Steps, destination) })
}

// Queued records that the call is waiting in queue since t; the first call sets the queue
// enter time, later ones (overflows) only the queue.
func (c *Call) Queued(queue string, t time.Time) {
	c.update(func(r *Record) {
		r.Queue = queue
		if r.QueueEnter.IsZero() {
			r.QueueEnter = t
		}
	})
}

// Connected records that advocate ("" for a target) answered at t.
func (c *Call) Connected(advocate string, t time.Time) {
	c.update(func(r *Record) { r.Advocate, r.Connected = advocate, t })
}

// WrapUp records the wrap-up time the advocate gets after the call.
func (c *Call) WrapUp(d time.Duration) { c.update(func(r *Record) { r.WrapUp = d }) }

// Ended records how and when the call ended; the first call counts. An outcome of "" is
// derived from the times: completed if connected, abandoned if queued, else menu_hangup.
func (c *Call) Ended(outcome Outcome, t time.Time) {
	c.update(func(r *Record) {
		if r.End.IsZero() {
			r.End, r.Outcome = t, outcome
		}
	})
}

// Record returns a copy of the record so far.
func (c *Call) Record() Record {
	if c == nil {
		return Record{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rec
	r.Steps = append([]string(nil), r.Steps...)
	return r
}

// Finish writes the ended call and returns once it is committed, or once the Recorder's
// Timeout has passed, even if ctx is cancelled before (a server that is stopping still
// records the calls it ends). A call not marked Ended ends now. Only the first Finish
// writes; it must be called after the caller's leg is gone, so that a slow database holds
// up nobody. The error is also logged and counted.
func (c *Call) Finish(ctx context.Context) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	if c.finished {
		c.mu.Unlock()
		return nil
	}
	c.finished = true
	if c.rec.End.IsZero() {
		c.rec.End = c.r.opts.Now()
	}
	if c.rec.Outcome == OutcomeInProgress {
		c.rec.Outcome = ""
	}
	rec := c.rec
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.r.opts.Timeout)
	defer cancel()
	if err := c.r.store.Finish(ctx, rec); err != nil {
		c.r.failed("finish", rec.CallID, err)
		return err
	}
	return nil
}
