package callflow

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/ivr"
	"github.com/hotline-project/hotline/outcome"
	"github.com/hotline-project/hotline/prompts"
	"github.com/hotline-project/hotline/routing"
)

// The callback dialogue's timing: how long the caller has to press a key in each of its
// menus, and between the digits of a typed number.
const (
	cbFirstDigit = 6 * time.Second
	cbInterDigit = 5 * time.Second
	cbRetries    = 2 // wrong entries before the caller goes back to the queue
	cbTypeTries  = 3 // numbers typed and refused at the read-back before going back
	// offerFirstCheck is when a waiting caller's expected wait is first looked at, and
	// offerEvery how often again, until the offer is made (queues[].callback.wait_over).
	offerFirstCheck = 15 * time.Second
	offerEvery      = 30 * time.Second
)

// dialog is a callback offer in progress on a caller's leg. Each step is a menu run by
// the ivr engine (the same collect menus, timeouts, retries and barge-in as the menus);
// silence or a wrong key past the retries goes back to the queue: it never books a
// callback the caller did not choose.
type dialog struct {
	c    *Call
	snap *Snapshot // the call's, as the offer started (a re-route may change the call's)
	ctx  context.Context
	cfg  *config.Callback
	lang string
}

// back is every dialog menu's no-input and operator action: back to the queue.
var back = &config.Action{Route: true, To: "no"}

func intp(n int) *int { return &n }

func strp(s string) *string { return &s }

// run runs one menu and returns the route its action chose ("no" for back to the queue)
// and the digits collected; "" when the caller hung up.
func (d *dialog) run(m config.Menu) (string, string) {
	c := d.c
	v := config.IVR{Languages: []config.Language{{Language: d.lang}}, DefaultLanguage: d.lang, Start: m.Name,
		FirstDigitTimeout: cbFirstDigit, InterDigitTimeout: cbInterDigit, Retries: cbRetries, Invalid: "invalid",
		Operator: back, Menus: []config.Menu{m}}
	e, err := ivr.New(&v, ivr.Options{Prompts: d.snap.Prompts,
		After: func(t time.Duration) <-chan time.Time { return c.f.clock.NewTimer(t).C() }})
	if err != nil {
		c.log.Error("callback menu not built", "menu", m.Name, "err", err)
		return "no", ""
	}
	// The menus log no digits; their Info lines would only repeat ours.
	res, err := e.Run(d.ctx, c.keys, slog.New(slog.DiscardHandler))
	if err != nil {
		return "", ""
	}
	return res.Route, res.Collected["number"]
}

// ask runs a two-key menu: 1 is "yes", 2 (or silence) "no".
func (d *dialog) ask(prompt string) string {
	route, _ := d.run(config.Menu{Name: prompt, Prompts: []string{prompt}, NoInput: back,
		Keys: map[string]config.Action{"1": {Route: true, To: "yes"}, "2": {Route: true, To: "no"}}})
	return route
}

// readBack reads a number back digit by digit, then asks whether it is right: "yes",
// "other" (type another) or "no"/"" (back to the queue, or hung up).
func (d *dialog) readBack(number string) string {
	c := d.c
	cat := d.snap.Prompts
	var parts []*prompts.Prompt
	if p, ok := cat.Get(d.lang, "callback_number_is"); ok {
		parts = append(parts, p)
	}
	for _, r := range number {
		if p, ok := cat.Get(d.lang, "num_"+string(r)); ok {
			parts = append(parts, p)
		}
	}
	if len(parts) > 0 {
		if err := c.leg.Play(d.ctx, prompts.Join(parts...)); err != nil && d.ctx.Err() == nil {
			c.log.Warn("callback read-back not played", "err", err)
		}
	}
	route, _ := d.run(config.Menu{Name: "callback_confirm", Prompts: []string{"callback_confirm"}, NoInput: back,
		Keys: map[string]config.Action{"1": {Route: true, To: "yes"}, "2": {Route: true, To: "other"}}})
	return route
}

