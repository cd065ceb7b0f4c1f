package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hotline-project/hotline/admin"
	"github.com/hotline-project/hotline/callflow"
	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/console"
	"github.com/hotline-project/hotline/ivr"
	"github.com/hotline-project/hotline/media"
	"github.com/hotline-project/hotline/metrics"
	"github.com/hotline-project/hotline/prompts"
	"github.com/hotline-project/hotline/queue"
	"github.com/hotline-project/hotline/records"
	"github.com/hotline-project/hotline/sip"
	"github.com/hotline-project/hotline/sip/defence"
)

// The adapters between the SIP server, the media bridge, the records and the call flow.

// sipLeg is a SIP call as the flow's Leg: sip plays any Audio, the flow plays prompts.
type sipLeg struct{ *sip.Call }

func (l sipLeg) Play(ctx context.Context, p *prompts.Prompt) error { return l.Call.Play(ctx, p) }

// StartPlay starts a prompt without waiting for it (ivr.Starter).
func (l sipLeg) StartPlay(p *prompts.Prompt) (ivr.Playing, error) {
	pb, err := l.Call.StartPlay(p)
	if err != nil {
		return nil, err
	}
	return pb, nil
}

// sipDialer places the flow's outbound legs through the SIP server.
type sipDialer struct{ srv func() *sip.Server }

func (d sipDialer) Dial(ctx context.Context, to callflow.Dest) (callflow.Leg, error) {
	from, display := "hotline", "Hotline"
	if to.FromUser != "" {
		// A party configured to be shown the caller's number (midcall.parties), or a
		// callback's neutral caller ID (named only with the caller's consent).
		from, display = to.FromUser, to.FromDisplay
	}
	c, err := d.srv().Dial(ctx, sip.DialRequest{
		Target: to.URI, SendTo: to.SendTo, Route: to.Route, Transport: to.Transport, Line: to.Line,
		FromUser: from, FromDisplay: display, Private: to.Private,
	})
	if err != nil {
		for _, e := range []struct{ sip, flow error }{
			{sip.ErrBusy, callflow.ErrBusy}, {sip.ErrRejected, callflow.ErrRejected}, {sip.ErrNoAnswer, callflow.ErrNoAnswer},
		} {
			if errors.Is(err, e.sip) {
				return nil, fmt.Errorf("%w: %w", e.flow, err)
			}
		}
		return nil, err
	}
	return sipLeg{c}, nil
}

// sipContacts gives an advocate's registered phones, as the SIP server's registrar has them.
type sipContacts struct{ srv func() *sip.Server }

func (s sipContacts) Contacts(id string) []callflow.Dest {
	var ds []callflow.Dest
	for _, b := range s.srv().Contacts(id) {
		ds = append(ds, callflow.Dest{URI: b.Contact, SendTo: b.Source.String(), Route: b.Path, Transport: b.Transport})
	}
	return ds
}

// bridgeLegs relays media between two legs (SIP, or a page's phone): the caller's (a) and the other party's.
// The other party's RFC 4733 key presses never reach the caller: an advocate's mid-call
// feature codes are not for the caller's ears or phone.
func bridgeLegs(a, b callflow.Leg) (func(), error) {
	other := legOf(b)
	br, err := media.NewBridge(legOf(a), other)
	if err != nil {
		return nil, err
	}
	br.DropEvents(other)
	return br.Unbridge, nil
}

// mixer makes the flow's conferences on the media scheduler.
func mixer(s *media.Scheduler, log *slog.Logger) callflow.Mixer {
	return func() callflow.Conference { return conference{media.NewConference(s, log)} }
}

// conference is a media.Conference of SIP legs and pages' phones.
type conference struct{ c *media.Conference }

func (c conference) Join(l callflow.Leg, mode string, to callflow.Leg) error {
	return c.c.Join(legOf(l), joinOptions(mode, to))
}
func (c conference) SetMode(l callflow.Leg, mode string, to callflow.Leg) error {
	return c.c.SetMode(legOf(l), joinOptions(mode, to))
}

