package callflow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/ivr"
	"github.com/hotline-project/hotline/prompts"
	"github.com/hotline-project/hotline/queue"
	"github.com/hotline-project/hotline/records"
	"github.com/hotline-project/hotline/routing"
	"github.com/hotline-project/hotline/sip/digest"
)

// t0 is when every test's fake clock starts.
var t0 = time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC)

// fakeClock is a Clock whose time moves only by Advance. Timers fire (their channel gets
// the time) when Advance passes them; a timer made for a time already past fires at once.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	clk     *fakeClock
	at      time.Time
	ch      chan time.Time
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clk: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	i := slices.Index(t.clk.timers, t)
	if i < 0 {
		return false
	}
	t.clk.timers = slices.Delete(t.clk.timers, i, i+1)
	return true
}

// pending is how many timers wait to fire.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// timersAt is how many timers wait to fire at exactly at.
func (c *fakeClock) timersAt(at time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if t.at.Equal(at) {
			n++
		}
	}
	return n
}

// Advance moves the time on by d, from one timer to the next, firing the timers due at
// each and giving the goroutines they wake a moment to act (and to set timers of their
// own) before going on.
func (c *fakeClock) Advance(d time.Duration) {
	end := c.Now().Add(d)
	for {
		c.mu.Lock()
		next := end
		for _, t := range c.timers {
			if t.at.Before(next) {
				next = t.at
			}
		}
		if next.After(c.now) {
			c.now = next
		}
		var due []*fakeTimer
		c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool {
			if t.at.After(c.now) {
				return false
			}
			due = append(due, t)
			return true
		})
		now, done := c.now, !c.now.Before(end)
		c.mu.Unlock()
		for _, t := range due {
			t.ch <- now
		}
		settle()
		if done && len(due) == 0 {
			return
		}
	}
}

// settle gives goroutines woken by the fake clock a moment to act.
func settle() { time.Sleep(2 * time.Millisecond) }

// eventually waits (in real time, at most 3 s) for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// errLegBridged is what a fake leg's Play returns while the leg is bridged, as media's does.
var errLegBridged = errors.New("leg is bridged")

// fakeLeg is a call leg that plays prompts in the fake clock's time: a prompt takes its
// duration to play.
type fakeLeg struct {
	name   string
	clk    *fakeClock
	ctx    context.Context
	cancel context.CancelFunc
	digits chan rune

	filterable bool // FilterDigits takes a filter (sip.Call's way)
	mu         sync.Mutex
	filter     func(rune) bool // FilterDigits'
	played     []string        // the prompts whose playing started, by name, in order
	bridged    bool
	hungUp     string // why we hung up, if we did
	onBeep     func() // WatchBeep's
}

// WatchBeep implements BeepWatcher.
func (l *fakeLeg) WatchBeep(fn func()) {
	l.mu.Lock()
	l.onBeep = fn
	l.mu.Unlock()
}

// beep is an answering machine's beep in the far end's audio; it reports whether anyone
// was watching for it.
func (l *fakeLeg) beep() bool {
	l.mu.Lock()
	fn := l.onBeep
	l.mu.Unlock()
	if fn != nil {
		fn()
	}
	return fn != nil
}

func newLeg(clk *fakeClock, name string) *fakeLeg {
	ctx, cancel := context.WithCancel(context.Background())
	return &fakeLeg{name: name, clk: clk, ctx: ctx, cancel: cancel, digits: make(chan rune)}
}

func (l *fakeLeg) Play(ctx context.Context, p *prompts.Prompt) error {
	// The timer is set before the prompt shows as played, so a test that sees it play and
	// advances the clock does not race it.
	t := l.clk.NewTimer(p.Duration())
	defer t.Stop()
	l.mu.Lock()
	if l.bridged {
		l.mu.Unlock()
		return errLegBridged
	}
	l.played = append(l.played, p.Name)
	l.mu.Unlock()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-l.ctx.Done():
		return errors.New("leg ended")
	}
}

func (l *fakeLeg) Digits() <-chan rune { return l.digits }

// StartPlay plays p as Play does, without waiting (ivr.Starter, as sip's calls do): the
// flow's hold audio then plays without a goroutine of the flow's. (plainLeg hides it.)
func (l *fakeLeg) StartPlay(p *prompts.Prompt) (ivr.Playing, error) {
	ctx, cancel := context.WithCancel(context.Background())
	pl := &fakePlaying{done: make(chan struct{}), cancel: cancel}
	l.mu.Lock()
	bridged := l.bridged
	l.mu.Unlock()
	if bridged {
		cancel()
		return nil, errLegBridged
	}
	go func() {
		defer close(pl.done)
		pl.err = l.Play(ctx, p)
	}()
	return pl, nil
}

