package callflow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hotline-project/hotline/queue"
)

// A warm transfer (README "Warm transfer"): the advocate keys midcall.prefix, transfer_key,
// a queue's code (midcall.transfer_queues) or an advocate's extension, then #. The queue
// engine rings the new advocate as for any call, through a call of its own (the
// transfer's: its id is the caller's call id with a suffix) that keeps the caller's
// priority and first arrival and, for a named advocate, names them (queue.Caller.Advocate).
// The new advocate hears the usual whisper, then joins caller and first advocate in the
// conference; the first advocate's hang-up completes the transfer, and the new advocate
// is the call's advocate from then on. There is no cold transfer: until then the caller
// stays with the first advocate, and a transfer that fails (busy, no answer within
// midcall.ring_timeout, nobody free) is told to the first advocate alone. The drop key
// ends a transfer in progress.

// KindTransfer is a warm transfer in records and metrics.
const KindTransfer = "transfer"

// How a transfer ends, beyond the JoinX results of a party.
const (
	JoinNoneAvailable = "none_available" // nobody who could take it was free
	JoinCompleted     = "completed"      // the first advocate left; the new one has the call
	JoinCancelled     = "cancelled"      // dropped by the first advocate, or the call ended first
	JoinLeft          = "left"           // the new advocate hung up before the first one left
)

// Errors of the console's mid-call methods.
var (
	// ErrFeatureBusy means a party is being dialled or a transfer is under way already.
	ErrFeatureBusy = errors.New("a party or transfer is under way already")
	// ErrNoParty means there is no party to drop.
	ErrNoParty = errors.New("no party to drop")
)

// transfer is a warm transfer under way.
type transfer struct {
	to     string // "queue/<name>" or "advocate/<id>": the record's and the log's
	named  string // the advocate named, or ""
	shadow *Call  // the transfer's call, which the queue engine rings advocates for
	timer  Timer  // gives up when it fires before an answer
	last   string // how the last ring ended (busy, no_answer, failed), for the message
	ans    *answer
	joined bool
	// firstLeft is set when the first advocate hung up after the new one answered: the
	// transfer completes as the new one joins.
	firstLeft bool
	from      string // the first advocate
}

// xferEvent is what a transfer's goroutines tell the loop.
type xferEvent struct {
	x      *transfer
	kind   int // evRing, evReady, evGone
	result string
}

const (
	evRing  = iota // a ring ended without an answer: result
	evReady        // the new advocate heard the whisper
	evGone         // the new advocate's leg ended
)

func (m *midCall) xferAnswered() <-chan answer {
	if m.xfer == nil || m.xfer.ans != nil {
		return nil
	}
	return m.xfer.shadow.answered
}

func (m *midCall) xferTimer() Timer {
	if m.xfer == nil {
		return nil
	}
	return m.xfer.timer
}

// transferDest reads a transfer code: a queue's code, or an advocate's extension.
func (m *midCall) transferDest(code string) (queueName, advocate string, ok bool) {
	for _, tq := range m.cfg.TransferQueues {
		if tq.Code == code {
			return tq.Queue, "", true
		}
	}
	for _, a := range m.c.f.live.Load().Config.Advocates {
		if a.Extension != "" && a.Extension == code && a.ID != m.advocate {
			return "", a.ID, true
		}
	}
	return "", "", false
}