// joinOptions maps the flow's mode names to the mixer's.
func joinOptions(mode string, to callflow.Leg) media.JoinOptions {
	o := media.JoinOptions{Mode: media.ModeNormal}
	switch mode {
	case callflow.ModeListen:
		o.Mode = media.ModeListen
	case callflow.ModeWhisper:
		o.Mode = media.ModeWhisper
		if to != nil {
			o.WhisperTo = legOf(to)
		}
	}
	return o
}
func (c conference) Leave(l callflow.Leg) { c.c.Leave(legOf(l)) }
func (c conference) Close()               { c.c.Close() }

// callRecorder begins records through a records.Recorder (nil keeps none).
type callRecorder struct{ r *records.Recorder }

func (c callRecorder) Begin(callID, line, caller string, start time.Time) callflow.Record {
	return c.r.Begin(callID, line, caller, start)
}

// callerHash recognises a caller who calls again (keeping one's place) by the keyed
// hash the records keep; with records off, by a hash under a key of this run only (the
// places are kept in memory, so nothing outlives the key). Only a caller ID that is a
// phone number (at least minRecognisedDigits digits) is recognised: withheld and
// anonymous callers have none, and a SIP user name (a PBX's "reception", a test tool's
// "sipp") names a device or an account that many people may call from, not a line.
func callerHash(rec *records.Recorder) func(string) string {
	hash := rec.CallerHash
	if rec == nil {
		h, err := records.NewHasher([]byte(records.GenerateKey()), config.CountryCode)
		if err != nil {
			return func(string) string { return "" }
		}
		hash = h.Hash
	}
	return func(caller string) string {
		if !isPhoneNumber(records.NormalizeCaller(caller, config.CountryCode)) {
			return ""
		}
		return hash(caller)
	}
}

// minRecognisedDigits is the shortest caller number keeping one's place recognises:
// shorter ones are service codes or extensions.
const minRecognisedDigits = 7

