package routing

import (
	"strings"
	"testing"
)

func TestNormalizeNumber(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"18883737888", "18883737888"},
		{"+18883737888", "18883737888"},
		{"+1 (888) 373-7888", "18883737888"},
		{"1.888.373.7888", "18883737888"},
		{"  +1-888-373-7888  ", "18883737888"},
		{"18883737888;user=phone", "18883737888"},
		{"+18883737888;npdi;rn=+15551234", "18883737888"},
		{"988", "988"},
		{"0", "0"},
		{"", ""},
		{"+", ""},
		{"()- .", ""},
		{";user=phone", ""},
		{"++18883737888", ""},
		{"1+8883737888", ""},
		{"1888HOTLINE", ""},
		{"alice", ""},
		{"*69", ""},
		{"911#", ""},
		{"1\t888", ""},
		{"１８８８", ""}, // full-width digits are not ASCII digits
	}
	for _, tt := range tests {
		if got := NormalizeNumber(tt.in); got != tt.want {
			t.Errorf("NormalizeNumber(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNumberMatches(t *testing.T) {
	tests := []struct {
		configured, dialled, cc string
		want                    bool
	}{
		{"18883737888", "18883737888", "1", true},
		{"18883737888", "+18883737888", "1", true},
		{"18883737888", "8883737888", "1", true},
		{"18883737888", "+1 (888) 373-7888", "1", true},
		{"18883737888", "18883737888;user=phone", "1", true},
		{"+1 888 373 7888", "18883737888", "1", true},
		{"18883737888", "8883737889", "1", false},
		{"18883737888", "28883737888", "1", false},
		{"18883737888", "1888373788", "1", false},
		{"18883737888", "888373788", "1", false},
		{"18883737888", "", "1", false},
		{"18883737888", "alice", "1", false},
		{"18883737888", "1", "1", false}, // the country code alone is not a national number
		{"1", "", "1", false},
		{"", "", "1", false},
		{"abc", "abc", "1", false},
		// National form configured: only the national form matches.
		{"8883737888", "8883737888", "1", true},
		{"8883737888", "18883737888", "1", false},
		// No country code: exact matches only.
		{"18883737888", "18883737888", "", true},
		{"18883737888", "8883737888", "", false},
		// Other country codes.
		{"+44 20 7946 0000", "2079460000", "44", true},
		{"+44 20 7946 0000", "2079460000", "1", false},
		{"+44 20 7946 0000", "+44 (20) 7946-0000", "44", true},
		{"18883737888", "8883737888", "+1", true},
	}
	for _, tt := range tests {
		if got := NumberMatches(tt.configured, tt.dialled, tt.cc); got != tt.want {
			t.Errorf("NumberMatches(%q, %q, %q) = %v, want %v", tt.configured, tt.dialled, tt.cc, got, tt.want)
		}
	}
}

func FuzzNormalizeNumber(f *testing.F) {
	for _, s := range []string{"18883737888", "+1 (888) 373-7888", "8883737888;user=phone", "abc", "", "+", "1.2-3(4)5 6"} {
		f.Add(s, "1")
	}
	f.Fuzz(func(t *testing.T, s, cc string) {
		n := NormalizeNumber(s)
		for _, r := range n {
			if r < '0' || r > '9' {
				t.Fatalf("NormalizeNumber(%q) = %q, has a non-digit", s, n)
			}
		}
		if again := NormalizeNumber(n); again != n {
			t.Fatalf("NormalizeNumber not idempotent: %q -> %q -> %q", s, n, again)
		}
		if got := NumberMatches(s, s, cc); got != (n != "") {
			t.Fatalf("NumberMatches(%q, itself, %q) = %v, want %v", s, cc, got, n != "")
		}
		if n == "" {
			if NumberMatches(s, "1", cc) || NumberMatches("1", s, cc) {
				t.Fatalf("unnormalisable %q matched", s)
			}
			return
		}
		// Any formatting of the same digits reaches the line.
		for _, f := range []string{"+" + n, " " + n + ";user=phone", strings.Join(strings.Split(n, ""), "-")} {
			if !NumberMatches(s, f, cc) {
				t.Fatalf("NumberMatches(%q, %q, %q) = false, want true", s, f, cc)
			}
		}
		// The national form matches, and nothing that merely ends like it.
		c := NormalizeNumber(cc)
		if c != "" && strings.HasPrefix(n, c) && len(n) > len(c) {
			if !NumberMatches(s, n[len(c):], cc) {
				t.Fatalf("national form %q of %q (cc %q) did not match", n[len(c):], s, cc)
			}
			if c != "9" && NumberMatches(s, "9"+n[len(c):], cc) && "9"+n[len(c):] != n {
				t.Fatalf("%q matched %q with the wrong country code %q", s, "9"+n[len(c):], cc)
			}
		}
	})
}
