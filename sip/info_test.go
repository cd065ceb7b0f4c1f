package sip

import (
	"strings"
	"testing"
)

func TestParseDTMFInfo(t *testing.T) {
	tests := []struct {
		ct, body string
		want     rune
		ok       bool
	}{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", '5', true},
		{"application/dtmf-relay", "signal= *\r\nDuration=160", '*', true},
		{"application/dtmf-relay", "Signal=11\r\n", '#', true},
		{"application/dtmf-relay", "Signal=d\r\n", 'D', true},
		{"application/dtmf-relay", "Duration=160\r\n", 0, false},
		{"application/dtmf-relay", "Signal=55\r\n", 0, false},
		{"application/dtmf", "7", '7', true},
		{"application/dtmf", "x", 0, false},
		{"application/dtmf", "", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseDTMFInfo(tt.ct, []byte(tt.body))
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDTMFInfo(%q, %q) = %q, %v; want %q ok=%v", tt.ct, tt.body, got, err, tt.want, tt.ok)
		}
	}
}

func FuzzParseDTMFInfo(f *testing.F) {
	f.Add("application/dtmf-relay", []byte("Signal=5\r\nDuration=160\r\n"))
	f.Add("application/dtmf", []byte("#"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		d, err := ParseDTMFInfo(ct, body)
		if err == nil && !strings.ContainsRune("0123456789*#ABCD", d) {
			t.Fatalf("digit %q accepted", d)
		}
		if err != nil && d != 0 {
			t.Fatal("digit and error both returned")
		}
	})
}
