package config

// This file holds the routing part of the configuration: queues, external targets,
// schedules, routes (ordered rules) and the admin API. See routing/ for the runtime types.

// Queue is a queue of waiting callers served by advocates.
type Queue struct {
	Name      string   `yaml:"name"`      // [a-z0-9_-]+, unique among queues and targets
	Languages []string `yaml:"languages"` // languages its advocates speak
}

// Target is an external destination, such as a backup center.
type Target struct {
	Name string `yaml:"name"` // [a-z0-9_-]+, unique among queues and targets
	URI  string `yaml:"uri"`  // sip: or sips: URI
}

// Schedule is a set of opening hours in a time zone.
type Schedule struct {
	Name string `yaml:"name"`
}

// Route is one ordered routing rule.
type Route struct {
	Name string `yaml:"name"`
}

// Admin configures the authenticated admin HTTP API.
type Admin struct{}

// validateRouting checks queues, targets, schedules, routes and admin.
func (p *parser) validateRouting(c *Config) {}
