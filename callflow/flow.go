package callflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotline-project/hotline/callback"
	"github.com/hotline-project/hotline/queue"
	"github.com/hotline-project/hotline/routing"
)

// Options are a Flow's collaborators. Engine, Live, Dialer, Contacts and Bridge are
// required; the rest have defaults.
type Options struct {
	Engine    *queue.Engine
	Live      *atomic.Pointer[Snapshot] // the configuration in force
	Overrides *routing.Overrides        // emergency overrides; nil for none
	Dialer    Dialer
	Contacts  Contacts
	Bridge    Bridger
	Clock     Clock    // nil: WallClock
	Records   Recorder // nil: no records
	Queues    QueueMetrics
	Routing   RoutingMetrics
	Menus     MenuMetrics
	Safety    SafetyMetrics
	// Places keeps the places of callers whose calls dropped while waiting (safety.
	// keep_place); nil: in memory (NewMemoryPlaces).
	Places Places
	// CallerHash is the keyed hash of a caller's identity ("" for anonymous or withheld),
	// which recognises a caller who calls again; nil: nobody is recognised.
	CallerHash func(caller string) string
	// Mixer makes conferences for the advocates' mid-call features (midcall.go); nil
	// turns them off whatever the configuration says.
	Mixer       Mixer
	Conferences ConferenceMetrics
	// CallbackStore keeps pending callbacks across a restart (nil: memory only), Sealer
	// seals their numbers (nil: a key of this run only) and CallbackMetrics counts them.
	CallbackStore   CallbackStore
	Sealer          Sealer
	CallbackMetrics CallbackMetrics
	Logger          *slog.Logger
	// Stopping reports whether the server is stopping (its calls are then cut off, and
	// recorded as such); nil: never.
	Stopping func() bool
	// Claim, if set, is asked before each ring of an advocate (in a cluster: a claim
	// committed to the cluster's log, README "Cluster"); an error means the advocate is
	// not rung (taken through another node, or no quorum), which costs them nothing.
	Claim func(ctx context.Context, callID, advocate string, deadline time.Time) error
}

// Flow runs every call: it takes each answered call through the menus, routes it and
// sends it on, and connects the queue engine to the phones (it rings advocates, bridges
// the answered ones to their callers, plays hold audio and announcements and moves
// waiting callers along their overflow steps). The engine decides; the flow acts.
type Flow struct {
	eng         *queue.Engine
	live        *atomic.Pointer[Snapshot]
	overrides   *routing.Overrides
	dialer      Dialer
	contacts    Contacts
	bridge      Bridger
	clock       Clock
	records     Recorder
	queues      QueueMetrics
	routing     RoutingMetrics
	menus       MenuMetrics
	safety      SafetyMetrics
	places      Places
	hash        func(caller string) string
	mixer       Mixer
	conferences ConferenceMetrics
	cbStore     CallbackStore
	sealer      Sealer
	cbMetrics   CallbackMetrics
	cb          *callbacks
	log         *slog.Logger
	stopping    func() bool
	claim       func(ctx context.Context, callID, advocate string, deadline time.Time) error

	wake chan struct{} // the engine's next deadline may have changed

	mu    sync.Mutex
	calls map[string]*Call    // by call id: callers in a queue or talking to an advocate
	talks map[string]*midCall // by advocate: calls with mid-call features (supervise.go)
}