// startTransfer asks the queue engine for an advocate of queueName, or for advocate.
func (m *midCall) startTransfer(ctx context.Context, queueName, advocate string) error {
	c, f := m.c, m.c.f
	if m.xfer != nil || m.dialing {
		m.log.Info("a party or transfer is under way already")
		return ErrFeatureBusy
	}
	if err := m.ensureConference(); err != nil {
		return err
	}
	x := &transfer{to: "queue/" + queueName, named: advocate}
	if advocate != "" {
		queueName, x.to = c.currentQueue(), "advocate/"+advocate
	}
	m.xferSeq++
	id := fmt.Sprintf("%s~t%d", c.ID, m.xferSeq)
	x.shadow = &Call{f: f, ID: id, leg: c.leg, rec: noRecord{}, log: m.log.With("transfer", x.to),
		snap: c.snap, attrs: c.attrs, queue: queueName,
		rings: map[string]*ringHandle{}, lastRing: map[string]time.Time{},
		answered: make(chan answer, 1), rerouted: make(chan *reroute, 1)}
	x.shadow.ringEnded = func(_ string, out queue.Outcome) {
		select {
		case m.xferEvents <- xferEvent{x: x, kind: evRing, result: ringJoinResult(out)}:
		case <-m.done:
		}
	}
	now := f.clock.Now()
	f.mu.Lock()
	f.calls[id] = x.shadow
	f.mu.Unlock()
	m.log.Info("transfer asked", "to", x.to)
	acts, err := f.eng.Enqueue(queue.Caller{ID: id, Queue: queueName, Language: c.attrs.Language,
		Priority: c.dec.Priority, Since: c.since, Advocate: advocate}, now)
	if err != nil {
		f.untrack(x.shadow)
		m.log.Warn("transfer not queued", "to", x.to, "err", err)
		m.transferFailed(ctx, x, JoinFailed)
		return nil
	}
	rung := false
	for _, a := range acts {
		if r, ok := a.(queue.Ring); ok && r.Call == id {
			rung = true
		}
	}
	f.exec(acts)
	if !rung {
		if acts, err := f.eng.Leave(id, now); err == nil {
			f.exec(acts)
		}
		f.untrack(x.shadow)
		m.transferFailed(ctx, x, JoinNoneAvailable)
		return nil
	}
	x.timer = f.clock.NewTimer(m.cfg.RingTimeout)
	m.xfer = x
	return nil
}

// ringJoinResult is a ring's outcome as a transfer's result.
func ringJoinResult(out queue.Outcome) string {
	switch out {
	case queue.Busy, queue.Rejected:
		return JoinBusy
	case queue.NoAnswer:
		return JoinNoAnswer
	}
	return JoinFailed
}

// transferFailed tells the first advocate why the transfer failed; the caller stays with
// them and hears nothing of it.
func (m *midCall) transferFailed(ctx context.Context, x *transfer, result string) {
	m.c.f.conferences.Joined(KindTransfer, result)
	m.record(partySpec{kind: KindTransfer, name: x.to}, "", result)
	m.log.Info("transfer failed", "to", x.to, "result", result)
	prompt := "party_" + result
	if result == JoinNoneAvailable {
		prompt = "transfer_none_available"
	}
	m.tell(ctx, prompt)
	m.maybeBridge()
}

// transferEvent takes what a transfer's goroutines report.
func (m *midCall) transferEvent(ctx context.Context, e xferEvent) {
	x := e.x
	if m.xfer != x {
		return // over already
	}
	switch e.kind {
	case evRing:
		x.last = e.result
		if x.named == "" || x.ans != nil {
			return // a queue: the engine rings the next advocate until the timer fires
		}
		// The named advocate did not take it: that is the answer.
		m.endTransfer("not answered")
		m.transferFailed(ctx, x, e.result)
	case evReady:
		m.joinTransfer(ctx, x)
	case evGone:
		if !x.joined {
			return // the whisper ends and evReady comes
		}
		m.endTransfer("the new advocate hung up")
		m.record(partySpec{kind: KindTransfer, name: x.to}, x.ans.advocate, JoinLeft)
		m.c.f.conferences.Joined(KindTransfer, JoinLeft)
		m.log.Info("the new advocate left before the transfer completed", "to", x.to)
		m.maybeBridge()
	}
}

// transferAnswered takes the new advocate's answered leg: the usual whisper (the target
// queue's), then evReady; caller and first advocate talk on meanwhile.
func (m *midCall) transferAnswered(a answer) {
	x := m.xfer
	x.ans = &a
	stopTimer(x.timer)
	x.timer = nil
	m.log.Info("transfer answered", "to", x.to, "advocate", a.advocate)
	whisper := m.c.snap.Settings(a.queue).Whisper
	m.wg.Go(func() {
		if whisper {
			m.c.whisper(a.leg, a.advocate, a.log)
		}
		select {
		case m.xferEvents <- xferEvent{x: x, kind: evReady}:
		case <-m.done:
		}
	})
}

