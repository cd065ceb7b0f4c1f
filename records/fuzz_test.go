package records

import (
	"strings"
	"testing"
	"time"
)

// FuzzNormalizeCaller: the canonical form is "", digits, or "user:" and a lower-case user
// name; a number's canonical form, written back as +digits, is itself.
func FuzzNormalizeCaller(f *testing.F) {
	for _, s := range []string{
		"", "+1 555 123 4567", "5551234567", "sip:+15551234567@carrier.example;user=phone",
		`"Ana" <sip:+15551234567@carrier.example>;tag=abc`, "tel:+1-555-123-4567;phone-context=x",
		"sip:anonymous@anonymous.invalid", "<sip:alice@pbx", "sip:@", "<>", "+", "++1", "sip:ALICE;x=y@h",
	} {
		f.Add(s, "1")
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, caller, cc string) {
		n := NormalizeCaller(caller, cc)
		if n == "" {
			return
		}
		if user, ok := strings.CutPrefix(n, "user:"); ok {
			if user == "" || user != strings.ToLower(user) {
				t.Fatalf("NormalizeCaller(%q) = %q", caller, n)
			}
			return
		}
		if strings.Trim(n, "0123456789") != "" {
			t.Fatalf("NormalizeCaller(%q, %q) = %q: not digits", caller, cc, n)
		}
		if again := NormalizeCaller("+"+n, cc); again != n {
			t.Fatalf("NormalizeCaller(+%s) = %q, want itself", n, again)
		}
	})
}

// FuzzParseTime: a since/until filter parses to a time or an error, never both; a parsed
// time printed in RFC 3339 parses back to the same instant.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"", "2026-03-01", "2026-03-01T00:00:00Z", "2026-03-01T02:03:04.567-06:00",
		"2026-02-30", "yesterday", "2026-03-01T25:00:00Z", "0000-01-01", "9999-12-31T23:59:59+14:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseTime(s, time.UTC)
		if err != nil {
			if !tm.IsZero() {
				t.Fatalf("ParseTime(%q) = %v and %v", s, tm, err)
			}
			return
		}
		if s != "" && tm.IsZero() && s != "0001-01-01" && !strings.HasPrefix(s, "0001-01-01T00:00:00") {
			t.Fatalf("ParseTime(%q) = the zero time and no error", s)
		}
		back, err := ParseTime(tm.Format(time.RFC3339Nano), time.UTC)
		if err != nil || !back.Equal(tm) {
			t.Fatalf("ParseTime(%q) = %v; printed and parsed again: %v, %v", s, tm, back, err)
		}
	})
}