// fakePlaying is a prompt fakeLeg.StartPlay started.
type fakePlaying struct {
	done   chan struct{}
	err    error
	cancel context.CancelFunc
}

func (p *fakePlaying) Done() <-chan struct{} { return p.done }
func (p *fakePlaying) Stop()                 { p.cancel(); <-p.done }
func (p *fakePlaying) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// plainLeg is a leg that can only Play (no ivr.Starter, no FilterDigits).
type plainLeg struct{ Leg }

// FilterDigits takes f as sip.Call does when the leg is filterable (press applies it).
func (l *fakeLeg) FilterDigits(f func(rune) bool) bool {
	if !l.filterable {
		return false
	}
	l.mu.Lock()
	l.filter = f
	l.mu.Unlock()
	return true
}

func (l *fakeLeg) Hangup(_ context.Context, reason string) error {
	l.mu.Lock()
	if l.hungUp == "" && l.ctx.Err() == nil {
		l.hungUp = reason
	}
	l.mu.Unlock()
	l.cancel()
	return nil
}

// remoteHangup is the far end hanging up.
func (l *fakeLeg) remoteHangup() { l.cancel() }

func (l *fakeLeg) Context() context.Context { return l.ctx }
func (l *fakeLeg) Done() <-chan struct{}    { return l.ctx.Done() }

func (l *fakeLeg) plays() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.played)
}

func (l *fakeLeg) hasPlayed(name string) bool {
	return slices.ContainsFunc(l.plays(), func(p string) bool { return strings.Contains(p, name) })
}

func (l *fakeLeg) isBridged() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bridged
}

func (l *fakeLeg) ended() bool { return l.ctx.Err() != nil }

// phone is how a fake phone (an advocate's or a target) answers a dial.
type phone struct {
	answerAfter time.Duration // answers after ringing this long; 0 never answers
	fail        error         // or fails at once with this
	failAfter   time.Duration // after ringing this long
}

// fakeNet is the dialer, the contacts and the bridge of a test: phones by URI.
type fakeNet struct {
	clk *fakeClock

	mu       sync.Mutex
	phones   map[string]phone
	contacts map[string][]string // advocate -> URIs
	dials    []string            // URIs dialled, in order
	legs     map[string]*fakeLeg // the last answered leg by URI
	ringing  map[string]int      // URIs ringing now
	bridges  int
}

func newFakeNet(clk *fakeClock) *fakeNet {
	return &fakeNet{clk: clk, phones: map[string]phone{}, contacts: map[string][]string{},
		legs: map[string]*fakeLeg{}, ringing: map[string]int{}}
}

func (n *fakeNet) set(uri string, p phone) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.phones[uri] = p
}

func (n *fakeNet) Contacts(advocate string) []Dest {
	n.mu.Lock()
	defer n.mu.Unlock()
	var ds []Dest
	for _, u := range n.contacts[advocate] {
		ds = append(ds, Dest{URI: u})
	}
	return ds
}

func (n *fakeNet) Dial(ctx context.Context, d Dest) (Leg, error) {
	n.mu.Lock()
	p, ok := n.phones[d.URI]
	n.dials = append(n.dials, d.URI)
	n.mu.Unlock()
	if !ok {
		return nil, errors.New("no such phone")
	}
	if p.fail != nil && p.failAfter == 0 {
		return nil, p.fail
	}
	wait := p.answerAfter
	if p.fail != nil {
		wait = p.failAfter
	}
	// The timer is set before the phone shows as ringing, so a test that sees it ring
	// and advances the clock does not race it.
	var c <-chan time.Time
	if wait > 0 {
		t := n.clk.NewTimer(wait)
		defer t.Stop()
		c = t.C()
	}
	n.mu.Lock()
	n.ringing[d.URI]++
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.ringing[d.URI]--
		n.mu.Unlock()
	}()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("cancelled: %w", ErrNoAnswer)
	case <-c:
	}
	if p.fail != nil {
		return nil, p.fail
	}
	leg := newLeg(n.clk, d.URI)
	n.mu.Lock()
	n.legs[d.URI] = leg
	n.mu.Unlock()
	return leg, nil
}

func (n *fakeNet) dialled(uri string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := 0
	for _, u := range n.dials {
		if u == uri {
			k++
		}
	}
	return k
}

func (n *fakeNet) isRinging(uri string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ringing[uri] > 0
}

func (n *fakeNet) leg(uri string) *fakeLeg {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.legs[uri]
}

