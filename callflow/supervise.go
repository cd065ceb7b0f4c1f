package callflow

import (
	"context"
	"fmt"
	"strings"

	"github.com/hotline-project/hotline/config"
)

// A supervisor (advocates[].role: supervisor) dials midcall.supervise_code and an advocate's
// extension: the server answers and joins the supervisor's leg to that advocate's call in
// progress, listening (heard by no one). On the supervisor's phone 1 listens, 2 whispers
// (heard by the advocate alone), 3 barges in (heard by all). The call's record gets every
// join and change ("+supervisor:<id>::listen"), the log the call id, never the caller.

// supervisor is a supervisor's leg in a call.
type supervisor struct {
	id   string // the supervisor's advocate id
	leg  Leg
	mode string
}

// modeChange is a key a supervisor pressed.
type modeChange struct {
	s    *supervisor
	mode string
}

// superviseModes are the supervisor's keys.
var superviseModes = map[rune]string{'1': ModeListen, '2': ModeWhisper, '3': ModeNormal}

// registerTalk makes the talk m between a caller and advocate findable by supervisors.
func (f *Flow) registerTalk(advocate string, m *midCall) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.talks == nil {
		f.talks = map[string]*midCall{}
	}
	f.talks[advocate] = m
}

func (f *Flow) unregisterTalk(advocate string, m *midCall) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.talks[advocate] == m {
		delete(f.talks, advocate)
	}
}

