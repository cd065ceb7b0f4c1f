package callflow

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/prompts"
)

// Mixer makes an empty conference (package main wires media.Conference to it).
type Mixer func() Conference

// Conference mixes the audio of the legs that join it: each hears all the others.
type Conference interface {
	// Join adds an answered leg in mode (ModeNormal, ModeListen, or ModeWhisper to the leg
	// to); an error means it could not (the leg ended).
	Join(l Leg, mode string, to Leg) error
	// SetMode changes how a leg in the conference takes part.
	SetMode(l Leg, mode string, to Leg) error
	// Leave takes a leg out; the others go on.
	Leave(l Leg)
	// Close takes every leg out.
	Close()
}

// ConferenceMetrics counts conferences (metrics.Conferences implements it).
type ConferenceMetrics interface {
	// Conferences changes the number of conferences in progress by delta.
	Conferences(delta int)
	// Participants changes the number of legs in conferences by delta.
	Participants(delta int)
	// Joined counts an attempt to add a party: kind is interpreter, emergency, partner or
	// supervisor;
	// result answered, busy, no_answer, failed or unknown (a code not configured).
	Joined(kind, result string)
}

// PartyRecord is what a call's Record also does when it keeps the parties added mid-call
// (records.Call does): kind and name (the language, or the target's name), the calling
// number presented to the party (caller or hotline) and how the attempt ended.
type PartyRecord interface {
	Party(kind, name, presented, result string, t time.Time)
}

// How a leg takes part in a conference: heard by all, by none, or by one.
const (
	ModeNormal  = "normal"
	ModeListen  = "listen"
	ModeWhisper = "whisper"
)

// The kinds of party, and how an attempt to add one ends.
const (
	KindInterpreter = "interpreter"
	KindSupervisor  = "supervisor"

	JoinAnswered = "answered"
	JoinBusy     = "busy"
	JoinNoAnswer = "no_answer"
	JoinFailed   = "failed"
	JoinUnknown  = "unknown"
	JoinDropped  = "dropped"
)

// noConferenceMetrics counts nothing.
type noConferenceMetrics struct{}

func (noConferenceMetrics) Conferences(int)       {}
func (noConferenceMetrics) Participants(int)      {}
func (noConferenceMetrics) Joined(string, string) {}

// partySpec is who to add: from the interpreter table or the parties table.
type partySpec struct {
	kind, name string
	code       string // an interpreter's code
	target     string // the target's name
	access     string // DTMF sent once it answers
	present    bool   // present the caller's number
}

// party is a leg added mid-call.
type party struct {
	partySpec
	presented string
	leg       Leg
}

type dialResult struct {
	spec      partySpec
	presented string
	leg       Leg
	err       error
}

// midCall is the talk between the caller and an advocate with the advocate's mid-call
// features (README "Interpreters, 911 and partners mid-call"). It runs on the caller's
// side of the flow, in one loop: only it changes the legs' media (bridge or conference)
// and its list of parties; dials, prompts and parties' hang-ups reach it on channels.
//
// Caller and advocate stay connected throughout: bridged (the plain relay) while they
// are alone, in a conference from the first feature that needs one (a party being
// dialled, a prompt to the advocate over the call) until they are alone again. The
// advocate's keys never reach the caller: the bridge drops the advocate's RFC 4733
// events and a conference mixes none.
type midCall struct {
	c        *Call
	adv      Leg
	advocate string // the advocate's id
	log      *slog.Logger
	cfg      config.MidCall

	unbridge func()     // while bridged
	conf     Conference // while in a conference
	parties  []*party   // in the order added
	dialing  bool
	// cancelDial ends the dial in progress, of a party of dialKind.
	cancelDial context.CancelFunc
	dialKind   string
	telling    int // prompts playing to the advocate

	code      []rune
	codeTimer Timer

	dialed    chan *dialResult
	partyGone chan *party
	told      chan struct{}
	wg        sync.WaitGroup

	// Warm transfer (transfer.go).
	xfer       *transfer
	xferSeq    int
	xferEvents chan xferEvent

	// requests are the console's (Flow.AddParty and the like): run in the loop.
	requests     chan request
	digitsClosed bool // the advocate's digits channel closed (their leg ended)
	// requeue is set when the caller goes back to the queue (the advocate left and nobody
	// may stay with the caller).
	requeue bool

	// Supervisors (supervise.go).
	sups      []*supervisor
	supervise chan *supervisor // a supervisor's leg to join, from FeatureCall
	modes     chan modeChange  // a supervisor's key, from FeatureCall
	supGone   chan *supervisor // a supervisor's leg ended
	pressed   chan string      // a feature code from the console (press.go)
	done      chan struct{}    // closed when the talk ends
}

