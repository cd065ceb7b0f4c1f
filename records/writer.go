package records

import (
	"context"
	"time"
)

// run is the writer goroutine: it takes batches off the queue and writes each in one
// transaction, or spools it while the store is unavailable, until Close.
func (r *Recorder) run() {
	defer close(r.done)
	// The store is tried at once, then every Retry while it is unavailable. armed: the
	// timer runs (it is never pushed back by traffic, or a busy hotline would never retry).
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	retryDue, armed := true, false
	heartbeat := time.NewTicker(r.opts.Heartbeat)
	defer heartbeat.Stop()
	purge := time.NewTicker(r.opts.PurgeEvery)
	defer purge.Stop()
	attempts := time.NewTicker(r.opts.AttemptsEvery)
	defer attempts.Stop()
	for {
		// Wait for work: records (unless the last batch found nowhere to go, then the
		// next retry), or Close.
		for {
			r.mu.Lock()
			n, closing := len(r.queue), r.closing
			r.mu.Unlock()
			if closing || (retryDue && !r.up.Load()) || (n > 0 && (!r.stalled || retryDue)) {
				break
			}
			select {
			case <-r.wake:
			case <-retry.C:
				retryDue, armed = true, false
			case <-heartbeat.C:
				r.enqueue(&op{Kind: opHeartbeat, At: r.opts.Now()}, nil)
			case <-purge.C:
				r.enqueue(&op{Kind: opPurge}, nil)
			case <-attempts.C:
				r.flushAttempts()
			}
		}
		r.mu.Lock()
		closing := r.closing
		r.mu.Unlock()
		if closing {
			r.flushAttempts()
		}
		if !r.up.Load() && (retryDue || closing) {
			retryDue = false
			if r.connect() {
				r.stalled = false
			} else {
				retry.Reset(r.opts.Retry)
				armed = true
			}
		}
		if !closing && r.up.Load() && r.queueLen() < r.opts.MaxBatch {
			time.Sleep(r.opts.Linger) // group commit: let the calls of the next few ms join
		}
		batch := r.take()
		if len(batch) > 0 {
			r.process(batch)
			r.landed()
		}
		for closing && !r.stalled && r.queueLen() > 0 {
			r.process(r.take()) // the rest, MaxBatch at a time
			r.landed()
		}
		if !r.up.Load() && !retryDue && !armed && !closing {
			// process found the store gone: try it again after Retry.
			retry.Reset(r.opts.Retry)
			armed = true
		}
		if closing {
			r.mu.Lock()
			left := r.queue
			r.queue, r.byCall = nil, map[string]*op{}
			r.queued.Store(0)
			r.mu.Unlock()
			for _, o := range left {
				r.drop(o, "the server stopped with the store and the spool unavailable")
				o.settle(ErrDropped)
			}
			return
		}
	}
}

func (r *Recorder) queueLen() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queue)
}

// take removes up to MaxBatch ops from the head of the queue.
func (r *Recorder) take() []*op {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := min(len(r.queue), r.opts.MaxBatch)
	batch := make([]*op, n)
	copy(batch, r.queue)
	clear(r.queue[:n])
	r.queue = r.queue[n:]
	for _, o := range batch {
		if o.Rec != nil && r.byCall[o.Rec.CallID] == o {
			delete(r.byCall, o.Rec.CallID)
		}
	}
	r.queued.Store(int64(len(r.queue)))
	r.inflight = n
	return batch
}

// landed says the batch taken last is written, spooled, dropped or put back: none of it
// is in flight any more.
func (r *Recorder) landed() {
	r.mu.Lock()
	r.inflight = 0
	r.mu.Unlock()
}

// requeue puts ops that found nowhere to go back at the head of the queue, in order.
func (r *Recorder) requeue(ops []*op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queue = append(ops[:len(ops):len(ops)], r.queue...)
	r.inflight = max(0, r.inflight-len(ops))
	for _, o := range ops {
		if o.Rec != nil && r.byCall[o.Rec.CallID] == nil {
			r.byCall[o.Rec.CallID] = o
		}
	}
	r.queued.Store(int64(len(r.queue)))
}

// connect opens the store if it is not open, and writes what the spool holds; it reports
// whether the store is up.
func (r *Recorder) connect() bool {
	if r.store == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*r.opts.Timeout)
		st, err := r.open(ctx)
		cancel()
		if err != nil {
			r.down("open", err)
			return false
		}
		r.store = st
		r.opened.Store(storeBox{st})
	}
	if !r.spool.empty() {
		n := r.spool.n
		if err := r.spool.replay(r.opts.MaxBatch, r.applyOrSkip); err != nil {
			r.spooled.Store(int64(r.spool.n))
			r.down("write", err)
			return false
		}
		r.spooled.Store(0)
		r.log.Info("spooled call records written to the store", "records", n, "unreadable_lines", r.spool.bad)
	}
	r.isUp()
	return true
}

