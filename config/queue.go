package config

import (
	"fmt"
	"time"
)

// QueueSettings are how a queue rings advocates and what it tells waiting callers. The
// top-level queue_defaults section sets them for every queue; a queue may override each.
type QueueSettings struct {
	// RingAll rings every available advocate who speaks the caller's language at once,
	// instead of the one idle longest; the first to answer takes the call.
	RingAll bool `yaml:"ring_all"`
	// RingTimeout is how long an advocate's phone rings before the next advocate is tried;
	// 5s..120s.
	RingTimeout time.Duration `yaml:"ring_timeout"`
	// WrapUp is how long an advocate has after a call before the next one; 0..30m.
	WrapUp time.Duration `yaml:"wrap_up"`
	// MaxMisses is how many rings in a row an advocate may miss (no answer, busy,
	// declined) before being paused automatically; 0 never pauses; 0..20.
	MaxMisses int `yaml:"max_misses"`
	// ServiceLevel is the wait within which an answered call counts toward the service
	// level in the metrics; >0.
	ServiceLevel time.Duration `yaml:"service_level"`
	// AnnounceEvery is how often a waiting caller hears their position and, when it can
	// be estimated honestly, the expected wait; 0 never; else 15s..10m.
	AnnounceEvery time.Duration `yaml:"announce_every"`
	// Whisper tells the advocate, when they answer and before the caller is put through,
	// the caller's language and reason ("Spanish. Needs help now.").
	Whisper bool `yaml:"whisper"`
}

// QueueOverrides are a queue's own settings; an absent field takes queue_defaults'.
type QueueOverrides struct {
	RingAll       *bool          `yaml:"ring_all,omitempty"`
	RingTimeout   *time.Duration `yaml:"ring_timeout,omitempty"`
	WrapUp        *time.Duration `yaml:"wrap_up,omitempty"`
	MaxMisses     *int           `yaml:"max_misses,omitempty"`
	ServiceLevel  *time.Duration `yaml:"service_level,omitempty"`
	AnnounceEvery *time.Duration `yaml:"announce_every,omitempty"`
	Whisper       *bool          `yaml:"whisper,omitempty"`
}

// defaultQueueSettings are queue_defaults' defaults.
func defaultQueueSettings() QueueSettings {
	return QueueSettings{
		RingTimeout:   20 * time.Second,
		WrapUp:        30 * time.Second,
		MaxMisses:     3,
		ServiceLevel:  60 * time.Second,
		AnnounceEvery: 60 * time.Second,
		Whisper:       true,
	}
}

// apply returns s with o's fields that are set.
func (o QueueOverrides) apply(s QueueSettings) QueueSettings {
	if o.RingAll != nil {
		s.RingAll = *o.RingAll
	}
	if o.RingTimeout != nil {
		s.RingTimeout = *o.RingTimeout
	}
	if o.WrapUp != nil {
		s.WrapUp = *o.WrapUp
	}
	if o.MaxMisses != nil {
		s.MaxMisses = *o.MaxMisses
	}
	if o.ServiceLevel != nil {
		s.ServiceLevel = *o.ServiceLevel
	}
	if o.AnnounceEvery != nil {
		s.AnnounceEvery = *o.AnnounceEvery
	}
	if o.Whisper != nil {
		s.Whisper = *o.Whisper
	}
	return s
}

// Settings returns the settings of queue q: queue_defaults with q's own overrides.
func (c *Config) Settings(q *Queue) QueueSettings {
	return q.QueueOverrides.apply(c.QueueDefaults)
}

// validateQueueSettings records problems with queue_defaults, and with the settings each
// queue sets itself (those it inherits are reported once, under queue_defaults).
func (p *parser) validateQueueSettings(c *Config) {
	p.checkQueueSettings("queue_defaults", c.QueueDefaults, func(string) bool { return true })
	for i := range c.Queues {
		o := c.Queues[i].QueueOverrides
		set := map[string]bool{
			"ring_timeout": o.RingTimeout != nil, "wrap_up": o.WrapUp != nil, "max_misses": o.MaxMisses != nil,
			"service_level": o.ServiceLevel != nil, "announce_every": o.AnnounceEvery != nil,
		}
		p.checkQueueSettings(fmt.Sprintf("queues[%d]", i), c.Settings(&c.Queues[i]), func(k string) bool { return set[k] })
	}
}

// checkQueueSettings checks the fields of s for which check(key) is true.
func (p *parser) checkQueueSettings(path string, s QueueSettings, check func(key string) bool) {
	if check("ring_timeout") && (s.RingTimeout < 5*time.Second || s.RingTimeout > 120*time.Second) {
		p.errorf(path+".ring_timeout", "must be between 5s and 2m, got %v", s.RingTimeout)
	}
	if check("wrap_up") && (s.WrapUp < 0 || s.WrapUp > 30*time.Minute) {
		p.errorf(path+".wrap_up", "must be between 0 and 30m, got %v", s.WrapUp)
	}
	if check("max_misses") && (s.MaxMisses < 0 || s.MaxMisses > 20) {
		p.errorf(path+".max_misses", "must be between 0 and 20, got %d", s.MaxMisses)
	}
	if check("service_level") && s.ServiceLevel <= 0 {
		p.errorf(path+".service_level", "must be greater than 0, got %v", s.ServiceLevel)
	}
	if check("announce_every") && s.AnnounceEvery != 0 && (s.AnnounceEvery < 15*time.Second || s.AnnounceEvery > 10*time.Minute) {
		p.errorf(path+".announce_every", "must be 0 (never) or between 15s and 10m, got %v", s.AnnounceEvery)
	}
}