// talk connects the caller to the advocate until either hangs up, with mid-call features
// when they are configured (and the flow has a mixer), else with the plain relay. It
// reports whether the caller goes back to the queue (the advocate hung up mid-conference).
func (c *Call) talk(adv Leg, advocate string, log *slog.Logger) (requeue bool, err error) {
	m := c.newMidCall(adv, advocate, log)
	if m == nil {
		return false, c.relay(adv, "advocate", log)
	}
	c.f.registerTalk(advocate, m)
	defer func() { c.f.unregisterTalk(m.advocate, m) }()
	err = m.run()
	return m.requeue, err
}

// newMidCall returns the mid-call features of a call answered by advocate on adv, or nil
// when none is configured (or the flow has no mixer): the plain relay then.
//
//go:noinline
func (c *Call) newMidCall(adv Leg, advocate string, log *slog.Logger) *midCall {
	cfg := &c.snap.Config.MidCall
	if !cfg.Enabled() && cfg.SuperviseCode == "" || c.f.mixer == nil {
		return nil
	}
	return &midCall{c: c, adv: adv, advocate: advocate, log: log, cfg: *cfg,
		dialed: make(chan *dialResult, 1), partyGone: make(chan *party, 8), told: make(chan struct{}, 8),
		xferEvents: make(chan xferEvent, 8), requests: make(chan request),
		supervise: make(chan *supervisor), modes: make(chan modeChange), supGone: make(chan *supervisor, 4),
		pressed: make(chan string), done: make(chan struct{})}
}

