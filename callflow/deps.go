package callflow

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/hotline-project/hotline/ivr"
	"github.com/hotline-project/hotline/outcome"
	"github.com/hotline-project/hotline/prompts"
	"github.com/hotline-project/hotline/routing"
)

// Leg is one call leg: the caller's, or an advocate's or target's phone that answered.
// sip.Call implements it.
type Leg interface {
	// Play sends a prompt and blocks until it has been played, ctx ends or the leg ends.
	Play(ctx context.Context, p *prompts.Prompt) error
	// Digits delivers the leg's DTMF digits in order; closed when the leg ends.
	Digits() <-chan rune
	// Hangup ends the leg from our side.
	Hangup(ctx context.Context, reason string) error
	// Context is cancelled when the leg ends.
	Context() context.Context
	// Done is closed when the leg ends.
	Done() <-chan struct{}
}

// BeepWatcher is a Leg that can tell an answering machine's beep in the far end's audio
// (sip legs can); a callback's gate hangs up on it, leaving no message.
type BeepWatcher interface {
	// WatchBeep calls fn once, from another goroutine, on a beep; nil stops watching.
	WatchBeep(fn func())
}

// Inbound is a caller's answered call as sip hands it over.
type Inbound struct {
	ID      string    // random, carries nothing of the caller
	Line    string    // the configured line's name
	Caller  string    // the caller's identity, for the record's hash only; never logged
	Arrived time.Time // when the INVITE arrived
	Leg     Leg
	// Screen, if set, tells the silent-call policy (routing.Silent, README "Silent calls")
	// about a caller who pressed no key: whether no RTP ever arrived, and whether the call's
	// source is flooding such calls. Called at most once per call.
	Screen func() (noRTP, flooding bool)
}

// Dest is where to dial a leg: an advocate's registered phone or a target's URI.
type Dest struct {
	URI       string // the Request-URI
	SendTo    string // host:port to send to instead of URI's (the phone's registered source); optional
	Transport string // "udp", "tcp", "tls"; "" from URI
	Line      string // the hotline line the leg is for
	// FromUser is the calling number presented to the phone; "" presents the hotline's.
	// Only a party configured to see the caller's number gets it (midcall.go).
	FromUser string
	// FromDisplay is the display name presented with FromUser (a callback's, only when
	// the caller agreed to it); "" for none.
	FromDisplay string
	// Private: URI's user part is a caller's number (a callback's), never to be logged.
	Private bool
	// Route is the Route set to send through: the Path the phone registered with (RFC
	// 3327), so that the INVITE reaches it over the edge proxy that holds its flow.
	Route []string
}

// Dialer places outbound legs. Dial blocks until the leg answers, fails or ctx ends; a
// failure wraps ErrBusy, ErrRejected or ErrNoAnswer when it is one of those.
type Dialer interface {
	Dial(ctx context.Context, d Dest) (Leg, error)
}

// Errors a Dialer wraps, so the flow can tell the queue engine how a ring ended.
var (
	// ErrBusy means the phone answered busy (486, 600).
	ErrBusy = errors.New("busy")
	// ErrRejected means the phone's user declined (603).
	ErrRejected = errors.New("rejected")
	// ErrNoAnswer means the phone rang out (408, 480).
	ErrNoAnswer = errors.New("no answer")
)

// Contacts gives an advocate's registered phones.
type Contacts interface {
	Contacts(advocate string) []Dest
}

// Bridger connects two answered legs (media both ways) until unbridge is called. An
// error means the bridge could not be made (a leg ended meanwhile).
type Bridger func(caller, other Leg) (unbridge func(), err error)

// Menus runs the menus on a caller's leg (ivr.Engine implements it).
type Menus interface {
	Run(ctx context.Context, call ivr.Call, log *slog.Logger) (*ivr.Result, error)
}

// Recorder begins a call's record (records.Recorder does, through a small adapter).
type Recorder interface {
	Begin(callID, line, caller string, start time.Time) Record
}

// Record is one call's record as it goes along (records.Call implements it).
type Record interface {
	Answered(t time.Time)
	Menus(language, reason string)
	Routed(route, destination string)
	Overflowed(destination string)
	Queued(queue string, t time.Time)
	Connected(advocate string, t time.Time)
	WrapUp(d time.Duration)
	Ended(end outcome.Call, t time.Time)
	Finish(ctx context.Context) error
}

// QueueMetrics counts what happens to callers in the queues (metrics.Queues implements it).
type QueueMetrics interface {
	Enqueued(queue string)
	Overflowed(queue string)
}

// RoutingMetrics counts routing decisions (metrics.Routing implements it).
type RoutingMetrics interface {
	Decision(d routing.Decision)
}

// MenuMetrics counts how calls left the menus (metrics.IVR implements it).
type MenuMetrics interface {
	Ended(language, end string)
}

// noRecord is the Record of a flow that keeps no records.
type noRecord struct{}

func (noRecord) Answered(time.Time)            {}
func (noRecord) Menus(string, string)          {}
func (noRecord) Routed(string, string)         {}
func (noRecord) Overflowed(string)             {}
func (noRecord) Queued(string, time.Time)      {}
func (noRecord) Connected(string, time.Time)   {}
func (noRecord) WrapUp(time.Duration)          {}
func (noRecord) Ended(outcome.Call, time.Time) {}
func (noRecord) Finish(context.Context) error  { return nil }
func (noMetrics) Enqueued(string)              {}
func (noMetrics) Overflowed(string)            {}
func (noMetrics) Decision(routing.Decision)    {}
func (noMetrics) Ended(string, string)         {}
func (noMetrics) QuickExit(string)             {}
func (noMetrics) PlaceKept(string)             {}
func (noMetrics) Callback(string, string)      {}

// noMetrics counts nothing.
type noMetrics struct{}
