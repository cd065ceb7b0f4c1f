package prompts

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// defaultTexts reads default/prompts.tsv into lang -> name -> text, so
// tests can show what a sequence of prompts says.
func defaultTexts(t *testing.T) map[string]map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join("default", "prompts.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	texts := map[string]map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) != 4 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if texts[fields[0]] == nil {
			texts[fields[0]] = map[string]string{}
		}
		texts[fields[0]][fields[1]] = fields[3]
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return texts
}

// say renders prompts as the text they were recorded from.
func say(t *testing.T, texts map[string]map[string]string, ps []*Prompt) string {
	t.Helper()
	words := make([]string, len(ps))
	for i, p := range ps {
		text, ok := texts[p.Lang][p.Name]
		if !ok {
			t.Fatalf("no text for %s/%s", p.Lang, p.Name)
		}
		words[i] = text
	}
	return strings.Join(words, " ")
}

func TestNumber(t *testing.T) {
	c, err := LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	texts := defaultTexts(t)
	tests := []struct {
		n      int
		en, es string
	}{
		{0, "zero", "cero"},
		{1, "one", "uno"},
		{7, "seven", "siete"},
		{13, "thirteen", "trece"},
		{15, "fifteen", "quince"},
		{16, "sixteen", "dieciséis"},
		{20, "twenty", "veinte"},
		{21, "twenty one", "veintiuno"},
		{22, "twenty two", "veintidós"},
		{29, "twenty nine", "veintinueve"},
		{30, "thirty", "treinta"},
		{31, "thirty one", "treinta y uno"},
		{45, "forty five", "cuarenta y cinco"},
		{99, "ninety nine", "noventa y nueve"},
		{100, "one hundred", "cien"},
		{101, "one hundred one", "ciento uno"},
		{110, "one hundred ten", "ciento diez"},
		{115, "one hundred fifteen", "ciento quince"},
		{121, "one hundred twenty one", "ciento veintiuno"},
		{200, "two hundred", "doscientos"},
		{201, "two hundred one", "doscientos uno"},
		{500, "five hundred", "quinientos"},
		{555, "five hundred fifty five", "quinientos cincuenta y cinco"},
		{700, "seven hundred", "setecientos"},
		{916, "nine hundred sixteen", "novecientos dieciséis"},
		{999, "nine hundred ninety nine", "novecientos noventa y nueve"},
	}
	for _, tt := range tests {
		for _, lt := range []struct{ lang, want string }{{"en", tt.en}, {"es", tt.es}} {
			ps, err := c.Number(lt.lang, tt.n)
			if err != nil {
				t.Errorf("Number(%s, %d): %v", lt.lang, tt.n, err)
				continue
			}
			if got := say(t, texts, ps); got != lt.want {
				t.Errorf("Number(%s, %d) says %q, want %q", lt.lang, tt.n, got, lt.want)
			}
		}
	}

	for _, n := range []int{-1, MaxNumber + 1} {
		if ps, err := c.Number("en", n); err == nil || ps != nil {
			t.Errorf("Number(en, %d) = %v, %v; want an error", n, ps, err)
		}
	}
	// Every number in range can be said in both languages, from words of
	// that language only.
	for _, lang := range []string{"en", "es"} {
		for n := range MaxNumber + 1 {
			ps, err := c.Number(lang, n)
			if err != nil {
				t.Fatalf("Number(%s, %d): %v", lang, n, err)
			}
			for _, p := range ps {
				if p.Lang != lang {
					t.Fatalf("Number(%s, %d) uses %s/%s", lang, n, p.Lang, p.Name)
				}
			}
		}
	}
}

