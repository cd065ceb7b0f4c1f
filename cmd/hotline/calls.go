package main

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/hotline-project/hotline/ivr"
	"github.com/hotline-project/hotline/metrics"
	"github.com/hotline-project/hotline/prompts"
	"github.com/hotline-project/hotline/records"
	"github.com/hotline-project/hotline/routing"
	"github.com/hotline-project/hotline/sip"
)

// switchboard takes each answered call through the menus, routes it and sends it on.
type switchboard struct {
	live      *atomic.Pointer[snapshot] // the configuration in force; a call keeps the one it starts with
	overrides *routing.Overrides
	routing   *metrics.Routing
	ivr       *metrics.IVR
	queues    *dispatcher
	records   *records.Recorder // nil keeps no records
	// stopping reports whether the server is stopping (its calls are then cut off).
	stopping func() bool
	// screen, if set, tells the silent-call policy about a call whose caller pressed no key
	// (sip.Server.ScreenSilent); see demotion.
	screen func(*sip.Call) (noRTP, flooding bool)
	now    func() time.Time
	log    *slog.Logger
}

// handle is the sip.Handler of every answered call.
func (sb *switchboard) handle(ctx context.Context, c *sip.Call) {
	log := sb.log.With("call", c.ID, "line", c.Line)
	rec := sb.records.Begin(c.ID, c.Line, c.Caller(), c.Arrived)
	rec.Answered(sb.now())
	defer func() {
		// The caller's leg is gone when handle returns: writing the record now holds up
		// nobody, and it is committed before the call's goroutine ends.
		if sb.stopping() {
			rec.Ended(records.OutcomeShutdown, sb.now())
		}
		_ = rec.Finish(ctx)
	}()
	snap := sb.live.Load()
	res, err := snap.menus.Run(ctx, c, log)
	sb.ivr.Ended(res.Language, string(res.End))
	rec.Menus(res.Language, res.Reason)
	if err != nil {
		if !errors.Is(err, ivr.ErrHangup) && ctx.Err() == nil {
			log.Error("menus failed", "err", err)
		}
		return
	}
	if res.Hangup {
		rec.Ended(records.OutcomeMenuHangup, sb.now())
		_ = c.Hangup(ctx, "menu")
		return
	}
	d := sb.route(snap.table, c.Line, res, sb.demotion(c, res.End))
	sb.routing.Decision(d)
	log.Info("call routed", "route", d.Route, "kind", d.Kind(), "to", d.Step.String(),
		"priority", d.Priority, "override", d.Override, "demoted", d.Demoted)
	dest := d.Queue
	if d.Target != "" {
		dest = d.Target
	}
	rec.Routed(d.Route, dest)
	switch d.Kind() {
	case "message":
		rec.Ended(records.OutcomeMessage, sb.now())
		playAll(ctx, c, res.Then)
		sb.play(ctx, c, snap.prompts, res.Language, d.Message, log)
		_ = c.Hangup(ctx, "route message")
	case "target":
		sb.queues.connectTarget(ctx, c, rec, res.Language, d.Step, res.Then, log)
	default:
		sb.queues.queueCall(ctx, c, rec, callAttrs{lang: res.Language, reason: res.Reason}, d, res.Then, log)
	}
}

// demotion applies the silent-call policy (routing.Silent, README "Silent calls",
// issue 14) to a call whose menus ended as end: "" or why it is not routed as urgent.
func (sb *switchboard) demotion(c *sip.Call, end ivr.End) string {
	if end != ivr.EndNoInput || sb.screen == nil {
		return ""
	}
	noRTP, flooding := sb.screen(c)
	return routing.Silent{NoInput: true, NoRTP: noRTP, SourceFlooding: flooding}.Demotion()
}

// route decides where a call goes: where the menu sent it, or what routing decides;
// demoted is the silent-call policy's verdict (demotion).
func (sb *switchboard) route(tb *routing.Table, line string, res ivr.Result, demoted string) routing.Decision {
	now := sb.now()
	d := tb.Route(routing.Attrs{Line: line, Language: res.Language, Reason: res.Reason, Demoted: demoted}, now,
		routing.State{Queues: sb.queues.eng.RoutingState(now), Overrides: sb.overrides.Snapshot()})
	if res.Route != "" && d.Override == "" {
		// A menu action named the destination; routing still decides the rest (priority,
		// overflow) unless an emergency override forces every call elsewhere.
		d.Message, d.Hangup = "", false
		d.Step = routing.Step{Queue: res.Route}
		if uri, ok := tb.TargetURI(res.Route); ok {
			d.Step = routing.Step{Target: res.Route, URI: uri}
		}
		d.Route = "menu"
	}
	return d
}

// play plays a prompt in lang and waits for its end; errors end the call anyway.
func (sb *switchboard) play(ctx context.Context, c *sip.Call, cat *prompts.Catalogue, lang, name string, log *slog.Logger) {
	p, ok := cat.Get(lang, name)
	if !ok {
		log.Error("prompt missing", "language", lang, "prompt", name)
		return
	}
	if err := c.Play(ctx, p); err != nil && ctx.Err() == nil {
		log.Warn("prompt not played", "prompt", name, "err", err)
	}
}
