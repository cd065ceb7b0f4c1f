package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/hotline-project/hotline/callflow"
	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/queue"
	"github.com/hotline-project/hotline/records"
	"github.com/hotline-project/hotline/registrar"
	"github.com/hotline-project/hotline/routing"
	"github.com/hotline-project/hotline/state"
)

// durable links the live objects (registrar, queue engine, overrides) to the state log
// (package state), so that a restart keeps what they hold. A nil *durable (state.dir:
// none) does nothing.
type durable struct {
	store *state.Store
	log   *slog.Logger
	eng   func() *queue.Engine

	mu   sync.Mutex
	last map[string]state.Advocate // as last submitted
	// quiet counts, by advocate, another node's changes being applied here: the state
	// they cause is noted in last, not written back.
	quiet map[string]int

	cl  *clusterState          // nil for a single node (cluster.go)
	mem *callflow.MemoryPlaces // the kept places in memory (places)
}

// openState opens the state log in cfg's state directory; nil when it is "none".
func openState(ctx context.Context, cfg *config.Config, log *slog.Logger, m *state.Metrics, cm func() *clusterMetrics) (*durable, error) {
	dir := cfg.StateDir()
	if dir == "" {
		log.Warn("state.dir is none: a restart forgets registrations, pauses and overrides")
		return nil, nil
	}
	start := time.Now()
	d := &durable{log: log, last: map[string]state.Advocate{}, quiet: map[string]int{}}
	o := state.Options{Dir: dir, Logger: log, OnCommit: func(took time.Duration, err error) {
		m.OnCommit(took, err)
		if err != nil && d.cl != nil {
			d.cl.forgetPending() // what failed will not come back through the log
		}
	}}
	if cl := cfg.State.Cluster; cl.NodeID != "" {
		secret, err := clusterSecret(cl)
		if err != nil {
			return nil, err
		}
		d.cl = &clusterState{node: cl.NodeID, grace: cl.QuorumGrace, metrics: cm(),
			held: map[string]heldClaim{}, elsewhere: map[string]bool{}, pending: map[string]int{}, waiters: map[string]time.Time{}}
		if d.cl.grace <= 0 {
			d.cl.grace = 3 * time.Second
		}
		o.NodeID, o.Bind, o.Peers, o.Secret, o.OnApply = cl.NodeID, cl.Bind, cl.Join, secret, d.onApply
		if cfg.Safety.KeepPlace > 0 && cfg.Records.HashKeyFile == "" && os.Getenv(records.KeyEnv) == "" {
			// Kept places are found by the keyed hash of the caller's number: with a key
			// generated per node, a caller who redials through another node is a stranger.
			log.Warn("cluster: records.hash_key_file is not set, so this node hashes callers' numbers with a key of its own: " +
				"a place kept through another node is not found here; give every node the same key file")
		}
		if cfg.CallbacksEnabled() && cfg.Callback.KeyFile == "" {
			// The default key file is generated in this node's state directory: a node
			// replaced from scratch could not open the callbacks it had booked.
			log.Warn("cluster: callback.key_file is not set, so this node seals callback numbers with a key of its own: " +
				"give every node the same key file, or a replaced node cannot call its callers back")
		}
	}
	s, err := state.Open(ctx, o)
	if err != nil {
		return nil, err
	}
	d.store = s
	st := s.Status()
	attrs := []any{"dir", dir, "index", st.AppliedIndex, "took", time.Since(start).Round(time.Millisecond)}
	if d.cl != nil {
		attrs = append(attrs, "node", st.Node, "cluster_addr", s.Addr(), "leader", st.Leader, "members", len(st.Members))
	}
	log.Info("state opened", attrs...)
	return d, nil
}