// superviseTarget reads a supervise code from advocate id: ok is false when code is not
// one; otherwise target is the advocate whose call it names, or "" when id may not
// supervise, no advocate has the extension, or that advocate is on no call.
func (f *Flow) superviseTarget(id, code string) (target string, ok bool) {
	snap := f.live.Load()
	sc := snap.Config.MidCall.SuperviseCode
	if sc == "" || !strings.HasPrefix(code, sc) || len(code) == len(sc) {
		return "", false
	}
	ext := code[len(sc):]
	allowed := false
	for _, a := range snap.Config.Advocates {
		if a.ID == id && a.Role == config.RoleSupervisor {
			allowed = true
		}
		if a.Extension == ext {
			target = a.ID
		}
	}
	if !allowed || target == id {
		return "", true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.talks[target] == nil {
		return "", true
	}
	return target, true
}

// supervise runs a supervisor's feature call: the leg joins the named advocate's call,
// and the supervisor's keys change how; it returns when the supervisor or the call hangs
// up (the supervisor's leg is then hung up). It reports false when code is not a
// supervise code.
func (f *Flow) supervise(ctx context.Context, leg Leg, id, code string) bool {
	target, ok := f.superviseTarget(id, code)
	if !ok {
		return false
	}
	f.mu.Lock()
	m := f.talks[target]
	f.mu.Unlock()
	if target == "" || m == nil {
		_ = leg.Hangup(ctx, "nothing to supervise")
		return true
	}
	f.superviseTalk(ctx, leg, id, m)
	return true
}

// Supervise joins supervisor's leg (the console's browser phone, say) to call callID,
// listening, as the supervise code does from a desk phone; the leg's keys 1, 2, 3 and
// SuperviseMode change how it takes part. It returns when the leg or the call ends (the
// leg is then hung up), or at once with ErrNoCall (no such call talking to an advocate)
// or ErrUnknownAdvocate (supervisor is not an advocate with role supervisor).
func (f *Flow) Supervise(ctx context.Context, leg Leg, supervisor, callID string) error {
	allowed := false
	for _, a := range f.live.Load().Config.Advocates {
		allowed = allowed || a.ID == supervisor && a.Role == config.RoleSupervisor
	}
	if !allowed {
		return fmt.Errorf("%w: %s may not supervise", ErrUnknownAdvocate, supervisor)
	}
	m := f.talkOf(callID)
	if m == nil || m.advocate == supervisor {
		return fmt.Errorf("%w: call %s", ErrNoCall, callID)
	}
	f.superviseTalk(ctx, leg, supervisor, m)
	return nil
}

// SuperviseMode sets how supervisor takes part in call callID: ModeListen, ModeWhisper
// (to the advocate) or ModeNormal (barge in), as their keys 1, 2, 3 do. ErrNoCall when
// they are not supervising that call.
func (f *Flow) SuperviseMode(callID, supervisor, mode string) error {
	if mode != ModeListen && mode != ModeWhisper && mode != ModeNormal {
		return fmt.Errorf("%w: mode %q is not listen, whisper or normal", ErrBadState, mode)
	}
	return f.ask(callID, func(_ context.Context, m *midCall) error {
		for _, s := range m.sups {
			if s.id == supervisor {
				m.setMode(modeChange{s, mode})
				return nil
			}
		}
		return fmt.Errorf("%w: %s is not supervising call %s", ErrNoCall, supervisor, callID)
	})
}

// superviseTalk runs a supervisor's leg in the talk m until either ends.
func (f *Flow) superviseTalk(ctx context.Context, leg Leg, id string, m *midCall) {
	s := &supervisor{id: id, leg: leg, mode: ModeListen}
	select {
	case m.supervise <- s:
	case <-m.done:
		_ = leg.Hangup(ctx, "call ended")
		return
	case <-leg.Done():
		return
	}
	for {
		select {
		case d, ok := <-leg.Digits():
			if !ok {
				return
			}
			if mode, known := superviseModes[d]; known {
				select {
				case m.modes <- modeChange{s, mode}:
				case <-m.done:
				}
			}
		case <-m.done:
			_ = leg.Hangup(ctx, "call ended")
			return
		case <-leg.Done():
			return
		}
	}
}

// addSupervisor joins a supervisor's leg, listening.
func (m *midCall) addSupervisor(ctx context.Context, s *supervisor) {
	if err := m.ensureConference(); err != nil {
		_ = s.leg.Hangup(context.Background(), "call ended")
		return
	}
	if err := m.conf.Join(s.leg, ModeListen, nil); err != nil {
		m.c.f.conferences.Joined(KindSupervisor, JoinFailed)
		m.maybeBridge()
		return
	}
	m.sups = append(m.sups, s)
	m.c.f.conferences.Participants(1)
	m.c.f.conferences.Joined(KindSupervisor, JoinAnswered)
	m.record(partySpec{kind: KindSupervisor, name: s.id}, "", ModeListen)
	m.log.Info("supervisor joined", "supervisor", s.id, "mode", ModeListen)
	m.wg.Go(func() {
		select {
		case <-s.leg.Done():
			select {
			case m.supGone <- s:
			case <-ctx.Done():
			}
		case <-ctx.Done():
		}
	})
}

// setMode changes how a supervisor takes part.
func (m *midCall) setMode(mc modeChange) {
	s := mc.s
	if m.conf == nil || mc.mode == s.mode || !containsSup(m.sups, s) {
		return
	}
	var to Leg
	if mc.mode == ModeWhisper {
		to = m.adv
	}
	if err := m.conf.SetMode(s.leg, mc.mode, to); err != nil {
		m.log.Warn("supervisor mode not changed", "supervisor", s.id, "err", err)
		return
	}
	s.mode = mc.mode
	m.record(partySpec{kind: KindSupervisor, name: s.id}, "", mc.mode)
	m.log.Info("supervisor mode changed", "supervisor", s.id, "mode", mc.mode)
}

// removeSupervisor takes a supervisor who hung up out of the call.
func (m *midCall) removeSupervisor(s *supervisor) {
	if !containsSup(m.sups, s) {
		return
	}
	m.sups = deleteSup(m.sups, s)
	if m.conf != nil {
		m.conf.Leave(s.leg)
		m.c.f.conferences.Participants(-1)
	}
	m.record(partySpec{kind: KindSupervisor, name: s.id}, "", "left")
	m.log.Info("supervisor left", "supervisor", s.id)
	m.maybeBridge()
}

func containsSup(ss []*supervisor, s *supervisor) bool {
	for _, o := range ss {
		if o == s {
			return true
		}
	}
	return false
}

func deleteSup(ss []*supervisor, s *supervisor) []*supervisor {
	out := ss[:0]
	for _, o := range ss {
		if o != s {
			out = append(out, o)
		}
	}
	return out
}
