package ivr

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hotline-project/hotline/prompts"
)

// session is one call going through the menus. It lives on the call's goroutine.
type session struct {
	e    *Engine
	call Call
	log  *slog.Logger
	res  Result
	// pending holds digits read from the call but not used yet: a digit that stopped a
	// prompt of an action is kept for the menu that follows, as typed ahead.
	pending []rune
	steps   int
}

func (s *session) run(ctx context.Context) error {
	for m := s.e.start; m != nil; {
		s.res.Path = append(s.res.Path, m.name)
		s.log.Debug("menu", "menu", m.name)
		next, err := s.visit(ctx, m)
		if err != nil {
			return err
		}
		m = next
	}
	return nil
}

// visit plays menu m until an action leaves it: it returns the next menu, or nil when an
// action ended the menus.
func (s *session) visit(ctx context.Context, m *menu) (*menu, error) {
	tries := 0 // wrong keys so far
	ps := m.prompts
	for {
		if s.steps++; s.steps > s.e.maxSteps {
			s.log.Warn("too many menus; routing the call as it is", "menu", m.name, "steps", s.steps-1)
			_, err := s.do(ctx, s.e.operator, EndLimit)
			return nil, err
		}
		var (
			a   *action
			end End
			err error
		)
		if m.collect != nil {
			a, end, err = s.collect(ctx, m, ps, &tries)
		} else {
			a, end, err = s.choose(ctx, m, ps, &tries)
		}
		if err != nil {
			return nil, err
		}
		ps = m.repeat
		if a == nil { // play the menu again
			continue
		}
		next, err := s.do(ctx, a, end)
		if err != nil || next != nil || s.res.End != "" {
			return next, err
		}
		// The action returns to this menu.
	}
}

// choose plays a menu's prompts and waits for one key. It returns the action to take, or
// nil to play the menu again.
func (s *session) choose(ctx context.Context, m *menu, ps []prompt, tries *int) (*action, End, error) {
	d, ok, err := s.playUntilDigit(ctx, ps)
	if err == nil && !ok {
		d, ok, err = s.wait(ctx, m.firstDigit)
	}
	switch {
	case err != nil:
		return nil, "", err
	case !ok:
		s.selected(m, "none")
		return m.noInput, EndNoInput, nil
	case d == '0':
		s.selected(m, "0")
		return s.e.operator, EndOperator, nil
	case d == '*':
		s.selected(m, "*")
		return nil, "", nil
	}
	if a := m.keys[d]; a != nil {
		s.selected(m, string(d))
		return a, EndChoice, nil
	}
	s.selected(m, "invalid")
	return s.wrong(ctx, m, tries)
}

// collect plays a collect menu's prompts and reads its digits. It returns the action to
// take, or nil to play the menu again.
func (s *session) collect(ctx context.Context, m *menu, ps []prompt, tries *int) (*action, End, error) {
	c := m.collect
	d, ok, err := s.playUntilDigit(ctx, ps)
	if err == nil && !ok {
		d, ok, err = s.wait(ctx, m.firstDigit)
	}
	switch {
	case err != nil:
		return nil, "", err
	case !ok:
		return m.noInput, EndNoInput, nil
	}
	var digits []rune
	for {
		switch {
		case d == '#' && len(digits) >= c.min:
			return s.collected(c, digits)
		case d == '*':
			return nil, "", nil // start over
		case '0' <= d && d <= '9':
			digits = append(digits, d)
			if len(digits) == c.max {
				// The caller may end the number with # out of habit: that # belongs to
				// the number, not to the next menu.
				if d, ok, err := s.buffered(); err == nil && ok && d != '#' {
					s.unread(d)
				}
				return s.collected(c, digits)
			}
		default: // too few digits before #, or a key that is no digit
			return s.wrong(ctx, m, tries)
		}
		if d, ok, err = s.wait(ctx, c.interDigit); err != nil {
			return nil, "", err
		}
		if !ok { // a pause ends the number
			if len(digits) >= c.min {
				return s.collected(c, digits)
			}
			return s.wrong(ctx, m, tries)
		}
	}
}

func (s *session) collected(c *collect, digits []rune) (*action, End, error) {
	if s.res.Collected == nil {
		s.res.Collected = make(map[string]string)
	}
	s.res.Collected[c.variable] = string(digits)
	return c.then, EndChoice, nil
}

// wrong counts a wrong entry in menu m. Until the retries run out it plays the invalid
// prompt and returns nil, to play the menu again; then it returns the no-input action.
func (s *session) wrong(ctx context.Context, m *menu, tries *int) (*action, End, error) {
	*tries++
	s.log.Debug("wrong key", "menu", m.name, "try", *tries)
	if *tries > m.retries {
		return m.noInput, EndInvalid, nil
	}
	return nil, "", s.playKeep(ctx, m.invalid)
}

// do applies action a, which end describes. It returns the next menu, or nil with
// s.res.End set when the menus are over, or nil alone to return to the same menu.
func (s *session) do(ctx context.Context, a *action, end End) (*menu, error) {
	if a.setLanguage != "" {
		s.res.Language = a.setLanguage
	}
	if a.setReason != "" {
		s.res.Reason = a.setReason
	}
	if a.hangup {
		// The last message must be heard: digits typed ahead must not skip it.
		s.pending = nil
		DropTypedAhead(s.call)
	}
	if a.route {
		// The call is routed (and queued) before these play, so that ringing an advocate
		// does not wait for "connecting you": the caller of Run plays Result.Then.
		s.res.Route, s.res.End = a.to, end
		s.res.Then = s.resolve(a.play)
		return nil, nil
	}
	if err := s.playKeep(ctx, a.play); err != nil {
		return nil, err
	}
	switch {
	case a.hangup:
		s.res.Hangup, s.res.End = true, end
		// Hang up even if ctx ends now: the call must not stay open.
		if err := s.call.Hangup(context.WithoutCancel(ctx), "menu hangup action"); err != nil {
			s.log.Warn("hangup failed", "err", err)
		}
		return nil, nil
	}
	return a.next, nil
}