// close writes what is pending and closes the log.
func (d *durable) close() {
	if d == nil {
		return
	}
	wait := 10 * time.Second
	if d.cl != nil && d.store.Status().Leader == "" {
		wait = 2 * time.Second // no leader to take what is pending: do not wait for one
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := d.store.Close(ctx); err != nil {
		d.log.Error("state not closed cleanly", "err", err)
	}
}

// registrations is for registrar.Options.OnChange.
func (d *durable) registrations() func(string, []registrar.Binding) {
	if d == nil {
		return nil
	}
	return func(aor string, bs []registrar.Binding) {
		if d.cl != nil && onlyLapsed(d.store.Bindings(aor), bs, time.Now()) {
			// Bindings that lapsed: every node's log drops them by itself. Writing their
			// removal could land after a refresh made through another node, and undo it.
			return
		}
		d.submit(state.Op{Kind: state.KindBindings, AOR: aor, Bindings: bs})
	}
}

// onlyLapsed reports whether next is prev less bindings lapsed by now.
func onlyLapsed(prev, next []registrar.Binding, now time.Time) bool {
	if len(next) >= len(prev) {
		return false
	}
	same := func(a registrar.Binding) func(registrar.Binding) bool {
		return func(b registrar.Binding) bool {
			return a.Contact == b.Contact && a.CallID == b.CallID && a.CSeq == b.CSeq && a.Expires.Equal(b.Expires)
		}
	}
	for _, b := range prev {
		if !slices.ContainsFunc(next, same(b)) && b.Expires.After(now) {
			return false
		}
	}
	for _, n := range next {
		if !slices.ContainsFunc(prev, same(n)) {
			return false
		}
	}
	return true
}

// restore puts the state kept before the restart back: overrides still in force, paused
// advocates paused, bindings not lapsed (their advocates online, through presence),
// logged-out advocates logged out. Then it has later changes written to the log.
func (d *durable) restore(now time.Time, reg *registrar.Registrar, ov *routing.Overrides, presence func(string, bool)) {
	if d == nil {
		return
	}
	st, _ := d.store.State()
	index := d.store.Status().AppliedIndex
	eng := d.eng()
	var nov, npaused, nout int
	for _, o := range st.Overrides {
		if o.Until.IsZero() || now.Before(o.Until) {
			if _, _, err := ov.Set(o); err == nil {
				nov++
			}
		}
	}
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range st.Advocates {
			if !yield(id) {
				return
			}
		}
	})
	for _, id := range ids {
		a := st.Advocates[id]
		d.last[id] = a
		if a.Paused {
			if _, err := eng.Pause(id, a.PauseReason, now); err != nil {
				d.log.Warn("state: a paused advocate is no longer configured", "advocate", id, "err", err)
				continue
			}
			npaused++
		}
	}
	var bs []registrar.Binding
	for _, aor := range slices.Sorted(func(yield func(string) bool) {
		for aor := range st.Bindings {
			if !yield(aor) {
				return
			}
		}
	}) {
		bs = append(bs, st.Bindings[aor]...)
	}
	evs := reg.Restore(now, bs)
	for _, e := range evs {
		presence(e.AOR, e.Online)
	}
	for _, id := range ids {
		if a := st.Advocates[id]; a.LoggedOut && reg.Online(id) {
			if _, err := eng.Logout(id, now); err == nil {
				nout++
			}
		}
	}
	ov.OnChange(func(os []routing.Override) {
		d.submit(state.Op{Kind: state.KindOverrides, Overrides: os})
	})
	d.log.Info("state restored", "index", index, "registered_advocates", len(evs), "paused", npaused,
		"logged_out", nout, "overrides", nov)
}

// advocateChanged writes the advocate's state to the log if what a restart keeps of it
// changed (not every ring: ringing, on a call and available are not written).
func (d *durable) advocateChanged(id string) {
	if d == nil {
		return
	}
	d.mu.Lock() // the snapshot and the submit in one order
	defer d.mu.Unlock()
	for _, a := range d.eng().Snapshot(time.Now()).Advocates {
		if a.ID != id {
			continue
		}
		rec := state.Advocate{ID: id, Paused: a.PauseReason != "", PauseReason: a.PauseReason,
			LoggedOut: a.Registered && a.State == queue.Offline, WrapUpEnds: a.WrapUpEnds}
		if old, ok := d.last[id]; ok && old == rec {
			return
		}
		d.last[id] = rec
		if d.quiet[id] > 0 {
			return // another node's change, applied here: it is in the log already
		}
		d.submit(state.Op{Kind: state.KindAdvocate, Advocate: &rec})
		return
	}
}

