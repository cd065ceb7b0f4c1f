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

// Catalogue holds prompts by language and name. It is immutable once
// loaded and safe for concurrent use.
type Catalogue struct {
	langs map[string]map[string]*Prompt // lang -> name -> prompt
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
// defaults. Neither c nor o is changed; o may be nil.
func (c *Catalogue) Overlay(o *Catalogue) *Catalogue {
	out := &Catalogue{langs: make(map[string]map[string]*Prompt, len(c.langs))}
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

// Get returns the prompt called name in language lang.
func (c *Catalogue) Get(lang, name string) (*Prompt, bool) {
	p, ok := c.langs[lang][name]
	return p, ok
}

// Languages returns the languages that have at least one prompt, sorted.
func (c *Catalogue) Languages() []string {
	return slices.Sorted(maps.Keys(c.langs))
}

// Names returns the names of the prompts in language lang, sorted; nil if
// the language has none.
func (c *Catalogue) Names(lang string) []string {
	names := c.langs[lang]
	if len(names) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(names))
}

// Missing returns "<lang>/<name>" for each combination of langs and names
// that has no prompt, in the order given (by language, then name), or nil
// if every one is present. Call it at start-up with the languages and
// prompts the configuration uses, so a gap is reported before a caller
// meets it.
func (c *Catalogue) Missing(langs []string, names []string) []string {
	var missing []string
	for _, lang := range langs {
		for _, name := range names {
			if _, ok := c.Get(lang, name); !ok {
				missing = append(missing, lang+"/"+name)
			}
		}
	}
	return missing
}
