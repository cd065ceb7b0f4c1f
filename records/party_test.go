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
	c.Party("interpreter", "es", "hotline", "busy", time.Now())
	want := []string{"en", "+emergency:psap:caller:answered", "+interpreter:es:hotline:busy"}
	if got := c.Record().Steps; !slices.Equal(got, want) {
		t.Errorf("steps %q, want %q", got, want)
	}
}