// number finds the number to call: the caller ID, if the caller confirms it, or one they
// type (ending with #) and confirm. ok is false to go back to the queue.
func (d *dialog) number() (string, bool) {
	if n := callerDigits(d.c.caller); len(n) >= d.cfg.MinDigits && len(n) <= d.cfg.MaxDigits {
		switch d.readBack(n) {
		case "yes":
			return n, true
		case "other":
		default:
			return "", false
		}
	}
	for range cbTypeTries {
		route, n := d.run(config.Menu{Name: "callback_number", Prompts: []string{"callback_enter_number"},
			NoInput: back, Retries: intp(cbRetries), Invalid: strp("callback_invalid_number"),
			Collect: &config.Collect{Variable: "number", MinDigits: d.cfg.MinDigits, MaxDigits: d.cfg.MaxDigits,
				Then: &config.Action{Route: true, To: "ok"}}})
		if route != "ok" || n == "" {
			return "", false
		}
		switch d.readBack(n) {
		case "yes":
			return n, true
		case "other":
			continue
		default:
			return "", false
		}
	}
	return "", false
}

// window asks when the callback may be made; ok is false to go back to the queue.
func (d *dialog) window() (config.CallbackWindow, bool) {
	keys := map[string]config.Action{}
	ps := []string{"callback_window"}
	for _, w := range d.cfg.Windows {
		keys[w.Key] = config.Action{Route: true, To: "w" + w.Key}
		ps = append(ps, w.Prompt)
	}
	route, _ := d.run(config.Menu{Name: "callback_window", Prompts: ps, NoInput: back, Keys: keys})
	for _, w := range d.cfg.Windows {
		if route == "w"+w.Key {
			return w, true
		}
	}
	return config.CallbackWindow{}, false
}

// offerCallback offers the caller a callback from queue q and, if they accept, confirm
// a number and pick a window, books it and tells them so. It returns the id of the
// callback booked, or "" for none (the caller goes back to the queue).
func (c *Call) offerCallback(ctx context.Context, snap *Snapshot, q string) string {
	f := c.f
	cfg := snap.Config.Callback
	if f.PendingCallbacks() >= MaxCallbacks {
		c.log.Warn("callback not offered: too many pending", "pending", MaxCallbacks)
		return ""
	}
	f.cbMetrics.Callback(q, cbOffered)
	c.log.Info("callback offered", "queue", q)
	d := &dialog{c: c, snap: snap, ctx: ctx, cfg: &cfg, lang: c.attrs.Language}
	if d.lang == "" {
		d.lang = snap.Config.IVR.DefaultLanguage
	}
	if d.ask("callback_offer") != "yes" {
		c.log.Info("callback not taken", "queue", q)
		return ""
	}
	number, ok := d.number()
	if !ok {
		c.log.Info("callback: no number confirmed; back to the queue", "queue", q)
		return ""
	}
	w, ok := d.window()
	if !ok {
		c.log.Info("callback: no window chosen; back to the queue", "queue", q)
		return ""
	}
	consent := d.ask("callback_consent") == "yes"
	if ctx.Err() != nil || c.leg.Context().Err() != nil {
		return "" // hung up before the end: nothing is booked
	}
	now := f.clock.Now()
	opens, expires := windowTimes(w, now, snap.Config.CallbackLocation())
	r := CallbackRequest{ID: newCallbackID(), Queue: q, Line: c.attrs.Line, Language: d.lang, Reason: c.attrs.Reason,
		Priority: cfg.Priority, Hash: c.hash, Consent: consent, Created: now, Opens: opens, Expires: expires, Next: opens}
	f.book(r, number)
	c.log.Info("callback booked", "callback", r.ID, "queue", q, "window", w.Key, "opens", opens, "expires", expires, "consent", consent)
	if p, ok := snap.Prompts.Get(d.lang, "callback_booked"); ok {
		_ = c.leg.Play(ctx, p)
	}
	return r.ID
}

// offerRun is a callback offer running on its own goroutine while the caller keeps their
// place in the queue: an advocate who answers meanwhile stops it.
type offerRun struct {
	cancel context.CancelFunc
	res    chan string
	done   bool
}

// startOffer stops nothing itself: the caller's hold audio must be stopped first. Keys
// typed on hold before the offer are dropped.
func (c *Call) startOffer(ctx context.Context, q string) *offerRun {
	c.offered = true
	ivr.DropTypedAhead(c.keys)
	ctx, cancel := context.WithCancel(ctx)
	o := &offerRun{cancel: cancel, res: make(chan string, 1)}
	snap := c.snap
	go func() { o.res <- c.offerCallback(ctx, snap, q) }()
	return o
}

// results delivers the offer's one result: the callback booked, or "".
func (o *offerRun) results() <-chan string {
	if o == nil || o.done {
		return nil
	}
	return o.res
}

