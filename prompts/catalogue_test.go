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
	requiredNames = []string{"greeting", "language_menu", "language_selected", "goodbye"}
)

func TestLoadEmbedded(t *testing.T) {
	c, err := LoadEmbedded()
	if err != nil {
		t.Fatalf("LoadEmbedded: %v", err)
	}
	if missing := c.Missing(requiredLangs, requiredNames); missing != nil {
		t.Errorf("default set is missing %v", missing)
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
			t.Run(lang+"/"+name, func(t *testing.T) { checkPrompt(t, p) })
		}
	}
}

// checkPrompt checks that both payloads are whole frames, padded with
// silence, and decode to within G.711 quantisation error of the samples.
func checkPrompt(t *testing.T, p *Prompt) {
	t.Helper()
	if d := p.Duration(); d < 500*time.Millisecond || d > 10*time.Second {
		t.Errorf("duration %v, want between 0.5 s and 10 s", d)
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

	write("es/greeting.wav", readTestdata(t, "rate44100.wav"))
	_, err = LoadDir(dir)
	want := filepath.Join(dir, "es", "greeting.wav") + ": unsupported sample rate 44100 Hz (want 8000)"
	if err == nil || err.Error() != want {
		t.Errorf("LoadDir with a 44.1 kHz file: error %v, want %q", err, want)
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
