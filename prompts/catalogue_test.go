package prompts

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/hotline-project/hotline/media/g711"
)

// The languages and prompt names the IVR relies on; the default set must
// have every combination.
var (
	requiredLangs = []string{"en", "es"}
	requiredNames = []string{
		"greeting", "language_menu", "language_selected", "goodbye",
		"reason_menu", "invalid", "no_input", "connecting", "all_busy", "closed",
		"you_are_caller_number", "expected_wait",
	}
)

func TestLoadEmbedded(t *testing.T) {
	c, err := LoadEmbedded()
	if err != nil {
		t.Fatalf("LoadEmbedded: %v", err)
	}
	if missing := c.Missing(requiredLangs, requiredNames); missing != nil {
		t.Errorf("default set is missing %v", missing)
	}
	for _, lang := range requiredLangs {
		if missing := c.Missing([]string{lang}, c.NumberNames(lang)); missing != nil {
			t.Errorf("default set is missing number words %v", missing)
		}
	}
	if got := c.Languages(); !slices.Equal(got, requiredLangs) {
		t.Errorf("Languages() = %v, want %v", got, requiredLangs)
	}
	for _, lang := range c.Languages() {
		for _, name := range c.Names(lang) {
			p, ok := c.Get(lang, name)
			if !ok {
				t.Fatalf("Get(%q, %q) not found but listed by Names", lang, name)
			}
			if p.Lang != lang || p.Name != name {
				t.Errorf("Get(%q, %q) = prompt %s/%s", lang, name, p.Lang, p.Name)
			}
			minDur := 500 * time.Millisecond
			if slices.Contains(c.NumberNames(lang), name) {
				minDur = 200 * time.Millisecond // a word, joined to others
			}
			t.Run(lang+"/"+name, func(t *testing.T) { checkPrompt(t, p, minDur) })
		}
	}
}

// checkPrompt checks that both payloads are whole frames, padded with
// silence, and decode to within G.711 quantisation error of the samples.
func checkPrompt(t *testing.T, p *Prompt, minDur time.Duration) {
	t.Helper()
	if d := p.Duration(); d < minDur || d > 10*time.Second {
		t.Errorf("duration %v, want between %v and 10 s", d, minDur)
	}
	laws := []struct {
		pt      uint8
		decode  func(byte) int16
		silence byte
	}{
		{0, g711.DecodeUlaw, g711.SilenceUlaw},
		{8, g711.DecodeAlaw, g711.SilenceAlaw},
	}
	for _, law := range laws {
		payload := p.Payload(law.pt)
		if len(payload)%FrameSize != 0 {
			t.Errorf("pt %d: payload of %d bytes is not a multiple of %d", law.pt, len(payload), FrameSize)
		}
		if n := len(payload) - len(p.Samples); n < 0 || n >= FrameSize {
			t.Fatalf("pt %d: payload of %d bytes for %d samples", law.pt, len(payload), len(p.Samples))
		}
		worst := 0
		for i, s := range p.Samples {
			d := int(law.decode(payload[i]))
			err := max(d-int(s), int(s)-d)
			// Half a quantisation step is under 1/32 of the magnitude for
			// both laws; 16 covers the smallest segments and the bits the
			// encoders drop.
			if limit := max(int(s), -int(s))/32 + 16; err > limit {
				t.Fatalf("pt %d: sample %d = %d decodes to %d, error %d > %d", law.pt, i, s, d, err, limit)
			}
			worst = max(worst, err)
		}
		for i, b := range payload[len(p.Samples):] {
			if b != law.silence {
				t.Fatalf("pt %d: padding byte %d = %#02x, want %#02x", law.pt, i, b, law.silence)
			}
		}
		if worst == 0 {
			t.Errorf("pt %d: payload decodes to exactly the samples; expected some quantisation error", law.pt)
		}
	}
}