// process writes batch to the store, or spools what the store did not take, or keeps it
// in memory when the spool will not take it either.
func (r *Recorder) process(batch []*op) {
	if r.up.Load() {
		n, err := r.apply(batch)
		if err != nil && r.opts.Spool == "" {
			// No spool's replay to skip a record the store refuses on its own: skip it here.
			var m int
			m, err = r.applyOrSkip(batch[n:])
			n += m
		}
		if err == nil {
			return
		}
		r.down("write", err)
		batch = batch[n:]
	}
	var keep, barriers []*op
	defer func() {
		for _, o := range barriers {
			o.settle(nil) // after what came before them
		}
	}()
	for _, o := range batch {
		switch {
		case o.Kind == opBarrier:
			barriers = append(barriers, o)
		case !o.durable():
			// Housekeeping is redone when the store is back.
		default:
			keep = append(keep, o)
		}
	}
	if len(keep) == 0 {
		return
	}
	if _, err := r.spool.append(keep); err == nil {
		r.spooled.Store(int64(r.spool.n))
		r.stalled = false
		for _, o := range keep {
			o.settle(nil) // on disk: a crash now loses nothing
		}
		return
	} else if r.opts.Spool != "" {
		r.failed("spool", err)
	}
	r.stalled = true
	for _, o := range keep {
		o.settle(ErrHeldInMemory)
	}
	r.requeue(keep)
}

// apply writes ops to the open store in order: runs of records in one transaction each,
// housekeeping on its own. It returns how many ops it applied before an error.
func (r *Recorder) apply(ops []*op) (int, error) {
	i := 0
	for i < len(ops) {
		j := i
		for j < len(ops) && (ops[j].Kind == opProgress || ops[j].Kind == opFinish || ops[j].Kind == opAttempts) {
			j++
		}
		if j > i {
			ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
			err := r.store.write(ctx, ops[i:j])
			cancel()
			if err != nil {
				return i, err
			}
			r.written.Add(uint64(j - i))
			for _, o := range ops[i:j] {
				o.settle(nil)
			}
			i = j
			continue
		}
		if err := r.housekeep(ops[i]); err != nil {
			return i, err
		}
		ops[i].settle(nil)
		i++
	}
	return i, nil
}

// applyOrSkip is apply for the spool's replay. When a batch fails while the store answers
// (the node's heartbeat, a write too, succeeds), the batch is written one op at a time, and
// an op the store refuses on its own is dropped, logged and counted, rather than allowed to
// hold up every record behind it for ever. A store that is locked, full or down fails the
// heartbeat too, and then nothing is skipped.
func (r *Recorder) applyOrSkip(ops []*op) (int, error) {
	n, err := r.apply(ops)
	if err == nil || !r.reachable() {
		return n, err
	}
	for i := n; i < len(ops); i++ {
		if _, err := r.apply(ops[i : i+1]); err != nil {
			if !r.reachable() {
				return i, err
			}
			id := ""
			if ops[i].Rec != nil {
				id = ops[i].Rec.CallID
			}
			r.failed("write", err)
			r.log.Error("call record refused by the store; skipped", "call", id, "err", err)
			r.drop(ops[i], "the store refused it")
			ops[i].settle(ErrDropped)
		}
	}
	return len(ops), nil
}

// reachable reports whether the store takes the node's heartbeat.
func (r *Recorder) reachable() bool {
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
	defer cancel()
	return r.store.Heartbeat(ctx, r.opts.Node, r.opts.Now()) == nil
}

// housekeep applies one op that is not a record: recovery, heartbeat, purge, barrier. Only
// recovery's failure stops the batch (it must run before this run's records); the others
// are logged and counted, and redone on their tickers.
func (r *Recorder) housekeep(o *op) error {
	switch o.Kind {
	case opRecover:
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		n, err := r.store.RecoverInterrupted(ctx, o.Node, o.At)
		if err != nil {
			return err
		}
		if n > 0 {
			r.log.Warn("calls cut off when the server last stopped are recorded as interrupted", "calls", n, "node", o.Node)
		}
	case opHeartbeat:
		ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
		defer cancel()
		if err := r.store.Heartbeat(ctx, r.opts.Node, o.At); err != nil {
			r.failed("heartbeat", err)
		}
	case opPurge:
		r.purge()
	}
	return nil
}

// purge deletes the records older than Options.Retention (none when it is 0).
func (r *Recorder) purge() int {
	if r.opts.Retention <= 0 {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a first purge may be large
	defer cancel()
	n, err := r.store.Purge(ctx, r.opts.Now().Add(-r.opts.Retention))
	if err != nil {
		r.failed("purge", err)
		return 0
	}
	if n > 0 {
		r.log.Info("old call records purged", "records", n, "retention", r.opts.Retention)
	}
	return n
}