func TestCatalogueDuration(t *testing.T) {
	c, err := LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	texts := defaultTexts(t)
	tests := []struct {
		d      time.Duration
		en, es string
	}{
		{0, "less than a minute", "menos de un minuto"},
		{59 * time.Second, "less than a minute", "menos de un minuto"},
		{time.Minute, "about one minute", "aproximadamente un minuto"},
		{89 * time.Second, "about one minute", "aproximadamente un minuto"},
		{90 * time.Second, "about two minutes", "aproximadamente dos minutos"},
		{5*time.Minute + 10*time.Second, "about five minutes", "aproximadamente cinco minutos"},
		{9*time.Minute + 29*time.Second, "about nine minutes", "aproximadamente nueve minutos"},
		{9*time.Minute + 30*time.Second, "about ten minutes", "aproximadamente diez minutos"},
		{12*time.Minute + 29*time.Second, "about ten minutes", "aproximadamente diez minutos"},
		{12*time.Minute + 30*time.Second, "about fifteen minutes", "aproximadamente quince minutos"},
		{21 * time.Minute, "about twenty minutes", "aproximadamente veinte minutos"},
		{23 * time.Minute, "about twenty five minutes", "aproximadamente veinticinco minutos"},
		{59 * time.Minute, "about sixty minutes", "aproximadamente sesenta minutos"},
		{time.Hour, "about sixty minutes", "aproximadamente sesenta minutos"},
		{time.Hour + time.Second, "more than an hour", "más de una hora"},
		{10 * time.Hour, "more than an hour", "más de una hora"},
	}
	for _, tt := range tests {
		for _, lt := range []struct{ lang, want string }{{"en", tt.en}, {"es", tt.es}} {
			ps, err := c.Duration(lt.lang, tt.d)
			if err != nil {
				t.Errorf("Duration(%s, %v): %v", lt.lang, tt.d, err)
				continue
			}
			if got := say(t, texts, ps); got != lt.want {
				t.Errorf("Duration(%s, %v) says %q, want %q", lt.lang, tt.d, got, lt.want)
			}
		}
	}
	if _, err := c.Duration("en", -time.Second); err == nil {
		t.Error("Duration(en, -1s) succeeded, want an error")
	}
}

// TestSpanishBeforeNoun covers the shortened forms Duration needs, which
// the rounding never reaches (21, 31 minutes): spoken before a noun, a
// final uno becomes un.
func TestSpanishBeforeNoun(t *testing.T) {
	tests := []struct {
		n    int
		want []string
	}{
		{1, []string{"num_un"}},
		{21, []string{"num_veintiun"}},
		{31, []string{"num_30", "num_and", "num_un"}},
		{101, []string{"num_ciento", "num_un"}},
		{121, []string{"num_ciento", "num_veintiun"}},
		{11, []string{"num_11"}},
		{100, []string{"num_100"}},
	}
	for _, tt := range tests {
		if got := spanishNumber(tt.n, true); !slices.Equal(got, tt.want) {
			t.Errorf("spanishNumber(%d, before a noun) = %v, want %v", tt.n, got, tt.want)
		}
	}
	if got := englishNumber(21, true); !slices.Equal(got, []string{"num_20", "num_1"}) {
		t.Errorf("englishNumber(21, before a noun) = %v", got)
	}
}

