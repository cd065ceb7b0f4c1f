package sip

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	long := "<sip:" + strings.Repeat("a", maxPathEntryLen) + ";lr>"
	tests := []struct {
		name   string
		values []string
		want   []string
		bad    bool
	}{
		{"none", nil, nil, false},
		{"kamailio", []string{"<sip:127.0.0.5:5060;lr;received=sip:127.0.0.9:40000>"},
			[]string{"<sip:127.0.0.5:5060;lr;received=sip:127.0.0.9:40000>"}, false},
		{"two in one header", []string{"<sip:p1.example.org;lr>, <sip:p2.example.org;lr>"},
			[]string{"<sip:p1.example.org;lr>", "<sip:p2.example.org;lr>"}, false},
		{"two headers", []string{"<sip:p1.example.org;lr>", " <sip:p2.example.org;lr> "},
			[]string{"<sip:p1.example.org;lr>", "<sip:p2.example.org;lr>"}, false},
		{"comma inside brackets", []string{`"a, b" <sip:p1.example.org;lr;x=a,b>`},
			[]string{`"a, b" <sip:p1.example.org;lr;x=a,b>`}, false},
		{"empty entries skipped", []string{" , <sip:p1.example.org;lr>,"}, []string{"<sip:p1.example.org;lr>"}, false},
		{"addr-spec without brackets", []string{"sip:p1.example.org;lr"}, nil, true},
		{"not sip", []string{"<tel:+15550100>"}, nil, true},
		{"no host", []string{"<sip:>"}, nil, true},
		{"unclosed", []string{"<sip:p1.example.org;lr"}, nil, true},
		{"too long", []string{long}, nil, true},
		{"too many", []string{"<sip:a>,<sip:b>,<sip:c>,<sip:d>,<sip:e>"}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePath(tc.values)
			if tc.bad {
				if !errors.Is(err, errBadPath) || got != nil {
					t.Fatalf("parsePath(%q) = %q, %v; want errBadPath", tc.values, got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("parsePath(%q) = %q, %v; want %q", tc.values, got, err, tc.want)
			}
		})
	}
}

func TestRouteNextHop(t *testing.T) {
	u, err := routeNextHop([]string{"<sip:127.0.0.5:5070;lr;received=sip:127.0.0.9%3A4000>", "<sip:other;lr>"})
	if err != nil || u.Host != "127.0.0.5" || u.Port != 5070 {
		t.Fatalf("routeNextHop = %v %v, want host 127.0.0.5 port 5070", u, err)
	}
	for _, bad := range [][]string{nil, {"<tel:1>"}, {"<sip:a;lr>", "<sip:b>\r\nX: y"}} {
		if _, err := routeNextHop(bad); err == nil {
			t.Errorf("routeNextHop(%q) accepted", bad)
		}
	}
}

// FuzzParsePath: a result or an error, never both; every entry parses again on its own to
// itself, and is a valid next hop.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"<sip:127.0.0.5:5060;lr;received=sip:127.0.0.9:40000>",
		`"x,y" <sip:a;lr>, <sips:b:5061;lr>`, "<sip:a", "sip:a", `"\"" <sip:a>`, ",,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, err := parsePath([]string{v})
		if err != nil {
			if got != nil {
				t.Fatalf("parsePath(%q) = %q and %v", v, got, err)
			}
			return
		}
		if len(got) > maxPathEntries {
			t.Fatalf("parsePath(%q): %d entries", v, len(got))
		}
		for _, e := range got {
			again, err := parsePath([]string{e})
			if err != nil || len(again) != 1 || again[0] != e {
				t.Fatalf("entry %q of %q parses again to %q, %v", e, v, again, err)
			}
			if _, err := routeNextHop([]string{e}); err != nil {
				t.Fatalf("entry %q of %q is no next hop: %v", e, v, err)
			}
		}
	})
}