// joinTransfer puts the new advocate in the conference with caller and first advocate.
func (m *midCall) joinTransfer(ctx context.Context, x *transfer) {
	f := m.c.f
	if m.conf == nil || x.ans.leg.Context().Err() != nil || m.conf.Join(x.ans.leg, ModeNormal, nil) != nil {
		m.endTransfer("the new advocate's leg ended")
		m.transferFailed(ctx, x, JoinFailed)
		if m.adv == nil && !m.unattended() {
			m.requeue = true // the first advocate left too: back to the queue
		}
		return
	}
	x.joined = true
	f.conferences.Participants(1)
	f.conferences.Joined(KindTransfer, JoinAnswered)
	m.record(partySpec{kind: KindTransfer, name: x.to}, x.ans.advocate, JoinAnswered)
	m.log.Info("the new advocate joined; the first advocate's hang-up completes the transfer", "to", x.to, "advocate", x.ans.advocate)
	if x.firstLeft {
		defer m.completeTransfer()
	}
	leg := x.ans.leg
	m.wg.Go(func() {
		select {
		case <-leg.Done():
			select {
			case m.xferEvents <- xferEvent{x: x, kind: evGone}:
			case <-ctx.Done():
			}
		case <-ctx.Done():
		}
	})
}

// transferTimedOut gives up a transfer nobody answered within midcall.ring_timeout.
func (m *midCall) transferTimedOut() {
	x := m.xfer
	x.timer = nil
	f := m.c.f
	acts, err := f.eng.Leave(x.shadow.ID, f.clock.Now())
	if errors.Is(err, queue.ErrNotWaiting) {
		return // answered at the same moment: the answer is on its way
	}
	f.exec(acts)
	f.untrack(x.shadow)
	m.xfer = nil
	result := x.last
	if result == "" {
		result = JoinNoAnswer
	}
	m.transferFailed(context.Background(), x, result)
}

// firstLeft takes the first advocate's hang-up once the new one answered: they leave the
// conference and wrap up, and the transfer completes now (the new advocate is in) or as the
// new one joins after the whisper. The caller is never cut off meanwhile.
func (m *midCall) firstLeft(x *transfer) {
	f := m.c.f
	x.firstLeft, x.from = true, m.advocate
	if m.conf != nil {
		m.conf.Leave(m.adv)
		f.conferences.Participants(-1)
	}
	f.unregisterTalk(m.advocate, m)
	m.adv = nil
	for _, s := range slices.Clone(m.sups) {
		_ = s.leg.Hangup(context.Background(), "advocate left")
		m.removeSupervisor(s)
	}
	m.c.release() // the first advocate wraps up
	if x.joined {
		m.completeTransfer()
	}
}

// completeTransfer makes the new advocate the call's advocate: the first one left.
func (m *midCall) completeTransfer() {
	c, f, x := m.c, m.c.f, m.xfer
	m.xfer = nil
	old := x.from
	f.untrack(x.shadow)
	f.mu.Lock()
	c.talking, c.engineID = *x.ans, x.shadow.ID
	f.mu.Unlock()
	m.adv, m.advocate, m.log, m.digitsClosed = x.ans.leg, x.ans.advocate, c.log.With("advocate", x.ans.advocate), false
	f.registerTalk(m.advocate, m)
	m.clearCode()
	f.conferences.Joined(KindTransfer, JoinCompleted)
	m.record(partySpec{kind: KindTransfer, name: x.to}, m.advocate, JoinCompleted)
	m.log.Info("transfer completed", "from", old, "to", x.to)
	m.maybeBridge()
}

// endTransfer ends the transfer under way, without a word to anyone: the new advocate's
// ring is cancelled, or their leg hung up (and the engine told, so they wrap up).
func (m *midCall) endTransfer(why string) {
	x := m.xfer
	if x == nil {
		return
	}
	m.xfer = nil
	stopTimer(x.timer)
	f := m.c.f
	defer f.untrack(x.shadow)
	if x.ans == nil {
		acts, err := f.eng.Leave(x.shadow.ID, f.clock.Now())
		if !errors.Is(err, queue.ErrNotWaiting) {
			f.exec(acts)
			return
		}
		// Answered at the same moment: the ring hands the leg over at once.
		a := <-x.shadow.answered
		x.ans = &a
	}
	_ = x.ans.leg.Hangup(context.Background(), why)
	if x.joined && m.conf != nil {
		m.conf.Leave(x.ans.leg)
		f.conferences.Participants(-1)
	}
	f.exec(f.callEnded(x.shadow.ID))
}

