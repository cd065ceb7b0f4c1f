package main

import (
	"strings"
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

// `hotline check` warns about an advocate whose challenge differs from the one names with
// no account get (issue 13: offering each advocate only what they have an HA1 for must not
// let a scanner enumerate accounts unnoticed).
func TestCheckWarnsDistinguishableAccount(t *testing.T) {
	const both = "    ha1_sha256: 5b7e1d5b7e1d5b7e1d5b7e1d5b7e1d5b7e1d5b7e1d5b7e1d5b7e1d5b7e1d5b7e\n    ha1_md5: 0c2f9a0c2f9a0c2f9a0c2f9a0c2f9a0c\n"
	cfg := `sip:
  digest_algorithms: [SHA-256, MD5]
lines: [{number: "18883737888"}]
advocates:
  - id: ana
    languages: [en]
` + both + `  - id: bo
    languages: [en]
` + both + `  - id: cy
    languages: [en]
    ha1_md5: 0c2f9a0c2f9a0c2f9a0c2f9a0c2f9a0c
`
	p := writeFile(t, t.TempDir(), "hotline.yaml", cfg)
	code, out, errOut := runCmd(t, "check", "-config", p)
	want := p + ": warning: advocates[2] (cy) is challenged with [MD5] where names with no account, like most advocates, get [SHA-256 MD5]"
	if code != 0 || !strings.Contains(out, want) || strings.Contains(out, "(ana)") || strings.Contains(out, "(bo)") {
		t.Fatalf("check: exit %d\n%s%s\nwant a warning about cy only:\n%s", code, out, errOut, want)
	}
	// With the default [MD5], every account with ha1_md5 looks alike.
	p = writeFile(t, t.TempDir(), "hotline.yaml", strings.Replace(cfg, "[SHA-256, MD5]", "[MD5]", 1))
	if code, out, errOut := runCmd(t, "check", "-config", p); code != 0 || strings.Contains(out, "warning") {
		t.Fatalf("check with [MD5]: exit %d\n%s%s", code, out, errOut)
	}
}
