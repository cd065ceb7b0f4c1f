package admin

import (
	"fmt"
	"time"

	"github.com/hotline-project/hotline/routing"
)

// Explanation is a routing decision and why: the body of GET /admin/v1/route, and what
// `hotline route` prints.
type Explanation struct {
	// The call: Dialled is the -line or line= given, Line the line's name it resolved to.
	Dialled  string    `json:"dialled,omitempty"`
	Line     string    `json:"line"`
	Language string    `json:"language"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`

	Route    string `json:"route"`
	Kind     string `json:"kind"` // queue, target or message
	Queue    string `json:"queue,omitempty"`
	Target   string `json:"target,omitempty"`
	URI      string `json:"uri,omitempty"`
	Message  string `json:"message,omitempty"`
	Hangup   bool   `json:"hangup"`
	Priority int    `json:"priority"`
	Overflow []Step `json:"overflow"`
	// Override is the emergency override that forced the route, if any; Overrides are
	// all those set.
	Override  string             `json:"override,omitempty"`
	Overrides []routing.Override `json:"overrides"`
	Explain   []string           `json:"explain"`
	Summary   string             `json:"summary"` // routing.Decision.String()
}

// Step is an overflow step, with After written like "1m0s".
type Step struct {
	After  string `json:"after"`
	Queue  string `json:"queue,omitempty"`
	Target string `json:"target,omitempty"`
	URI    string `json:"uri,omitempty"`
}

// String describes s, as routing.Step does.
func (s Step) String() string {
	return routing.Step{Queue: s.Queue, Target: s.Target, URI: s.URI}.String()
}

// Explain routes a call on line (a line's name or a number that reaches it; "" for none)
// with language and reason at time at, and explains the decision.
func Explain(t *routing.Table, line, language, reason string, at time.Time, st routing.State) (Explanation, error) {
	name := ""
	if line != "" {
		var ok bool
		if name, ok = t.ResolveLine(line); !ok {
			return Explanation{}, fmt.Errorf("%w %q: neither the name of a line nor a number that reaches one", errUnknownLine, line)
		}
	}
	d := t.Route(routing.Attrs{Line: name, Language: language, Reason: reason}, at, st)
	e := Explanation{
		Line: name, Language: language, Reason: reason, At: at,
		Route: d.Route, Kind: d.Kind(), Queue: d.Queue, Target: d.Target, URI: d.URI,
		Message: d.Message, Hangup: d.Hangup, Priority: d.Priority,
		Overflow: []Step{}, Override: d.Override, Overrides: st.Overrides, Explain: d.Explain,
		Summary: d.String(),
	}
	if line != name {
		e.Dialled = line
	}
	if e.Overrides == nil {
		e.Overrides = []routing.Override{}
	}
	for _, s := range d.Overflow {
		e.Overflow = append(e.Overflow, Step{After: s.After.String(), Queue: s.Queue, Target: s.Target, URI: s.URI})
	}
	return e, nil
}
