package records

import (
	"context"
	"fmt"
	"io"
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
	// Timeout bounds how long Finish waits for its record to be committed (or spooled),
	// and each attempt to open the store; default 5s. A record not written by then stays
	// queued: the call goes on.
	Timeout time.Duration
	// Retention is how long records are kept; 0 keeps them for ever.
	Retention time.Duration
	// Heartbeat is how often the node's heartbeat is recorded (the estimated end of calls
	// cut off by a crash; see DB.RecoverInterrupted); default 30s.
	Heartbeat time.Duration
	// PurgeEvery is how often records older than Retention are purged; default 1h.
	PurgeEvery time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger logs store errors; nil means slog.Default().
	Logger *slog.Logger
	// OnError, if set, is called with the operation ("open", "write", "spool",
	// "recover", "heartbeat", "purge") each time one fails, for a metric.
	OnError func(op string)

	// Spool is the file records wait in while the store is unavailable (JSON lines,
	// mode 0600, kept across restarts); "" keeps them in memory only.
	Spool string
	// SpoolMax bounds the spool file's size in bytes; default 256 MiB (about 400,000
	// records). Past it, records wait in memory.
	SpoolMax int64
	// QueueMax bounds the records waiting in memory (each call's latest state counts
	// once); default 20,000. Past it, new records are dropped and counted (Stats.Dropped).
	QueueMax int
	// Linger is how long the writer waits for more records before it commits a batch
	// (group commit); default 2ms.
	Linger time.Duration
	// MaxBatch bounds the records of one transaction; default 1,000.
	MaxBatch int
	// Retry is how often an unavailable store is tried again; default 2s.
	Retry time.Duration
	// AttemptsEvery is how often the counts of refused call attempts are queued for the
	// store; default 10s.
	AttemptsEvery time.Duration
}

// Store is what a Recorder needs of a store; *DB implements it, tests wrap it.
type Store interface {
	// Heartbeat records that node is alive at now.
	Heartbeat(ctx context.Context, node string, now time.Time) error
	// Purge deletes the records of calls that started before before and are not in
	// progress, and returns how many it deleted.
	Purge(ctx context.Context, before time.Time) (int, error)
	// RecoverInterrupted marks node's calls left in progress as interrupted.
	RecoverInterrupted(ctx context.Context, node string, now time.Time) (int, error)
	batchWriter
}

var _ Store = (*DB)(nil)

// Recorder writes the call path's records to a Store through one writer goroutine. Its
// methods are safe for concurrent use, and a nil *Recorder records nothing (records.driver:
// none).
//
// The store never decides whether a call is answered: records are queued in memory and
// written by the writer, all that arrive within Options.Linger in one transaction (group
// commit). When the store is unavailable (not yet opened, locked, full, read-only, down),
// the writer appends them to the spool file, or keeps them in memory when the disk will not
// take them either, and tries the store again every Options.Retry; when it is back, the
// spool is written first, in order, then the rest. Past the memory bound, new records are
// dropped and counted: never silently.
type Recorder struct {
	open func(context.Context) (Store, error)
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	queue    []*op          // oldest first
	byCall   map[string]*op // a call's op still in queue: later writes update it in place
	inflight int            // ops the writer took and has not written or put back: they count towards QueueMax
	attempts map[attemptKey]int64
	closing  bool
	wake     chan struct{}
	done     chan struct{} // closed when the writer has stopped
	stopping atomic.Pointer[func() error]

	// opened is the store once open (a storeBox), for Export from other goroutines.
	opened atomic.Value
	owns   bool // the store came from open: Close closes it

	// The writer goroutine's own.
	store     Store
	spool     *spool
	stalled   bool // neither the store nor the spool took the last batch
	lastLog   time.Time
	downSince time.Time

	// Stats.
	up          atomic.Bool
	lastErr     atomic.Pointer[string]
	since       atomic.Int64 // Unix ms the store went down; 0 when up
	written     atomic.Uint64
	failures    atomic.Uint64
	dropped     [dropKinds]atomic.Uint64
	queued      atomic.Int64
	spooled     atomic.Int64
	lastDropLog atomic.Int64
}

// Kinds of dropped records (Stats.Dropped).
const (
	dropProgress = iota // a call's progress; its end, if written, carries all of it
	dropFinish          // an ended call: its record is lost
	dropAttempt         // counts of refused attempts
	dropKinds
)

// DropKinds name the indexes of Stats.Dropped, for a metric's label.
var DropKinds = [dropKinds]string{"progress", "finish", "attempts"}

