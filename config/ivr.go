package config

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
)

// IVR configures the voice menus: the languages the hotline speaks and the tree of menus
// a caller goes through before routing takes the call.
type IVR struct {
	// Languages are the languages the hotline speaks; at least one.
	Languages []Language `yaml:"languages"`
	// DefaultLanguage is the caller's language until a menu sets another; one of Languages.
	DefaultLanguage string `yaml:"default_language"`
	// Start names the first menu.
	Start string `yaml:"start"`
	// FirstDigitTimeout is how long a menu waits for a key after its prompts end; a menu
	// may set its own. >0.
	FirstDigitTimeout time.Duration `yaml:"first_digit_timeout"`
	// InterDigitTimeout is how long a collect menu waits for each digit after the first; a
	// collect menu may set its own. >0.
	InterDigitTimeout time.Duration `yaml:"inter_digit_timeout"`
	// Retries is how many wrong keys a menu forgives (playing Invalid, then the menu again)
	// before it takes its no-input action; a menu may set its own. 0..5.
	Retries int `yaml:"retries"`
	// Invalid is the prompt played after a wrong key; "" plays none. A menu may set its own.
	Invalid string `yaml:"invalid"`
	// Operator is what 0 does in every menu (except a collect menu, where 0 is a digit). It
	// must route the call: 0 always reaches a person.
	Operator *Action `yaml:"operator"`
	// Menus are the menus, in any order.
	Menus []Menu `yaml:"menus"`
}

// Language is one language the hotline speaks.
type Language struct {
	// Language is a tag such as en, es or fr-CA ([a-z]{2,3}(-[A-Za-z0-9]+)*); unique.
	Language string `yaml:"language"`
	// Fallback is another of the languages, whose recording plays where this one has none.
	Fallback string `yaml:"fallback,omitempty"`
}

// Menu is one node of the menu tree. A prompt is written as a prompt name, played in the
// caller's language, or as lang/name (es/language_menu), played in that language whatever
// the caller's.
//
// A caller who presses nothing within the first-digit timeout gets NoInput at once; a
// caller who presses a key that is not in Keys hears Invalid and the menu again, up to
// Retries times, and then gets NoInput. * plays the menu again (Repeat) and 0 takes the
// IVR's Operator action. A digit stops any prompt at once, and digits typed ahead are kept
// for the menus that follow.
type Menu struct {
	// Name is how goto and start refer to the menu: [a-z0-9_-]+, unique.
	Name string `yaml:"name"`
	// Prompts play in order when the caller enters the menu; at least one.
	Prompts []string `yaml:"prompts"`
	// Repeat plays instead of Prompts when the menu is played again (after a wrong key,
	// *, or an action that returns to the menu); nil: Prompts.
	Repeat []string `yaml:"repeat,omitempty"`
	// Keys maps one key (1-9 or #) to what it does. 0 and * are reserved. A collect menu
	// has no keys.
	Keys map[string]Action `yaml:"keys,omitempty"`
	// NoInput is what happens to a caller who presses nothing, or only wrong keys. It is
	// required, and it must lead, however many menus later, to a route: a caller who
	// cannot press a key must still reach a person.
	NoInput *Action `yaml:"no_input"`
	// FirstDigitTimeout, Retries and Invalid override the IVR's; nil keeps them.
	FirstDigitTimeout *time.Duration `yaml:"first_digit_timeout,omitempty"`
	Retries           *int           `yaml:"retries,omitempty"`
	Invalid           *string        `yaml:"invalid,omitempty"`
	// Collect, when set, makes this a collect menu: it reads several digits (a number)
	// instead of one key.
	Collect *Collect `yaml:"collect,omitempty"`
}

