package prompts

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Numbers and durations are spoken by joining recordings of words: a
// language's rules (a speller) turn 121 into the prompt names for "one
// hundred twenty one" or "ciento veintiuno", and the catalogue supplies
// the recordings. Names of word prompts:
//
//	num_0 ... num_19, num_20, num_30 ... num_90   both languages
//	num_hundred                                   en: "hundred"
//	num_20 ... num_29                             es: veinte ... veintinueve (one word each)
//	num_and                                       es: "y" (treinta y uno)
//	num_100, num_ciento, num_200 ... num_900      es: cien, ciento, doscientos ...
//	num_un, num_veintiun                          es: "un", "veintiún", before a noun
//	about, minute, minutes, less_than_a_minute, more_than_an_hour
//
// plus the phrases the queue announcement is built from,
// you_are_caller_number ("you are caller number" + Number) and
// expected_wait ("the expected wait is" + Duration).

// MaxNumber is the largest number Number can say.
const MaxNumber = 999

// speller is one language's rules for saying numbers.
type speller struct {
	lang string
	// number returns the word prompts for n, 0 <= n <= MaxNumber. With
	// beforeNoun it gives the form used before a (masculine) noun, where a
	// language has one: Spanish "un minuto", not "uno minuto".
	number func(n int, beforeNoun bool) []string
	// words is every prompt name number and Duration can use.
	words []string
}

// Prompt names Duration uses, in every language.
const (
	wordAbout          = "about"
	wordMinute         = "minute"
	wordMinutes        = "minutes"
	wordLessThanMinute = "less_than_a_minute"
	wordMoreThanAnHour = "more_than_an_hour"
)

// Prompt names of number words that are not simply num_<n>.
const (
	englishHundred  = "num_hundred"
	spanishAnd      = "num_and"
	spanishCien     = "num_100"
	spanishCiento   = "num_ciento"
	spanishUn       = "num_un"
	spanishVeintiun = "num_veintiun"
)

// roundToMinuteBelow is where Duration stops rounding to the minute and
// rounds to 5 minutes instead.
const roundToMinuteBelow = 10 * time.Minute

// spellers holds the rules per language (primary language subtag).
var spellers = map[string]*speller{
	"en": newSpeller("en", englishNumber),
	"es": newSpeller("es", spanishNumber),
}

// newSpeller builds a speller, listing its words by saying every number.
func newSpeller(lang string, number func(int, bool) []string) *speller {
	words := map[string]bool{
		wordAbout: true, wordMinute: true, wordMinutes: true,
		wordLessThanMinute: true, wordMoreThanAnHour: true,
	}
	for n := range MaxNumber + 1 {
		for _, noun := range []bool{false, true} {
			for _, w := range number(n, noun) {
				words[w] = true
			}
		}
	}
	return &speller{lang: lang, number: number, words: slices.Sorted(maps.Keys(words))}
}

// num is the name of the recording of the number n as a word: num_21.
func num(n int) string { return "num_" + strconv.Itoa(n) }

// englishNumber says n in American English: "one hundred twenty one", no
// "and", each ten and unit a recording of its own.
func englishNumber(n int, _ bool) []string {
	var w []string
	if n >= 100 {
		w = append(w, num(n/100), englishHundred)
		if n %= 100; n == 0 {
			return w
		}
	}
	if n < 20 {
		return append(w, num(n))
	}
	w = append(w, num(n/10*10))
	if n%10 != 0 {
		w = append(w, num(n%10))
	}
	return w
}

// spanishNumber says n in Spanish: 0–29 are single words (dieciséis,
// veintiuno), then "treinta y uno"; 100 is "cien" alone and "ciento" in
// 101–199; 200–900 have their own words (doscientos, quinientos). Before a
// noun a final uno is shortened: "un minuto", "veintiún minutos", "treinta
// y un minutos". The hundreds are in the masculine, which suits "minutos"
// and "número".
func spanishNumber(n int, beforeNoun bool) []string {
	if n == 100 {
		return []string{spanishCien}
	}
	var w []string
	if n > 100 {
		if n/100 == 1 {
			w = append(w, spanishCiento)
		} else {
			w = append(w, num(n/100*100))
		}
		if n %= 100; n == 0 {
			return w
		}
	}
	unit := func(n int) string {
		switch {
		case beforeNoun && n == 1:
			return spanishUn
		case beforeNoun && n == 21:
			return spanishVeintiun
		}
		return num(n)
	}
	if n < 30 {
		return append(w, unit(n))
	}
	w = append(w, num(n/10*10))
	if n%10 != 0 {
		w = append(w, spanishAnd, unit(n%10))
	}
	return w
}

// spellerFor returns the rules for lang, or for its primary subtag (es
// for es-mx); nil if there are none.
func spellerFor(lang string) *speller {
	if s := spellers[lang]; s != nil {
		return s
	}
	primary, _, _ := strings.Cut(lang, "-")
	return spellers[primary]
}