func (n *fakeNet) bridge(a, b Leg) (func(), error) {
	la, lb := a.(*fakeLeg), b.(*fakeLeg)
	if la.ended() || lb.ended() {
		return nil, errors.New("leg ended")
	}
	for _, l := range []*fakeLeg{la, lb} {
		l.mu.Lock()
		l.bridged = true
		l.mu.Unlock()
	}
	n.mu.Lock()
	n.bridges++
	n.mu.Unlock()
	return func() {
		for _, l := range []*fakeLeg{la, lb} {
			l.mu.Lock()
			l.bridged = false
			l.mu.Unlock()
		}
	}, nil
}

// fakeRecord keeps a record as records.Call does: Queued sets the queue enter time once,
// Ended counts the first time.
type fakeRecord struct {
	mu       sync.Mutex
	r        records.Record
	finished bool
}

func (f *fakeRecord) update(fn func(*records.Record)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.r)
}
func (f *fakeRecord) Answered(t time.Time) { f.update(func(r *records.Record) { r.Answered = t }) }
func (f *fakeRecord) Menus(l, rs string) {
	f.update(func(r *records.Record) { r.Language, r.Reason = l, rs })
}
func (f *fakeRecord) Routed(route, d string) {
	f.update(func(r *records.Record) { r.Route, r.Steps = route, append(r.Steps, d) })
}
func (f *fakeRecord) Overflowed(d string) {
	f.update(func(r *records.Record) { r.Steps = append(r.Steps, d) })
}
func (f *fakeRecord) Queued(q string, t time.Time) {
	f.update(func(r *records.Record) {
		r.Queue = q
		if r.QueueEnter.IsZero() {
			r.QueueEnter = t
		}
	})
}
func (f *fakeRecord) Connected(a string, t time.Time) {
	f.update(func(r *records.Record) { r.Advocate, r.Connected = a, t })
}
func (f *fakeRecord) WrapUp(d time.Duration) { f.update(func(r *records.Record) { r.WrapUp = d }) }
func (f *fakeRecord) Ended(o records.Outcome, t time.Time) {
	f.update(func(r *records.Record) {
		if r.End.IsZero() {
			r.End, r.Outcome = t, o
		}
	})
}
func (f *fakeRecord) Finish(context.Context) error {
	f.update(func(r *records.Record) {})
	f.mu.Lock()
	f.finished = true
	f.mu.Unlock()
	return nil
}

func (f *fakeRecord) get() (records.Record, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.r
	r.Steps = slices.Clone(r.Steps)
	return r, f.finished
}

type fakeRecorder struct {
	mu   sync.Mutex
	recs map[string]*fakeRecord
}

func (r *fakeRecorder) Begin(callID, line, _ string, start time.Time) Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := &fakeRecord{r: records.Record{CallID: callID, Line: line, Start: start}}
	r.recs[callID] = rec
	return rec
}

func (r *fakeRecorder) get(id string) *fakeRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.recs[id]
}

// fakeMenus ends each call's menus at once with the result set for its leg.
type fakeMenus struct {
	mu  sync.Mutex
	res map[ivr.Call]ivr.Result
}

func (m *fakeMenus) Run(_ context.Context, c ivr.Call, _ *slog.Logger) (*ivr.Result, error) {
	if ml, ok := c.(menuLeg); ok {
		c = ml.Leg
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	res := m.res[c]
	return &res, nil
}

func (m *fakeMenus) set(c ivr.Call, res ivr.Result) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.res[c] = res
}

// menus is every test's fakeMenus.
var menus = &fakeMenus{res: map[ivr.Call]ivr.Result{}}

// waitObserver records the queue engine's answered waits.
type waitObserver struct {
	mu       sync.Mutex
	answered []time.Duration
}

func (o *waitObserver) Answered(_, _ string, waited time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.answered = append(o.answered, waited)
}
func (o *waitObserver) Abandoned(string, time.Duration)               {}
func (o *waitObserver) RingMissed(string, string, queue.Outcome)      {}
func (o *waitObserver) Talked(string, string, time.Duration)          {}
func (o *waitObserver) WrappedUp(string, string, time.Duration)       {}
func (o *waitObserver) StateChanged(string, queue.State, queue.State) {}

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// harness is a Flow with fake collaborators.
type harness struct {
	t      *testing.T
	clk    *fakeClock
	net    *fakeNet
	recs   *fakeRecorder
	flow   *Flow
	eng    *queue.Engine
	live   *atomic.Pointer[Snapshot]
	ovr    *routing.Overrides
	waits  *waitObserver
	logs   *logBuffer
	safety *fakeSafety
	cancel context.CancelFunc
	// filterKeys makes callers' legs filter their digits as sip.Call does (FilterDigits);
	// false: the flow watches them on a goroutine, as for a leg that cannot.
	filterKeys bool
	seq        int
}