// Collect reads a number: digits until # (the terminator), MaxDigits of them, or a pause
// of InterDigitTimeout. Fewer than MinDigits is a wrong entry (Invalid, then again); *
// starts over. 0 is a digit here, not the operator.
type Collect struct {
	// Variable names the digits in the IVR's result: [a-z][a-z0-9_]*.
	Variable string `yaml:"variable"`
	// MinDigits is 0 or more; 0 lets the caller skip with # alone.
	MinDigits int `yaml:"min_digits"`
	// MaxDigits is 1..32 and at least MinDigits; reaching it ends the entry.
	MaxDigits int `yaml:"max_digits"`
	// InterDigitTimeout overrides the IVR's; nil keeps it.
	InterDigitTimeout *time.Duration `yaml:"inter_digit_timeout,omitempty"`
	// Then is what happens once the digits are in; required.
	Then *Action `yaml:"then"`
}

// Action is what a key (or no input, or 0) does: its effects apply in the order of the
// fields. After SetLanguage, SetReason and Play, at most one of Goto, Route (or To) and
// Hangup ends it; with none of them, the caller returns to the same menu.
type Action struct {
	// SetLanguage makes the caller's language one of ivr.languages.
	SetLanguage string `yaml:"set_language,omitempty"`
	// SetReason sets the reason routing sees (such as help_now, tip or other):
	// [a-z0-9_-]+.
	SetReason string `yaml:"set_reason,omitempty"`
	// Play lists prompts to play; a digit stops them, as any prompt.
	Play []string `yaml:"play,omitempty"`
	// Goto names the next menu.
	Goto string `yaml:"goto,omitempty"`
	// Route ends the menus: the call goes to routing, which decides where it goes.
	Route bool `yaml:"route,omitempty"`
	// To ends the menus with the call sent to this queue or target, past routing's rules.
	To string `yaml:"to,omitempty"`
	// Hangup plays Play, which it requires, and hangs up. Never for no input.
	Hangup bool `yaml:"hangup,omitempty"`
}

// UnmarshalYAML decodes an action as a whole, so that one written in the file replaces a
// default one (ivr.operator) instead of being merged into it field by field. It uses the
// decoder's own unmarshal function, so unknown keys are still errors, with their lines.
func (a *Action) UnmarshalYAML(unmarshal func(any) error) error {
	type plain Action
	var p plain
	if err := unmarshal(&p); err != nil {
		return err
	}
	*a = Action(p)
	return nil
}

// Routes reports whether the action ends the menus with the call routed.
func (a *Action) Routes() bool { return a.Route || a.To != "" }

// SplitPrompt splits a prompt as written in a menu, name or lang/name, into the language
// it is pinned to ("" for the caller's) and its name.
func SplitPrompt(ref string) (lang, name string) {
	if lang, name, ok := strings.Cut(ref, "/"); ok {
		return lang, name
	}
	return "", ref
}

const (
	maxRetries   = 5
	maxCollected = 32 // the SIP layer buffers 32 digits typed ahead
)

