package records

import (
	"strconv"
	"time"
)

// Party records a party the advocate added to the call mid-call (an interpreter, 911, a
// partner agency) or dropped, a supervisor's join and mode, a warm transfer, or the
// advocate leaving a conference: one step "+kind:name:presented:result@when", such as
// "+emergency:psap:caller:answered@95s" (the calling number shown to 911 was the
// caller's, 95 seconds after the call began) or "+interpreter:es:hotline:busy@40s", after
// the destinations in Steps. name is a language, a configured target's name, a supervisor's
// id or a transfer's queue/<name> or advocate/<id>; presented is caller or hotline, or the
// advocate who answered a transfer: nothing of the caller's identity. t is when the attempt
// ended, written as whole seconds after the call's start.
func (c *Call) Party(kind, name, presented, result string, t time.Time) {
	c.update(true, func(r *Record) {
		step := "+" + kind + ":" + name + ":" + presented + ":" + result
		if !r.Start.IsZero() && !t.IsZero() {
			step += "@" + strconv.FormatInt(int64(max(t.Sub(r.Start), 0)/time.Second), 10) + "s"
		}
		r.Steps = append(r.Steps, step)
	})
}