// cancelTransfer ends a transfer under way and records it cancelled.
func (m *midCall) cancelTransfer(why string) {
	x := m.xfer
	if x == nil {
		return
	}
	m.endTransfer(why)
	m.c.f.conferences.Joined(KindTransfer, JoinCancelled)
	m.record(partySpec{kind: KindTransfer, name: x.to}, "", JoinCancelled)
	m.log.Info("transfer cancelled", "to", x.to, "why", why)
}

// request is a console's request, run in the call's loop.
type request struct {
	fn  func(ctx context.Context) error
	res chan error
}

// CallOf returns the caller's call id of a queue engine call id: a warm transfer's (the
// caller's id with "~t" and a number, as queue.Snapshot shows it for the advocate who took
// the transfer) gives the caller's; any other id is returned as it is.
func CallOf(engineID string) string {
	if i := strings.Index(engineID, "~t"); i > 0 {
		return engineID[:i]
	}
	return engineID
}

// talkOf is the talk of call callID (or of a transfer's id) with its advocate, or nil.
func (f *Flow) talkOf(callID string) *midCall {
	callID = CallOf(callID)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.talks {
		if t.c.ID == callID {
			return t
		}
	}
	return nil
}

// ask runs fn in the loop of the call callID's talk with its advocate.
func (f *Flow) ask(callID string, fn func(ctx context.Context, m *midCall) error) error {
	m := f.talkOf(callID)
	if m == nil {
		return fmt.Errorf("%w: call %s has no mid-call features in progress", ErrNoCall, callID)
	}
	r := request{fn: func(ctx context.Context) error { return fn(ctx, m) }, res: make(chan error, 1)}
	select {
	case m.requests <- r:
	case <-m.done:
		return fmt.Errorf("%w: call %s ended", ErrNoCall, callID)
	}
	select {
	case err := <-r.res:
		return err
	case <-m.done:
		return fmt.Errorf("%w: call %s ended", ErrNoCall, callID)
	}
}

// Transfer starts a warm transfer of call callID (as the console names calls) to queue or
// advocate to (a queue's or an advocate's id), as the advocate's transfer key does: it
// returns once the new advocate is being rung (nil), or with an error: ErrNoCall,
// ErrUnknownFeature (no such queue or advocate), ErrFeatureBusy. How the transfer ends is
// told to the advocate and recorded, as from the phone.
func (f *Flow) Transfer(callID, to string) error {
	return f.ask(callID, func(ctx context.Context, m *midCall) error {
		snap := f.live.Load()
		if snap.hasQueue(to) {
			return m.startTransfer(ctx, to, "")
		}
		for _, a := range snap.Config.Advocates {
			if a.ID == to && a.ID != m.advocate {
				return m.startTransfer(ctx, "", to)
			}
		}
		return fmt.Errorf("%w: no queue or other advocate %q", ErrUnknownFeature, to)
	})
}

// AddInterpreter adds the interpreter of code (midcall.interpreters[].code) to call
// callID, as the advocate's interpreter key does. nil means the line is being dialled.
func (f *Flow) AddInterpreter(callID, code string) error {
	return f.ask(callID, func(ctx context.Context, m *midCall) error {
		for _, in := range m.cfg.Interpreters {
			if in.Code == code {
				return m.add(ctx, partySpec{kind: KindInterpreter, name: in.Language, code: in.Code, target: in.Target, access: in.AccessCode})
			}
		}
		return fmt.Errorf("%w: interpreter code %q", ErrUnknownFeature, code)
	})
}

// AddParty adds the party on key (midcall.parties[].key: 911, a partner) to call callID,
// as the advocate's key does. nil means the line is being dialled.
func (f *Flow) AddParty(callID, key string) error {
	return f.ask(callID, func(ctx context.Context, m *midCall) error {
		for _, p := range m.cfg.Parties {
			if p.Key == key {
				return m.add(ctx, partySpec{kind: p.Kind, name: p.Target, target: p.Target, present: p.PresentCaller})
			}
		}
		return fmt.Errorf("%w: party key %q", ErrUnknownFeature, key)
	})
}

// DropParty drops the party added last to call callID, or ends its transfer under way,
// as the advocate's drop key does; ErrNoParty when there is neither.
func (f *Flow) DropParty(callID string) error {
	return f.ask(callID, func(_ context.Context, m *midCall) error { return m.drop() })
}
