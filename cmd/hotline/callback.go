package main

import (
	"errors"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/hotline-project/hotline/admin"
	"github.com/hotline-project/hotline/callback"
	"github.com/hotline-project/hotline/callflow"
	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/state"
)

// callbackKeys loads the keys callbacks' numbers are sealed with (README "Safe
// callbacks"): callback.key_file if set, else state.dir/callback.key (made at first
// start), else, with the state in memory only, a key of this run only.
func callbackKeys(cfg *config.Config, log *slog.Logger) (*callback.Keyring, error) {
	path, generate := cfg.Callback.KeyFile, false
	if path == "" {
		dir := cfg.StateDir()
		if dir == "" {
			return callback.Generate(), nil
		}
		path, generate = filepath.Join(dir, "callback.key"), true
	}
	k, created, err := callback.Load(path, generate)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("generated the key callbacks' numbers are sealed with; keep it with the state directory", "file", path)
	}
	return k, nil
}

// callbacks returns the store of pending callbacks (nil without a state store: they are
// kept in memory only) and those pending before the restart.
func (d *durable) callbacks(now time.Time) (callflow.CallbackStore, []callflow.CallbackRequest) {
	if d == nil {
		return nil, nil
	}
	st, _ := d.store.State()
	var rs []callflow.CallbackRequest
	for id, cb := range st.Callbacks {
		if node := st.CallbackNodes[id]; d.cl != nil && node != "" && node != d.cl.node {
			continue // another node's to run (README "Cluster")
		}
		if now.Before(cb.Expires) {
			rs = append(rs, callflow.CallbackRequest(cb))
		}
	}
	if len(rs) > 0 {
		d.log.Info("state: pending callbacks restored", "callbacks", len(rs))
	}
	return durableCallbacks{d}, rs
}

// durableCallbacks writes pending callbacks to the state log: the number only sealed.
type durableCallbacks struct{ d *durable }

func (c durableCallbacks) Put(r callflow.CallbackRequest) {
	cb := state.Callback(r)
	c.d.store.Submit(state.Op{Kind: state.KindCallback, Callback: &cb})
}

func (c durableCallbacks) Delete(id string) {
	c.d.store.Submit(state.Op{Kind: state.KindCallback, Callback: &state.Callback{ID: id}, Delete: true})
}

// callbacksAPI is the admin API's view of the pending callbacks.
type callbacksAPI struct{ f *callflow.Flow }

func (a callbacksAPI) List() any { return a.f.Callbacks() }

func (a callbacksAPI) Cancel(id string) error {
	err := a.f.CancelCallback(id)
	if errors.Is(err, callflow.ErrNoCallback) {
		return admin.ErrNoCallback
	}
	return err
}

// queueNames are the configured queues' names, for the metrics' zeroes.
func queueNames(cfg *config.Config) []string {
	names := make([]string, 0, len(cfg.Queues))
	for _, q := range cfg.Queues {
		names = append(names, q.Name)
	}
	return names
}

// drainable is the SIP server as the drainer sees it, with the callbacks: draining also
// stops new callbacks, and a callback in a call (which has no inbound leg) is a call in
// progress that the drain waits for.
type drainable struct {
	srv  callflow.Drainable
	flow *callflow.Flow
}

func (d drainable) Drain() {
	d.flow.DrainCallbacks()
	d.srv.Drain()
}

func (d drainable) ActiveCalls() int { return d.srv.ActiveCalls() + d.flow.CallbacksInProgress() }