// places returns the kept places of callers (safety.keep_place), in memory and in the
// log, with those kept before the restart back; nil without a store (the flow keeps them
// in memory only).
func (d *durable) places(now time.Time) callflow.Places {
	if d == nil {
		return nil
	}
	mem := callflow.NewMemoryPlaces()
	st, _ := d.store.State()
	n := 0
	for key, sl := range st.Slots {
		var p callflow.Place
		if !now.Before(sl.Expires) || json.Unmarshal(sl.Place, &p) != nil {
			continue
		}
		if err := mem.Keep(context.Background(), key, p, sl.Expires); err == nil {
			n++
		}
	}
	if n > 0 {
		d.log.Info("state: callers' kept places restored", "places", n)
	}
	d.mem = mem
	return durablePlaces{mem, d}
}

// durablePlaces is callflow.MemoryPlaces that also writes each place kept and taken to
// the state log; places whose window ended are dropped by the log itself.
type durablePlaces struct {
	*callflow.MemoryPlaces
	d *durable
}

// Keep implements callflow.Places.
func (p durablePlaces) Keep(ctx context.Context, key string, pl callflow.Place, until time.Time) error {
	if err := p.MemoryPlaces.Keep(ctx, key, pl, until); err != nil {
		return err
	}
	raw, err := json.Marshal(pl)
	if err != nil {
		return fmt.Errorf("kept place: %w", err)
	}
	p.d.submit(state.Op{Kind: state.KindSlot, Slot: &state.Slot{Key: key, Queue: pl.Queue,
		Priority: pl.Dec.Priority, Since: pl.Since, Expires: until, Place: raw}})
	return nil
}

// Take implements callflow.Places.
func (p durablePlaces) Take(ctx context.Context, key string, now time.Time) (callflow.Place, bool, error) {
	pl, ok, err := p.MemoryPlaces.Take(ctx, key, now)
	if ok {
		p.d.submit(state.Op{Kind: state.KindSlot, Slot: &state.Slot{Key: key}, Delete: true})
	}
	return pl, ok, err
}

// sync waits until the changes made so far are on disk.
func (d *durable) sync(ctx context.Context) error {
	if d == nil {
		return nil
	}
	return d.store.Sync(ctx)
}

// withState returns the queue engine's observer o, also writing advocates' state changes
// when d is not nil.
func withState(o queue.Observer, d *durable) queue.Observer {
	if d == nil {
		return o
	}
	return observer{o, d}
}

// observer is the queue engine's observer that also writes advocates' state changes.
type observer struct {
	queue.Observer
	d *durable
}

func (o observer) StateChanged(id string, from, to queue.State) {
	o.Observer.StateChanged(id, from, to)
	o.d.advocateChanged(id)
	o.d.claimState(id, to)
}

// durableAdmin answers a change made through the admin API (anything but GET and HEAD)
// only once it is on disk: a 2xx means the change survives a restart. If it could not be
// saved, the answer is 503 (the change is in force, but a restart would lose it).
func durableAdmin(h http.Handler, d *durable) http.Handler {
	if d == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			h.ServeHTTP(w, r)
			return
		}
		bw := &bufferedWriter{header: http.Header{}, status: http.StatusOK}
		h.ServeHTTP(bw, r)
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		if err := d.sync(ctx); err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf("the change is in force but not saved: a restart would lose it: %v", err)})
			return
		}
		for k, v := range bw.header {
			w.Header()[k] = v
		}
		w.WriteHeader(bw.status)
		_, _ = w.Write(bw.body.Bytes())
	})
}

// bufferedWriter holds a response until it may be sent.
type bufferedWriter struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }

func (b *bufferedWriter) WriteHeader(code int) {
	if !b.wrote {
		b.status, b.wrote = code, true
	}
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	b.wrote = true
	return b.body.Write(p)
}
