package logs

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Defaults of Options' zero fields.
const (
	DefaultPerCall  = 10
	DefaultGlobal   = 200
	DefaultInterval = time.Minute
	DefaultMaxKeys  = 4096
)

// SummaryMessage is the message of the line that reports lines dropped in an interval.
const SummaryMessage = "repeated log lines suppressed"

// CallKey is the attribute that identifies a call in log lines: lines are limited per call
// by its value.
const CallKey = "call"

// Options set the limits. Zero fields take the defaults.
type Options struct {
	// PerCall is how many lines with the same level and message one call may write in an
	// Interval; Global how many lines with no call may write, and how many warnings and
	// errors all calls may write together.
	PerCall, Global int
	Interval        time.Duration
	// MaxKeys bounds the groups remembered (least recently used forgotten first), so that
	// memory stays bounded whatever is logged.
	MaxKeys int
	// OnSuppressed, if set, is called for each line dropped, with its level; it must be
	// cheap and safe for concurrent use.
	OnSuppressed func(slog.Level)
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// key groups lines: level and message, and the call ("" for the group of all calls).
type key struct {
	level slog.Level
	msg   string
	call  string
}

// window counts one group's lines in its current interval.
type window struct {
	start      time.Time
	written    int
	suppressed int
}

// state is shared by a Handler and every handler derived from it by WithAttrs/WithGroup.
type state struct {
	opts Options
	root slog.Handler // the handler given to NewHandler, for summary lines

	mu        sync.Mutex
	groups    *simplelru.LRU[key, *window]
	lastSweep time.Time
}

// Handler is a slog.Handler that drops lines repeated beyond the limits. It is safe for
// concurrent use.
type Handler struct {
	next  slog.Handler
	st    *state
	call  string // the call attribute given through WithAttrs, if any
	group bool   // a group is open: attributes added now are not the call's id
}

// NewHandler returns a Handler writing to next.
func NewHandler(next slog.Handler, o Options) *Handler {
	if o.PerCall <= 0 {
		o.PerCall = DefaultPerCall
	}
	if o.Global <= 0 {
		o.Global = DefaultGlobal
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	groups, _ := simplelru.NewLRU[key, *window](o.MaxKeys, nil) // only fails for a size <= 0
	return &Handler{next: next, st: &state{opts: o, root: next, groups: groups}}
}

// Enabled reports whether next handles level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// WithAttrs returns a handler with as added; a "call" attribute makes its lines count
// against that call's limit.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	if !h.group {
		for _, a := range as {
			if a.Key == CallKey {
				c.call = a.Value.String()
			}
		}
	}
	return &c
}

// WithGroup returns a handler that puts later attributes in group name.
func (h *Handler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	if name != "" {
		c.group = true
	}
	return &c
}

// Handle writes r unless its group is over a limit in the current interval.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	call := h.call
	if call == "" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == CallKey {
				call = a.Value.String()
				return false
			}
			return true
		})
	}
	now := h.st.opts.Now()
	ok, summaries := h.st.admit(now, r.Level, r.Message, call)
	for _, s := range summaries {
		h.writeSummary(ctx, now, s)
	}
	if !ok {
		if f := h.st.opts.OnSuppressed; f != nil {
			f(r.Level)
		}
		return nil
	}
	return h.next.Handle(ctx, r)
}

// summary reports the lines of one group dropped in an interval that has ended.
type summary struct {
	key
	n int
}

func (h *Handler) writeSummary(ctx context.Context, now time.Time, s summary) {
	if !h.next.Enabled(ctx, s.level) {
		return
	}
	r := slog.NewRecord(now, s.level, SummaryMessage, 0)
	r.AddAttrs(slog.String("message", s.msg), slog.Int("suppressed", s.n),
		slog.Duration("interval", h.st.opts.Interval))
	if s.call != "" {
		r.AddAttrs(slog.String(CallKey, s.call))
	}
	// The summary goes to the root handler: the attributes of the logger whose line
	// happened to end the interval do not belong to it.
	_ = h.root().Handle(ctx, r)
}

// root is the handler without this logger's attributes. Handlers derived by WithAttrs
// keep their own next; the root one is remembered in the state.
func (h *Handler) root() slog.Handler { return h.st.root }

// admit counts a line of (level, msg, call) at now and reports whether it may be written,
// with the summaries of groups whose interval has ended with lines dropped.
func (s *state) admit(now time.Time, level slog.Level, msg, call string) (bool, []summary) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []summary
	if now.Sub(s.lastSweep) >= time.Second {
		s.lastSweep = now
		out = s.sweepLocked(now)
	}
	ok := true
	if call != "" {
		ok = s.countLocked(now, key{level, msg, call}, s.opts.PerCall, &out)
	}
	// The group of all calls counts only lines written for their call, so that one noisy
	// call does not use up the others' share. It holds lines with no call at every level,
	// but a call's lines only from Warn up: Info lines of calls (one "incoming call" per
	// call) grow with the traffic, and a busy hour must not lose them.
	if ok && (call == "" || level >= slog.LevelWarn) {
		ok = s.countLocked(now, key{level, msg, ""}, s.opts.Global, &out)
	}
	return ok, out
}

// countLocked counts one line in k's window and reports whether it is within limit. A
// window that has ended is restarted, and its dropped lines are added to out.
func (s *state) countLocked(now time.Time, k key, limit int, out *[]summary) bool {
	w, ok := s.groups.Get(k)
	if !ok {
		w = &window{start: now}
		s.groups.Add(k, w)
	}
	if now.Sub(w.start) >= s.opts.Interval {
		if w.suppressed > 0 {
			*out = append(*out, summary{k, w.suppressed})
		}
		*w = window{start: now}
	}
	if w.written < limit {
		w.written++
		return true
	}
	w.suppressed++
	return false
}

// sweepLocked ends the windows that are over with lines dropped, so that a burst followed
// by silence is still summed up, and forgets ended windows.
func (s *state) sweepLocked(now time.Time) []summary {
	var out []summary
	for _, k := range s.groups.Keys() {
		w, ok := s.groups.Peek(k)
		if !ok || now.Sub(w.start) < s.opts.Interval {
			continue
		}
		if w.suppressed > 0 {
			out = append(out, summary{k, w.suppressed})
		}
		s.groups.Remove(k)
	}
	return out
}
