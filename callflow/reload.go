package callflow

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/hotline-project/hotline/config"
)

// ReloadMetrics counts reloads (metrics.Reloads implements it).
type ReloadMetrics interface {
	Reloaded(ok bool, at time.Time)
}

// Reloader reloads the configuration file on request (SIGHUP, the admin API): it builds a
// new snapshot, reconfigures the queue engine, and swaps the snapshot in; any failure
// leaves the running configuration as it was. Calls in progress keep their snapshot;
// callers waiting in a queue the new configuration removed are routed again.
type Reloader struct {
	Path      string               // "" for the embedded configuration
	Overrides func(*config.Config) // applied to every loaded file (the command line's flags)
	Flow      *Flow
	Metrics   ReloadMetrics
	OnSelect  func(menu, key string)
	Logger    *slog.Logger

	mu sync.Mutex // one reload at a time
}

// errNoChange is not an error: the file is the configuration in force.
var errNoChange = errors.New("configuration unchanged")

// Reload loads the file again and puts it in force. The settings that only a restart can
// change (listen addresses, transports, media ports) keep their running values, with a
// warning.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.Flow.clock.Now()
	err := r.reloadLocked()
	switch {
	case errors.Is(err, errNoChange):
		r.Logger.Info("configuration reloaded: unchanged")
		r.Metrics.Reloaded(true, now)
		return nil
	case err != nil:
		r.Logger.Error("configuration reload failed; the running configuration stays in force", "err", err)
		r.Metrics.Reloaded(false, now)
		return err
	}
	r.Metrics.Reloaded(true, now)
	return nil
}

func (r *Reloader) reloadLocked() error {
	cfg, err := LoadConfig(r.Path)
	if err != nil {
		return err
	}
	if r.Overrides != nil {
		r.Overrides(cfg)
	}
	f := r.Flow
	old := f.live.Load()
	for _, s := range restartOnly(old.Config, cfg) {
		r.Logger.Warn("configuration reload: this setting changes only on restart; keeping the running value", "setting", s)
	}
	keepRestartOnly(old.Config, cfg)
	if reflect.DeepEqual(old.Config, cfg) {
		return errNoChange
	}
	snap, err := Build(cfg, f.clock.Now(), r.OnSelect)
	if err != nil {
		return err
	}
	if err := f.Reconfigure(snap); err != nil {
		return err
	}
	r.Logger.Info("configuration reloaded", "file", r.Path, "lines", len(cfg.Lines), "queues", len(cfg.Queues),
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
		{"security", a.Security, b.Security}, {"records", a.Records, b.Records},
		{"state", a.State, b.State}} {
		if !reflect.DeepEqual(f.x, f.y) {
			diff = append(diff, f.name)
		}
	}
	return diff
}

// keepRestartOnly copies the restart-only settings of running into next.
func keepRestartOnly(running, next *config.Config) {
	next.SIP, next.HTTP, next.Media, next.Admin = running.SIP, running.HTTP, running.Media, running.Admin
	next.Security, next.Records, next.State = running.Security, running.Records, running.State
}

// Reconfigure puts snap in force: the queue engine takes its queues and advocates,
// advocates it added whose phones are registered come online, and callers waiting in a
// queue it removed are routed again (the engine keeps a removed queue's callers, but
// nobody new joins it).
func (f *Flow) Reconfigure(snap *Snapshot) error {
	now := f.clock.Now()
	acts, err := f.eng.Reconfigure(QueueConfig(snap.Config), now)
	if err != nil {
		return fmt.Errorf("queues: %w", err)
	}
	f.live.Store(snap)
	f.exec(acts)
	for _, a := range snap.Config.Advocates {
		if len(f.contacts.Contacts(a.ID)) > 0 {
			if acts, err := f.eng.AdvocateOnline(a.ID, now); err == nil {
				f.exec(acts)
			}
		}
	}
	f.mu.Lock()
	var moved []*Call
	for _, c := range f.calls {
		if _, waiting := f.eng.Waited(c.ID, now); waiting && !snap.hasQueue(c.queue) {
			moved = append(moved, c)
		}
	}
	f.mu.Unlock()
	for _, c := range moved {
		menu := c.menuRoute
		if _, target := snap.Table.TargetURI(menu); !target && !snap.hasQueue(menu) {
			menu = "" // the queue the menus named is gone too: routing decides
		}
		dec := f.route(snap.Table, c.attrs, menu, now)
		c.reroute(snap, dec)
	}
	return nil
}