// stop ends the offer and returns its result (a callback booked as it was stopped).
func (o *offerRun) stop() string {
	if o == nil || o.done {
		return ""
	}
	o.done = true
	o.cancel()
	return <-o.res
}

// windowTimes is when a window chosen at now opens and ends: now until now+Within, or
// the next from..to in loc (today's, or tomorrow's once today's has ended).
func windowTimes(w config.CallbackWindow, now time.Time, loc *time.Location) (opens, expires time.Time) {
	if w.Within > 0 {
		return now, now.Add(w.Within)
	}
	local := now.In(loc)
	at := func(hhmm string, day int) time.Time {
		t, _ := time.Parse("15:04", hhmm)
		return time.Date(local.Year(), local.Month(), local.Day()+day, t.Hour(), t.Minute(), 0, 0, loc)
	}
	for day := -1; day <= 1; day++ {
		from, to := at(w.From, day), at(w.To, day)
		if !to.After(from) {
			to = at(w.To, day+1) // past midnight
		}
		if now.Before(to) {
			if from.Before(now) {
				from = now
			}
			return from, to
		}
	}
	return now, now // unreachable: tomorrow's window has not ended
}

// callerDigits is the caller ID's number as digits ("" when it is no number), for the
// read-back; never logged.
func callerDigits(caller string) string {
	s := caller
	if i := strings.IndexByte(s, '<'); i >= 0 {
		s = s[i+1:]
		if j := strings.IndexByte(s, '>'); j >= 0 {
			s = s[:j]
		}
	}
	for _, scheme := range []string{"sips:", "sip:", "tel:"} {
		if rest, ok := strings.CutPrefix(s, scheme); ok {
			s = rest
			break
		}
	}
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s = s[:i]
	}
	return routing.NormalizeNumber(s)
}

// callbackQueue is the queue whose callback offer applies to a call: the queue it waits
// in when that offers on the event, or, for a closed hotline, the first queue offering
// callbacks when closed that speaks the caller's language; "" for none.
func (c *Call) callbackQueue(event string) string {
	if q := c.callbackQueueConfig(event); q != nil {
		return q.Name
	}
	return ""
}

// callbackQueueConfig is callbackQueue's queue, as configured; nil for none.
func (c *Call) callbackQueueConfig(event string) *config.Queue {
	cfg := c.snap.Config
	for i := range cfg.Queues {
		q := &cfg.Queues[i]
		cb := q.Callback
		if !cb.Enabled() {
			continue
		}
		switch event {
		case "closed":
			if cb.Closed && (c.attrs.Language == "" || slices.Contains(q.Languages, c.attrs.Language)) {
				return q
			}
		case "overflowing":
			if cb.Overflowing && q.Name == c.currentQueue() {
				return q
			}
		case "wait":
			if cb.WaitOver > 0 && q.Name == c.currentQueue() {
				return q
			}
		}
	}
	return nil
}

// offerDue reports whether a waiting caller's expected wait exceeds their queue's
// wait_over: the engine's estimate when it can make one, or, when it cannot, the wait
// so far.
func (c *Call) offerDue() bool {
	q := c.callbackQueueConfig("wait")
	if q == nil {
		return false
	}
	limit := q.Callback.WaitOver
	waited := c.f.clock.Now().Sub(c.since)
	if ewt, ok := c.f.eng.EstimatedWait(c.ID); ok && ewt > limit {
		return true
	}
	return waited >= limit
}

// offerTimer is when offerDue is next looked at; nil when the queue never offers by wait.
func (c *Call) offerTimer(first bool) Timer {
	q := c.callbackQueueConfig("wait")
	if q == nil {
		return nil
	}
	now := c.f.clock.Now()
	at := now.Add(offerEvery)
	if first {
		at = c.since.Add(offerFirstCheck)
	}
	if limit := c.since.Add(q.Callback.WaitOver); limit.After(now) && limit.Before(at) {
		at = limit
	}
	return timerAt(c.f.clock, at)
}

// bookedClosed ends the call of a caller who booked a callback while the hotline was
// closed; the quick-exit key pressed meanwhile cancels it (see leaveForCallback).
func (c *Call) bookedClosed(ctx context.Context, id string) {
	if c.quitted() {
		_ = c.f.cancelCallback(id, "the caller pressed the quick-exit key")
		return
	}
	c.end(outcome.Callback)
	_ = c.leg.Hangup(ctx, "callback booked")
}