// New returns a Flow; call Run to drive the queue engine's clock.
func New(o Options) *Flow {
	f := &Flow{
		eng: o.Engine, live: o.Live, overrides: o.Overrides, dialer: o.Dialer, contacts: o.Contacts,
		bridge: o.Bridge, clock: o.Clock, records: o.Records, queues: o.Queues, routing: o.Routing,
		menus: o.Menus, safety: o.Safety, places: o.Places, hash: o.CallerHash, log: o.Logger, stopping: o.Stopping,
		mixer: o.Mixer, conferences: o.Conferences, claim: o.Claim,
		cbStore: o.CallbackStore, sealer: o.Sealer, cbMetrics: o.CallbackMetrics, cb: newCallbacks(),
		wake: make(chan struct{}, 1), calls: map[string]*Call{},
	}
	if f.overrides == nil {
		f.overrides = &routing.Overrides{}
	}
	if f.clock == nil {
		f.clock = WallClock{}
	}
	if f.queues == nil {
		f.queues = noMetrics{}
	}
	if f.routing == nil {
		f.routing = noMetrics{}
	}
	if f.menus == nil {
		f.menus = noMetrics{}
	}
	if f.conferences == nil {
		f.conferences = noConferenceMetrics{}
	}
	if f.safety == nil {
		f.safety = noMetrics{}
	}
	if f.cbStore == nil {
		f.cbStore = noCallbackStore{}
	}
	if f.sealer == nil {
		f.sealer = callback.Generate()
	}
	if f.cbMetrics == nil {
		f.cbMetrics = noMetrics{}
	}
	if f.places == nil {
		f.places = NewMemoryPlaces()
	}
	if f.hash == nil {
		f.hash = func(string) string { return "" }
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.stopping == nil {
		f.stopping = func() bool { return false }
	}
	return f
}

// Run drives the engine's clock until ctx ends: a timer set to the engine's NextDeadline
// (a ring timeout, a wrap-up's end), set again whenever the engine may have a new one.
func (f *Flow) Run(ctx context.Context) error {
	for {
		var t Timer
		if at, ok := f.eng.NextDeadline(); ok {
			t = timerAt(f.clock, at)
			if !f.clock.Now().Before(at) {
				// Due already: the clock passed the deadline while the timer was being
				// made (a timer is relative to the clock's now, read twice).
				stopTimer(t)
				f.execQuiet(f.eng.Tick(f.clock.Now()))
				continue
			}
		}
		select {
		case <-ctx.Done():
			stopTimer(t)
			return nil
		case <-f.wake:
		case <-chanOf(t):
			f.execQuiet(f.eng.Tick(f.clock.Now()))
		}
		stopTimer(t)
	}
}

// poke tells Run that the engine's next deadline may have changed.
func (f *Flow) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// exec carries out the engine's actions, in order, and has Run look at the engine's next
// deadline again. Connect is carried out by the ring that was answered (see ring), so it
// is skipped here.
func (f *Flow) exec(acts []queue.Action) {
	f.execQuiet(acts)
	f.poke()
}

// execQuiet is exec for Run itself, which looks at the next deadline anyway.
func (f *Flow) execQuiet(acts []queue.Action) {
	for _, a := range acts {
		switch a := a.(type) {
		case queue.Ring:
			f.startRing(a)
		case queue.CancelRing:
			f.cancelRing(a.Call, a.Advocate)
		}
	}
}

// Presence tells the queue engine when an advocate's phones come and go.
func (f *Flow) Presence(id string, online bool) {
	var acts []queue.Action
	var err error
	if online {
		acts, err = f.eng.AdvocateOnline(id, f.clock.Now())
	} else {
		acts, err = f.eng.AdvocateOffline(id, f.clock.Now())
	}
	if err != nil {
		f.log.Warn("advocate presence not taken", "advocate", id, "online", online, "err", err)
		return
	}
	f.exec(acts) // the sip server logs the presence change
}

// Elsewhere tells the queue engine that an advocate is (or no longer is) taken by a call
// on another node of the cluster.
func (f *Flow) Elsewhere(id string, busy bool) {
	acts, err := f.eng.Elsewhere(id, busy, f.clock.Now())
	if err != nil {
		f.log.Debug("advocate taken elsewhere: not configured here", "advocate", id, "err", err)
		return
	}
	f.exec(acts)
}

// Isolate tells the queue engine that the node has lost (true) or regained (false) the
// cluster's quorum.
func (f *Flow) Isolate(isolated bool) {
	f.exec(f.eng.Isolate(isolated, f.clock.Now()))
}

// Feature codes advocates dial from their phones.
const (
	FeatureAvailable = "*11" // ready for calls
	FeaturePause     = "*12" // not taking calls for now; *12 plus a digit gives the reason
	FeatureLogout    = "*13" // done for the day
)

// Errors of the advocate controls.
var (
	// ErrUnknownFeature means the code dialled is not a feature code.
	ErrUnknownFeature = errors.New("unknown feature code")
	// ErrUnknownAdvocate means no configured advocate has the id.
	ErrUnknownAdvocate = errors.New("no such advocate")
	// ErrBadState means the state change is not possible (or not a state).
	ErrBadState = errors.New("bad state change")
)

// Feature changes an advocate's state by a code dialled from their phone (featureState).
func (f *Flow) Feature(_ context.Context, id, code string) error {
	if target, ok := f.superviseTarget(id, code); ok {
		if target == "" {
			return ErrUnknownFeature // not a supervisor, no such extension, or not on a call
		}
		return nil
	}
	state, reason, _, ok := featureState(code, f.live.Load().Config.AdvocatePauseReasons)
	if !ok {
		return ErrUnknownFeature
	}
	if _, err := f.SetState(id, state, reason); err != nil {
		return fmt.Errorf("feature %s: %w", code, err)
	}
	return nil
}

// FeatureCall plays the confirmation of a feature code to the advocate's phone and hangs up.
func (f *Flow) FeatureCall(ctx context.Context, leg Leg, advocate, code string) {
	if f.supervise(ctx, leg, advocate, code) {
		return
	}
	snap := f.live.Load()
	_, _, name, _ := featureState(code, snap.Config.AdvocatePauseReasons)
	if p, ok := snap.Prompts.Get(advocateLanguage(snap, advocate), name); ok {
		_ = leg.Play(ctx, p)
	}
	_ = leg.Hangup(ctx, "feature code done")
}

// advocateLanguage is the first of the advocate's languages that has prompts, for what
// the server says to them; the default language otherwise.
func advocateLanguage(snap *Snapshot, id string) string {
	for _, a := range snap.Config.Advocates {
		if a.ID != id {
			continue
		}
		for _, l := range a.Languages {
			if _, ok := snap.Prompts.Get(l, "advocate_available"); ok {
				return l
			}
		}
	}
	return snap.Config.IVR.DefaultLanguage
}

// SetState puts an advocate in state available, paused or offline (logged out), and
// returns their state afterwards. Errors match ErrUnknownAdvocate or ErrBadState.
func (f *Flow) SetState(id, state, reason string) (queue.AdvocateSnapshot, error) {
	now := f.clock.Now()
	var acts []queue.Action
	var err error
	switch state {
	case "available":
		acts, err = f.eng.SetAvailable(id, now)
	case "paused":
		if reason == "" {
			reason = "paused"
		}
		acts, err = f.eng.Pause(id, reason, now)
	case "offline":
		acts, err = f.eng.Logout(id, now)
	default:
		return queue.AdvocateSnapshot{}, fmt.Errorf("%w: state %q is not available, paused or offline", ErrBadState, state)
	}
	switch {
	case errors.Is(err, queue.ErrUnknownAdvocate):
		return queue.AdvocateSnapshot{}, fmt.Errorf("%w: %s", ErrUnknownAdvocate, id)
	case err != nil:
		return queue.AdvocateSnapshot{}, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	f.log.Info("advocate state set", "advocate", id, "state", state, "reason", reason)
	f.exec(acts)
	for _, a := range f.eng.Snapshot(f.clock.Now()).Advocates {
		if a.ID == id {
			return a, nil
		}
	}
	return queue.AdvocateSnapshot{}, nil
}

// Advocates is the admin API's list: the advocates and queues now.
func (f *Flow) Advocates() (time.Time, queue.Snapshot) {
	now := f.clock.Now()
	return now, f.eng.Snapshot(now)
}

// route decides where a call goes, for the first decision and for every re-route after a
// reload: what routing decides with the queues' state and the emergency overrides in
// force, or, when a menu action named the destination (menuRoute), that destination with
// routing's priority and overflow, unless an emergency override forces every call
// elsewhere.
func (f *Flow) route(tb *routing.Table, a routing.Attrs, menuRoute string, now time.Time) routing.Decision {
	d := tb.Route(a, now, routing.State{Queues: f.eng.RoutingState(now), Overrides: f.overrides.Snapshot()})
	if menuRoute != "" && d.Override == "" {
		d.Message, d.Hangup = "", false
		d.Step = routing.Step{Queue: menuRoute}
		if uri, ok := tb.TargetURI(menuRoute); ok {
			d.Step = routing.Step{Target: menuRoute, URI: uri}
		}
		d.Route = "menu"
	}
	return d
}

// CallCard is what an advocate's console shows of a call: where it came through the menus,
// and nothing that identifies the caller (no number, no call id).
type CallCard struct {
	Queue, Language, Reason string
	Since                   time.Time // when the caller first queued
}

// CallCard returns the card of a call in a queue or talking to an advocate; ok is false for
// a call the flow does not track. callID may be a warm transfer's (see CallOf), as the
// queue engine's snapshot shows it for the advocate who took the transfer.
func (f *Flow) CallCard(callID string) (CallCard, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls[CallOf(callID)]
	if c == nil {
		return CallCard{}, false
	}
	// attrs and since are set before the call is tracked (under f.mu), and not after.
	return CallCard{Queue: c.queue, Language: c.attrs.Language, Reason: c.attrs.Reason, Since: c.since}, true
}
