package main

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/ivr"
	"github.com/hotline-project/hotline/metrics"
	"github.com/hotline-project/hotline/prompts"
	"github.com/hotline-project/hotline/queue"
	"github.com/hotline-project/hotline/routing"
	"github.com/hotline-project/hotline/sip/digest"
)

// snapshot is everything the server derives from one configuration: the menus, the prompts,
// the routing table, the queues' settings and the advocates' accounts. It never changes once
// built; a reload builds a new one and swaps it in, and a call keeps the snapshot it started
// with until it ends.
type snapshot struct {
	cfg      *config.Config
	prompts  *prompts.Catalogue
	menus    *ivr.Engine
	table    *routing.Table
	settings func(queue string) config.QueueSettings
	accounts map[string]digest.HA1
	decoy    digest.HA1 // the shape of a typical account, challenged for unknown user names
	loaded   time.Time
}

// buildSnapshot does everything that can fail with a configuration, so that a bad one is
// refused before anything changes.
func buildSnapshot(cfg *config.Config, now time.Time, onSelect func(menu, key string)) (*snapshot, error) {
	cat, _, err := loadPrompts(cfg)
	if err != nil {
		return nil, err
	}
	menus, err := ivr.New(&cfg.IVR, ivr.Options{Prompts: cat, OnSelect: onSelect})
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
	return &snapshot{cfg: cfg, prompts: cat, menus: menus, table: table, settings: queueSettings(cfg),
		accounts: accounts, decoy: digest.Typical(accounts), loaded: now}, nil
}

// reloader reloads the configuration file on request (SIGHUP, the admin API): it builds a
// new snapshot, reconfigures the queue engine, and swaps the snapshot in; any failure leaves
// the running configuration as it was.
type reloader struct {
	path      string // "" for the embedded configuration
	overrides func(*config.Config)
	live      *atomic.Pointer[snapshot]
	eng       *queue.Engine
	disp      *dispatcher
	metrics   *metrics.Reloads
	onSelect  func(menu, key string)
	log       *slog.Logger
	now       func() time.Time

	mu sync.Mutex // one reload at a time
}

// errNoChange is not an error: the file is the configuration in force.
var errNoChange = errors.New("configuration unchanged")

// reload loads the file again and puts it in force. The settings that only a restart can
// change (listen addresses, transports, media ports) keep their running values, with a
// warning.
func (r *reloader) reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.reloadLocked()
	switch {
	case errors.Is(err, errNoChange):
		r.log.Info("configuration reloaded: unchanged")
		r.metrics.Reloaded(true, r.now())
		return nil
	case err != nil:
		r.log.Error("configuration reload failed; the running configuration stays in force", "err", err)
		r.metrics.Reloaded(false, r.now())
		return err
	}
	r.metrics.Reloaded(true, r.now())
	return nil
}

func (r *reloader) reloadLocked() error {
	cfg, err := loadConfig(r.path)
	if err != nil {
		return err
	}
	if r.overrides != nil {
		r.overrides(cfg)
	}
	old := r.live.Load()
	for _, f := range restartOnly(old.cfg, cfg) {
		r.log.Warn("configuration reload: this setting changes only on restart; keeping the running value", "setting", f)
	}
	keepRestartOnly(old.cfg, cfg)
	if reflect.DeepEqual(old.cfg, cfg) {
		return errNoChange
	}
	now := r.now()
	snap, err := buildSnapshot(cfg, now, r.onSelect)
	if err != nil {
		return err
	}
	acts, err := r.eng.Reconfigure(queueConfig(cfg), now)
	if err != nil {
		return fmt.Errorf("queues: %w", err)
	}
	r.live.Store(snap)
	r.disp.exec(acts)
	r.disp.afterReload(snap)
	r.log.Info("configuration reloaded", "file", r.path, "lines", len(cfg.Lines), "queues", len(cfg.Queues),
		"advocates", len(cfg.Advocates))
	return nil
}

// restartOnly lists the sections that differ between a and b and that only a restart can
// change: the SIP server's sockets and timers, the HTTP listener, media ports, the admin
// token, the per-source defences.
func restartOnly(a, b *config.Config) []string {
	var diff []string
	for _, f := range []struct {
		name string
		x, y any
	}{{"sip", a.SIP, b.SIP}, {"http", a.HTTP, b.HTTP}, {"media", a.Media, b.Media}, {"admin", a.Admin, b.Admin},
		{"security", a.Security, b.Security}, {"records", a.Records, b.Records}} {
		if !reflect.DeepEqual(f.x, f.y) {
			diff = append(diff, f.name)
		}
	}
	return diff
}

// keepRestartOnly copies the restart-only settings of running into next.
func keepRestartOnly(running, next *config.Config) {
	next.SIP, next.HTTP, next.Media, next.Admin = running.SIP, running.HTTP, running.Media, running.Admin
	next.Security, next.Records = running.Security, running.Records
}