// isPhoneNumber reports whether a normalised caller (records.NormalizeCaller) is a number.
func isPhoneNumber(n string) bool {
	if len(n) < minRecognisedDigits {
		return false
	}
	for _, r := range n {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// inbandMode maps media.inband_dtmf to the media legs' mode.
func inbandMode(s string) media.InbandMode {
	switch s {
	case "always":
		return media.InbandAlways
	case "off":
		return media.InbandOff
	}
	return media.InbandAuto
}

// handleCall hands an answered caller's call to the flow; srv() (the server, once built)
// screens silent calls (sip.Server.ScreenSilent).
func handleCall(f *callflow.Flow, srv func() *sip.Server) sip.Handler {
	return func(ctx context.Context, c *sip.Call) {
		f.Handle(ctx, inbound(srv(), c))
	}
}

// inbound is what the flow needs of a caller's call. On the heap: the call's goroutine
// runs the whole call below handleCall's frame (see callflow.Flow.Handle).
//
//go:noinline
func inbound(s *sip.Server, c *sip.Call) *callflow.Inbound {
	return &callflow.Inbound{ID: c.ID, Line: c.Line, Caller: c.Caller(), Arrived: c.Arrived, Leg: sipLeg{c},
		Screen: func() (bool, bool) { return s.ScreenSilent(c) }}
}

// feature changes an advocate's state by a code dialled from their phone.
func feature(f *callflow.Flow, d *durable) func(context.Context, string, string) error {
	return func(ctx context.Context, id, code string) error {
		err := f.Feature(ctx, id, code)
		if errors.Is(err, callflow.ErrUnknownFeature) {
			return sip.ErrUnknownFeature
		}
		if err == nil {
			d.advocateChanged(id)
		}
		return err
	}
}

// featureCall plays the confirmation of a feature code to the advocate's phone.
func featureCall(f *callflow.Flow) sip.Handler {
	return func(ctx context.Context, c *sip.Call) { f.FeatureCall(ctx, sipLeg{c}, c.Advocate, c.Feature) }
}

// advocatesAPI is the admin API's view of the advocates; changes are written to d.
type advocatesAPI struct {
	f *callflow.Flow
	d *durable
}

func (a advocatesAPI) Snapshot() (time.Time, queue.Snapshot) { return a.f.Advocates() }

func (a advocatesAPI) SetState(id, state, reason string) (queue.AdvocateSnapshot, error) {
	s, err := a.f.SetState(id, state, reason)
	switch {
	case errors.Is(err, callflow.ErrUnknownAdvocate):
		return s, fmt.Errorf("%w: %w", admin.ErrUnknownAdvocate, err)
	case err != nil:
		return s, fmt.Errorf("%w: %w", admin.ErrBadState, err)
	}
	a.d.advocateChanged(id)
	return s, nil
}

var _ admin.Advocates = advocatesAPI{}

// consoleDesk is the browser console's view of the call flow.
type consoleDesk struct {
	advocatesAPI
	live *atomic.Pointer[callflow.Snapshot]
	sups *supervisions
}

func (d consoleDesk) Advocates() (time.Time, queue.Snapshot) { return d.f.Advocates() }

func (d consoleDesk) SetState(id, state, reason string) (queue.AdvocateSnapshot, error) {
	s, err := d.f.SetState(id, state, reason)
	if err == nil {
		d.d.advocateChanged(id)
	}
	return s, err
}

func (d consoleDesk) HangUp(ctx context.Context, id string) error {
	err := d.f.HangUp(ctx, id)
	if errors.Is(err, callflow.ErrNoCall) {
		return fmt.Errorf("%w: %w", console.ErrNoCall, err)
	}
	return err
}

func (d consoleDesk) CallCard(id string) (console.CallCard, bool) {
	c, ok := d.f.CallCard(id)
	return console.CallCard{Queue: c.Queue, Language: c.Language, Reason: c.Reason, Since: c.Since}, ok
}

var _ console.Desk = consoleDesk{}

// consoleAccount looks an advocate's account up in the configuration in force.
func consoleAccount(live *atomic.Pointer[callflow.Snapshot]) func(string) (console.Account, bool) {
	return func(id string) (console.Account, bool) {
		for _, a := range live.Load().Config.Advocates {
			if a.ID == id {
				return console.Account{ID: a.ID, Name: a.Name, Role: a.Role, HA1SHA256: a.HA1SHA256, HA1MD5: a.HA1MD5}, true
			}
		}
		return console.Account{}, false
	}
}

// newConsole builds the browser console on the configuration in force; its handler
// answers 404 while console.enabled is false. stop ends its event streams.
func newConsole(live *atomic.Pointer[callflow.Snapshot], flow *callflow.Flow, dur *durable, limits *defence.Limiter,
	stats *console.Stats, phones *browserPhones, sups *supervisions, reg prometheus.Registerer, log *slog.Logger) (h http.Handler, stop func(), err error) {
	var cs *console.Server
	cm := metrics.NewConsole(reg, func() int { return cs.Sessions() })
	cs, err = console.New(console.Options{
		Accounts:     consoleAccount(live),
		Realm:        func() string { return live.Load().Config.SIP.Realm },
		PauseReasons: func() []string { return live.Load().Config.AdvocatePauseReasons },
		ServiceLevel: func(q string) time.Duration { return live.Load().Settings(q).ServiceLevel },
		Desk:         consoleDesk{advocatesAPI{flow, dur}, live, sups},
		Limiter:      limits,
		Stats:        stats,
		Metrics:      cm,
		IdleTimeout:  func() time.Duration { return live.Load().Config.Console.IdleTimeout },
		Logger:       log.With("component", "console"),
		PhoneEnabled: func() bool { return live.Load().Config.Console.Phone },
		OnPhone:      phones.webPresence,
	})
	if err != nil {
		return nil, nil, err
	}
	phones.console.Store(cs)
	metrics.NewConsolePhones(reg, cs.Phones)
	ch := cs.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !live.Load().Config.Console.Enabled {
			http.NotFound(w, r)
			return
		}
		ch.ServeHTTP(w, r)
	}), cs.Close, nil
}
