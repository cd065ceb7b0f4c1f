package records

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Begin starts the record of a call that arrived at start on line from caller (a SIP URI
// or number: only its hash is kept), and queues it as in progress.
func (r *Recorder) Begin(callID, line, caller string, start time.Time) *Call {
	if r == nil {
		return nil
	}
	c := &Call{r: r, rec: Record{
		CallID: callID, Node: r.opts.Node, Line: line, CallerHash: r.opts.Hasher.Hash(caller),
		Start: start, Outcome: OutcomeInProgress,
	}}
	c.mu.Lock()
	c.progress()
	c.mu.Unlock()
	return c
}

// Call is the record of one call as it goes along. Its methods are safe for concurrent use
// and do nothing on a nil *Call; each sets what the call path knows at that point, and the
// milestones (Answered, Menus, Routed, Overflowed, Queued, Connected) queue the record as
// it stands, so that a call cut off by a crash keeps what was known of it.
type Call struct {
	r        *Recorder
	mu       sync.Mutex
	rec      Record
	finished bool
}

// progress queues the record as it stands; c.mu is held, which keeps a call's writes in
// the order they were made.
func (c *Call) progress() {
	if c.rec.CallID == "" || c.rec.Node == "" || c.rec.Start.IsZero() {
		return // check would reject it; Finish reports it
	}
	rec := c.snapshot()
	c.r.enqueue(&op{Kind: opProgress, Rec: &rec}, nil)
}

func (c *Call) snapshot() Record {
	r := c.rec
	r.Steps = append([]string(nil), r.Steps...)
	return r
}

// update applies f to the record unless the call is finished; milestone queues the result.
func (c *Call) update(milestone bool, f func(*Record)) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished {
		return
	}
	f(&c.rec)
	if milestone {
		c.progress()
	}
}

// Answered records when the server answered the call.
func (c *Call) Answered(t time.Time) { c.update(true, func(r *Record) { r.Answered = t }) }

// Menus records what the caller chose in the menus.
func (c *Call) Menus(language, reason string) {
	c.update(true, func(r *Record) { r.Language, r.Reason = language, reason })
}

// Routed records the route that decided and the first destination (a queue's or target's
// name).
func (c *Call) Routed(route, destination string) {
	c.update(true, func(r *Record) {
		r.Route = route
		r.Steps = append(r.Steps, destination)
	})
}

// Overflowed records that the call moved on to destination (a queue's or target's name).
func (c *Call) Overflowed(destination string) {
	c.update(true, func(r *Record) { r.Steps = append(r.Steps, destination) })
}

// Queued records that the call is waiting in queue since t; the first call sets the queue
// enter time, later ones (overflows) only the queue.
func (c *Call) Queued(queue string, t time.Time) {
	c.update(true, func(r *Record) {
		r.Queue = queue
		if r.QueueEnter.IsZero() {
			r.QueueEnter = t
		}
	})
}

// Connected records that advocate ("" for a target) answered at t.
func (c *Call) Connected(advocate string, t time.Time) {
	c.update(true, func(r *Record) { r.Advocate, r.Connected = advocate, t })
}

// WrapUp records the wrap-up time the advocate gets after the call.
func (c *Call) WrapUp(d time.Duration) { c.update(false, func(r *Record) { r.WrapUp = d }) }

// Ended records how and when the call ended; the first call counts. An outcome of "" is
// derived from the times: completed if connected, abandoned if queued, else menu_hangup.
// OutcomeShutdown during a fatal stop (see Recorder.SetStopping) becomes
// OutcomeShutdownFatal, with the error as the record's EndReason.
func (c *Call) Ended(outcome Outcome, t time.Time) {
	if c == nil {
		return
	}
	outcome, reason := c.r.stopOutcome(outcome)
	c.update(false, func(r *Record) {
		if r.End.IsZero() {
			r.End, r.Outcome, r.EndReason = t, outcome, reason
		}
	})
}

// stopOutcome turns OutcomeShutdown during a fatal stop into OutcomeShutdownFatal, with
// the error as the reason.
func (r *Recorder) stopOutcome(outcome Outcome) (Outcome, string) {
	if outcome != OutcomeShutdown {
		return outcome, ""
	}
	if f := r.stopping.Load(); f != nil {
		if err := (*f)(); err != nil && !errors.Is(err, context.Canceled) {
			return OutcomeShutdownFatal, endReason(err)
		}
	}
	return outcome, ""
}

// endReason is an error as an EndReason: its text, at most 200 bytes.
func endReason(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.ToValidUTF8(s, "?") // PostgreSQL refuses invalid UTF-8 in a text column
}