// speller returns the number rules for lang: its own, or those of the
// first language in its fallback chain that has some.
func (c *Catalogue) speller(lang string) (*speller, error) {
	for _, l := range c.Fallbacks(lang) {
		if s := spellerFor(l); s != nil {
			return s, nil
		}
	}
	return nil, fmt.Errorf("prompts: no rules for saying numbers in %q or its fallbacks (have %s)",
		lang, strings.Join(slices.Sorted(maps.Keys(spellers)), ", "))
}

// words looks up the recordings of names for lang under the rules s. A
// word comes from the first language in lang's fallback chain that counts
// by the same rules, never from one that does not, so a phrase is never
// half in one language and half in another ("treinta y five").
func (c *Catalogue) words(lang string, s *speller, names []string) ([]*Prompt, error) {
	var chain []string
	for _, l := range c.Fallbacks(lang) {
		if spellerFor(l) == s {
			chain = append(chain, l)
		}
	}
	out := make([]*Prompt, 0, len(names))
	var missing []string
	for _, name := range names {
		var found *Prompt
		for _, l := range chain {
			if p, ok := c.langs[l][name]; ok {
				found = p
				break
			}
		}
		if found == nil {
			if !slices.Contains(missing, name) {
				missing = append(missing, name)
			}
			continue
		}
		out = append(out, found)
	}
	if missing != nil {
		return nil, fmt.Errorf("prompts: %s: no recording of %s (in %s)", lang, strings.Join(missing, ", "), strings.Join(chain, ", "))
	}
	return out, nil
}

// NumberNames returns the names of the word prompts that Number and
// Duration use for lang, sorted, or nil if there are no rules for lang or
// its fallbacks. Check them at start-up with Missing (to list recordings a
// language lacks) or Unresolved.
func (c *Catalogue) NumberNames(lang string) []string {
	s, err := c.speller(lang)
	if err != nil {
		return nil
	}
	return slices.Clone(s.words)
}

// Number returns the prompts that say n, 0 <= n <= MaxNumber, in lang: for
// 21, en/num_20 and en/num_1 ("twenty one") or es/num_21 ("veintiuno").
// Play them back to back, or as one with Join. A language without rules
// of its own (fr, say) uses those of the first language in its fallback
// chain that has some, with that language's recordings.
func (c *Catalogue) Number(lang string, n int) ([]*Prompt, error) {
	if n < 0 || n > MaxNumber {
		return nil, fmt.Errorf("prompts: number %d out of range 0..%d", n, MaxNumber)
	}
	s, err := c.speller(lang)
	if err != nil {
		return nil, err
	}
	return c.words(lang, s, s.number(n, false))
}

// Duration returns the prompts that say roughly how long d is, for a wait
// estimate: "less than a minute" under a minute; "about 1 minute", "about
// 7 minutes" to the nearest minute below 10 minutes; "about 25 minutes" to
// the nearest 5 minutes up to an hour; and "more than an hour" beyond. A
// caller gains nothing from false precision, and "about" keeps the
// estimate honest.
func (c *Catalogue) Duration(lang string, d time.Duration) ([]*Prompt, error) {
	s, err := c.speller(lang)
	if err != nil {
		return nil, err
	}
	names, err := s.duration(d)
	if err != nil {
		return nil, err
	}
	return c.words(lang, s, names)
}

// duration returns the word prompts for d; see Catalogue.Duration.
func (s *speller) duration(d time.Duration) ([]string, error) {
	switch {
	case d < 0:
		return nil, fmt.Errorf("prompts: negative duration %v", d)
	case d < time.Minute:
		return []string{wordLessThanMinute}, nil
	case d > time.Hour:
		return []string{wordMoreThanAnHour}, nil
	}
	m := int((d + 30*time.Second) / time.Minute)
	if d >= roundToMinuteBelow {
		m = int((d+150*time.Second)/(5*time.Minute)) * 5
	}
	unit := wordMinutes
	if m == 1 {
		unit = wordMinute
	}
	return slices.Concat([]string{wordAbout}, s.number(m, true), []string{unit}), nil
}

// Join returns one prompt that plays ps back to back, without the padding
// each would have to a whole frame if played alone: Number's and
// Duration's words, say, played as one so a digit interrupts the lot. It
// copies the encoded bytes and converts nothing. The result is named
// after its parts ("about+num_5+minutes") in the first one's language; it
// is new, so the caller may keep it or drop it.
func Join(ps ...*Prompt) *Prompt {
	if len(ps) == 0 {
		return &Prompt{}
	}
	n := 0
	names := make([]string, len(ps))
	for i, p := range ps {
		n += len(p.Samples)
		names[i] = p.Name
	}
	padded := (n + FrameSize - 1) / FrameSize * FrameSize
	out := &Prompt{
		Name:    strings.Join(names, "+"),
		Lang:    ps[0].Lang,
		Samples: make([]int16, 0, n),
		PCMU:    make([]byte, 0, padded),
		PCMA:    make([]byte, 0, padded),
	}
	for _, p := range ps {
		k := min(len(p.Samples), len(p.PCMU), len(p.PCMA))
		out.Samples = append(out.Samples, p.Samples[:k]...)
		out.PCMU = append(out.PCMU, p.PCMU[:k]...)
		out.PCMA = append(out.PCMA, p.PCMA[:k]...)
	}
	padFrames(out)
	return out
}
