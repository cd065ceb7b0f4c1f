package records

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// TestHashSpellings: every spelling of one number hashes alike; other numbers, and the
// same number under another key, hash differently; anonymous callers get no hash.
func TestHashSpellings(t *testing.T) {
	h, err := NewHasher(testKey, "1")
	if err != nil {
		t.Fatal(err)
	}
	same := []string{
		"+1 555 123 4567",
		"15551234567",
		"5551234567",
		"(555) 123-4567",
		"1-555-123-4567",
		"sip:+15551234567@carrier.example;user=phone",
		"SIP:+1-555-123-4567@10.0.0.1:5060",
		"sips:15551234567@carrier.example",
		"tel:+1-555-123-4567;phone-context=example.com",
		`"Ana" <sip:+15551234567@carrier.example>;tag=abc`,
		"<sip:5551234567@pbx.local;transport=tcp>",
	}
	want := h.Hash(same[0])
	if len(want) != 64 {
		t.Fatalf("hash %q is not 64 hex digits", want)
	}
	for _, s := range same {
		if got := h.Hash(s); got != want {
			t.Errorf("Hash(%q) = %s, want %s (as %q)", s, got, want, same[0])
		}
	}
	for _, tc := range []struct{ a, b string }{
		{"+15551234567", "+15551234568"},
		{"+445551234567", "+15551234567"}, // another country, same national digits
		{"sip:alice@pbx.local", "sip:bob@pbx.local"},
		{"sip:alice@pbx.local", "sip:+15551234567@pbx.local"},
	} {
		if h.Hash(tc.a) == h.Hash(tc.b) {
			t.Errorf("%q and %q hash alike", tc.a, tc.b)
		}
	}
	if h.Hash("sip:Alice@pbx.local") != h.Hash("sip:alice@other.example") {
		t.Error("a SIP user name hashes differently by case or host")
	}
	other, _ := NewHasher([]byte("another key, at least 16 bytes"), "1")
	if other.Hash(same[0]) == want {
		t.Error("another key gives the same hash")
	}
	for _, s := range []string{"", "  ", "sip:anonymous@anonymous.invalid", `"Anonymous" <sip:anonymous@anonymous.invalid>`, "tel:+", "Restricted"} {
		if got := h.Hash(s); got != "" {
			t.Errorf("Hash(%q) = %s, want none", s, got)
		}
	}
	if CallerHash(testKey, "+15551234567") != CallerHash(testKey, "sip:+1 555 123 4567@x") {
		t.Error("CallerHash differs for one number")
	}
	if CallerHash([]byte("short"), "+15551234567") != "" {
		t.Error("CallerHash with a short key gave a hash")
	}
	if _, err := NewHasher([]byte("short"), ""); err == nil {
		t.Error("NewHasher took a 5-byte key")
	}
}

// TestLoadKey: the environment wins over the key file, which wins over the generated
// key; a generated key is private, kept, and reused; short keys are refused.
func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "key")
	if err := os.WriteFile(file, []byte("  file-key-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gen := filepath.Join(dir, "records.db.key")

	t.Setenv(KeyEnv, "env-key-0123456789")
	if k, created, err := LoadKey(file, gen); err != nil || string(k) != "env-key-0123456789" || created {
		t.Fatalf("with %s: %q %v %v", KeyEnv, k, created, err)
	}
	t.Setenv(KeyEnv, "")
	if k, _, err := LoadKey(file, gen); err != nil || string(k) != "file-key-0123456789" {
		t.Fatalf("key file: %q %v", k, err)
	}
	k1, created, err := LoadKey("", gen)
	if err != nil || !created || len(k1) != 64 {
		t.Fatalf("generated: %q %v %v", k1, created, err)
	}
	if fi, err := os.Stat(gen); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated key file: %v %v, want mode 0600", fi.Mode(), err)
	}
	k2, created, err := LoadKey("", gen)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("second start: %q %v %v, want the same key", k2, created, err)
	}
	for _, tc := range []struct{ name, env, file, gen string }{
		{"short env", "short", "", gen},
		{"short file", "", writeTemp(t, dir, "shortkey", "abc"), gen},
		{"missing file", "", filepath.Join(dir, "nope"), gen},
		{"nothing", "", "", ""},
	} {
		t.Setenv(KeyEnv, tc.env)
		if _, _, err := LoadKey(tc.file, tc.gen); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func writeTemp(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestNumberNeverStored: a caller's number, recorded through a Recorder, appears nowhere
// in the SQLite files or the export: only its hash does.
func TestNumberNeverStored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "records.db")
	db, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := NewHasher(testKey, "1")
	rec := NewRecorder(db, Options{Hasher: h, Node: "node-a"})
	for i, caller := range []string{"sip:+15551234567@carrier.example", "tel:+1-555-123-4567", "\"Ana\" <sip:5551234567@pbx>"} {
		c := rec.Begin("call-"+string(rune('a'+i)), "main", caller, t0)
		c.Menus("en", "help_now")
		c.Ended(OutcomeMenuHangup, t0.Add(time.Minute))
		if err := c.Finish(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	rec.Wait()
	var csv bytes.Buffer
	if err := db.Export(context.Background(), &csv, time.Time{}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	want := h.Hash("+15551234567")
	if n := strings.Count(csv.String(), want); n != 3 {
		t.Fatalf("the export has the caller's hash %d times, want 3:\n%s", n, csv.String())
	}
	files, _ := filepath.Glob(path + "*")
	contents := map[string][]byte{"export": csv.Bytes()}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		contents[f] = b
	}
	db.Close() // checkpoints the WAL into the database file
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	contents[path+" (closed)"] = b
	for name, b := range contents {
		for _, digits := range []string{"5551234567", "555-123-4567", "555 123 4567"} {
			if bytes.Contains(b, []byte(digits)) {
				t.Errorf("%s contains the caller's number (%s)", name, digits)
			}
		}
	}
}
