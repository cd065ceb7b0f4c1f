package sip

import (
	"context"
	"log/slog"
	"sync"

	sipmsg "github.com/emiago/sipgo/sip"
)

// redactedKeys are the attributes through which sipgo logs message text (start lines, whole
// messages, raw datagrams). Those carry callers' numbers and URIs, which must never reach a log.
var redactedKeys = map[string]bool{"data": true, "msg": true, "req": true, "res": true, "request": true, "response": true}

// redactHandler wraps the handler given to sipgo and blanks attributes that may hold SIP text.
type redactHandler struct{ slog.Handler }

func (h redactHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if redactedKeys[a.Key] {
			a = slog.String(a.Key, "[redacted]")
		}
		out.AddAttrs(a)
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(as))
	for i, a := range as {
		if redactedKeys[a.Key] {
			a = slog.String(a.Key, "[redacted]")
		}
		clean[i] = a
	}
	return redactHandler{h.Handler.WithAttrs(clean)}
}

func (h redactHandler) WithGroup(name string) slog.Handler {
	return redactHandler{h.Handler.WithGroup(name)}
}

var setSipgoLogger sync.Once

// sipgoLogger returns the logger given to sipgo, with message text redacted. sipgo's transport
// layer logs through a package-wide default, so that is set too, once per process.
func sipgoLogger(base *slog.Logger) *slog.Logger {
	l := slog.New(redactHandler{base.Handler()}).With("component", "sipgo")
	setSipgoLogger.Do(func() { sipmsg.SetDefaultLogger(l) })
	return l
}
