package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotline-project/hotline/callflow"
	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/console"
	"github.com/hotline-project/hotline/media"
	"github.com/hotline-project/hotline/prompts"
)

// The console's call buttons: an advocate's mid-call features are the feature codes her
// phone's keys would send (callflow.Flow.Press); a supervisor's listen, whisper and barge
// are the supervise code and the advocate's extension dialled from the supervisor's phone
// (callflow.Flow.FeatureCall), on a leg the server rings (the phone in the page, or the
// SIP phones), with the mode keys 1, 2, 3 keyed into it.

// features are the mid-call buttons the configuration in force gives the call of the
// advocate self: interpreters, 911 and partners, a warm transfer to each transfer queue and
// to each other advocate with an extension (when midcall.transfer_key is set; there is no
// cold transfer), and drop.
func features(cfg *config.Config, self string) []console.Feature {
	mc := cfg.MidCall
	if mc.Prefix == "" {
		return nil
	}
	var fs []console.Feature
	for _, in := range mc.Interpreters {
		fs = append(fs, console.Feature{ID: "interpreter:" + in.Code, Label: "Interpreter: " + in.Language, Kind: callflow.KindInterpreter})
	}
	for _, p := range mc.Parties {
		label := "Partner: " + p.Target
		if p.Kind == config.PartyEmergency {
			label = "Emergency: " + p.Target
		}
		fs = append(fs, console.Feature{ID: "party:" + p.Key, Label: label, Kind: p.Kind})
	}
	if mc.TransferKey != "" {
		for _, q := range mc.TransferQueues {
			fs = append(fs, console.Feature{ID: "transfer:" + q.Code, Label: "Transfer to queue: " + q.Queue, Kind: callflow.KindTransfer})
		}
		for _, a := range cfg.Advocates {
			if a.Extension == "" || a.ID == self {
				continue
			}
			name := a.Name
			if name == "" {
				name = a.ID
			}
			fs = append(fs, console.Feature{ID: "transfer:" + a.Extension, Label: "Transfer to: " + name, Kind: callflow.KindTransfer})
		}
	}
	return append(fs, console.Feature{ID: "drop", Label: "Drop the last party", Kind: "drop"})
}

// featureCode is the code a button's id stands for, as the advocate's phone would key it.
func featureCode(cfg *config.Config, self, id string) (string, bool) {
	mc := cfg.MidCall
	for _, f := range features(cfg, self) { // none without midcall.prefix
		if f.ID != id {
			continue
		}
		switch k, v, _ := strings.Cut(id, ":"); k {
		case "interpreter":
			return mc.Prefix + mc.InterpreterKey + v + "#", true
		case "party":
			return mc.Prefix + v, true
		case "drop":
			return mc.Prefix + mc.DropKey, true
		case "transfer":
			return mc.Prefix + mc.TransferKey + v + "#", true
		}
	}
	return "", false
}

// Features implements console.Desk.
func (d consoleDesk) Features(advocate string) []console.Feature {
	return features(d.live.Load().Config, advocate)
}

// Feature implements console.Desk: the button's code goes into the advocate's call.
func (d consoleDesk) Feature(ctx context.Context, advocate, id string) error {
	code, ok := featureCode(d.live.Load().Config, advocate, id)
	if !ok {
		return console.ErrNoFeature
	}
	err := d.f.Press(ctx, advocate, code)
	switch {
	case errors.Is(err, callflow.ErrNoCall):
		return fmt.Errorf("%w: %w", console.ErrNoCall, err)
	case errors.Is(err, callflow.ErrNoFeatures):
		return fmt.Errorf("%w: %w", console.ErrNoFeature, err)
	}
	return err
}

// Supervise implements console.Desk.
func (d consoleDesk) Supervise(ctx context.Context, supervisor, advocate, mode string) error {
	return d.sups.supervise(ctx, supervisor, advocate, mode)
}

// Supervising implements console.Desk.
func (d consoleDesk) Supervising(supervisor string) (console.Supervision, bool) {
	return d.sups.current(supervisor)
}

// modeKeys are the supervisor's keys (callflow/supervise.go).
var modeKeys = map[string]rune{"listen": '1', "whisper": '2', "barge": '3'}

// superviseRing bounds how long the supervisor's phone rings.
const superviseRing = 30 * time.Second

// supervisions are the supervisors listening from the console, by supervisor.
type supervisions struct {
	flow     *callflow.Flow
	live     *atomic.Pointer[callflow.Snapshot]
	dialer   callflow.Dialer
	contacts callflow.Contacts
	log      *slog.Logger

	mu sync.Mutex
	m  map[string]*supervision
}

// supervision is one supervisor on one advocate's call.
type supervision struct {
	advocate, mode string
	cancel         context.CancelFunc // stops the ring, or hangs up
	leg            *keyedLeg          // nil while ringing
}

func (s *supervisions) current(sup string) (console.Supervision, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.m[sup]
	if v == nil {
		return console.Supervision{}, false
	}
	return console.Supervision{Advocate: v.advocate, Mode: v.mode, Answered: v.leg != nil}, true
}

