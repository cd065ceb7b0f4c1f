package records

import (
	"os"
	"path/filepath"
	"reflect"
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

// FuzzSpool: whatever a spool file holds (a torn line, garbage, a hand edit), replaying it
// never panics, hands over only ops that are well formed, and counts every line once:
// applied or skipped. Spool lines written by append read back as they were written.
func FuzzSpool(f *testing.F) {
	f.Add([]byte(`{"k":4,"t":"2026-03-01T00:00:00Z","n":"node-a"}` + "\n" +
		`{"k":2,"r":{"CallID":"c1","Node":"node-a","Start":"2026-03-01T00:00:00Z","End":"2026-03-01T00:01:00Z"}}` + "\n"))
	f.Add([]byte(`{"k":1,"r":{"CallID":"c1"`))
	f.Add([]byte("\n\n{}\n"))
	f.Add([]byte(`{"k":3,"a":{"Minute":"2026-03-01T00:00:00Z","Line":"main","Outcome":"refused","Count":3}}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "spool")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		sp, err := openSpool(path, 1<<20)
		if err != nil {
			return // a line longer than the scanner takes: reported, not a panic
		}
		lines := sp.n
		applied := 0
		err = sp.replay(3, func(ops []*op) (int, error) {
			for _, o := range ops {
				if !o.durable() || (o.Rec == nil && o.Att == nil && o.Kind != opRecover) {
					t.Fatalf("replay handed over %+v", o)
				}
			}
			applied += len(ops)
			return len(ops), nil
		})
		if err != nil {
			return
		}
		if applied+sp.bad != lines || sp.n != 0 {
			t.Fatalf("%d lines: %d applied, %d bad, %d left", lines, applied, sp.bad, sp.n)
		}
		// What append writes, replay reads back.
		rec := Record{CallID: "c1", Node: "n", Start: t0, Steps: []string{"en"}, Outcome: OutcomeInProgress}
		if _, err := sp.append([]*op{{Kind: opProgress, Rec: &rec}}); err != nil {
			t.Fatal(err)
		}
		var got []*op
		if err := sp.replay(3, func(ops []*op) (int, error) { got = append(got, ops...); return len(ops), nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !reflect.DeepEqual(*got[0].Rec, rec) {
			t.Fatalf("round trip: %+v", got)
		}
	})
}
