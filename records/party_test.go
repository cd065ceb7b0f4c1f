package records

import (
	"slices"
	"testing"
	"time"
)

func TestCallParty(t *testing.T) {
	var nilCall *Call
	nilCall.Party("emergency", "psap", "caller", "answered", time.Now()) // does nothing
	c := &Call{r: &Recorder{}}
	c.rec.Steps = []string{"en"}
	c.Party("emergency", "psap", "caller", "answered", time.Now())
	start := time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC)
	c.rec.Start = start
	c.Party("interpreter", "es", "hotline", "busy", start.Add(95500*time.Millisecond))
	c.Party("transfer", "queue/es", "bob", "completed", start.Add(2*time.Minute))
	want := []string{"en", "+emergency:psap:caller:answered", "+interpreter:es:hotline:busy@95s", "+transfer:queue/es:bob:completed@120s"}
	if got := c.Record().Steps; !slices.Equal(got, want) {
		t.Errorf("steps %q, want %q", got, want)
	}
}