// run bridges the caller and the advocate and takes the call's events (hang-ups, keys,
// parties, supervisors) until it ends. Its loop and event keep small frames, with the
// work in methods: the call's goroutine is parked below them while the call is bridged
// (see Handle).
func (m *midCall) run() error {
	if err := m.start(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer m.teardown(cancel)
	for !m.requeue {
		if m.event(ctx) {
			return nil
		}
	}
	m.log.Info("the caller goes back to the queue")
	return nil
}

// start bridges the caller and the advocate; a bridge that cannot be made hangs up both.
//
//go:noinline
func (m *midCall) start() error {
	c, f := m.c, m.c.f
	c.phase.Store(phaseBridge) // for the quick-exit key, as in relay
	unbridge, err := f.bridge(c.leg, m.adv)
	if err != nil {
		m.log.Warn("bridge failed", "err", err)
		_ = m.adv.Hangup(context.Background(), "bridge failed")
		_ = c.leg.Hangup(context.Background(), "bridge failed")
		return err
	}
	m.unbridge = unbridge
	return nil
}

// event waits for the call's next event and takes it; it reports whether the call is
// over.
func (m *midCall) event(ctx context.Context) (over bool) {
	c := m.c
	// The advocate changes with a transfer, and is nil once they left.
	var advDone <-chan struct{}
	var digits <-chan rune
	if m.adv != nil {
		advDone = m.adv.Done()
		if !m.digitsClosed {
			digits = m.adv.Digits()
		}
	}
	select {
	case <-c.leg.Done():
		m.callerHungUp()
		return true
	case <-advDone:
		return m.advocateDone()
	case r := <-m.requests:
		r.res <- r.fn(ctx)
	case e := <-m.xferEvents:
		m.transferEvent(ctx, e)
	case a := <-m.xferAnswered():
		m.transferAnswered(a)
	case <-chanOf(m.xferTimer()):
		m.transferTimedOut()
	case d, ok := <-digits:
		m.digit(ctx, d, ok)
	case <-chanOf(m.codeTimer):
		m.codeAbandoned()
	case r := <-m.dialed:
		m.answered(ctx, r)
	case p := <-m.partyGone:
		m.left(p, "hung up")
	case <-m.told:
		m.telling--
		m.maybeBridge()
	case s := <-m.supervise:
		m.addSupervisor(ctx, s)
	case mc := <-m.modes:
		m.setMode(mc)
	case s := <-m.supGone:
		m.removeSupervisor(s)
	case code := <-m.pressed:
		m.press(ctx, code)
	}
	return false
}

// callerHungUp ends the advocate's leg after the caller's.
//
//go:noinline
func (m *midCall) callerHungUp() {
	m.log.Info("caller hung up; ending the advocate's leg")
	if m.adv != nil {
		_ = m.adv.Hangup(context.Background(), "caller hung up")
	}
}

// advocateDone is the advocate's leg ending; it reports whether the call is over.
//
//go:noinline
func (m *midCall) advocateDone() (over bool) {
	if x := m.xfer; x != nil && x.ans != nil {
		// The new advocate answered: the first one's hang-up completes the
		// transfer, at once or when the new one has heard the whisper.
		m.firstLeft(x)
		return false
	}
	return !m.advocateLeft()
}

// digit is a key the advocate pressed (ok false: their keys ended).
//
//go:noinline
func (m *midCall) digit(ctx context.Context, d rune, ok bool) {
	if !ok {
		m.digitsClosed = true
		return
	}
	m.key(ctx, d)
}

// codeAbandoned is a feature code not finished in time.
//
//go:noinline
func (m *midCall) codeAbandoned() {
	m.log.Info("feature code abandoned")
	m.clearCode()
}

// teardown ends every party's leg and the conference when the call ends.
func (m *midCall) teardown(cancel context.CancelFunc) {
	stopTimer(m.codeTimer)
	m.cancelTransfer("call ended")
	close(m.done)
	cancel()
	for _, p := range m.parties {
		_ = p.leg.Hangup(context.Background(), "call ended")
	}
	for _, s := range m.sups {
		_ = s.leg.Hangup(context.Background(), "call ended")
	}
	m.wg.Wait()
	select {
	case r := <-m.dialed:
		if r.leg != nil {
			_ = r.leg.Hangup(context.Background(), "call ended")
		}
	default:
	}
	m.closeConference()
	if m.unbridge != nil {
		m.unbridge()
	}
}

// key takes one of the advocate's digits.
func (m *midCall) key(ctx context.Context, d rune) {
	if m.cfg.Prefix == "" {
		return // supervision only: no feature codes
	}
	m.code = append(m.code, d)
	s, prefix := string(m.code), m.cfg.Prefix
	if !strings.HasPrefix(s, prefix) {
		if !strings.HasPrefix(prefix, s) {
			m.clearCode() // not a feature code; dropped all the same
			return
		}
		m.armTimer()
		return
	}
	rest := s[len(prefix):]
	if rest == "" {
		m.armTimer()
		return
	}
	switch k := rest[:1]; k {
	case m.cfg.TransferKey:
		if !strings.HasSuffix(rest, "#") {
			if len(rest) > 1+6 {
				m.clearCode()
				m.unknown(ctx, KindTransfer)
				return
			}
			m.armTimer()
			return
		}
		code := rest[1 : len(rest)-1]
		m.clearCode()
		q, adv, ok := m.transferDest(code)
		if !ok {
			m.unknown(ctx, KindTransfer)
			return
		}
		_ = m.startTransfer(ctx, q, adv)
	case m.cfg.DropKey:
		m.clearCode()
		_ = m.drop()
	case m.cfg.InterpreterKey:
		if !strings.HasSuffix(rest, "#") {
			if len(rest) > 1+4 {
				m.clearCode()
				m.unknown(ctx, KindInterpreter)
				return
			}
			m.armTimer()
			return
		}
		code := rest[1 : len(rest)-1]
		m.clearCode()
		for _, in := range m.cfg.Interpreters {
			if in.Code == code {
				_ = m.add(ctx, partySpec{kind: KindInterpreter, name: in.Language, code: in.Code, target: in.Target, access: in.AccessCode})
				return
			}
		}
		m.unknown(ctx, KindInterpreter)
	default:
		m.clearCode()
		for _, p := range m.cfg.Parties {
			if p.Key == k {
				_ = m.add(ctx, partySpec{kind: p.Kind, name: p.Target, target: p.Target, present: p.PresentCaller})
				return
			}
		}
		m.unknown(ctx, "other")
	}
}

func (m *midCall) armTimer() {
	stopTimer(m.codeTimer)
	m.codeTimer = m.c.f.clock.NewTimer(m.cfg.DigitTimeout)
}

func (m *midCall) clearCode() {
	m.code = m.code[:0]
	stopTimer(m.codeTimer)
	m.codeTimer = nil
}

func (m *midCall) unknown(ctx context.Context, kind string) {
	m.log.Info("feature code not configured", "kind", kind)
	m.c.f.conferences.Joined(kind, JoinUnknown)
	m.tell(ctx, "party_unknown")
}

// ensureConference moves caller and advocate from their bridge into a conference: they
// go on hearing each other, and the advocate can be told things alone.
func (m *midCall) ensureConference() error {
	if m.conf != nil {
		return nil
	}
	if m.adv == nil {
		return ErrNoCall
	}
	conf := m.c.f.mixer()
	m.unbridge()
	m.unbridge = nil
	for _, l := range []Leg{m.c.leg, m.adv} {
		if err := conf.Join(l, ModeNormal, nil); err != nil {
			conf.Close()
			m.rebridge()
			return err
		}
	}
	m.conf = conf
	m.c.f.conferences.Conferences(1)
	m.c.f.conferences.Participants(2)
	m.log.Info("conference started")
	return nil
}

// maybeBridge goes back to the plain relay when caller and advocate are alone again.
func (m *midCall) maybeBridge() {
	if m.conf == nil || m.adv == nil || len(m.parties) > 0 || len(m.sups) > 0 || m.dialing || m.telling > 0 || m.xfer != nil {
		return
	}
	m.closeConference()
	m.rebridge()
}

func (m *midCall) rebridge() {
	unbridge, err := m.c.f.bridge(m.c.leg, m.adv)
	if err != nil {
		// A leg ended: the loop sees it next.
		m.log.Warn("bridge failed", "err", err)
		return
	}
	m.unbridge = unbridge
}

func (m *midCall) closeConference() {
	if m.conf == nil {
		return
	}
	m.conf.Close()
	m.conf = nil
	m.c.f.conferences.Conferences(-1)
	n := len(m.parties) + len(m.sups) + 1 // the caller
	if m.adv != nil {
		n++
	}
	if m.xfer != nil && m.xfer.joined {
		n++
	}
	m.c.f.conferences.Participants(-n)
	m.log.Info("conference ended")
}

// tell plays a prompt to the advocate alone, over the call.
func (m *midCall) tell(ctx context.Context, name string) {
	if m.adv == nil {
		return
	}
	adv := m.adv
	lang := advocateLanguage(m.c.f.live.Load(), m.advocate)
	p, ok := m.c.snap.Prompts.Get(lang, name)
	if !ok {
		m.log.Error("prompt missing", "prompt", name)
		return
	}
	if err := m.ensureConference(); err != nil {
		return
	}
	m.telling++
	m.wg.Go(func() {
		if err := adv.Play(ctx, p); err != nil && ctx.Err() == nil {
			m.log.Warn("prompt to the advocate not played", "prompt", name, "err", err)
		}
		select {
		case m.told <- struct{}{}:
		case <-ctx.Done():
		}
	})
}

// add dials a party; the result comes back to the loop.
func (m *midCall) add(ctx context.Context, s partySpec) error {
	f := m.c.f
	if m.dialing || m.xfer != nil {
		m.log.Info("a party is already being dialled", "kind", s.kind)
		return ErrFeatureBusy
	}
	uri := ""
	for _, t := range m.c.snap.Config.Targets {
		if t.Name == s.target {
			uri = t.URI
		}
	}
	if err := m.ensureConference(); err != nil {
		return err
	}
	if uri == "" {
		return ErrUnknownFeature
	}
	dest := Dest{URI: uri, Line: m.c.attrs.Line}
	presented := "hotline"
	if n := callingNumber(m.c.caller); s.present && n != "" {
		dest.FromUser, presented = n, "caller"
	}
	var access *prompts.Prompt
	if s.access != "" {
		access, _ = prompts.DTMF(s.access) // validated by config
	}
	m.dialing, m.dialKind = true, s.kind
	m.log.Info("adding a party", "kind", s.kind, "name", s.name, "presented", presented)
	dctx, cancel := withDeadline(ctx, f.clock, f.clock.Now().Add(m.cfg.RingTimeout))
	m.cancelDial = cancel
	m.wg.Go(func() {
		defer cancel()
		leg, err := f.dialer.Dial(dctx, dest)
		if err == nil && access != nil {
			// The access code goes to the party's line before it joins: nobody else
			// hears it.
			if perr := leg.Play(ctx, access); perr != nil && ctx.Err() == nil {
				err = perr
				_ = leg.Hangup(context.Background(), "access code not sent")
				leg = nil
			}
		}
		if err == nil && ctx.Err() != nil {
			_ = leg.Hangup(context.Background(), "call ended")
			return
		}
		select {
		case m.dialed <- &dialResult{spec: s, presented: presented, leg: leg, err: err}:
		case <-ctx.Done():
			if leg != nil {
				_ = leg.Hangup(context.Background(), "call ended")
			}
		}
	})
	return nil
}

// answered takes a dial's result: the party joins, or the advocate is told why not.
func (m *midCall) answered(ctx context.Context, r *dialResult) {
	m.dialing = false
	if m.adv == nil && r.spec.kind != config.PartyEmergency {
		// The advocate left while the line rang: nobody asked for the party any more.
		if r.leg != nil {
			_ = r.leg.Hangup(context.Background(), "advocate left")
		}
		m.record(r.spec, r.presented, JoinCancelled)
		m.c.f.conferences.Joined(r.spec.kind, JoinCancelled)
		return
	}
	result := JoinAnswered
	switch {
	case r.err == nil:
	case errors.Is(r.err, ErrBusy), errors.Is(r.err, ErrRejected):
		result = JoinBusy
	case errors.Is(r.err, ErrNoAnswer), errors.Is(r.err, context.DeadlineExceeded):
		result = JoinNoAnswer
	default:
		result = JoinFailed
	}
	if r.err == nil {
		if m.conf == nil || m.conf.Join(r.leg, ModeNormal, nil) != nil {
			_ = r.leg.Hangup(context.Background(), "conference ended")
			result = JoinFailed
		}
	}
	m.c.f.conferences.Joined(r.spec.kind, result)
	m.record(r.spec, r.presented, result)
	if result != JoinAnswered {
		m.log.Info("party not added", "kind", r.spec.kind, "name", r.spec.name, "result", result, "err", r.err)
		m.tell(ctx, "party_"+result)
		m.maybeBridge()
		if m.adv == nil && !m.unattended() {
			m.requeue = true // 911, called before the advocate left, did not answer
		}
		return
	}
	p := &party{partySpec: r.spec, presented: r.presented, leg: r.leg}
	m.parties = append(m.parties, p)
	m.c.f.conferences.Participants(1)
	m.log.Info("party added", "kind", p.kind, "name", p.name, "participants", 2+len(m.parties))
	m.wg.Go(func() {
		select {
		case <-p.leg.Done():
			select {
			case m.partyGone <- p:
			case <-ctx.Done():
			}
		case <-ctx.Done():
		}
	})
}

// drop hangs up the party added last, or ends the transfer in progress.
func (m *midCall) drop() error {
	if m.xfer != nil {
		m.cancelTransfer("dropped by the advocate")
		m.maybeBridge()
		return nil
	}
	if len(m.parties) == 0 {
		return ErrNoParty
	}
	p := m.parties[len(m.parties)-1]
	_ = p.leg.Hangup(context.Background(), "dropped by the advocate")
	m.record(p.partySpec, p.presented, JoinDropped)
	m.left(p, "dropped")
	return nil
}

// left takes a party that hung up or was dropped out of the conference. With the advocate
// gone, the rules of advocateLeft decide again whether the others may stay with the caller.
func (m *midCall) left(p *party, why string) {
	if !m.remove(p, why) {
		return
	}
	if m.adv == nil {
		if !m.unattended() {
			m.requeue = true
		}
		return
	}
	m.maybeBridge()
}

// remove takes a party out of the conference; false when it was out already.
func (m *midCall) remove(p *party, why string) bool {
	i := -1
	for k, o := range m.parties {
		if o == p {
			i = k
		}
	}
	if i < 0 {
		return false // already gone
	}
	m.parties = append(m.parties[:i], m.parties[i+1:]...)
	if m.conf != nil {
		m.conf.Leave(p.leg)
		m.c.f.conferences.Participants(-1)
	}
	m.log.Info("party left", "kind", p.kind, "name", p.name, "why", why)
	return true
}

func (m *midCall) record(s partySpec, presented, result string) {
	if pr, ok := m.c.rec.(PartyRecord); ok {
		pr.Party(s.kind, s.name, presented, result, m.c.f.clock.Now())
	}
}

// callingNumber returns the number in a caller's identity (a SIP or tel URI), such as
// +15551234567, or "" when it holds none that can be presented.
func callingNumber(identity string) string {
	s := identity
	for _, p := range []string{"sip:", "sips:", "tel:"} {
		s = strings.TrimPrefix(s, p)
	}
	if i := strings.IndexAny(s, "@;>"); i >= 0 {
		s = s[:i]
	}
	if len(s) < 3 || len(s) > 16 {
		return ""
	}
	for i, r := range s {
		if !(r >= '0' && r <= '9' || r == '+' && i == 0) {
			return ""
		}
	}
	return s
}

// The advocate hanging up mid-conference (README "When the advocate hangs up"), as
// recorded: kind "advocate", the advocate's id, and what became of the caller.
const (
	KindAdvocate = "advocate"

	LeftRequeued        = "requeued"         // the caller went back to the queue
	LeftWithEmergency   = "with_emergency"   // the caller stayed with 911 (and the others)
	LeftWithInterpreter = "with_interpreter" // the caller stayed with the interpreter alone
)

// advocateLeft handles the advocate hanging up. Alone with the caller, that ends the call as
// it always did (it returns false). With a party on the line, being dialled, or a transfer
// under way, the caller is never cut off nor left alone with a stranger: the advocate is
// released (they wrap up), and
//   - with an emergency party (911) on the line, or being dialled, the caller stays with it
//     and every other party (911 may need the interpreter): cutting a caller off from 911
//     is never safer;
//   - else, where configured (midcall.stay_with_interpreter_lines, or the interpreter's
//     stay_with_caller), the caller stays with the interpreter(s) alone;
//   - else the caller goes back to the queue they were answered in, keeping their priority
//     and first arrival (m.requeue), and every party is hung up.
//
// When the parties that may stay leave, the caller goes back to the queue too (left).
func (m *midCall) advocateLeft() (goesOn bool) {
	c, f := m.c, m.c.f
	if len(m.parties) == 0 && !m.dialing && m.xfer == nil {
		m.log.Info("advocate hung up; ending the caller's leg")
		_ = c.leg.Hangup(context.Background(), "advocate hung up")
		return false
	}
	m.log.Info("advocate hung up mid-conference", "parties", len(m.parties))
	if m.conf != nil {
		m.conf.Leave(m.adv)
		f.conferences.Participants(-1)
	}
	f.unregisterTalk(m.advocate, m)
	left := m.advocate
	m.adv = nil
	m.cancelTransfer("advocate hung up")
	if m.dialing && m.dialKind != config.PartyEmergency {
		m.cancelDial() // the result comes back, and answered hangs up a late answer
	}
	for _, s := range slices.Clone(m.sups) {
		// Supervisors supervise the advocate, who is gone.
		_ = s.leg.Hangup(context.Background(), "advocate left")
		m.removeSupervisor(s)
	}
	c.release() // the advocate wraps up now
	stays := m.unattended()
	result := LeftRequeued
	switch {
	case !stays:
		m.requeue = true
	case m.hasEmergency() || m.dialing && m.dialKind == config.PartyEmergency:
		result = LeftWithEmergency
	default:
		result = LeftWithInterpreter
	}
	m.record(partySpec{kind: KindAdvocate, name: left}, "", result)
	m.log.Info("the advocate left the conference", "caller", result)
	return true
}

func (m *midCall) hasEmergency() bool {
	for _, p := range m.parties {
		if p.kind == config.PartyEmergency {
			return true
		}
	}
	return false
}

// unattended applies advocateLeft's rules with the advocate gone: it hangs up the parties
// that may not stay with the caller and reports whether any may.
func (m *midCall) unattended() bool {
	// 911 being dialled counts as on the line: the advocate called it for the caller's
	// safety; the caller waits in the conference for it, and goes back to the queue only
	// if it does not answer.
	emergency := m.hasEmergency() || m.dialing && m.dialKind == config.PartyEmergency
	var drop []*party
	stays := emergency
	for _, p := range m.parties {
		if emergency || p.kind == KindInterpreter && m.cfg.StaysWithInterpreter(m.c.attrs.Line, p.code) {
			stays = true
			continue
		}
		drop = append(drop, p)
	}
	if !stays {
		return false
	}
	for _, p := range drop {
		_ = p.leg.Hangup(context.Background(), "the advocate left")
		m.remove(p, "the advocate left")
	}
	return true
}
