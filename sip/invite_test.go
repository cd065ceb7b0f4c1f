package sip

import (
	"context"
	"fmt"
	"testing"

	"github.com/hotline-project/hotline/outcome"
)

// A confirmed call's leg outcome is read from the cause that ended its context; the
// hotline_calls_total labels and the records' unanswered outcomes depend on it.
func TestLegEnd(t *testing.T) {
	tests := []struct {
		cause error
		want  outcome.Leg
	}{
		{ErrCallerHangup, outcome.LegCallerHangup},
		{fmt.Errorf("bye: %w", ErrCallerHangup), outcome.LegCallerHangup},
		{ErrMediaTimeout, outcome.LegMediaTimeout},
		{ErrMediaFailed, outcome.LegMediaFailed},
		{ErrServerHangup, outcome.LegServerHangup},
		{context.Canceled, outcome.LegCompleted},
		{nil, outcome.LegCompleted},
	}
	for _, tt := range tests {
		if got := legEnd(tt.cause); got != tt.want {
			t.Errorf("legEnd(%v) = %s, want %s", tt.cause, got, tt.want)
		}
	}
}
