package config

import "path/filepath"

// State configures where a node keeps the state that must survive a restart:
// registrations, advocates' pauses and logouts, emergency overrides (package state).
type State struct {
	// Dir is the directory of the state's log and snapshots. "" (the default) puts it
	// next to the records: records.path + ".state" with driver sqlite, "hotline-state"
	// (relative to the working directory) otherwise. "none" keeps the state in memory
	// only: a restart forgets it.
	Dir string `yaml:"dir"`
}

// StateDir returns the state directory, or "" when the state is kept in memory only.
func (c *Config) StateDir() string {
	switch {
	case c.State.Dir == "none":
		return ""
	case c.State.Dir != "":
		return c.State.Dir
	case c.Records.Driver == "sqlite" && c.Records.Path != "":
		return c.Records.Path + ".state"
	}
	return "hotline-state"
}

// validateState records problems with the state section.
func (p *parser) validateState(s *State) {
	if s.Dir != "" && s.Dir != "none" && filepath.Clean(s.Dir) == "/" {
		p.errorf("state.dir", "must not be the root directory")
	}
}
