package config

import (
	"fmt"
	"slices"
	"time"
)

// Safety configures what protects a caller who may be watched, on a borrowed or monitored
// phone, or cut off (issue 16): the quick-exit key, the optional "is it safe to talk?"
// step that tells callers about it, and keeping one's place after a dropped call.
type Safety struct {
	// QuickExitKey ends the call at once, with no prompt after it, from the menus, on
	// hold and while an advocate's phone rings (and in the bridge on lines that set
	// quick_exit_in_bridge). One of 1-9, # or A-D; "" turns it off. Default "#": no
	// default menu uses it, it is never a menu choice a prompt reads out, and it is the
	// key public safety guidance names. It may not be a key of any menu (0 and * never
	// can be: they are the operator and repeat keys everywhere), nor, when a collect menu
	// exists, a digit or the # that ends a number.
	QuickExitKey string `yaml:"quick_exit_key"`
	// Prompts are played as the "is it safe to talk?" step: prompt names (or lang/name)
	// inserted into Menu's prompts when a caller enters it, telling them that the
	// quick-exit key ends the call at any time. Empty (the default) plays none. The
	// default recordings, safe_to_talk, name the # key.
	Prompts []string `yaml:"prompts"`
	// Menu is the menu whose prompts the step joins; "" is ivr.start.
	Menu string `yaml:"menu"`
	// After is how many of the menu's own prompts play before the step: 0 plays it
	// first; default 1 (after the greeting). At most the menu's number of prompts.
	After int `yaml:"after"`
	// KeepPlace is how long a caller whose call dropped while waiting in a queue keeps
	// their place: calling again from the same number within it puts them back in the
	// same queue with the same priority and original arrival time. 0 turns it off;
	// default 10m; at most 24h. Callers are recognised by their keyed hash only
	// (records.hash_key_file); withheld or anonymous numbers never match.
	KeepPlace time.Duration `yaml:"keep_place"`
}

// defaultSafety is the safety section's defaults.
func defaultSafety() Safety {
	return Safety{QuickExitKey: "#", After: 1, KeepPlace: 10 * time.Minute}
}

// QuickExit returns the quick-exit key, and false when there is none.
func (s *Safety) QuickExit() (rune, bool) {
	if len(s.QuickExitKey) != 1 {
		return 0, false
	}
	return rune(s.QuickExitKey[0]), true
}

// SafetyMenus returns the menus with the safety step's prompts inserted into its menu.
// The result shares nothing with c that the caller could change.
func (c *Config) SafetyMenus() IVR {
	v := c.IVR
	s := &c.Safety
	if len(s.Prompts) == 0 {
		return v
	}
	name := s.Menu
	if name == "" {
		name = v.Start
	}
	v.Menus = slices.Clone(v.Menus)
	for i := range v.Menus {
		m := &v.Menus[i]
		if m.Name != name {
			continue
		}
		at := min(max(s.After, 0), len(m.Prompts))
		m.Prompts = slices.Concat(m.Prompts[:at:at], s.Prompts, m.Prompts[at:])
		break
	}
	return v
}

// validateSafety records problems with the safety section and the lines' bridge setting.
func (p *parser) validateSafety(c *Config) {
	s := &c.Safety
	if k := s.QuickExitKey; k != "" {
		switch {
		case len(k) != 1 || !isQuickExitKey(k[0]):
			p.errorf("safety.quick_exit_key", "%q is not one of 1-9, #, A-D (or \"\" for none); 0 and * are the operator and repeat keys", k)
		default:
			p.checkQuickExitClash(c, k)
		}
	}
	for i, ref := range s.Prompts {
		lang, name := SplitPrompt(ref)
		if !rePrompt.MatchString(name) || (lang != "" && !reLanguage.MatchString(lang)) {
			p.errorf(fmt.Sprintf("safety.prompts[%d]", i), "%q is not a prompt name or lang/name", ref)
		}
	}
	menu := s.Menu
	if menu == "" {
		menu = c.IVR.Start
	}
	idx := slices.IndexFunc(c.IVR.Menus, func(m Menu) bool { return m.Name == menu })
	switch {
	case len(s.Prompts) == 0:
	case idx < 0:
		p.errorf("safety.menu", "no menu is named %q", menu)
	case s.After < 0 || s.After > len(c.IVR.Menus[idx].Prompts):
		p.errorf("safety.after", "must be 0..%d (the prompts of menu %q), got %d", len(c.IVR.Menus[idx].Prompts), menu, s.After)
	}
	if s.KeepPlace < 0 || s.KeepPlace > 24*time.Hour {
		p.errorf("safety.keep_place", "must be 0 (off) up to 24h, got %v", s.KeepPlace)
	}
	for i, l := range c.Lines {
		if l.QuickExitInBridge && s.QuickExitKey == "" {
			p.errorf(fmt.Sprintf("lines[%d].quick_exit_in_bridge", i), "set, but safety.quick_exit_key is \"\" (no quick-exit key)")
		}
	}
}

func isQuickExitKey(b byte) bool {
	return ('1' <= b && b <= '9') || b == '#' || ('A' <= b && b <= 'D')
}

// checkQuickExitClash refuses a quick-exit key that a menu also uses: a key of any menu
// (the menus are the same tree in every language), or, in a collect menu, a digit or
// the # that ends the number.
func (p *parser) checkQuickExitClash(c *Config, k string) {
	for i, m := range c.IVR.Menus {
		if _, ok := m.Keys[k]; ok {
			path := fmt.Sprintf("ivr.menus[%d].keys.%s", i, k)
			p.errorf("safety.quick_exit_key", "%q is also a key of menu %q (%s:%d: %s); choose another key or menu key",
				k, m.Name, p.file, p.lineOf(path), path)
		}
		if m.Collect != nil && (k == "#" || ('1' <= k[0] && k[0] <= '9')) {
			path := fmt.Sprintf("ivr.menus[%d].collect", i)
			p.errorf("safety.quick_exit_key", "%q is also typed in collect menu %q (%s:%d: %s), as a digit or the # that ends the number; choose another key (A-D) or \"\"",
				k, m.Name, p.file, p.lineOf(path), path)
		}
	}
}
