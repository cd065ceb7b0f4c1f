package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hotline-project/hotline/admin"
	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/queue"
	"github.com/hotline-project/hotline/routing"
	"github.com/hotline-project/hotline/sip"
)

// Feature codes advocates dial from their phones.
const (
	featureAvailable = "*11" // ready for calls
	featurePause     = "*12" // not taking calls for now; *12 plus a digit gives the reason
	featureLogout    = "*13" // done for the day
)

// queueConfig maps the configuration's queues and advocates to the queue engine's.
func queueConfig(cfg *config.Config) queue.Config {
	var qc queue.Config
	for i := range cfg.Queues {
		q := &cfg.Queues[i]
		s := cfg.Settings(q)
		qc.Queues = append(qc.Queues, queue.QueueConfig{
			Name: q.Name, Languages: q.Languages, RingAll: s.RingAll,
			RingTimeout: s.RingTimeout, WrapUp: s.WrapUp, MaxMisses: s.MaxMisses,
		})
	}
	for _, a := range cfg.Advocates {
		qc.Advocates = append(qc.Advocates, queue.AdvocateConfig{ID: a.ID, Name: a.Name, Languages: a.Languages})
	}
	return qc
}

// afterReload brings the engine up to date with a new configuration: advocates added by
// it whose phones are registered come online, and callers waiting in a queue it removed
// are routed again (the engine keeps a removed queue's callers, but nobody new joins it).
func (d *dispatcher) afterReload(snap *snapshot) {
	now := d.now()
	for _, a := range snap.cfg.Advocates {
		if len(d.contacts(a.ID)) > 0 {
			acts, err := d.eng.AdvocateOnline(a.ID, now)
			if err == nil {
				d.exec(acts)
			}
		}
	}
	queues := map[string]bool{}
	for _, q := range snap.cfg.Queues {
		queues[q.Name] = true
	}
	d.mu.Lock()
	var moved []*waiter
	for _, w := range d.calls {
		if !queues[w.queue] {
			moved = append(moved, w)
		}
	}
	d.mu.Unlock()
	for _, w := range moved {
		dec := snap.table.Route(routing.Attrs{Line: w.c.Line, Language: w.attrs.lang, Reason: w.attrs.reason}, now,
			routing.State{Queues: d.eng.RoutingState(now)})
		if dec.Queue == "" {
			w.log.Warn("the call's queue was removed and its new route is not a queue; it stays where it is", "route", dec.Route)
			continue
		}
		d.overflow(w, dec.Step, now)
	}
}

// queueSettings returns a function giving each queue's settings (queue_defaults for a queue
// the configuration no longer has).
func queueSettings(cfg *config.Config) func(string) config.QueueSettings {
	byName := map[string]config.QueueSettings{}
	for i := range cfg.Queues {
		byName[cfg.Queues[i].Name] = cfg.Settings(&cfg.Queues[i])
	}
	return func(name string) config.QueueSettings {
		if s, ok := byName[name]; ok {
			return s
		}
		return cfg.QueueDefaults
	}
}

// contactsOf returns how to ring an advocate's registered phones.
func contactsOf(srv func() *sip.Server) func(string) []sip.DialRequest {
	return func(id string) []sip.DialRequest {
		var reqs []sip.DialRequest
		for _, b := range srv().Contacts(id) {
			reqs = append(reqs, sip.DialRequest{
				Target:      b.Contact,
				SendTo:      b.Source.String(),
				Transport:   b.Transport,
				FromUser:    "hotline",
				FromDisplay: "Hotline",
			})
		}
		return reqs
	}
}

// presence tells the queue engine when an advocate's phones come and go.
func (d *dispatcher) presence(id string, online bool) {
	var acts []queue.Action
	var err error
	if online {
		acts, err = d.eng.AdvocateOnline(id, d.now())
	} else {
		acts, err = d.eng.AdvocateOffline(id, d.now())
	}
	if err != nil {
		d.log.Warn("advocate presence not taken", "advocate", id, "online", online, "err", err)
		return
	}
	d.exec(acts) // the sip server logs the presence change
}

// feature changes an advocate's state by a code dialled from their phone (featureState).
func (d *dispatcher) feature(_ context.Context, id, code string) error {
	state, reason, _, ok := featureState(code, d.live.Load().cfg.AdvocatePauseReasons)
	if !ok {
		return sip.ErrUnknownFeature
	}
	if _, err := d.setState(id, state, reason); err != nil {
		return fmt.Errorf("feature %s: %w", code, err)
	}
	return nil
}

// featureCall plays the confirmation of a feature code to the advocate's phone and hangs up.
func (d *dispatcher) featureCall(ctx context.Context, c *sip.Call) {
	_, _, name, _ := featureState(c.Feature, d.live.Load().cfg.AdvocatePauseReasons)
	lang := d.advocateLanguage(c.Advocate)
	if p, ok := d.prompts().Get(lang, name); ok {
		_ = c.Play(ctx, p)
	}
	_ = c.Hangup(ctx, "feature code done")
}

// advocateLanguage is the first of the advocate's languages that has prompts, for what
// the server says to them; the default language otherwise.
func (d *dispatcher) advocateLanguage(id string) string {
	snap := d.live.Load()
	for _, a := range snap.cfg.Advocates {
		if a.ID != id {
			continue
		}
		for _, l := range a.Languages {
			if _, ok := snap.prompts.Get(l, "advocate_available"); ok {
				return l
			}
		}
	}
	return snap.cfg.IVR.DefaultLanguage
}

// setState puts an advocate in state available, paused or offline (logged out).
func (d *dispatcher) setState(id, state, reason string) (queue.AdvocateSnapshot, error) {
	now := d.now()
	var acts []queue.Action
	var err error
	switch state {
	case "available":
		acts, err = d.eng.SetAvailable(id, now)
	case "paused":
		if reason == "" {
			reason = "paused"
		}
		acts, err = d.eng.Pause(id, reason, now)
	case "offline":
		acts, err = d.eng.Logout(id, now)
	default:
		return queue.AdvocateSnapshot{}, fmt.Errorf("%w: state %q is not available, paused or offline", admin.ErrBadState, state)
	}
	switch {
	case errors.Is(err, queue.ErrUnknownAdvocate):
		return queue.AdvocateSnapshot{}, fmt.Errorf("%w: %s", admin.ErrUnknownAdvocate, id)
	case err != nil:
		return queue.AdvocateSnapshot{}, fmt.Errorf("%w: %w", admin.ErrBadState, err)
	}
	d.log.Info("advocate state set", "advocate", id, "state", state, "reason", reason)
	d.exec(acts)
	for _, a := range d.eng.Snapshot(d.now()).Advocates {
		if a.ID == id {
			return a, nil
		}
	}
	return queue.AdvocateSnapshot{}, nil
}

// advocatesAPI is the admin API's view of the advocates.
type advocatesAPI struct{ d *dispatcher }

func (a advocatesAPI) Snapshot() (time.Time, queue.Snapshot) {
	now := a.d.now()
	return now, a.d.eng.Snapshot(now)
}

func (a advocatesAPI) SetState(id, state, reason string) (queue.AdvocateSnapshot, error) {
	return a.d.setState(id, state, reason)
}

var _ admin.Advocates = advocatesAPI{}
