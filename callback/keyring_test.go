package callback

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	k := Generate()
	kid, s := k.Seal("cb1", "5550001234")
	if strings.Contains(string(s), "5550001234") {
		t.Fatal("sealed number holds the number")
	}
	got, err := k.Open("cb1", kid, s)
	if err != nil || got != "5550001234" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	// Sealed for another callback, altered, unknown key: refused.
	if _, err := k.Open("cb2", kid, s); !errors.Is(err, ErrSealed) {
		t.Errorf("other id: %v, want ErrSealed", err)
	}
	bad := append([]byte(nil), s...)
	bad[len(bad)-1] ^= 1
	if _, err := k.Open("cb1", kid, bad); !errors.Is(err, ErrSealed) {
		t.Errorf("altered: %v, want ErrSealed", err)
	}
	if _, err := k.Open("cb1", "nope", s); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("unknown key: %v, want ErrUnknownKey", err)
	}
	if _, err := k.Open("cb1", kid, s[:3]); !errors.Is(err, ErrSealed) {
		t.Errorf("short: %v, want ErrSealed", err)
	}
	// Two seals of the same number differ (a fresh nonce each).
	if _, s2 := k.Seal("cb1", "5550001234"); string(s2) == string(s) {
		t.Error("same ciphertext twice")
	}
}

// TestRotation: a number sealed under the old key still opens after a new key is added
// at the top of the file; new numbers are sealed with the new key.
func TestRotation(t *testing.T) {
	old := NewKeyLine("k1")
	k1, err := ParseKeys([]byte(old), "test")
	if err != nil {
		t.Fatal(err)
	}
	kid, s := k1.Seal("cb", "5550009876")
	k2, err := ParseKeys([]byte("# rotated\n"+NewKeyLine("k2")+"\n"+old+"\n"), "test")
	if err != nil {
		t.Fatal(err)
	}
	if k2.Current() != "k2" {
		t.Errorf("current %q, want k2", k2.Current())
	}
	if got, err := k2.Open("cb", kid, s); err != nil || got != "5550009876" {
		t.Errorf("old number after rotation: %q, %v", got, err)
	}
	if kid2, _ := k2.Seal("cb", "1"); kid2 != "k2" {
		t.Errorf("sealed with %q, want k2", kid2)
	}
}

func TestParseKeysErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "no key"},
		{"k1", "want id:hex"},
		{"k1:abcd", "not 32 bytes"},
		{"k 1:" + strings.Repeat("00", 32), "want id:hex"},
		{NewKeyLine("a") + "\n" + NewKeyLine("a"), "given twice"},
	} {
		if _, err := ParseKeys([]byte(tc.in), "f"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseKeys(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestLoadGenerates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "callback.key")
	k, created, err := Load(path, true)
	if err != nil || !created {
		t.Fatalf("Load = %v, created %v", err, created)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v, %v", fi, err)
	}
	kid, s := k.Seal("x", "123")
	again, created, err := Load(path, true)
	if err != nil || created {
		t.Fatalf("second Load = %v, created %v", err, created)
	}
	if got, err := again.Open("x", kid, s); err != nil || got != "123" {
		t.Errorf("reloaded key: %q, %v", got, err)
	}
	if _, _, err := Load(filepath.Join(t.TempDir(), "missing"), false); err == nil {
		t.Error("missing file without generate: no error")
	}
}

func TestMask(t *testing.T) {
	for in, want := range map[string]string{"5550001234": "••••••••34", "12": "••", "": ""} {
		if got := Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseKeys(f *testing.F) {
	f.Add([]byte(NewKeyLine("k1")))
	f.Add([]byte("# c\n\nk:zz"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKeys(b, "fuzz")
		if (k == nil) == (err == nil) {
			t.Fatalf("result and error: %v, %v", k, err)
		}
		if k != nil {
			kid, s := k.Seal("id", "42")
			if got, err := k.Open("id", kid, s); err != nil || got != "42" {
				t.Fatalf("round trip: %q %v", got, err)
			}
		}
	})
}
