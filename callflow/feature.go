package callflow

import (
	"strings"

	"github.com/hotline-project/hotline/config"
)

// featureState reads a feature code dialled from an advocate's phone: *11 available, *12
// paused (*12 then a digit names one of reasons: *121 the first), *13 offline (logged out).
// It returns the state to set, the pause reason and the confirmation prompt's name; ok is
// false for a code it does not know.
func featureState(code string, reasons []string) (state, reason, prompt string, ok bool) {
	switch {
	case code == FeatureAvailable:
		return "available", "", "advocate_available", true
	case code == FeatureLogout:
		return "offline", "", "advocate_logged_out", true
	case strings.HasPrefix(code, FeaturePause):
		r, ok := config.PauseReason(reasons, code[len(FeaturePause):])
		if !ok {
			return "", "", "", false
		}
		return "paused", r, "advocate_paused", true
	}
	return "", "", "", false
}
