package prompts

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// maxFileSize bounds one prompt file, so a misplaced multi-gigabyte file is
// reported instead of read into memory. 64 MiB is over an hour of 8 kHz
// 16-bit audio.
const maxFileSize = 64 << 20

// Catalogue holds prompts by language and name, and for each language
// optionally a fallback language whose prompt plays when the language has
// none of that name. It is immutable once loaded and safe for concurrent
// use.
type Catalogue struct {
	langs    map[string]map[string]*Prompt // lang -> name -> prompt
	fallback map[string]string             // lang -> next language to try; see WithFallbacks
}

// Load reads a prompt set laid out as <lang>/<prompt>.wav from fsys. name
// says where fsys comes from (for example the directory path) and prefixes
// every file named in errors.
//
// Files and directories whose names start with a dot are ignored, as are
// files other than .wav at the top level (a README, say). Anything else
// that is not a valid prompt is an error: a .wav at the top level, a
// non-.wav file or a subdirectory inside a language directory, a language
// or prompt name outside the allowed characters, or a WAV the decoder
// rejects. Every such problem is reported, joined into one error, rather
// than only the first. A set with no prompts at all is also an error.
func Load(fsys fs.FS, name string) (*Catalogue, error) {
	return load(fsys, func(rel string) string { return path.Join(name, rel) })
}

// LoadDir loads a prompt set from the directory dir, as Load does with
// os.DirFS(dir). Errors name files by their full path under dir.
func LoadDir(dir string) (*Catalogue, error) {
	return load(os.DirFS(dir), func(rel string) string {
		return filepath.Join(dir, filepath.FromSlash(rel))
	})
}

// load does the work of Load and LoadDir; where turns a slash-separated
// path inside fsys into the name to use in errors.
func load(fsys fs.FS, where func(rel string) string) (*Catalogue, error) {
	top, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read prompt directory %s: %w", where("."), err)
	}
	c := &Catalogue{langs: make(map[string]map[string]*Prompt)}
	var errs []error
	fail := func(rel, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", where(rel), fmt.Sprintf(format, args...)))
	}
	for _, lang := range top {
		switch {
		case strings.HasPrefix(lang.Name(), "."):
			continue
		case !isDir(fsys, lang.Name(), lang):
			if path.Ext(lang.Name()) == ".wav" {
				fail(lang.Name(), "prompt files go in a language directory, as <lang>/<name>.wav")
			}
			continue
		case !validLang(lang.Name()):
			fail(lang.Name(), "invalid language directory name (want lowercase letters, digits and '-', like en or pt-br)")
			continue
		}
		entries, err := fs.ReadDir(fsys, lang.Name())
		if err != nil {
			errs = append(errs, fmt.Errorf("read language directory %s: %w", where(lang.Name()), err))
			continue
		}
		for _, e := range entries {
			rel := path.Join(lang.Name(), e.Name())
			base, ext := strings.TrimSuffix(e.Name(), ".wav"), path.Ext(e.Name())
			switch {
			case strings.HasPrefix(e.Name(), "."):
				continue
			case isDir(fsys, rel, e):
				fail(rel, "unexpected directory (want <lang>/<name>.wav files only)")
				continue
			case ext != ".wav":
				fail(rel, "not a .wav file")
				continue
			case !validName(base):
				fail(rel, "invalid prompt name %q (want lowercase letters, digits and '_')", base)
				continue
			}
			a, err := readWAV(fsys, rel)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where(rel), err))
				continue
			}
			c.add(newPrompt(lang.Name(), base, a))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(c.langs) == 0 {
		return nil, fmt.Errorf("%s: no prompts found (want <lang>/<name>.wav files)", where("."))
	}
	return c, nil
}