// baseConfig is a configuration for the tests; they add queues, routes and advocates.
const baseConfig = `
lines:
  - number: "18883737888"
    name: main
`

// advocatesYAML is the advocates section for ids, each "id:lang[,lang]".
func advocatesYAML(t *testing.T, specs ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("advocates:\n")
	for _, s := range specs {
		id, langs, _ := strings.Cut(s, ":")
		md5, err := digest.ComputeHA1(digest.MD5, id, "hotline", "pw")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "  - id: %s\n    name: %s\n    languages: [%s]\n    ha1_md5: %s\n", id, id, langs, md5)
	}
	return b.String()
}

// snapshotOf builds a snapshot of yaml, with the fake menus.
func snapshotOf(t *testing.T, yaml string) *Snapshot {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(baseConfig+yaml))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := Build(cfg, t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	snap.Menus = menus
	return snap
}

// newHarness starts a Flow on yaml.
func newHarness(t *testing.T, yaml string) *harness {
	t.Helper()
	h := &harness{t: t, clk: newFakeClock(), recs: &fakeRecorder{recs: map[string]*fakeRecord{}},
		waits: &waitObserver{}, logs: &logBuffer{}, live: &atomic.Pointer[Snapshot]{},
		ovr: &routing.Overrides{}, safety: &fakeSafety{}}
	h.net = newFakeNet(h.clk)
	snap := snapshotOf(t, yaml)
	h.live.Store(snap)
	eng, err := queue.New(QueueConfig(snap.Config), queue.WithObserver(h.waits))
	if err != nil {
		t.Fatal(err)
	}
	h.eng = eng
	h.flow = New(Options{
		Engine: eng, Live: h.live, Overrides: h.ovr, Dialer: h.net, Contacts: h.net, Bridge: h.net.bridge, Clock: h.clk,
		Records: h.recs, Safety: h.safety, Logger: slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = h.flow.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("logs:\n%s", h.logs.String())
		}
	})
	return h
}

// online registers an advocate's phone (uri answers as p) and makes them available.
func (h *harness) online(advocate, uri string, p phone) {
	h.t.Helper()
	h.net.mu.Lock()
	h.net.contacts[advocate] = append(h.net.contacts[advocate], uri)
	h.net.mu.Unlock()
	h.net.set(uri, p)
	h.flow.Presence(advocate, true)
}

// testCall is a caller's call running in the Flow.
type testCall struct {
	id   string
	leg  *fakeLeg
	done chan struct{}
}

// call places a caller whose menus end with res.
func (h *harness) call(res ivr.Result) *testCall {
	h.seq++
	c := &testCall{id: fmt.Sprintf("call%d", h.seq), leg: newLeg(h.clk, "caller"), done: make(chan struct{})}
	c.leg.filterable = h.filterKeys
	menus.set(c.leg, res)
	go func() {
		defer close(c.done)
		h.flow.Handle(context.Background(), &Inbound{ID: c.id, Line: "main", Caller: "+15550001", Arrived: h.clk.Now(), Leg: c.leg})
	}()
	eventually(h.t, c.id+" handed over", func() bool { return h.recs.get(c.id) != nil })
	return c
}

// record waits for the call's record to be finished and returns it.
func (h *harness) record(c *testCall) records.Record {
	h.t.Helper()
	select {
	case <-c.done:
	case <-time.After(3 * time.Second):
		h.t.Fatalf("%s: Handle did not return", c.id)
	}
	r, finished := h.recs.get(c.id).get()
	if !finished {
		h.t.Fatalf("%s: record not finished", c.id)
	}
	return r
}

// waiting reports whether the call waits in queue q.
func (h *harness) waiting(c *testCall, q string) bool {
	for _, qs := range h.eng.Snapshot(h.clk.Now()).Queues {
		if qs.Name == q && qs.Waiting > 0 {
			if _, ok := h.eng.Position(c.id); ok {
				h.flow.mu.Lock()
				defer h.flow.mu.Unlock()
				fc := h.flow.calls[c.id]
				return fc != nil && fc.queue == q
			}
		}
	}
	return false
}

func (h *harness) advocateState(id string) queue.State {
	for _, a := range h.eng.Snapshot(h.clk.Now()).Advocates {
		if a.ID == id {
			return a.State
		}
	}
	return queue.Offline
}
