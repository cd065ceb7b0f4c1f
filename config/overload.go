package config

import "time"

// Overload configures overload control for call set-up (sip.overload): when new calls
// cannot be set up in time, further INVITEs are answered 503 with Retry-After at once, so
// the carrier retries later or elsewhere instead of waiting on a server that would answer
// them seconds late, and the calls in progress keep their quality. It applies to every
// source, trusted_sources too: it protects every call, whoever brought it. Any bound set
// to 0 is off. The last three signals are judged every 100 ms, and only on a tick with
// enough samples (20 set-ups, 100 scheduler slots, 1,000 waits): overload is a matter of
// hundreds of set-ups a second, not of a few slow ones.
type Overload struct {
	// MaxPending is the most set-ups in flight (INVITEs taken but not yet answered, ringing
	// ones included); beyond it new INVITEs are shed. 0..100000; default 200.
	MaxPending int `yaml:"max_pending"`
	// MaxSetupLatency: when more than 10 % of the set-ups of a 100 ms tick took longer than
	// this, the share of new calls admitted is halved (and grows back each calm tick, by a
	// fiftieth for 2 s, then by a tenth). 0 or 1ms..10s; default 100ms.
	MaxSetupLatency time.Duration `yaml:"max_setup_latency"`
	// MaxSchedulerLateness: the same when more than 1 % of the media scheduler's slots, in
	// each of two ticks in a row (a single stall is not overload), started later than this:
	// the machine's CPU cannot keep up with the audio of the calls in progress. 0 or
	// 1ms..1s; default 20ms.
	MaxSchedulerLateness time.Duration `yaml:"max_scheduler_lateness"`
	// MaxCPUWait: the same when more than 1 % of the times goroutines waited for a CPU (the
	// Go scheduler's latency), in each of two ticks in a row, were longer than this: the
	// machine is too busy, and new INVITEs wait unseen before their handler runs. 0 or
	// 1ms..1s; default 20ms.
	MaxCPUWait time.Duration `yaml:"max_cpu_wait"`
	// MaxSetupRate is the most new calls a second admitted (over the last 100 ms, 10 % of
	// jitter tolerated; more are shed, spread evenly): the rate this machine was measured to
	// set up in time (bench/run rate). 0 (off, the default) or 1..100000.
	MaxSetupRate int `yaml:"max_setup_rate"`
	// RetryAfter is the Retry-After of the 503, in whole seconds; 1s..1h; default 5s.
	RetryAfter time.Duration `yaml:"retry_after"`
}

// defaultOverload are sip.overload's defaults.
func defaultOverload() Overload {
	return Overload{MaxPending: 200, MaxSetupLatency: 100 * time.Millisecond,
		MaxSchedulerLateness: 20 * time.Millisecond, MaxCPUWait: 20 * time.Millisecond, RetryAfter: 5 * time.Second}
}

// overloadWholeNumbers are sip.overload's int fields, for checkWholeNumbers.
var overloadWholeNumbers = []string{"sip.overload.max_pending", "sip.overload.max_setup_rate"}

func (p *parser) validateOverload(o *Overload) {
	const path = "sip.overload"
	if o.MaxPending < 0 || o.MaxPending > 100_000 {
		p.errorf(path+".max_pending", "must be 0 (off) or up to 100000, got %d", o.MaxPending)
	}
	if o.MaxSetupLatency != 0 && (o.MaxSetupLatency < time.Millisecond || o.MaxSetupLatency > 10*time.Second) {
		p.errorf(path+".max_setup_latency", "must be 0 (off) or between 1ms and 10s, got %v", o.MaxSetupLatency)
	}
	if o.MaxSchedulerLateness != 0 && (o.MaxSchedulerLateness < time.Millisecond || o.MaxSchedulerLateness > time.Second) {
		p.errorf(path+".max_scheduler_lateness", "must be 0 (off) or between 1ms and 1s, got %v", o.MaxSchedulerLateness)
	}
	if o.MaxCPUWait != 0 && (o.MaxCPUWait < time.Millisecond || o.MaxCPUWait > time.Second) {
		p.errorf(path+".max_cpu_wait", "must be 0 (off) or between 1ms and 1s, got %v", o.MaxCPUWait)
	}
	if o.MaxSetupRate < 0 || o.MaxSetupRate > 100_000 {
		p.errorf(path+".max_setup_rate", "must be 0 (off) or up to 100000 calls a second, got %d", o.MaxSetupRate)
	}
	if o.RetryAfter < time.Second || o.RetryAfter > time.Hour || o.RetryAfter%time.Second != 0 {
		p.errorf(path+".retry_after", "must be whole seconds between 1s and 1h, got %v", o.RetryAfter)
	}
}
