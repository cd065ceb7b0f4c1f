package callflow

import (
	"context"
	"errors"
	"fmt"
)

// ErrNoFeatures means the advocate's call has no mid-call features (midcall.prefix and
// midcall.supervise_code are both off), so nothing can be added to it.
var ErrNoFeatures = errors.New("no mid-call features on this call")

// Press keys a mid-call feature code into the advocate's call in progress, as if it had
// been dialled on their phone: the console's buttons (add an interpreter, 911 or a
// partner, drop the party added last) go through the same code, rules and records as the
// phone's keys. Errors match ErrNoCall when the advocate is on no call, ErrNoFeatures when
// the call has no mid-call features.
func (f *Flow) Press(ctx context.Context, advocate, code string) error {
	f.mu.Lock()
	m := f.talks[advocate]
	f.mu.Unlock()
	if m == nil {
		if f.onCall(advocate) {
			return fmt.Errorf("press %s: %w", advocate, ErrNoFeatures)
		}
		return fmt.Errorf("press %s: %w", advocate, ErrNoCall)
	}
	select {
	case m.pressed <- code:
		return nil
	case <-m.done:
		return fmt.Errorf("press %s: %w", advocate, ErrNoCall)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// onCall reports whether the advocate is talking to a caller.
func (f *Flow) onCall(advocate string) bool {
	_, snap := f.Advocates()
	for _, a := range snap.Advocates {
		if a.ID == advocate {
			return a.Call != ""
		}
	}
	return false
}

// press takes a whole code from the console: any digits the phone keyed so far are
// dropped first, so that the two do not mix.
func (m *midCall) press(ctx context.Context, code string) {
	m.clearCode()
	for _, d := range code {
		m.key(ctx, d)
	}
}

// Talking reports whether the advocate is on a call that supervisors can join.
func (f *Flow) Talking(advocate string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.talks[advocate] != nil
}
