package callflow

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/ivr"
	"github.com/hotline-project/hotline/prompts"
	"github.com/hotline-project/hotline/queue"
	"github.com/hotline-project/hotline/routing"
	"github.com/hotline-project/hotline/sip/digest"
)

// Snapshot is everything the server derives from one configuration: the menus, the
// prompts, the routing table, the queues' settings and the advocates' accounts. It never
// changes once built; a reload builds a new one and swaps it in, and a call keeps the
// snapshot it started with until it ends (or until a reload removes its queue and it is
// routed again with the new one).
type Snapshot struct {
	Config   *config.Config
	Prompts  *prompts.Catalogue
	Menus    Menus
	Table    *routing.Table
	Accounts map[string]digest.HA1
	Decoy    digest.HA1 // the shape of a typical account, challenged for unknown user names
	Loaded   time.Time

	settings func(queue string) config.QueueSettings
}

// Settings returns a queue's settings (queue_defaults for a queue the configuration does
// not have).
func (s *Snapshot) Settings(queue string) config.QueueSettings {
	if s.settings == nil {
		s.settings = queueSettings(s.Config)
	}
	return s.settings(queue)
}

// Build does everything that can fail with a configuration, so that a bad one is refused
// before anything changes. onSelect counts menu selections (nil: not counted).
func Build(cfg *config.Config, now time.Time, onSelect func(menu, key string)) (*Snapshot, error) {
	cat, _, err := LoadPrompts(cfg)
	if err != nil {
		return nil, err
	}
	safety := cfg.SafetyMenus() // the menus with the "is it safe to talk?" step
	menus, err := ivr.New(&safety, ivr.Options{Prompts: cat, OnSelect: onSelect})
	if err != nil {
		return nil, fmt.Errorf("menus: %w", err)
	}
	table, err := routing.Compile(cfg.RoutingSpec())
	if err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	accounts := make(map[string]digest.HA1, len(cfg.Advocates))
	for _, a := range cfg.Advocates {
		accounts[a.ID] = digest.HA1{SHA256: a.HA1SHA256, MD5: a.HA1MD5}
	}
	return &Snapshot{Config: cfg, Prompts: cat, Menus: menus, Table: table, Accounts: accounts,
		Decoy: digest.Typical(accounts), Loaded: now, settings: queueSettings(cfg)}, nil
}

// hasQueue reports whether the snapshot's configuration has the queue.
func (s *Snapshot) hasQueue(name string) bool {
	for _, q := range s.Config.Queues {
		if q.Name == name {
			return true
		}
	}
	return false
}

// QueueConfig maps the configuration's queues and advocates to the queue engine's.
func QueueConfig(cfg *config.Config) queue.Config {
	var qc queue.Config
	for i := range cfg.Queues {
		q := &cfg.Queues[i]
		s := cfg.Settings(q)
		qc.Queues = append(qc.Queues, queue.QueueConfig{
			Name: q.Name, Languages: q.Languages, RingAll: s.RingAll,
			RingTimeout: s.RingTimeout, WrapUp: s.WrapUp, MaxMisses: s.MaxMisses,
		})
	}
	for _, a := range cfg.Advocates {
		qc.Advocates = append(qc.Advocates, queue.AdvocateConfig{ID: a.ID, Name: a.Name, Languages: a.Languages})
	}
	return qc
}

// queueSettings returns a function giving each queue's settings (queue_defaults for a
// queue the configuration no longer has).
func queueSettings(cfg *config.Config) func(string) config.QueueSettings {
	byName := map[string]config.QueueSettings{}
	for i := range cfg.Queues {
		byName[cfg.Queues[i].Name] = cfg.Settings(&cfg.Queues[i])
	}
	return func(name string) config.QueueSettings {
		if s, ok := byName[name]; ok {
			return s
		}
		return cfg.QueueDefaults
	}
}

// LoadConfig loads the configuration file at path, or the embedded default for "".
func LoadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Parse("<embedded>", config.Default())
	}
	return config.Load(path)
}

// PromptReport is what loading the prompts found: the languages that lack recordings of
// their own (played from a fallback), and the prompts no language of the chain has.
type PromptReport struct {
	Missing    []string // lang/name with no recording of its own: played from a fallback
	Unresolved []string // lang/name that cannot be played at all
}

// neededPrompts are the prompt names the configuration plays: the menus', the routes'
// messages, and the words numbers and durations are spoken with in each language.
func neededPrompts(cfg *config.Config, cat *prompts.Catalogue) map[string][]string {
	base := append(cfg.PromptNames(),
		// what waiting callers hear, what a caller hears when a target cannot be reached,
		// and the confirmations of advocates' feature codes
		"you_are_caller_number", "expected_wait", "closed",
		"advocate_available", "advocate_paused", "advocate_logged_out")
	if cfg.MidCall.Enabled() {
		// what the advocate is told when a party cannot be added (midcall.go)
		base = append(base, "party_busy", "party_no_answer", "party_failed", "party_unknown",
			"transfer_none_available", "back_in_queue")
	}
	if cfg.Safety.KeepPlace > 0 {
		base = append(base, "place_kept") // a caller who gets their place back
	}
	if cfg.CallbacksEnabled() {
		// the offer, read-back (num_*), windows, whisper and gate (callback*.go)
		base = append(base, config.CallbackPrompts...)
		base = append(base, "invalid")
		for _, w := range cfg.Callback.Windows {
			base = append(base, w.Prompt)
		}
		for d := range 10 {
			base = append(base, fmt.Sprintf("num_%d", d))
		}
	}
	for _, r := range cfg.Routes {
		if r.Message != "" {
			base = append(base, r.Message)
		}
	}
	need := map[string][]string{}
	for _, lang := range cfg.IVR.LanguageTags() {
		names := slices.Clone(base)
		names = append(names, cat.NumberNames(lang)...)
		slices.Sort(names)
		need[lang] = slices.Compact(names)
	}
	return need
}

// LoadPrompts loads the embedded prompts, overlays the configured directory, applies the
// languages' fallbacks and checks that every prompt the configuration plays resolves in
// every language. Missing-but-resolved prompts are returned in the report for `check`.
func LoadPrompts(cfg *config.Config) (*prompts.Catalogue, PromptReport, error) {
	var rep PromptReport
	cat, err := prompts.LoadEmbedded()
	if err != nil {
		return nil, rep, fmt.Errorf("embedded prompts: %w", err)
	}
	if cfg.Prompts.Dir != "" {
		own, err := prompts.LoadDir(cfg.Prompts.Dir)
		if err != nil {
			return nil, rep, err
		}
		cat = cat.Overlay(own)
	}
	cat, err = cat.WithFallbacks(cfg.IVR.Fallbacks())
	if err != nil {
		return nil, rep, err
	}
	need := neededPrompts(cfg, cat)
	for _, lang := range cfg.IVR.LanguageTags() {
		rep.Missing = append(rep.Missing, cat.Missing([]string{lang}, need[lang])...)
		rep.Unresolved = append(rep.Unresolved, cat.Unresolved([]string{lang}, need[lang])...)
	}
	if len(rep.Unresolved) > 0 {
		return nil, rep, fmt.Errorf("prompts: missing %s (no recording in the language or its fallbacks)",
			strings.Join(rep.Unresolved, ", "))
	}
	return cat, rep, nil
}