// NewRecorder returns a Recorder that writes to store, which is open.
func NewRecorder(store Store, opts Options) *Recorder {
	return newRecorder(func(context.Context) (Store, error) { return store, nil }, opts, false)
}

type storeBox struct{ Store }

func (r *Recorder) openStore() Store {
	if r == nil {
		return nil
	}
	if b, ok := r.opened.Load().(storeBox); ok {
		return b.Store
	}
	return nil
}

// Open returns a Recorder whose writer opens its store with open, and keeps trying every
// Options.Retry until that succeeds: a store that is locked, full, read-only or down when
// the server starts costs no call. Close stops it.
func Open(open func(context.Context) (Store, error), opts Options) *Recorder {
	return newRecorder(open, opts, true)
}

func newRecorder(open func(context.Context) (Store, error), opts Options, owns bool) *Recorder {
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
	if opts.SpoolMax <= 0 {
		opts.SpoolMax = 256 << 20
	}
	if opts.QueueMax <= 0 {
		opts.QueueMax = 20000
	}
	if opts.Linger <= 0 {
		opts.Linger = 2 * time.Millisecond
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1000
	}
	if opts.Retry <= 0 {
		opts.Retry = 2 * time.Second
	}
	if opts.AttemptsEvery <= 0 {
		opts.AttemptsEvery = 10 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	r := &Recorder{
		open: open, opts: opts, log: log, owns: owns,
		byCall: map[string]*op{}, attempts: map[attemptKey]int64{},
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	sp, err := openSpool(opts.Spool, opts.SpoolMax)
	if err != nil {
		r.failed("spool", err)
	}
	r.spool = sp
	r.spooled.Store(int64(sp.n))
	// This run's first op, behind whatever an earlier run spooled: the calls that run left
	// in progress are interrupted, and none of this run's.
	r.queue = append(r.queue, &op{Kind: opRecover, Node: opts.Node, At: opts.Now()},
		&op{Kind: opHeartbeat, At: opts.Now()}, &op{Kind: opPurge})
	r.queued.Store(int64(len(r.queue)))
	go r.run()
	return r
}

// SetStopping sets the function that says why the server is stopping: nil while it runs,
// context.Canceled for an orderly stop, another error for a fatal one. A call ended with
// OutcomeShutdown during a fatal stop is recorded as OutcomeShutdownFatal with the error.
func (r *Recorder) SetStopping(f func() error) {
	if r != nil {
		r.stopping.Store(&f)
	}
}

// Stats is the state of a Recorder, for metrics and /readyz.
type Stats struct {
	StoreUp     bool      // the last write (or open) succeeded
	DownSince   time.Time // when the store became unavailable; zero when up
	LastError   string    // the last store error, "" when none
	Queued      int       // records waiting in memory
	Spooled     int       // records waiting in the spool file
	Written     uint64    // records (and attempt counts) written to the store
	Failures    uint64    // failed store operations (opens, writes, spool appends, ...)
	Dropped     [dropKinds]uint64
	SpoolActive bool // a spool file is configured
}

// Stats returns the Recorder's state; the zero Stats for a nil Recorder.
func (r *Recorder) Stats() Stats {
	if r == nil {
		return Stats{}
	}
	s := Stats{
		StoreUp: r.up.Load(), Queued: int(r.queued.Load()), Spooled: int(r.spooled.Load()),
		Written: r.written.Load(), Failures: r.failures.Load(), SpoolActive: r.opts.Spool != "",
	}
	if ms := r.since.Load(); ms != 0 {
		s.DownSince = time.UnixMilli(ms)
	}
	if e := r.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	for i := range s.Dropped {
		s.Dropped[i] = r.dropped[i].Load()
	}
	return s
}

// Failures returns how many store operations have failed.
func (r *Recorder) Failures() uint64 {
	if r == nil {
		return 0
	}
	return r.failures.Load()
}

// Wait waits until every record queued before it is settled: written, spooled, or (with
// the store and the spool both unavailable) held in memory; or until Options.Timeout.
func (r *Recorder) Wait() {
	if r == nil {
		return
	}
	ch := make(chan error, 1)
	r.enqueue(&op{Kind: opBarrier}, ch)
	t := time.NewTimer(r.opts.Timeout)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}

// Close writes what is queued (or spools it), and stops the writer; it returns when that
// is done or ctx ends. Records that neither the store nor the spool took are lost, and
// logged and counted as dropped. Records queued after Close are not written.
func (r *Recorder) Close(ctx context.Context) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	r.closing = true
	r.mu.Unlock()
	r.signal()
	select {
	case <-r.done:
		if c, ok := r.openStore().(io.Closer); ok && r.owns {
			return c.Close()
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("records: close: %w", ctx.Err())
	}
}

func (r *Recorder) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// enqueue adds o to the queue; waiter, if not nil, is told when o is settled. A call's op
// still waiting in the queue is updated in place instead: the newer record, the stronger
// kind, so a call that starts and ends between two batches is one write.
func (r *Recorder) enqueue(o *op, waiter chan error) {
	r.push(o, waiter, false)
}

// push is enqueue; the writer itself (closing) may still queue the last attempt counts.
func (r *Recorder) push(o *op, waiter chan error, closing bool) {
	r.mu.Lock()
	if r.closing && !closing && o.Kind != opBarrier {
		r.mu.Unlock()
		r.drop(o, "the recorder is closed")
		settle(waiter, ErrDropped)
		return
	}
	if o.Rec != nil {
		if p := r.byCall[o.Rec.CallID]; p != nil {
			p.Rec = o.Rec
			p.Kind = max(p.Kind, o.Kind)
			if waiter != nil {
				p.waiters = append(p.waiters, waiter)
			}
			r.mu.Unlock()
			return
		}
	}
	if len(r.queue)+r.inflight >= r.opts.QueueMax && o.Kind != opBarrier {
		r.mu.Unlock()
		r.drop(o, "the memory queue is full")
		settle(waiter, ErrDropped)
		return
	}
	if waiter != nil {
		o.waiters = append(o.waiters, waiter)
	}
	r.queue = append(r.queue, o)
	if o.Rec != nil {
		r.byCall[o.Rec.CallID] = o
	}
	r.queued.Store(int64(len(r.queue)))
	r.mu.Unlock()
	r.signal()
}

// drop counts a record that is lost, and logs it (at most every 10 seconds).
func (r *Recorder) drop(o *op, why string) {
	kind := -1
	switch o.Kind {
	case opProgress:
		kind = dropProgress
	case opFinish:
		kind = dropFinish
	case opAttempts:
		kind = dropAttempt
	}
	if kind < 0 {
		return
	}
	n := r.dropped[kind].Add(1)
	now := time.Now().UnixMilli()
	if last := r.lastDropLog.Load(); now-last >= 10_000 && r.lastDropLog.CompareAndSwap(last, now) {
		r.log.Error("call records dropped", "why", why, "kind", DropKinds[kind], "dropped_so_far", n,
			"queued", r.queued.Load(), "spooled", r.spooled.Load())
	}
}

func settle(waiter chan error, err error) {
	if waiter != nil {
		waiter <- err
	}
}

func (o *op) settle(err error) {
	for _, w := range o.waiters {
		w <- err
	}
	o.waiters = nil
}

// failed counts a failed store operation and remembers its error.
func (r *Recorder) failed(op string, err error) {
	r.failures.Add(1)
	msg := op + ": " + err.Error()
	r.lastErr.Store(&msg)
	if r.opts.OnError != nil {
		r.opts.OnError(op)
	}
}

// down records that the store failed: loudly at once, then once a minute while it lasts.
func (r *Recorder) down(op string, err error) {
	r.failed(op, err)
	now := time.Now()
	if r.up.Swap(false) || r.downSince.IsZero() {
		r.downSince = now
		r.since.Store(now.UnixMilli())
		r.lastLog = now
		r.log.Error("call records store unavailable: calls are answered as usual, and their records wait "+
			"(in the spool file, or in memory) until it is back", "op", op, "err", err,
			"spool", r.opts.Spool, "queued", r.queued.Load(), "spooled", r.spooled.Load())
		return
	}
	if now.Sub(r.lastLog) >= time.Minute {
		r.lastLog = now
		r.log.Error("call records store still unavailable", "op", op, "err", err, "since", r.downSince,
			"queued", r.queued.Load(), "spooled", r.spooled.Load())
	}
}

// isUp records that the store took a write.
func (r *Recorder) isUp() {
	if r.up.Swap(true) {
		return
	}
	if !r.downSince.IsZero() {
		r.log.Warn("call records store is back; waiting records written", "down_for", time.Since(r.downSince).Round(time.Second))
	}
	r.downSince = time.Time{}
	r.since.Store(0)
	r.lastErr.Store(nil)
}

// CallerHash is the keyed hash the records keep of caller (Hasher.Hash): "" for an
// anonymous or withheld caller, and from a nil Recorder.
func (r *Recorder) CallerHash(caller string) string {
	if r == nil {
		return ""
	}
	return r.opts.Hasher.Hash(caller)
}