func (s *supervisions) supervise(_ context.Context, sup, advocate, mode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.m[sup]
	if mode == "stop" {
		if cur != nil && cur.advocate == advocate {
			cur.cancel()
			delete(s.m, sup)
		}
		return nil
	}
	if cur != nil && cur.advocate == advocate {
		if cur.mode != mode {
			cur.mode = mode
			if cur.leg != nil {
				cur.leg.key(modeKeys[mode])
			}
		}
		return nil
	}
	cfg := s.live.Load().Config
	code := cfg.MidCall.SuperviseCode
	if code == "" {
		return fmt.Errorf("%w: supervision is off (midcall.supervise_code)", console.ErrCannotSupervise)
	}
	ext := ""
	if i := slices.IndexFunc(cfg.Advocates, func(a config.Advocate) bool { return a.ID == advocate }); i >= 0 {
		ext = cfg.Advocates[i].Extension
	}
	if ext == "" {
		return fmt.Errorf("%w: %s has no extension", console.ErrCannotSupervise, advocate)
	}
	if !s.flow.Talking(advocate) {
		return fmt.Errorf("%w: %s is on no call", console.ErrCannotSupervise, advocate)
	}
	dests := s.contacts.Contacts(sup)
	if len(dests) == 0 {
		return fmt.Errorf("%w: no phone to listen on: turn on the phone in the page or register a phone", console.ErrCannotSupervise)
	}
	if cur != nil {
		cur.cancel() // on to another advocate's call
	}
	ctx, cancel := context.WithCancel(context.Background())
	v := &supervision{advocate: advocate, mode: mode, cancel: cancel}
	s.m[sup] = v
	go s.run(ctx, v, sup, code+ext, dests)
	return nil
}

// run rings the supervisor's phones, joins the first that answers to the call, and
// returns when the supervisor or the call hangs up, or the supervision is stopped.
func (s *supervisions) run(ctx context.Context, v *supervision, sup, code string, dests []callflow.Dest) {
	defer func() {
		s.mu.Lock()
		if s.m[sup] == v {
			delete(s.m, sup)
		}
		s.mu.Unlock()
		v.cancel()
	}()
	rctx, stop := context.WithTimeout(ctx, superviseRing)
	rctx = withRingLabel(rctx, "Supervision: "+v.advocate+"'s call")
	type result struct {
		leg callflow.Leg
		err error
	}
	results := make(chan result, len(dests))
	for _, d := range dests {
		go func() {
			l, err := s.dialer.Dial(rctx, d)
			results <- result{l, err}
		}()
	}
	var leg callflow.Leg
	for range dests {
		r := <-results
		switch {
		case r.err == nil && leg == nil:
			leg = r.leg
			stop()
		case r.err == nil:
			_ = r.leg.Hangup(context.Background(), "answered elsewhere")
		}
	}
	stop()
	if leg == nil || ctx.Err() != nil {
		if leg != nil {
			_ = leg.Hangup(context.Background(), "supervision stopped")
		}
		s.log.Info("console supervision not answered", "supervisor", sup, "advocate", v.advocate)
		return
	}
	kl := newKeyedLeg(leg)
	s.mu.Lock()
	v.leg = kl
	if v.mode != "listen" {
		kl.key(modeKeys[v.mode])
	}
	s.mu.Unlock()
	context.AfterFunc(ctx, func() { _ = leg.Hangup(context.Background(), "supervision stopped") })
	s.flow.FeatureCall(ctx, kl, sup, code)
}

// keyedLeg is a leg whose digits are its phone's and the console's mode buttons'.
type keyedLeg struct {
	l      callflow.Leg
	digits chan rune
	keys   chan rune
}

func newKeyedLeg(l callflow.Leg) *keyedLeg {
	k := &keyedLeg{l: l, digits: make(chan rune), keys: make(chan rune, 8)}
	go func() {
		defer close(k.digits)
		in := l.Digits()
		for {
			var d rune
			select {
			case x, ok := <-in:
				if !ok {
					return
				}
				d = x
			case d = <-k.keys:
			case <-l.Done():
				return
			}
			select {
			case k.digits <- d:
			case <-l.Done():
				return
			}
		}
	}()
	return k
}

// key keys d as if pressed on the phone; dropped if eight are waiting.
func (k *keyedLeg) key(d rune) {
	select {
	case k.keys <- d:
	default:
	}
}

func (k *keyedLeg) Digits() <-chan rune { return k.digits }
func (k *keyedLeg) Play(ctx context.Context, p *prompts.Prompt) error {
	return k.l.Play(ctx, p)
}
func (k *keyedLeg) Hangup(ctx context.Context, reason string) error { return k.l.Hangup(ctx, reason) }
func (k *keyedLeg) Context() context.Context                        { return k.l.Context() }
func (k *keyedLeg) Done() <-chan struct{}                           { return k.l.Done() }

// Leg is the RTP leg, for the conference.
func (k *keyedLeg) Leg() *media.Leg { return legOf(k.l) }

// ringLabel is the context key of what a ring is for, shown in the page that rings.
type ringLabel struct{}

func withRingLabel(ctx context.Context, label string) context.Context {
	return context.WithValue(ctx, ringLabel{}, label)
}

func ringLabelOf(ctx context.Context) string {
	s, _ := ctx.Value(ringLabel{}).(string)
	return s
}