// isDir reports whether e, found at rel in fsys, is a directory or a
// symbolic link to one.
func isDir(fsys fs.FS, rel string, e fs.DirEntry) bool {
	if e.Type()&fs.ModeSymlink == 0 {
		return e.IsDir()
	}
	info, err := fs.Stat(fsys, rel)
	return err == nil && info.IsDir()
}

// readWAV reads and decodes one prompt file, following symbolic links.
func readWAV(fsys fs.FS, rel string) (*audio, error) {
	info, err := fs.Stat(fsys, rel)
	if err != nil {
		return nil, fmt.Errorf("stat: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", info.Mode().Type())
	}
	if info.Size() > maxFileSize {
		return nil, fmt.Errorf("file too large: %d bytes (limit %d)", info.Size(), maxFileSize)
	}
	data, err := fs.ReadFile(fsys, rel)
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	return decodeWAV(data)
}

// validLang reports whether s is usable as a language directory name: a
// lowercase language tag such as "en", "es" or "pt-br".
func validLang(s string) bool {
	return s != "" && s[0] != '-' && s[len(s)-1] != '-' &&
		strings.IndexFunc(s, func(r rune) bool {
			return !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-')
		}) < 0
}

// validName reports whether s is usable as a prompt name, like the IVR's
// "greeting" or "language_menu".
func validName(s string) bool {
	return s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '_')
	}) < 0
}

// canon returns the form of a language tag used as a key: lower case, as
// the directory names are. Tags are case-insensitive (RFC 5646), so a
// configuration's fr-CA finds the recordings in fr-ca.
func canon(lang string) string { return strings.ToLower(lang) }

// add puts p into c, replacing any prompt with the same language and name.
func (c *Catalogue) add(p *Prompt) {
	names := c.langs[p.Lang]
	if names == nil {
		names = make(map[string]*Prompt)
		c.langs[p.Lang] = names
	}
	names[p.Name] = p
}

// Overlay returns a new catalogue with c's prompts and o's, where o's
// replace c's of the same language and name: operator recordings over the
// defaults. The result keeps c's fallbacks (o's are ignored). Neither c
// nor o is changed; o may be nil.
func (c *Catalogue) Overlay(o *Catalogue) *Catalogue {
	out := &Catalogue{langs: make(map[string]map[string]*Prompt, len(c.langs)), fallback: c.fallback}
	for lang, names := range c.langs {
		out.langs[lang] = maps.Clone(names)
	}
	if o != nil {
		for _, names := range o.langs {
			for _, p := range names {
				out.add(p)
			}
		}
	}
	return out
}