// TestDefaultTextsMatchWAVs checks default/prompts.tsv against the embedded
// WAVs, so a text added without re-rendering (or a stale WAV) is caught.
func TestDefaultTextsMatchWAVs(t *testing.T) {
	f, err := os.Open(filepath.Join("default", "prompts.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if sc.Text() == "" || strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) != 4 || slices.Contains(fields, "") {
			t.Errorf("prompts.tsv:%d: want 4 non-empty tab-separated fields (lang, name, voice, text), got %q", line, sc.Text())
			continue
		}
		listed = append(listed, fields[0]+"/"+fields[1])
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	var embedded []string
	for _, lang := range c.Languages() {
		for _, name := range c.Names(lang) {
			embedded = append(embedded, lang+"/"+name)
		}
	}
	slices.Sort(listed)
	if !slices.Equal(listed, embedded) {
		t.Errorf("prompts.tsv lists %v, embedded WAVs are %v; run go generate ./prompts/", listed, embedded)
	}
}

func TestLoad(t *testing.T) {
	good := &fstest.MapFile{Data: buildWAV(pcmSpec(100, 200, -300))}
	stereo := &fstest.MapFile{Data: buildWAV(func() wavSpec {
		s := pcmSpec(1, 2, 3, 4)
		s.channels, s.align = 2, 4
		return s
	}())}
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		wantErr string   // exact error text; empty means success
		want    []string // with wantErr empty: the prompts loaded, as lang/name
	}{
		{
			name: "good",
			fsys: fstest.MapFS{"en/greeting.wav": good, "es/greeting.wav": good, "es/goodbye.wav": good},
			want: []string{"en/greeting", "es/goodbye", "es/greeting"},
		},
		{
			name: "ignores dot files and top-level non-wav files",
			fsys: fstest.MapFS{
				"en/greeting.wav": good, "README.md": {Data: []byte("hi")}, ".DS_Store": {},
				"en/.greeting.wav.swp": {}, ".git/config": {},
			},
			want: []string{"en/greeting"},
		},
		{
			name:    "bad wav",
			fsys:    fstest.MapFS{"en/greeting.wav": good, "es/greeting.wav": stereo},
			wantErr: "ops/es/greeting.wav: unsupported channel count 2 (want mono)",
		},
		{
			name:    "every bad file is reported",
			fsys:    fstest.MapFS{"en/greeting.wav": stereo, "es/greeting.wav": {Data: []byte("ID3")}},
			wantErr: "ops/en/greeting.wav: unsupported channel count 2 (want mono)\nops/es/greeting.wav: not a wav file: 3 bytes is too short for a riff header",
		},
		{
			name:    "wav outside a language directory",
			fsys:    fstest.MapFS{"greeting.wav": good, "en/goodbye.wav": good},
			wantErr: "ops/greeting.wav: prompt files go in a language directory, as <lang>/<name>.wav",
		},
		{
			name:    "not a wav",
			fsys:    fstest.MapFS{"en/greeting.mp3": good},
			wantErr: "ops/en/greeting.mp3: not a .wav file",
		},
		{
			name:    "bad prompt name",
			fsys:    fstest.MapFS{"en/Greeting.wav": good},
			wantErr: `ops/en/Greeting.wav: invalid prompt name "Greeting" (want lowercase letters, digits and '_')`,
		},
		{
			name:    "bad language name",
			fsys:    fstest.MapFS{"EN/greeting.wav": good},
			wantErr: "ops/EN: invalid language directory name (want lowercase letters, digits and '-', like en or pt-br)",
		},
		{
			name:    "nested directory",
			fsys:    fstest.MapFS{"en/old/greeting.wav": good},
			wantErr: "ops/en/old: unexpected directory (want <lang>/<name>.wav files only)",
		},
		{
			name:    "empty",
			fsys:    fstest.MapFS{"README.md": {}},
			wantErr: "ops: no prompts found (want <lang>/<name>.wav files)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.fsys, "ops")
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Load succeeded, want error %q", tt.wantErr)
				}
				if c != nil {
					t.Errorf("Load returned a catalogue with error %v", err)
				}
				if err.Error() != tt.wantErr {
					t.Errorf("error = %q\nwant %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			var got []string
			for _, lang := range c.Languages() {
				for _, name := range c.Names(lang) {
					got = append(got, lang+"/"+name)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("loaded %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	write := func(rel string, data []byte) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ulaw := readTestdata(t, "ulaw.wav")
	write("en/greeting.wav", ulaw)
	c, err := LoadDir(dir)
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	p, ok := c.Get("en", "greeting")
	if !ok {
		t.Fatal("en/greeting not loaded")
	}
	// The μ-law recording goes out as recorded: its data chunk is the last
	// 80 bytes of the file.
	if raw := ulaw[len(ulaw)-80:]; string(p.PCMU[:80]) != string(raw) {
		t.Errorf("PCMU = % x, want the file's own bytes % x", p.PCMU[:80], raw)
	}

	// Symbolic links to a language directory and to a file are followed.
	linked := t.TempDir()
	if err := os.Symlink(filepath.Join(dir, "en"), filepath.Join(linked, "en")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(linked, "es"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "en", "greeting.wav"), filepath.Join(linked, "es", "goodbye.wav")); err != nil {
		t.Fatal(err)
	}
	c, err = LoadDir(linked)
	if err != nil {
		t.Fatalf("LoadDir with symbolic links: %v", err)
	}
	if m := c.Missing([]string{"en", "es"}, []string{"greeting"}); !slices.Equal(m, []string{"es/greeting"}) {
		t.Errorf("LoadDir with symbolic links: missing %v, want only es/greeting", m)
	}
	if _, ok := c.Get("es", "goodbye"); !ok {
		t.Error("LoadDir with symbolic links: es/goodbye (a linked file) not loaded")
	}

	// A 44.1 kHz recording is resampled as it loads.
	write("es/greeting.wav", readTestdata(t, "rate44100.wav"))
	c, err = LoadDir(dir)
	if err != nil {
		t.Fatalf("LoadDir with a 44.1 kHz file: %v", err)
	}
	if p, _ := c.Get("es", "greeting"); p == nil || len(p.Samples) != 80 {
		t.Errorf("es/greeting from 441 samples at 44.1 kHz: %v, want 80 samples at 8 kHz", p)
	}

	write("es/goodbye.wav", readTestdata(t, "rate22050.wav"))
	_, err = LoadDir(dir)
	want := filepath.Join(dir, "es", "goodbye.wav") + ": unsupported sample rate 22050 Hz (want 8000, 16000, 44100 or 48000)"
	if err == nil || err.Error() != want {
		t.Errorf("LoadDir with a 22.05 kHz file: error %v, want %q", err, want)
	}

	_, err = LoadDir(filepath.Join(dir, "nonexistent"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), filepath.Join(dir, "nonexistent")) {
		t.Errorf("LoadDir of a missing directory: error %v, want fs.ErrNotExist naming the directory", err)
	}
}

func TestOverlay(t *testing.T) {
	base, err := LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	baseGreeting, _ := base.Get("es", "greeting")
	ops, err := Load(fstest.MapFS{
		"es/greeting.wav": {Data: readTestdata(t, "alaw.wav")},
		"fr/greeting.wav": {Data: buildWAV(pcmSpec(1, 2, 3))},
	}, "ops")
	if err != nil {
		t.Fatal(err)
	}
	opsGreeting, _ := ops.Get("es", "greeting")

	c := base.Overlay(ops)
	if p, _ := c.Get("es", "greeting"); p != opsGreeting {
		t.Error("es/greeting is not the overlay's recording")
	}
	if p, _ := c.Get("en", "greeting"); p == nil || p.Duration() < time.Second {
		t.Error("en/greeting from the base is missing")
	}
	if _, ok := c.Get("fr", "greeting"); !ok {
		t.Error("fr/greeting from the overlay is missing")
	}
	if got, want := c.Languages(), []string{"en", "es", "fr"}; !slices.Equal(got, want) {
		t.Errorf("Languages() = %v, want %v", got, want)
	}
	if got, want := c.Names("es"), base.Names("es"); !slices.Equal(got, want) {
		t.Errorf("Names(es) = %v, want %v", got, want)
	}

	// Neither input changes.
	if p, _ := base.Get("es", "greeting"); p != baseGreeting {
		t.Error("Overlay changed the base catalogue's es/greeting")
	}
	if _, ok := base.Get("fr", "greeting"); ok {
		t.Error("Overlay added fr/greeting to the base catalogue")
	}
	if got := ops.Languages(); !slices.Equal(got, []string{"es", "fr"}) {
		t.Errorf("overlay catalogue languages changed to %v", got)
	}

	if c := base.Overlay(nil); !slices.Equal(c.Languages(), base.Languages()) || !slices.Equal(c.Names("en"), base.Names("en")) {
		t.Error("Overlay(nil) is not a copy of the base")
	}
}

func TestNamesAndMissing(t *testing.T) {
	c, err := Load(fstest.MapFS{
		"en/greeting.wav": {Data: buildWAV(pcmSpec(1))},
		"en/goodbye.wav":  {Data: buildWAV(pcmSpec(1))},
		"es/greeting.wav": {Data: buildWAV(pcmSpec(1))},
	}, "t")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Names("en"), []string{"goodbye", "greeting"}; !slices.Equal(got, want) {
		t.Errorf("Names(en) = %v, want %v", got, want)
	}
	if got := c.Names("fr"); got != nil {
		t.Errorf("Names(fr) = %v, want nil", got)
	}
	if _, ok := c.Get("es", "goodbye"); ok {
		t.Error("Get(es, goodbye) found a prompt that does not exist")
	}
	tests := []struct {
		langs, names, want []string
	}{
		{[]string{"en"}, []string{"greeting", "goodbye"}, nil},
		{[]string{"en", "es"}, []string{"greeting", "goodbye"}, []string{"es/goodbye"}},
		{[]string{"fr", "en"}, []string{"greeting", "menu"}, []string{"fr/greeting", "fr/menu", "en/menu"}},
		{nil, []string{"greeting"}, nil},
	}
	for _, tt := range tests {
		if got := c.Missing(tt.langs, tt.names); !slices.Equal(got, tt.want) {
			t.Errorf("Missing(%v, %v) = %v, want %v", tt.langs, tt.names, got, tt.want)
		}
	}
}

func BenchmarkLoadEmbedded(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadEmbedded(); err != nil {
			b.Fatal(err)
		}
	}
}

// fallbackCatalogue has en with a, b and c; es with a and b; es-mx with a;
// fr with a.
func fallbackCatalogue(t *testing.T) *Catalogue {
	t.Helper()
	w := &fstest.MapFile{Data: buildWAV(pcmSpec(1, 2, 3))}
	c, err := Load(fstest.MapFS{
		"en/a.wav": w, "en/b.wav": w, "en/c.wav": w,
		"es/a.wav": w, "es/b.wav": w,
		"es-mx/a.wav": w,
		"fr/a.wav":    w,
	}, "t")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestWithFallbacks(t *testing.T) {
	base := fallbackCatalogue(t)
	c, err := base.WithFallbacks(map[string]string{"es-mx": "es", "es": "en"})
	if err != nil {
		t.Fatalf("WithFallbacks: %v", err)
	}
	tests := []struct {
		lang, name string
		from       string // "" for not found
	}{
		{"es-mx", "a", "es-mx"},
		{"es-mx", "b", "es"},
		{"es-mx", "c", "en"},
		{"es", "a", "es"},
		{"es", "c", "en"},
		{"en", "c", "en"},
		{"fr", "a", "fr"},
		{"fr", "b", ""}, // no fallback for fr
		{"en", "d", ""},
		{"de", "a", ""}, // not a language of the catalogue
	}
	for _, tt := range tests {
		p, from, ok := c.Lookup(tt.lang, tt.name)
		if ok != (tt.from != "") || from != tt.from {
			t.Errorf("Lookup(%q, %q) = from %q, %v; want from %q", tt.lang, tt.name, from, ok, tt.from)
			continue
		}
		if ok && (p.Lang != tt.from || p.Name != tt.name) {
			t.Errorf("Lookup(%q, %q) = prompt %s/%s", tt.lang, tt.name, p.Lang, p.Name)
		}
		if gp, gok := c.Get(tt.lang, tt.name); gp != p || gok != ok {
			t.Errorf("Get(%q, %q) differs from Lookup", tt.lang, tt.name)
		}
	}
	if got, want := c.Fallbacks("es-mx"), []string{"es-mx", "es", "en"}; !slices.Equal(got, want) {
		t.Errorf("Fallbacks(es-mx) = %v, want %v", got, want)
	}
	if got, want := c.Fallbacks("fr"), []string{"fr"}; !slices.Equal(got, want) {
		t.Errorf("Fallbacks(fr) = %v, want %v", got, want)
	}

	// Missing is per language, without fallback: what hotline check lists.
	// Unresolved is what no fallback covers: fatal at start-up.
	langs, names := []string{"en", "es", "es-mx", "fr"}, []string{"a", "b", "c"}
	if got, want := c.Missing(langs, names), []string{"es/c", "es-mx/b", "es-mx/c", "fr/b", "fr/c"}; !slices.Equal(got, want) {
		t.Errorf("Missing = %v, want %v", got, want)
	}
	if got, want := c.Unresolved(langs, names), []string{"fr/b", "fr/c"}; !slices.Equal(got, want) {
		t.Errorf("Unresolved = %v, want %v", got, want)
	}
	if got := c.Unresolved([]string{"es-mx"}, names); got != nil {
		t.Errorf("Unresolved(es-mx) = %v, want nil", got)
	}

	// The base catalogue is unchanged; Names and Languages ignore
	// fallbacks.
	if _, ok := base.Get("es", "c"); ok {
		t.Error("WithFallbacks changed the catalogue it was called on")
	}
	if got := c.Names("es-mx"); !slices.Equal(got, []string{"a"}) {
		t.Errorf("Names(es-mx) = %v, want [a]", got)
	}

	// Language tags match regardless of case, as in a configuration's
	// es-MX, and are reported as given.
	upper, err := base.WithFallbacks(map[string]string{"ES-MX": "Es", "es": "EN"})
	if err != nil {
		t.Fatalf("WithFallbacks with upper-case tags: %v", err)
	}
	if _, from, ok := upper.Lookup("es-MX", "c"); !ok || from != "en" {
		t.Errorf("Lookup(es-MX, c) = from %q, %v; want en", from, ok)
	}
	if got, want := upper.Missing([]string{"ES-mx"}, []string{"a", "b"}), []string{"ES-mx/b"}; !slices.Equal(got, want) {
		t.Errorf("Missing(ES-mx) = %v, want %v", got, want)
	}
	if got := upper.Unresolved([]string{"ES-mx", "FR"}, []string{"a", "b"}); !slices.Equal(got, []string{"FR/b"}) {
		t.Errorf("Unresolved = %v, want [FR/b]", got)
	}
	if got := upper.Names("ES-MX"); !slices.Equal(got, []string{"a"}) {
		t.Errorf("Names(ES-MX) = %v, want [a]", got)
	}

	// Overlay keeps the fallbacks; WithFallbacks replaces them.
	o := c.Overlay(nil)
	if _, from, _ := o.Lookup("es-mx", "c"); from != "en" {
		t.Errorf("after Overlay, es-mx/c from %q, want en", from)
	}
	none, err := c.WithFallbacks(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := none.Get("es-mx", "c"); ok {
		t.Error("WithFallbacks(nil) kept the old fallbacks")
	}
}

func TestWithFallbacksErrors(t *testing.T) {
	c := fallbackCatalogue(t)
	tests := []struct {
		name string
		fb   map[string]string
		want string
	}{
		{
			"unknown target", map[string]string{"es": "pt"},
			`prompts: fallback from "es": unknown language "pt" (have en, es, es-mx, fr)`,
		},
		{
			"unknown source", map[string]string{"pt": "es"},
			`prompts: fallback from "pt": unknown language "pt" (have en, es, es-mx, fr)`,
		},
		{"self", map[string]string{"en": "en"}, "prompts: fallback cycle en -> en"},
		{"self in another case", map[string]string{"en": "EN"}, "prompts: fallback cycle en -> en"},
		{
			"one language twice", map[string]string{"es-MX": "es", "es-mx": "en"},
			`prompts: fallback from "es-mx": two different fallbacks for the language`,
		},
		{
			"cycle", map[string]string{"es-mx": "es", "es": "fr", "fr": "es", "en": "fr"},
			"prompts: fallback cycle es -> fr -> es",
		},
		{
			"two cycles and an unknown language",
			map[string]string{"en": "fr", "fr": "en", "es": "es-mx", "es-mx": "es", "de": "en"},
			`prompts: fallback from "de": unknown language "de" (have en, es, es-mx, fr)` + "\n" +
				"prompts: fallback cycle en -> fr -> en\n" +
				"prompts: fallback cycle es -> es-mx -> es",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.WithFallbacks(tt.fb)
			if err == nil || got != nil {
				t.Fatalf("WithFallbacks(%v) = %v, %v; want error %q", tt.fb, got, err, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error = %q\nwant %q", err, tt.want)
			}
		})
	}
}
