package records

import "time"

// Party records a party the advocate added to the call mid-call (an interpreter, 911, a
// partner agency) or dropped: one step "+kind:name:presented:result", such as
// "+emergency:psap:caller:answered" (the calling number shown to 911 was the caller's)
// or "+interpreter:es:hotline:busy", after the destinations in Steps. name is a language
// or a configured target's name and presented is caller or hotline: nothing of the
// caller's identity. t is when the attempt ended; the step keeps the order.
func (c *Call) Party(kind, name, presented, result string, _ time.Time) {
	c.update(true, func(r *Record) {
		r.Steps = append(r.Steps, "+"+kind+":"+name+":"+presented+":"+result)
	})
}