// resolve finds ps in the caller's language (or each one's own), skipping any that is
// missing (start-up checks them).
func (s *session) resolve(ps []prompt) []*prompts.Prompt {
	var out []*prompts.Prompt
	for _, p := range ps {
		lang := p.lang
		if lang == "" {
			lang = s.res.Language
		}
		if pr, ok := s.e.prompts.Get(lang, p.name); ok {
			out = append(out, pr)
		} else {
			s.log.Error("missing prompt", "lang", lang, "prompt", p.name)
		}
	}
	return out
}

// playKeep plays ps until a digit stops them; the digit is kept for what follows.
func (s *session) playKeep(ctx context.Context, ps []prompt) error {
	d, ok, err := s.playUntilDigit(ctx, ps)
	if ok {
		s.unread(d)
	}
	return err
}

// playUntilDigit plays ps in order until a digit arrives, and returns the digit. A digit
// typed ahead stops the prompts before the first frame of any.
func (s *session) playUntilDigit(ctx context.Context, ps []prompt) (rune, bool, error) {
	for _, p := range ps {
		if d, ok, err := s.buffered(); err != nil || ok {
			return d, ok, err
		}
		lang := p.lang
		if lang == "" {
			lang = s.res.Language
		}
		pr, ok := s.e.prompts.Get(lang, p.name)
		if !ok {
			// Start-up checks the prompts the menus use; should one be missing all the
			// same, the caller must still get through the menus.
			s.log.Error("missing prompt", "lang", lang, "prompt", p.name)
			continue
		}
		if d, ok, err := s.play(ctx, pr); err != nil || ok {
			return d, ok, err
		}
	}
	return 0, false, nil
}

// play plays p until it ends or a digit arrives, and returns the digit. The Call stops the
// prompt within a frame when the context of Play is cancelled.
func (s *session) play(ctx context.Context, p *prompts.Prompt) (rune, bool, error) {
	done, stop, result := s.start(ctx, p)
	defer stop()
	select {
	case d, ok := <-s.call.Digits():
		stop()
		if !ok {
			return 0, false, ErrHangup
		}
		return d, true, nil
	case <-done:
		if ctx.Err() != nil {
			return 0, false, ctx.Err()
		}
		err := result()
		if err == nil {
			return 0, false, nil
		}
		// A call that ended closes its digits; otherwise go on without this prompt, so
		// that a prompt that cannot play strands no one.
		if d, ok, herr := s.buffered(); herr != nil || ok {
			return d, ok, herr
		}
		s.log.Warn("prompt did not play", "lang", p.Lang, "prompt", p.Name, "err", err)
		return 0, false, nil
	case <-ctx.Done():
		stop()
		return 0, false, ctx.Err()
	}
}

// start starts playing p: with the Call's StartPlay when it is a Starter, else with Play
// on a goroutine of its own. done is closed when the prompt has ended, result is then why;
// stop ends it and returns when nothing more of it plays (it may be called again).
func (s *session) start(ctx context.Context, p *prompts.Prompt) (done <-chan struct{}, stop func(), result func() error) {
	if st, ok := s.call.(Starter); ok {
		pb, err := st.StartPlay(p)
		if err != nil {
			ended := make(chan struct{})
			close(ended)
			return ended, func() {}, func() error { return err }
		}
		return pb.Done(), pb.Stop, pb.Err
	}
	pctx, cancel := context.WithCancel(ctx)
	ended := make(chan struct{})
	var err error
	go func() {
		defer close(ended)
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		err = s.call.Play(pctx, p)
	}()
	return ended, func() { cancel(); <-ended }, func() error { return err }
}

// wait waits up to timeout for a digit; ok is false when none came.
func (s *session) wait(ctx context.Context, timeout time.Duration) (d rune, ok bool, err error) {
	if d, ok, err := s.buffered(); err != nil || ok {
		return d, ok, err
	}
	timer := s.e.after(timeout)
	select {
	case d, ok := <-s.call.Digits():
		if !ok {
			return 0, false, ErrHangup
		}
		return d, true, nil
	case <-timer:
		return 0, false, nil
	case <-ctx.Done():
		return 0, false, ctx.Err()
	}
}

// buffered returns a digit already typed, without waiting.
func (s *session) buffered() (rune, bool, error) {
	if len(s.pending) > 0 {
		d := s.pending[0]
		s.pending = s.pending[1:]
		return d, true, nil
	}
	select {
	case d, ok := <-s.call.Digits():
		if !ok {
			return 0, false, ErrHangup
		}
		return d, true, nil
	default:
		return 0, false, nil
	}
}

// unread puts d back, to be read before any other digit.
func (s *session) unread(d rune) {
	s.pending = append([]rune{d}, s.pending...)
}

// selected reports what the caller did in menu m: a key, "none" (no input) or "invalid".
func (s *session) selected(m *menu, key string) {
	if s.e.onSelect != nil {
		s.e.onSelect(m.name, key)
	}
}