// WithFallbacks returns a catalogue with c's prompts in which a prompt
// missing in a language is looked for in that language's fallback, then in
// the fallback's fallback, and so on: fb maps a language to its fallback,
// for example {"es-mx": "es", "es": "en"}. It replaces any fallbacks c
// had; c is not changed.
//
// Every language in fb, as key or value, must have prompts in c, and the
// chains must end: a language that leads back to itself is a cycle. The
// error lists every such problem. Languages match c's regardless of case,
// as language tags do: fr-CA is the directory fr-ca.
func (c *Catalogue) WithFallbacks(given map[string]string) (*Catalogue, error) {
	var errs []error
	fb := make(map[string]string, len(given))
	for _, lang := range slices.Sorted(maps.Keys(given)) {
		if prev, ok := fb[canon(lang)]; ok && prev != canon(given[lang]) {
			errs = append(errs, fmt.Errorf("prompts: fallback from %q: two different fallbacks for the language", lang))
		}
		fb[canon(lang)] = canon(given[lang])
		if _, ok := c.langs[canon(lang)]; !ok {
			errs = append(errs, fmt.Errorf("prompts: fallback from %q: unknown language %q (have %s)",
				lang, lang, strings.Join(c.Languages(), ", ")))
		}
		if to := given[lang]; c.langs[canon(to)] == nil {
			errs = append(errs, fmt.Errorf("prompts: fallback from %q: unknown language %q (have %s)",
				lang, to, strings.Join(c.Languages(), ", ")))
		}
	}
	// A chain that revisits a language never ends. Report each cycle once,
	// from its smallest language, so the message does not depend on map
	// order.
	reported := make(map[string]bool)
	for _, start := range slices.Sorted(maps.Keys(fb)) {
		seen := map[string]int{start: 0}
		chain := []string{start}
		for lang := start; ; {
			next, ok := fb[lang]
			if !ok {
				break
			}
			if i, ok := seen[next]; ok {
				cycle := chain[i:]
				first := slices.Min(cycle)
				if !reported[first] {
					reported[first] = true
					j := slices.Index(cycle, first)
					cycle = append(slices.Clone(cycle[j:]), cycle[:j]...)
					errs = append(errs, fmt.Errorf("prompts: fallback cycle %s -> %s", strings.Join(cycle, " -> "), first))
				}
				break
			}
			seen[next] = len(chain)
			chain = append(chain, next)
			lang = next
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	out := &Catalogue{langs: c.langs, fallback: fb}
	if len(fb) == 0 {
		out.fallback = nil
	}
	return out, nil
}

// Fallbacks returns the chain of languages tried for lang, starting with
// lang itself, in lower case: for example [es-mx es en].
func (c *Catalogue) Fallbacks(lang string) []string {
	lang = canon(lang)
	chain := []string{lang}
	for next, ok := c.fallback[lang]; ok; next, ok = c.fallback[next] {
		chain = append(chain, next)
	}
	return chain
}

// Get returns the prompt called name in language lang, or, if lang has
// none, in the first language of its fallback chain that has one. Every
// method taking a language matches it regardless of case, as language tags
// do (en-US is the directory en-us), and reports it as given.
func (c *Catalogue) Get(lang, name string) (*Prompt, bool) {
	p, _, ok := c.Lookup(lang, name)
	return p, ok
}

// Lookup is Get that also says which language the prompt came from: lang
// itself, or one of its fallbacks (as the catalogue spells it, in lower
// case).
func (c *Catalogue) Lookup(lang, name string) (p *Prompt, from string, ok bool) {
	for l, more := canon(lang), true; more; l, more = c.fallback[l] {
		if p, ok := c.langs[l][name]; ok {
			return p, l, true
		}
	}
	return nil, "", false
}

// Languages returns the languages that have at least one prompt of their
// own, sorted.
func (c *Catalogue) Languages() []string {
	return slices.Sorted(maps.Keys(c.langs))
}

// Names returns the names of the prompts recorded in language lang itself
// (not its fallbacks), sorted; nil if the language has none.
func (c *Catalogue) Names(lang string) []string {
	names := c.langs[canon(lang)]
	if len(names) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(names))
}

// Missing returns "<lang>/<name>" for each combination of langs and names
// that has no recording in that language itself, in the order given (by
// language, then name), or nil if every one is present. Fallbacks are not
// consulted: this is the list of recordings a language still lacks, for
// `hotline check`. Unresolved is the list that matters to callers.
func (c *Catalogue) Missing(langs []string, names []string) []string {
	var missing []string
	for _, lang := range langs {
		for _, name := range names {
			if _, ok := c.langs[canon(lang)][name]; !ok {
				missing = append(missing, lang+"/"+name)
			}
		}
	}
	return missing
}

// Unresolved returns "<lang>/<name>" for each combination of langs and
// names that Get cannot find even through the fallbacks, in the order
// given, or nil if every one resolves. Call it at start-up with the
// languages and prompts the configuration uses, and refuse to start if it
// reports anything, so a gap is found before a caller meets it.
func (c *Catalogue) Unresolved(langs []string, names []string) []string {
	var missing []string
	for _, lang := range langs {
		for _, name := range names {
			if _, _, ok := c.Lookup(lang, name); !ok {
				missing = append(missing, lang+"/"+name)
			}
		}
	}
	return missing
}
