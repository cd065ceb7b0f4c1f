package queue

import (
	"slices"
	"time"
)

// Reconfigure replaces the configuration, as on a reload. A bad cfg returns an error
// wrapping ErrConfig and changes nothing. Otherwise:
//
//   - Advocates and queues that remain keep their state, calls and history, with their new
//     settings (new ring timeouts and wrap-ups apply to the next ring or call).
//   - New advocates start offline: the driver should report the registrations it holds
//     again (AdvocateOnline is a no-op for an advocate already registered).
//   - A removed advocate is rung no more; one on a call finishes it first.
//   - A removed queue takes no new callers (Enqueue and Move fail), but its waiting
//     callers stay and are served as before until they leave; routing moves them on.
//   - Rings that no longer fit (an advocate's languages changed, a queue stopped ringing
//     all) are cancelled without penalty, and anyone newly eligible is rung.
func (e *Engine) Reconfigure(cfg Config, now time.Time) ([]Action, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	return e.locked(func() ([]Action, error) { return e.apply(cfg, now), nil })
}

// apply installs a checked cfg.
func (e *Engine) apply(cfg Config, now time.Time) []Action {
	e.samples = cfg.HandleTimeSamples
	if e.samples == 0 {
		e.samples = defaultHandleTimeSamples
	}
	keepQueue := make(map[string]bool, len(cfg.Queues))
	for _, qc := range cfg.Queues {
		q := e.queues[qc.Name]
		if q == nil {
			q = &queue{}
			e.queues[qc.Name] = q
		}
		qc.Languages = slices.Clone(qc.Languages)
		q.QueueConfig, q.retired = qc, false
		keepQueue[qc.Name] = true
	}
	for name, q := range e.queues {
		switch {
		case keepQueue[name]:
		case q.waiting > 0:
			q.retired = true
		default:
			delete(e.queues, name)
			continue
		}
		q.trim(e.samples)
	}

	list := make([]*advocate, 0, len(cfg.Advocates))
	keepAdv := make(map[string]bool, len(cfg.Advocates))
	for i, ac := range cfg.Advocates {
		a := e.advs[ac.ID]
		if a == nil {
			a = &advocate{state: Offline, since: now}
			e.advs[ac.ID] = a
		}
		ac.Languages = slices.Clone(ac.Languages)
		a.AdvocateConfig, a.order, a.removed = ac, i, false
		list = append(list, a)
		keepAdv[ac.ID] = true
	}
	var acts []Action
	for _, a := range e.advList {
		if keepAdv[a.ID] {
			continue
		}
		if a.call != nil {
			a.removed, a.order = true, len(list)
			list = append(list, a)
			continue
		}
		if r := a.ring; r != nil {
			e.endRing(r)
			acts = append(acts, CancelRing{Call: r.call.ID, Advocate: a.ID})
		}
		if !a.wrapEnd.IsZero() {
			e.endWrap(a, now)
		}
		e.setState(a, Offline, now)
		delete(e.advs, a.ID)
	}
	e.advList = list
	for _, c := range e.waiting {
		acts = e.prune(c, e.queues[c.Queue], now, acts)
	}
	return e.dispatch(now, acts)
}

// prune cancels the rings of c that do not fit its queue q: to advocates not eligible,
// and all but the first when q does not ring all.
func (e *Engine) prune(c *call, q *queue, now time.Time, acts []Action) []Action {
	kept := 0
	return e.cancelRings(c, func(r *ring) bool {
		keep := eligible(r.adv, q, c) && (q.RingAll || kept == 0)
		if keep {
			kept++
		}
		return keep
	}, now, acts)
}

// trim keeps the latest n handle times, oldest first.
func (q *queue) trim(n int) {
	h := append(slices.Clone(q.hist[q.histNext:]), q.hist[:q.histNext]...)
	if len(h) > n {
		h = h[len(h)-n:]
	}
	q.hist, q.histNext, q.histSum = h, 0, 0
	for _, d := range h {
		q.histSum += d
	}
}