// TestNumberFallback checks which rules and recordings a language gets
// through its fallbacks: a regional variant counts by its primary
// language's rules with its own recordings where it has them; a language
// without rules speaks numbers wholly in its fallback's; a language with
// rules never borrows words from one with other rules.
func TestNumberFallback(t *testing.T) {
	w := &fstest.MapFile{Data: buildWAV(pcmSpec(1, 2, 3))}
	fsys := fstest.MapFS{
		"fr/about.wav":    w, // "environ": not used, fr has no number rules
		"es-mx/num_5.wav": w,
		"de/num_5.wav":    w,
	}
	ops, err := Load(fsys, "ops")
	if err != nil {
		t.Fatal(err)
	}
	base, err := LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	c, err := base.Overlay(ops).WithFallbacks(map[string]string{"es-mx": "es", "fr": "en", "es": "en"})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := c.Number("es-mx", 35)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.Lang+"/"+p.Name)
	}
	if want := []string{"es/num_30", "es/num_and", "es-mx/num_5"}; !slices.Equal(got, want) {
		t.Errorf("Number(es-mx, 35) = %v, want %v", got, want)
	}

	ps, err = c.Duration("fr", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.Lang != "en" {
			t.Errorf("Duration(fr) uses %s/%s, want English throughout", p.Lang, p.Name)
		}
	}
	if got, want := c.NumberNames("fr"), c.NumberNames("en"); !slices.Equal(got, want) {
		t.Errorf("NumberNames(fr) = %v, want en's", got)
	}

	// de has no rules and no fallback.
	if _, err := c.Number("de", 5); err == nil || !strings.Contains(err.Error(), `no rules for saying numbers in "de"`) {
		t.Errorf("Number(de, 5): error %v, want no rules", err)
	}
	if c.NumberNames("de") != nil {
		t.Error("NumberNames(de) is not nil")
	}

	// es lacking a word does not borrow en's, although es falls back to en.
	esOnly, err := Load(fstest.MapFS{"es/num_30.wav": w, "en/num_5.wav": w}, "t")
	if err != nil {
		t.Fatal(err)
	}
	esOnly, err = esOnly.WithFallbacks(map[string]string{"es": "en"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = esOnly.Number("es", 35)
	if want := "prompts: es: no recording of num_and, num_5 (in es)"; err == nil || err.Error() != want {
		t.Errorf("Number(es, 35) with gaps: error %v, want %q", err, want)
	}
	if got, want := esOnly.Missing([]string{"es"}, esOnly.NumberNames("es"))[:2], []string{"es/about", "es/less_than_a_minute"}; !slices.Equal(got, want) {
		t.Errorf("Missing number words start %v, want %v", got, want)
	}
}

func TestJoin(t *testing.T) {
	a := newPrompt("en", "a", &audio{format: wavePCM, samples: make([]int16, 100)})
	for i := range a.Samples {
		a.Samples[i] = 1000
	}
	a = newPrompt("en", "a", &audio{format: wavePCM, samples: a.Samples})
	b := newPrompt("es", "b", &audio{format: waveMuLaw, samples: []int16{0, 0, 0}, coded: []byte{0xFF, 0xFE, 0xFD}})
	j := Join(a, b, a)
	if j.Name != "a+b+a" || j.Lang != "en" {
		t.Errorf("Join named %s/%s, want en/a+b+a", j.Lang, j.Name)
	}
	if len(j.Samples) != 203 || len(j.PCMU) != 320 || len(j.PCMA) != 320 {
		t.Fatalf("Join: %d samples, %d and %d bytes; want 203, 320, 320", len(j.Samples), len(j.PCMU), len(j.PCMA))
	}
	// The parts' own bytes, with no padding between them.
	if !slices.Equal(j.PCMU[100:103], b.PCMU[:3]) || !slices.Equal(j.PCMU[:100], a.PCMU[:100]) || !slices.Equal(j.PCMA[103:203], a.PCMA[:100]) {
		t.Error("Join did not copy the parts' payloads back to back")
	}
	for i := 203; i < 320; i++ {
		if j.PCMU[i] != b.PCMU[len(b.PCMU)-1] || j.PCMA[i] != b.PCMA[len(b.PCMA)-1] {
			t.Fatalf("padding byte %d is %#x/%#x, want silence", i, j.PCMU[i], j.PCMA[i])
		}
	}
	if d := j.Duration(); d != 203*time.Second/8000 {
		t.Errorf("Duration = %v", d)
	}
	if e := Join(); e == nil || len(e.PCMU) != 0 {
		t.Errorf("Join() = %+v, want an empty prompt", e)
	}
	// A hand-made prompt without payloads (as in other packages' tests).
	if e := Join(&Prompt{Name: "x"}); e.Name != "x" || len(e.PCMU) != 0 {
		t.Errorf("Join(empty prompt) = %+v", e)
	}
}

func BenchmarkNumberJoin(b *testing.B) {
	c, err := LoadEmbedded()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		ps, err := c.Duration("es", 23*time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		Join(ps...)
	}
}
