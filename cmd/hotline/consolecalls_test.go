package main

import (
	"slices"
	"testing"

	"github.com/hotline-project/hotline/config"
)

// TestFeatureCodes: each console button stands for the code the advocate's phone would
// key, and nothing else is a button.
func TestFeatureCodes(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{MidCall: config.MidCall{Prefix: "**", InterpreterKey: "1", DropKey: "0",
		Interpreters: []config.Interpreter{{Code: "34", Language: "es", Target: "interp_es"}},
		Parties: []config.Party{{Key: "9", Kind: config.PartyEmergency, Target: "psap"},
			{Key: "7", Kind: config.PartyPartner, Target: "shelter"}},
		TransferKey: "5", TransferQueues: []config.TransferQueue{{Code: "2", Queue: "es"}}},
		Advocates: []config.Advocate{{ID: "ana", Extension: "201"}, {ID: "bob", Name: "Bob", Extension: "202"}, {ID: "cy"}}}
	var ids []string
	for _, f := range features(cfg, "ana") {
		ids = append(ids, f.ID+"="+f.Label)
	}
	want := []string{"interpreter:34=Interpreter: es", "party:9=Emergency: psap", "party:7=Partner: shelter",
		"transfer:2=Transfer to queue: es", "transfer:202=Transfer to: Bob", "drop=Drop the last party"}
	if !slices.Equal(ids, want) {
		t.Errorf("buttons %q, want %q", ids, want)
	}
	for _, tc := range []struct {
		id, code string
		ok       bool
	}{
		{"interpreter:34", "**134#", true},
		{"party:9", "**9", true},
		{"party:7", "**7", true},
		{"drop", "**0", true},
		{"transfer:2", "**52#", true},
		{"transfer:202", "**5202#", true},
		{"transfer:201", "", false}, // ana's own extension: not a button of hers
		{"transfer:3", "", false},
		{"interpreter:99", "", false},
		{"party:5", "", false},
		{"party:9#", "", false},
		{"", "", false},
	} {
		code, ok := featureCode(cfg, "ana", tc.id)
		if code != tc.code || ok != tc.ok {
			t.Errorf("featureCode(%q) = %q, %v; want %q, %v", tc.id, code, ok, tc.code, tc.ok)
		}
	}
	cfg.MidCall.Prefix = "" // supervision only: no buttons
	if fs := features(cfg, "ana"); len(fs) != 0 {
		t.Errorf("buttons with no prefix: %v", fs)
	}
	if _, ok := featureCode(cfg, "ana", "drop"); ok {
		t.Error("drop is a button with no prefix")
	}
}
