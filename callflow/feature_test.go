package callflow

import (
	"testing"

	"github.com/hotline-project/hotline/config"
)

// Issue 13, item 10: *12 records a reason the advocate chose, not "feature code".
func TestFeatureState(t *testing.T) {
	reasons := config.DefaultPauseReasons // break, meal, training, meeting, supervision
	tests := []struct {
		code                  string
		state, reason, prompt string
		ok                    bool
	}{
		{"*11", "available", "", "advocate_available", true},
		{"*12", "paused", "unspecified", "advocate_paused", true},
		{"*121", "paused", "break", "advocate_paused", true},
		{"*122", "paused", "meal", "advocate_paused", true},
		{"*125", "paused", "supervision", "advocate_paused", true},
		{"*126", "", "", "", false}, // only five reasons
		{"*120", "", "", "", false},
		{"*1211", "", "", "", false},
		{"*12#", "", "", "", false},
		{"*13", "offline", "", "advocate_logged_out", true},
		{"*14", "", "", "", false},
		{"*1", "", "", "", false},
	}
	for _, tt := range tests {
		state, reason, prompt, ok := featureState(tt.code, reasons)
		if state != tt.state || reason != tt.reason || prompt != tt.prompt || ok != tt.ok {
			t.Errorf("featureState(%q) = %q, %q, %q, %v; want %q, %q, %q, %v", tt.code, state, reason, prompt, ok,
				tt.state, tt.reason, tt.prompt, tt.ok)
		}
	}
	if _, _, _, ok := featureState("*121", nil); ok {
		t.Error("*121 accepted with no reasons configured")
	}
}