var (
	rePrompt   = regexp.MustCompile(`^[a-z0-9_]+$`) // as prompts.Load accepts file names
	reVariable = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// defaultIVR returns the menus default.yaml shows: the greeting with the language menu,
// then the reason menu, then routing. Silence anywhere routes the call as help_now.
func defaultIVR() IVR {
	connect := func(reason string) Action {
		return Action{SetReason: reason, Play: []string{"connecting"}, Route: true}
	}
	urgent := connect("help_now")
	return IVR{
		Languages:         []Language{{Language: "en"}, {Language: "es", Fallback: "en"}},
		DefaultLanguage:   "en",
		Start:             "welcome",
		FirstDigitTimeout: 5 * time.Second,
		InterDigitTimeout: 3 * time.Second,
		Retries:           1,
		Invalid:           "invalid",
		Operator:          &Action{Play: []string{"connecting"}, Route: true},
		Menus: []Menu{
			{
				Name:    "welcome",
				Prompts: []string{"greeting", "en/language_menu", "es/language_menu"},
				Repeat:  []string{"en/language_menu", "es/language_menu"},
				Keys: map[string]Action{
					"1": {SetLanguage: "en", Goto: "reason"},
					"2": {SetLanguage: "es", Goto: "reason"},
				},
				NoInput: &urgent,
			},
			{
				Name:    "reason",
				Prompts: []string{"reason_menu"},
				Keys: map[string]Action{
					"1": connect("help_now"),
					"2": connect("tip"),
					"3": connect("other"),
				},
				NoInput: &urgent,
			},
		},
	}
}

// fillDefaults restores the default of a list written as null, and makes empty lists and
// maps nil, so that a file and its re-encoding (which leaves empty ones out) decode alike.
func (v *IVR) fillDefaults() {
	d := defaultIVR()
	if v.Languages == nil {
		v.Languages = d.Languages
	}
	if v.Menus == nil {
		v.Menus = d.Menus
	}
	normalize := func(a *Action) {
		if a != nil {
			nilIfEmpty(&a.Play)
		}
	}
	normalize(v.Operator)
	for i := range v.Menus {
		m := &v.Menus[i]
		nilIfEmpty(&m.Prompts)
		nilIfEmpty(&m.Repeat)
		if len(m.Keys) == 0 {
			m.Keys = nil
		}
		for k, a := range m.Keys {
			normalize(&a)
			m.Keys[k] = a
		}
		normalize(m.NoInput)
		if m.Collect != nil {
			normalize(m.Collect.Then)
		}
	}
}

// Fallbacks returns each language's fallback, for prompts.Catalogue.WithFallbacks.
func (v *IVR) Fallbacks() map[string]string {
	fb := make(map[string]string)
	for _, l := range v.Languages {
		if l.Fallback != "" {
			fb[l.Language] = l.Fallback
		}
	}
	return fb
}

// LanguageTags returns the tags of the languages the hotline speaks, in the file's order.
func (v *IVR) LanguageTags() []string {
	tags := make([]string, len(v.Languages))
	for i, l := range v.Languages {
		tags[i] = l.Language
	}
	return tags
}

// PromptNames returns every prompt name the menus play, sorted, without the language a
// prompt may be pinned to. The configuration cannot check that they exist (it loads no
// audio): check each in every language of ivr.languages against the prompt catalogue,
// through the fallbacks, before taking calls.
func (c *Config) PromptNames() []string {
	names := map[string]bool{}
	add := func(refs ...string) {
		for _, r := range refs {
			if _, n := SplitPrompt(r); n != "" {
				names[n] = true
			}
		}
	}
	addAction := func(a *Action) {
		if a != nil {
			add(a.Play...)
		}
	}
	v := &c.IVR
	add(v.Invalid)
	add(c.Safety.Prompts...)
	addAction(v.Operator)
	for i := range v.Menus {
		m := &v.Menus[i]
		add(m.Prompts...)
		add(m.Repeat...)
		if m.Invalid != nil {
			add(*m.Invalid)
		}
		for _, a := range m.Keys {
			addAction(&a)
		}
		addAction(m.NoInput)
		if m.Collect != nil {
			addAction(m.Collect.Then)
		}
	}
	return slices.Sorted(maps.Keys(names))
}

// ivrCheck holds what validating the menus needs besides the parser.
type ivrCheck struct {
	p     *parser
	c     *Config
	langs map[string]bool
	menus map[string]int // name -> index of its first menu
	// hint follows errors about the default menus, which apply because the file has none.
	hint string
	// checkLangs is false when there are no languages to check against, which is
	// reported once.
	checkLangs bool
}

func (k *ivrCheck) errorf(path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if k.hint != "" && (strings.HasPrefix(path, "ivr.menus") || strings.HasPrefix(path, "ivr.start")) {
		msg += k.hint
	}
	k.p.errorf(path, "%s", msg)
}

// validateIVR records every problem with the ivr section: languages, timeouts, each menu
// and action, references to menus, languages, queues and targets, and menu trees in which
// a caller who presses nothing (or only wrong keys) would not reach a person.
func (p *parser) validateIVR(c *Config) {
	v := &c.IVR
	k := &ivrCheck{p: p, c: c, langs: map[string]bool{}, menus: map[string]int{}}
	if n, _ := p.find("ivr.menus"); n == nil {
		k.hint = " (in the default menus, which apply because the file has no ivr.menus:)"
	}
	k.languages(v)
	k.checkLangs = len(v.Languages) > 0
	for _, f := range []struct {
		path string
		d    time.Duration
	}{{"ivr.first_digit_timeout", v.FirstDigitTimeout}, {"ivr.inter_digit_timeout", v.InterDigitTimeout}} {
		if f.d <= 0 {
			p.errorf(f.path, "must be greater than 0, got %v", f.d)
		}
	}
	k.retries("ivr.retries", v.Retries)
	k.prompt("ivr.invalid", v.Invalid, true)
	switch a := v.Operator; {
	case a == nil:
		p.errorf("ivr.operator", "required: what 0 does in every menu (route: true, or to: a queue or target)")
	case a.Goto != "" || a.Hangup || !a.Routes():
		p.errorf("ivr.operator", "must route the call (route: true, or to: a queue or target), without goto or hangup: 0 reaches a person from every menu")
	default:
		k.action("ivr.operator", a)
	}

	if len(v.Menus) == 0 {
		p.errorf("ivr.menus", "at least one menu is required")
	}
	for i, m := range v.Menus {
		path := fmt.Sprintf("ivr.menus[%d].name", i)
		switch j, dup := k.menus[m.Name]; {
		case m.Name == "":
			k.errorf(path, "required")
		case !reName.MatchString(m.Name):
			k.errorf(path, "%q may only have lowercase letters, digits, _ and -", m.Name)
		case dup:
			k.errorf(path, "duplicate of ivr.menus[%d] (%s)", j, m.Name)
		default:
			k.menus[m.Name] = i
		}
	}
	if _, ok := k.menus[v.Start]; !ok && len(v.Menus) > 0 {
		if v.Start == "" {
			k.errorf("ivr.start", "required: the name of the first menu")
		} else {
			k.errorf("ivr.start", "undefined menu %q", v.Start)
		}
	}
	for i := range v.Menus {
		k.menu(fmt.Sprintf("ivr.menus[%d]", i), &v.Menus[i])
	}
	k.silence(v)
}

func (k *ivrCheck) languages(v *IVR) {
	p := k.p
	if len(v.Languages) == 0 {
		p.errorf("ivr.languages", "must offer at least one language")
	}
	seen := map[string]int{}
	for i, l := range v.Languages {
		path := fmt.Sprintf("ivr.languages[%d].language", i)
		switch j, dup := seen[l.Language]; {
		case l.Language == "":
			p.errorf(path, "required")
		case !reLanguage.MatchString(l.Language):
			p.errorf(path, "%q is not a language tag like en, es or fr-CA", l.Language)
		case dup:
			p.errorf(path, "duplicate of ivr.languages[%d] (%s)", j, l.Language)
		default:
			seen[l.Language] = i
			k.langs[l.Language] = true
		}
	}
	fb := map[string]string{}
	for i, l := range v.Languages {
		path := fmt.Sprintf("ivr.languages[%d].fallback", i)
		switch {
		case l.Fallback == "":
		case l.Fallback == l.Language:
			p.errorf(path, "a language cannot fall back to itself")
		case !k.langs[l.Fallback]:
			p.errorf(path, "%q is not one of ivr.languages", l.Fallback)
		case seen[l.Language] == i && k.langs[l.Language]: // not a duplicate, reported above
			fb[l.Language] = l.Fallback
		}
	}
	// A chain of fallbacks that comes back to where it started never finds a prompt.
	// Report each cycle once, at the first of its languages in the file.
	reported := map[string]bool{}
	for i, l := range v.Languages {
		if reported[l.Language] {
			continue
		}
		chain := []string{l.Language}
		for next, ok := fb[l.Language]; ok && !slices.Contains(chain, next); next, ok = fb[next] {
			chain = append(chain, next)
		}
		if to, ok := fb[chain[len(chain)-1]]; ok && len(chain) > 1 && to == l.Language {
			for _, c := range chain {
				reported[c] = true
			}
			p.errorf(fmt.Sprintf("ivr.languages[%d].fallback", i), "fallback cycle %s -> %s", strings.Join(chain, " -> "), l.Language)
		}
	}
	if len(v.Languages) > 0 && !k.langs[v.DefaultLanguage] {
		p.errorf("ivr.default_language", "%q is not one of ivr.languages", v.DefaultLanguage)
	}
}

func (k *ivrCheck) retries(path string, n int) {
	if n < 0 || n > maxRetries {
		k.errorf(path, "must be between 0 and %d, got %d", maxRetries, n)
	}
	if node, _ := k.p.find(path); node != nil && node.ShortTag() == "!!float" {
		k.errorf(path, "%q is not a whole number", node.Value)
	}
}

// prompt checks a prompt as written: name or lang/name.
func (k *ivrCheck) prompt(path, ref string, optional bool) {
	lang, name := SplitPrompt(ref)
	switch {
	case ref == "" && optional:
	case ref == "":
		k.errorf(path, "required: a prompt name")
	case !rePrompt.MatchString(name):
		k.errorf(path, "%q is not a prompt name (lowercase letters, digits and _), or lang/name", ref)
	case lang != "" && !k.langs[lang] && k.checkLangs:
		k.errorf(path, "%q: language %q is not one of ivr.languages", ref, lang)
	}
}

func (k *ivrCheck) prompts(path string, refs []string) {
	for i, r := range refs {
		k.prompt(fmt.Sprintf("%s[%d]", path, i), r, false)
	}
}

func (k *ivrCheck) menu(path string, m *Menu) {
	if len(m.Prompts) == 0 {
		k.errorf(path+".prompts", "at least one prompt is required")
	}
	k.prompts(path+".prompts", m.Prompts)
	k.prompts(path+".repeat", m.Repeat)
	if m.FirstDigitTimeout != nil && *m.FirstDigitTimeout <= 0 {
		k.errorf(path+".first_digit_timeout", "must be greater than 0, got %v", *m.FirstDigitTimeout)
	}
	if m.Retries != nil {
		k.retries(path+".retries", *m.Retries)
	}
	if m.Invalid != nil {
		k.prompt(path+".invalid", *m.Invalid, true)
	}
	if m.NoInput == nil {
		k.errorf(path+".no_input", "required: what happens to a caller who presses nothing (they must reach a person)")
	} else {
		k.action(path+".no_input", m.NoInput)
	}
	if c := m.Collect; c != nil {
		k.collect(path+".collect", c)
		if len(m.Keys) > 0 {
			k.errorf(path+".keys", "a collect menu reads digits, not keys: say what follows in collect.then")
		}
		return
	}
	for _, key := range slices.Sorted(maps.Keys(m.Keys)) {
		kp := path + ".keys." + key
		switch {
		case key == "0":
			k.errorf(kp, "0 is reserved: it reaches a person from every menu (see ivr.operator)")
			continue
		case key == "*":
			k.errorf(kp, "* is reserved: it plays the menu again")
			continue
		case len(key) != 1 || !strings.Contains("123456789#", key):
			k.errorf(kp, "%q is not one key: 1-9 or #", key)
			continue
		}
		a := m.Keys[key]
		k.action(kp, &a)
	}
}

func (k *ivrCheck) collect(path string, c *Collect) {
	switch {
	case c.Variable == "":
		k.errorf(path+".variable", "required: the name the digits are stored under")
	case !reVariable.MatchString(c.Variable):
		k.errorf(path+".variable", "%q is not a variable name: a lowercase letter, then lowercase letters, digits and _", c.Variable)
	}
	for _, f := range []string{"min_digits", "max_digits"} {
		if node, _ := k.p.find(path + "." + f); node != nil && node.ShortTag() == "!!float" {
			k.errorf(path+"."+f, "%q is not a whole number", node.Value)
		}
	}
	minOK, maxOK := c.MinDigits >= 0, c.MaxDigits >= 1 && c.MaxDigits <= maxCollected
	if !minOK {
		k.errorf(path+".min_digits", "must be 0 or more, got %d", c.MinDigits)
	}
	if !maxOK {
		k.errorf(path+".max_digits", "must be between 1 and %d, got %d", maxCollected, c.MaxDigits)
	}
	if minOK && maxOK && c.MinDigits > c.MaxDigits {
		k.errorf(path+".min_digits", "must be at most max_digits (%d), got %d", c.MaxDigits, c.MinDigits)
	}
	if c.InterDigitTimeout != nil && *c.InterDigitTimeout <= 0 {
		k.errorf(path+".inter_digit_timeout", "must be greater than 0, got %v", *c.InterDigitTimeout)
	}
	if c.Then == nil {
		k.errorf(path+".then", "required: what happens once the digits are in")
	} else {
		k.action(path+".then", c.Then)
	}
}

// action checks one action's fields and references.
func (k *ivrCheck) action(path string, a *Action) {
	ends := 0
	for _, b := range []bool{a.Goto != "", a.Routes(), a.Hangup} {
		if b {
			ends++
		}
	}
	switch {
	case ends == 0 && len(a.Play) == 0 && a.SetLanguage == "" && a.SetReason == "":
		k.errorf(path, "does nothing: give it goto, route, to, hangup, play, set_language or set_reason")
		return
	case ends > 1:
		k.errorf(path, "can only do one of goto, route (or to) and hangup")
	}
	if a.SetLanguage != "" && !k.langs[a.SetLanguage] && k.checkLangs {
		k.errorf(path+".set_language", "%q is not one of ivr.languages", a.SetLanguage)
	}
	if a.SetReason != "" && !reName.MatchString(a.SetReason) {
		k.errorf(path+".set_reason", "%q may only have lowercase letters, digits, _ and -", a.SetReason)
	}
	k.prompts(path+".play", a.Play)
	if _, ok := k.menus[a.Goto]; a.Goto != "" && !ok {
		k.errorf(path+".goto", "undefined menu %q", a.Goto)
	}
	if a.To != "" && !k.c.QueueOrTarget(a.To) {
		k.errorf(path+".to", "undefined queue or target %q", a.To)
	}
	if a.Hangup && len(a.Play) == 0 {
		k.errorf(path+".hangup", "needs a message to play first (play)")
	}
}

// silence checks that a caller who presses nothing, or only wrong keys until the retries
// run out, reaches a person from every menu: following each menu's no-input action, from
// menu to menu, must end at a route. Each problem is reported once, where it is: a hang-up,
// an action that returns to its own menu, or (at the first of its menus in the file) a
// cycle of gotos.
func (k *ivrCheck) silence(v *IVR) {
	const (
		unknown = iota
		onPath
		good
		bad
	)
	state := make([]int, len(v.Menus))
	// next returns the menu a silent caller goes to from menu i, or -1 when the walk ends
	// there, as good or bad (reporting it).
	next := func(i int) (int, int) {
		path := fmt.Sprintf("ivr.menus[%d].no_input", i)
		a := v.Menus[i].NoInput
		switch {
		case a == nil:
			return -1, bad // reported as required
		case a.Routes():
			return -1, good
		case a.Hangup:
			k.errorf(path+".hangup", "a caller who presses nothing would be hung up: silence must lead to a person (route, or to: a queue or target)")
			return -1, bad
		case a.Goto == "":
			k.errorf(path, "returns to this menu: a caller who presses nothing would hear it forever; add route, to or goto")
			return -1, bad
		}
		j, ok := k.menus[a.Goto]
		if !ok {
			return -1, bad // reported as undefined
		}
		return j, unknown
	}
	for i := range v.Menus {
		var walk []int
		j, end := i, unknown
		for end == unknown {
			switch state[j] {
			case good, bad:
				end = state[j]
				continue
			case onPath:
				cycle := walk[slices.Index(walk, j):]
				first := slices.Min(cycle)
				names := make([]string, 0, len(cycle)+1)
				at := slices.Index(cycle, first)
				for _, m := range slices.Concat(cycle[at:], cycle[:at]) {
					names = append(names, v.Menus[m].Name)
				}
				names = append(names, v.Menus[first].Name)
				k.errorf(fmt.Sprintf("ivr.menus[%d].no_input.goto", first),
					"a caller who presses nothing goes round %s and never reaches a person", strings.Join(names, " -> "))
				end = bad
				continue
			}
			state[j] = onPath
			walk = append(walk, j)
			var n int
			if n, end = next(j); end == unknown {
				j = n
			}
		}
		for _, m := range walk {
			state[m] = end
		}
	}
}