// Record returns a copy of the record so far.
func (c *Call) Record() Record {
	if c == nil {
		return Record{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snapshot()
}

// Finish queues the ended call and waits until it is committed to the store or, with the
// store unavailable, appended to the spool file, so that a kill -9 afterwards cannot lose
// it; or until Options.Timeout, even if ctx is cancelled before (a server that is stopping
// still records the calls it ends). A call not marked Ended ends now. Only the first
// Finish writes; it must be called after the caller's leg is gone, so that a slow store
// holds up nobody. An error (ErrNotWritten, ErrHeldInMemory, ErrDropped, or a record
// without its required fields) is for the log: the record, unless dropped, is still
// written when the store takes it.
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
	rec := c.snapshot()
	if err := check(&rec); err != nil {
		c.mu.Unlock()
		c.r.failed("write", err)
		return err
	}
	ch := make(chan error, 1)
	c.r.enqueue(&op{Kind: opFinish, Rec: &rec}, ch)
	c.mu.Unlock()
	_ = ctx // the wait is bounded by Timeout alone: see above
	wait := c.r.opts.Timeout
	if !c.r.up.Load() {
		// The store is unavailable: the record goes to the spool within one batch, or waits
		// in memory. Either way the call's goroutine (and its place under sip.max_calls)
		// is not held for a store that is not there.
		wait = min(wait, downWait)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case err := <-ch:
		if err != nil {
			return fmt.Errorf("records: finish %s: %w", rec.CallID, err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("records: finish %s: %w", rec.CallID, ErrNotWritten)
	}
}

// downWait bounds Finish's wait while the store is unavailable.
const downWait = 500 * time.Millisecond

// Unanswered records a call attempt that reached line and ended at end, before it was
// answered: cancelled, never acknowledged, failed in set-up, or cut off by a stop. It gets
// a row of its own, unless the queue is more than half full (a flood): then it is counted
// in call_attempts with the refused ones, by minute, line and outcome.
func (r *Recorder) Unanswered(callID, line, caller string, start, end time.Time, outcome Outcome) {
	if r == nil {
		return
	}
	if r.queueLen() > r.opts.QueueMax/2 {
		r.count(line, outcome, "", end)
		return
	}
	outcome, reason := r.stopOutcome(outcome)
	rec := Record{CallID: callID, Node: r.opts.Node, Line: line, CallerHash: r.opts.Hasher.Hash(caller),
		Start: start, End: end, Outcome: outcome, EndReason: reason}
	if check(&rec) != nil {
		return
	}
	r.enqueue(&op{Kind: opFinish, Rec: &rec}, nil)
}

// Refused counts an INVITE to line that the server refused, and why (capacity, draining,
// source_rate, ...): per minute, line and reason in call_attempts, never a row each, so a
// flood of them costs a map increment.
func (r *Recorder) Refused(line, reason string, at time.Time) {
	if r == nil {
		return
	}
	r.count(line, OutcomeRefused, reason, at)
}

// attemptKey is one row of call_attempts, but for the node.
type attemptKey struct {
	minute                int64 // Unix minutes
	line, outcome, reason string
}

// maxAttemptKeys bounds the counts waiting to be queued: lines and reasons are few, so
// this is hours of minutes; past it, counts are dropped and counted.
const maxAttemptKeys = 100_000

func (r *Recorder) count(line string, outcome Outcome, reason string, at time.Time) {
	k := attemptKey{minute: at.Unix() / 60, line: line, outcome: string(outcome), reason: reason}
	r.mu.Lock()
	if _, ok := r.attempts[k]; !ok && len(r.attempts) >= maxAttemptKeys {
		r.mu.Unlock()
		r.drop(&op{Kind: opAttempts}, "too many attempt counts waiting")
		return
	}
	r.attempts[k]++
	r.mu.Unlock()
}

// flushAttempts queues the counts gathered so far, unless the queue is full (they wait).
func (r *Recorder) flushAttempts() {
	r.mu.Lock()
	if len(r.attempts) == 0 || len(r.queue)+len(r.attempts) > r.opts.QueueMax {
		r.mu.Unlock()
		return
	}
	counts := r.attempts
	r.attempts = map[attemptKey]int64{}
	r.mu.Unlock()
	for k, n := range counts {
		r.push(&op{Kind: opAttempts, Att: &Attempts{Minute: time.Unix(k.minute*60, 0).UTC(), Node: r.opts.Node,
			Line: k.line, Outcome: Outcome(k.outcome), Reason: k.reason, Count: n}}, nil, true)
	}
}

// exporter is a store that can export (as *DB does).
type exporter interface {
	Export(ctx context.Context, w io.Writer, since, until time.Time) error
}

// Export writes the records of calls that started in [since, until) as CSV from the store;
// ErrStoreUnavailable until the store is open. It reads the store directly, so records
// still queued or spooled are not in it yet.
func (r *Recorder) Export(ctx context.Context, w io.Writer, since, until time.Time) error {
	st := r.openStore()
	ex, ok := st.(exporter)
	if !ok {
		return ErrStoreUnavailable
	}
	return ex.Export(ctx, w, since, until)
}
