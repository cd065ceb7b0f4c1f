package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotline-project/hotline/callflow"
	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/console"
	"github.com/hotline-project/hotline/media"
	"github.com/hotline-project/hotline/media/webphone"
	"github.com/hotline-project/hotline/prompts"
)

// The phone in the page (console.phone): an advocate who turns it on in the console is
// rung there over WebRTC instead of (or as well as) on their SIP phones. The browser's leg
// is a media.Leg like a SIP phone's, so the flow bridges, conferences, whispers and
// records it the same way.

// phoneScheme marks a Dest that is an advocate's phone in a page.
const phoneScheme = "webrtc:"

// answerTimeout bounds the time from the page's answer to its media being connected.
const answerTimeout = 15 * time.Second

// browserPhones joins the console's phones in pages to the call flow.
type browserPhones struct {
	engine  *webphone.Engine
	console atomic.Pointer[console.Server] // set once the console is built
	log     *slog.Logger

	mu       sync.Mutex
	sip, web map[string]bool          // who is online by a SIP registration, by a page
	flow     func(id string, on bool) // the flow's presence
}

func newBrowserPhones(cfg *config.Config, sched *media.Scheduler, ports *media.Ports, bind, advertise netip.Addr, log *slog.Logger) (*browserPhones, error) {
	o := webphone.Options{Scheduler: sched, Ports: ports, LegHost: bind,
		PortMin: uint16(cfg.Media.PortMin), PortMax: uint16(cfg.Media.PortMax),
		InactivityTimeout: cfg.Media.InactivityTimeout, Logger: log.With("component", "webphone")}
	if !bind.IsUnspecified() {
		o.Addresses = []netip.Addr{bind}
	}
	if advertise.IsValid() && advertise != bind {
		o.Advertise = advertise
	}
	e, err := webphone.New(o)
	if err != nil {
		return nil, err
	}
	return &browserPhones{engine: e, log: log, sip: map[string]bool{}, web: map[string]bool{}}, nil
}

// sipPresence is the SIP registrar's word on an advocate's phones.
func (b *browserPhones) sipPresence(id string, on bool) { b.presence(b.sip, id, on) }

// webPresence is the console's word on an advocate's phone in a page.
func (b *browserPhones) webPresence(id string, on bool) { b.presence(b.web, id, on) }

// presence tells the flow when an advocate's first phone (SIP or page) comes or the last
// goes.
func (b *browserPhones) presence(m map[string]bool, id string, on bool) {
	b.mu.Lock()
	was := b.sip[id] || b.web[id]
	if on {
		m[id] = true
	} else {
		delete(m, id)
	}
	now := b.sip[id] || b.web[id]
	flow := b.flow
	b.mu.Unlock()
	if was != now && flow != nil {
		flow(id, now)
	}
}

// phoneOn reports whether the advocate has a phone on in a page.
func (b *browserPhones) phoneOn(id string) bool {
	cs := b.console.Load()
	return cs != nil && cs.PhoneOn(id)
}

// dial rings the advocate's phone in the page: the offer goes to the page, and the leg is
// returned once the page has answered and its media is connected.
func (b *browserPhones) dial(ctx context.Context, advocate string) (callflow.Leg, error) {
	cs := b.console.Load()
	if cs == nil {
		return nil, console.ErrPhoneOff
	}
	call, err := b.engine.Offer(ctx)
	if err != nil {
		return nil, err
	}
	answer, err := cs.Ring(ctx, advocate, ringLabelOf(ctx), call.Offer())
	if err != nil {
		call.Close()
		switch {
		case errors.Is(err, console.ErrDeclined):
			return nil, fmt.Errorf("%w: %w", callflow.ErrRejected, err)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("%w: %w", callflow.ErrNoAnswer, err)
		}
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, answerTimeout)
	defer cancel()
	if err := call.Accept(actx, answer); err != nil {
		call.Close()
		b.log.Warn("the phone in the page answered but did not connect", "advocate", advocate, "err", err)
		return nil, err
	}
	return newWebLeg(call), nil
}

// webLeg is a call answered in a page as the flow's Leg. The page has no keypad: its
// mid-call features are the console's buttons.
type webLeg struct {
	c      *webphone.Call
	ctx    context.Context
	digits chan rune
}

func newWebLeg(c *webphone.Call) *webLeg {
	ctx, cancel := context.WithCancel(context.Background())
	l := &webLeg{c: c, ctx: ctx, digits: make(chan rune)}
	go func() {
		<-c.Done()
		cancel()
		close(l.digits)
	}()
	return l
}

func (l *webLeg) Play(ctx context.Context, p *prompts.Prompt) error {
	audio := p.Payload(media.PayloadPCMU)
	if audio == nil {
		return errors.New("prompt has no PCMU audio")
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	defer context.AfterFunc(l.ctx, stop)()
	err := l.c.Leg().Play(ctx, audio)
	if errors.Is(err, media.ErrInactive) {
		l.c.Close()
	}
	if l.ctx.Err() != nil {
		return errors.New("the page's call ended")
	}
	return err
}

func (l *webLeg) Digits() <-chan rune                  { return l.digits }
func (l *webLeg) Hangup(context.Context, string) error { l.c.Close(); return nil }
func (l *webLeg) Context() context.Context             { return l.ctx }
func (l *webLeg) Done() <-chan struct{}                { return l.c.Done() }

// Leg is the page's media leg, for the bridge and conferences.
func (l *webLeg) Leg() *media.Leg { return l.c.Leg() }

// mediaLeg is a flow Leg with an RTP leg: a SIP call's or a page's.
type mediaLeg interface{ Leg() *media.Leg }

// legOf is l's RTP leg.
func legOf(l callflow.Leg) *media.Leg { return l.(mediaLeg).Leg() }

// phoneDialer dials a page's phone (phoneScheme) itself and anything else over SIP.
type phoneDialer struct {
	sip    callflow.Dialer
	phones *browserPhones
}

func (d phoneDialer) Dial(ctx context.Context, to callflow.Dest) (callflow.Leg, error) {
	if id, ok := strings.CutPrefix(to.URI, phoneScheme); ok {
		return d.phones.dial(ctx, id)
	}
	return d.sip.Dial(ctx, to)
}

// phoneContacts adds an advocate's phone in a page to their SIP phones.
type phoneContacts struct {
	sip    callflow.Contacts
	phones *browserPhones
}

func (c phoneContacts) Contacts(id string) []callflow.Dest {
	ds := c.sip.Contacts(id)
	if c.phones.phoneOn(id) {
		ds = append(ds, callflow.Dest{URI: phoneScheme + id})
	}
	return ds
}
