package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hotline-project/hotline/admin"
	"github.com/hotline-project/hotline/callflow"
	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/queue"
	"github.com/hotline-project/hotline/registrar"
	"github.com/hotline-project/hotline/routing"
	"github.com/hotline-project/hotline/state"
)

// A node of a cluster (README "Cluster"). Every node runs its own queue engine over the
// same replicated state: what one node changes (a registration, a pause, an override, a
// kept place) reaches the others through the log and is applied to their live objects
// (onApply). An advocate is rung only after a claim (advocate for call, on this node)
// is committed by a majority (claim); the log's order decides between two nodes that
// want the same advocate, and the loser's engine learns that the advocate is taken
// elsewhere. A node that has had no leader for quorum_grace is isolated: it rings
// nobody and routes callers as to unstaffed queues (overflow), until a leader is back.

// Claim leases: a ring's claim lasts until its deadline plus ringLease; a call's is
// renewed every callRenew for callLease, so that a node that dies holding one frees the
// advocate within callLease (a node that restarts frees its own at once).
const (
	ringLease    = 15 * time.Second
	callLease    = 3 * time.Minute
	callRenew    = time.Minute
	claimTimeout = 3 * time.Second
	// A waiting caller is in the log (for the order of claims across nodes) under a lease
	// renewed every waitRenew, so that a node cut off or dead holds up nobody for longer
	// than waitLease.
	waitLease = 10 * time.Second
	waitRenew = 3 * time.Second
)

// clusterRuntime is what onApply changes; set once serve has built it.
type clusterRuntime struct {
	reg    *registrar.Registrar
	ov     *routing.Overrides
	flow   *callflow.Flow
	places *callflow.MemoryPlaces
	// presence is the SIP side of an advocate's presence (the registrar's events).
	presence func(id string, online bool)
}

// clusterState is a cluster node's part of durable.
type clusterState struct {
	node     string
	grace    time.Duration
	rt       atomic.Pointer[clusterRuntime]
	isolated atomic.Bool
	metrics  *clusterMetrics

	mu sync.Mutex
	// pending counts this node's changes on the way to the log, by what they change
	// (opKey): another node's change to the same thing that comes first in the log is
	// older than this node's live state, and is not applied here.
	pending   map[string]int
	held      map[string]heldClaim // advocate → this node's claim
	waiters   map[string]time.Time // this node's waiting callers in the log → when last written
	elsewhere map[string]bool      // advocates taken through other nodes, as told to the engine
}

type heldClaim struct {
	call   string
	onCall bool
}

// clusterMetrics count claims and say whether the node has its quorum.
type clusterMetrics struct {
	claims *prometheus.CounterVec
	quorum prometheus.Gauge
}

func newClusterMetrics(reg prometheus.Registerer, store func() *state.Store) *clusterMetrics {
	m := &clusterMetrics{
		claims: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hotline_cluster_claims_total",
			Help: "Claims of an advocate for a call (before ringing them), by result: granted, refused (taken through another node), failed (not written: no quorum)."},
			[]string{"result"}),
		quorum: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hotline_cluster_quorum",
			Help: "1 while this node reaches its cluster's leader (or is alone); 0 when it has lost the quorum and routes callers as to unstaffed queues."}),
	}
	for _, r := range []string{"granted", "refused", "failed"} {
		m.claims.WithLabelValues(r)
	}
	m.quorum.Set(1)
	stat := func(f func(*state.Store) float64) func() float64 {
		return func() float64 {
			if s := store(); s != nil {
				return f(s)
			}
			return 0
		}
	}
	reg.MustRegister(m.claims, m.quorum,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hotline_cluster_members",
			Help: "Voters in this node's cluster configuration (1 for a single node)."},
			stat(func(s *state.Store) float64 { return float64(len(s.Status().Members)) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hotline_cluster_forwarded_writes_total",
			Help: "State changes this node sent to the leader to write (it is a follower)."},
			stat(func(s *state.Store) float64 { return float64(s.Forwarded()) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hotline_cluster_refused_connections_total",
			Help: "Connections to the cluster port closed unread: wrong preamble or secret, or more being checked at once than the bound (per source, or in all)."},
			stat(func(s *state.Store) float64 { return float64(s.RefusedConns()) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hotline_state_commit_index",
			Help: "Index of the last raft log entry this node knows committed."},
			stat(func(s *state.Store) float64 { return float64(s.Status().CommitIndex) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hotline_cluster_last_contact_seconds",
			Help: "Seconds since this follower last heard from its leader (0 on the leader and a single node)."},
			stat(func(s *state.Store) float64 { return s.LastContact().Seconds() })),
	)
	return m
}

// clusterSecret reads the cluster's secret: $HOTLINE_CLUSTER_SECRET, or the file; either
// must be at least 16 characters (README "Cluster").
func clusterSecret(c config.Cluster) (string, error) {
	v, from := os.Getenv("HOTLINE_CLUSTER_SECRET"), "$HOTLINE_CLUSTER_SECRET"
	if v == "" {
		if c.SecretFile == "" {
			return "", errors.New("state.cluster: no secret: set state.cluster.secret_file or $HOTLINE_CLUSTER_SECRET")
		}
		b, err := os.ReadFile(c.SecretFile)
		if err != nil {
			return "", fmt.Errorf("state.cluster.secret_file: %w", err)
		}
		v, from = strings.TrimSpace(string(b)), "state.cluster.secret_file "+c.SecretFile
	}
	if len(v) < 16 {
		return "", fmt.Errorf("%s: the secret must be at least 16 characters", from)
	}
	return v, nil
}

// wire gives the cluster the live objects to apply other nodes' changes to, starts
// watching the quorum and the claims, and gives up the claims this node held before a
// restart (its calls are gone).
func (d *durable) wire(ctx context.Context, rt *clusterRuntime) {
	if d == nil || d.cl == nil {
		return
	}
	c := d.cl
	c.rt.Store(rt)
	d.store.Submit(state.Op{Kind: state.KindReleaseNode, Claim: &state.Claim{Node: c.node}})
	d.claimsChanged()
	go d.watchCluster(ctx)
}

// opKey names what op changes, for clusterState.pending; "" for claims.
func opKey(op state.Op) string {
	switch op.Kind {
	case state.KindBindings:
		return "b:" + op.AOR
	case state.KindAdvocate:
		return "a:" + op.Advocate.ID
	case state.KindOverrides:
		return "o"
	case state.KindSlot:
		return "s:" + op.Slot.Key
	}
	return ""
}

// submit writes a change of the live objects' to the log.
func (d *durable) submit(op state.Op) {
	if c := d.cl; c != nil {
		c.mu.Lock()
		c.pending[opKey(op)]++
		c.mu.Unlock()
	}
	d.store.Submit(op)
}

// forgetPending forgets the changes on the way to the log (a write failed).
func (c *clusterState) forgetPending() {
	c.mu.Lock()
	clear(c.pending)
	c.mu.Unlock()
}

// onApply is the store's OnApply: other nodes' changes, and this node's own from before
// a restart, go to the live objects here.
func (d *durable) onApply(e state.Entry, _ uint64) {
	c := d.cl
	rt := c.rt.Load()
	if rt == nil {
		return
	}
	own := e.Node == c.node
	for _, op := range e.Ops {
		k := opKey(op)
		if k == "" {
			continue
		}
		c.mu.Lock()
		n := c.pending[k]
		if own && n > 0 {
			if n == 1 {
				delete(c.pending, k)
			} else {
				c.pending[k] = n - 1
			}
		}
		c.mu.Unlock()
		// Not pending: another node's change, or this node's own from before a restart
		// (raft replays the entries after its last snapshot once it hears from the
		// leader), which its live objects do not have yet either.
		if n == 0 {
			d.applyRemote(rt, op)
		}
	}
	if slices.ContainsFunc(e.Ops, func(op state.Op) bool {
		return op.Kind == state.KindClaim || op.Kind == state.KindRelease || op.Kind == state.KindReleaseNode
	}) {
		d.claimsChanged()
	}
}

// applyRemote applies another node's change (or this node's from before a restart) to
// this node's live objects.
func (d *durable) applyRemote(rt *clusterRuntime, op state.Op) {
	now := time.Now()
	switch op.Kind {
	case state.KindBindings:
		for _, ev := range rt.reg.Replace(now, op.AOR, op.Bindings) {
			d.quietly(ev.AOR, func() { rt.presence(ev.AOR, ev.Online) })
		}
	case state.KindAdvocate:
		a := *op.Advocate
		d.quietly(a.ID, func() {
			var err error
			switch {
			case a.Paused:
				_, err = rt.flow.SetState(a.ID, "paused", a.PauseReason)
			case a.LoggedOut:
				_, err = rt.flow.SetState(a.ID, "offline", "")
			default:
				if cur := d.advocateSnapshot(a.ID); cur != nil && (cur.PauseReason != "" || (cur.Registered && cur.State == queue.Offline)) {
					_, err = rt.flow.SetState(a.ID, "available", "")
				}
			}
			if err != nil {
				d.log.Debug("cluster: another node's advocate state not applied here", "advocate", a.ID, "err", err)
			}
		})
	case state.KindOverrides:
		rt.ov.Replace(op.Overrides)
	case state.KindSlot:
		if op.Delete {
			_, _, _ = rt.places.Take(context.Background(), op.Slot.Key, now)
			return
		}
		var p callflow.Place
		if json.Unmarshal(op.Slot.Place, &p) == nil {
			_ = rt.places.Keep(context.Background(), op.Slot.Key, p, op.Slot.Expires)
		}
	}
}

// quietly runs f with the advocate's state changes noted, not written (durable.quiet).
func (d *durable) quietly(id string, f func()) {
	d.mu.Lock()
	d.quiet[id]++
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		if d.quiet[id]--; d.quiet[id] <= 0 {
			delete(d.quiet, id)
		}
		d.mu.Unlock()
	}()
	f()
}

// advocateSnapshot returns the engine's view of one advocate, or nil.
func (d *durable) advocateSnapshot(id string) *queue.AdvocateSnapshot {
	for _, a := range d.eng().Snapshot(time.Now()).Advocates {
		if a.ID == id {
			return &a
		}
	}
	return nil
}

// claimsChanged tells the engine which advocates other nodes' live claims hold.
func (d *durable) claimsChanged() {
	c := d.cl
	rt := c.rt.Load()
	if rt == nil {
		return
	}
	now := time.Now()
	taken := map[string]bool{}
	for a, cl := range d.store.Claims() {
		if cl.Node != c.node && cl.Until.After(now) {
			taken[a] = true
		}
	}
	c.mu.Lock()
	var changes []string
	for a := range taken {
		if !c.elsewhere[a] {
			changes = append(changes, a)
		}
	}
	for a := range c.elsewhere {
		if !taken[a] {
			changes = append(changes, a)
		}
	}
	c.elsewhere = taken
	c.mu.Unlock()
	slices.Sort(changes)
	for _, a := range changes {
		rt.flow.Elsewhere(a, taken[a])
	}
}

// claim is the call flow's Claim: a single node rings at once; a cluster node only once
// its claim is committed.
func (d *durable) claim() func(ctx context.Context, callID, advocate string, deadline time.Time) error {
	if d == nil || d.cl == nil {
		return nil
	}
	c := d.cl
	return func(ctx context.Context, callID, advocate string, deadline time.Time) error {
		if c.isolated.Load() {
			c.metrics.claims.WithLabelValues("failed").Inc()
			return state.ErrNoLeader
		}
		cctx, cancel := context.WithTimeout(ctx, claimTimeout)
		defer cancel()
		cl := state.Claim{Advocate: advocate, Node: c.node, Call: callID, Until: deadline.Add(ringLease)}
		d.placeInLine(&cl)
		err := d.store.Claim(cctx, cl)
		switch {
		case err == nil:
			c.metrics.claims.WithLabelValues("granted").Inc()
			c.mu.Lock()
			c.held[advocate] = heldClaim{call: callID}
			c.mu.Unlock()
			if ctx.Err() != nil { // the ring was cancelled meanwhile
				d.release(advocate)
			}
			return nil
		case errors.Is(err, state.ErrClaimed):
			c.metrics.claims.WithLabelValues("refused").Inc()
		default:
			c.metrics.claims.WithLabelValues("failed").Inc()
			// It may have been written after all: give it up.
			d.store.Submit(state.Op{Kind: state.KindRelease, Claim: &state.Claim{Advocate: advocate, Node: c.node, Call: callID}})
		}
		return err
	}
}

// placeInLine fills in the claim's call's place in line and the advocate's languages,
// for the order across nodes (state.Claim).
func (d *durable) placeInLine(cl *state.Claim) {
	eng := d.eng()
	for _, w := range eng.Waiting() {
		if w.Call == cl.Call {
			cl.Queue, cl.Priority, cl.Since = w.Queue, w.Priority, w.Since
			break
		}
	}
	if a := d.advocateSnapshot(cl.Advocate); a != nil {
		cl.Languages = a.Languages
	}
}

// syncWaiting writes this node's waiting callers to the log: those new, leases due for
// renewal, and those gone.
func (d *durable) syncWaiting(now time.Time) {
	c := d.cl
	var ops []state.Op
	seen := map[string]bool{}
	c.mu.Lock()
	for _, w := range d.eng().Waiting() {
		seen[w.Call] = true
		if at, ok := c.waiters[w.Call]; ok && now.Sub(at) < waitRenew {
			continue
		}
		c.waiters[w.Call] = now
		ops = append(ops, state.Op{Kind: state.KindWait, Waiter: &state.Waiter{Call: w.Call, Node: c.node, Queue: w.Queue,
			Language: w.Language, QueueLanguages: w.QueueLanguages, Priority: w.Priority, Since: w.Since, Until: now.Add(waitLease)}})
	}
	for call := range c.waiters {
		if !seen[call] {
			delete(c.waiters, call)
			ops = append(ops, state.Op{Kind: state.KindWait, Waiter: &state.Waiter{Call: call, Node: c.node}, Delete: true})
		}
	}
	c.mu.Unlock()
	d.store.Submit(ops...)
}

// release gives up this node's claim on the advocate, if it holds one.
func (d *durable) release(advocate string) {
	c := d.cl
	c.mu.Lock()
	h, ok := c.held[advocate]
	delete(c.held, advocate)
	c.mu.Unlock()
	if ok {
		d.store.Submit(state.Op{Kind: state.KindRelease, Claim: &state.Claim{Advocate: advocate, Node: c.node, Call: h.call}})
	}
}

// claimState follows this node's advocates' states: a claim becomes a call's (longer,
// renewed) when the ring is answered, and is given up when the advocate is free again.
func (d *durable) claimState(id string, to queue.State) {
	if d == nil || d.cl == nil {
		return
	}
	c := d.cl
	switch to {
	case queue.OnCall:
		c.mu.Lock()
		h, ok := c.held[id]
		if ok {
			h.onCall = true
			c.held[id] = h
		}
		c.mu.Unlock()
		if ok {
			d.store.Submit(state.Op{Kind: state.KindClaim, Claim: &state.Claim{Advocate: id, Node: c.node, Call: h.call, Until: time.Now().Add(callLease)}})
		}
	case queue.Available, queue.Paused, queue.Offline:
		d.release(id)
	}
}

// watchCluster isolates the node while it has no leader for longer than the grace, lets
// lapsed claims go, and renews the claims of calls in progress, until ctx ends.
func (d *durable) watchCluster(ctx context.Context) {
	c := d.cl
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	lastLeader := time.Now()
	lastRenew := time.Now()
	leader := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		st := d.store.Status()
		if st.Leader != "" {
			lastLeader = now
		}
		lost := now.Sub(lastLeader) > c.grace
		if st.Leader != leader {
			// A new leader (after an election, or back after a loss): claims that failed
			// meanwhile are tried again.
			leader = st.Leader
			if rt := c.rt.Load(); rt != nil && leader != "" && !lost {
				rt.flow.Isolate(false)
			}
		}
		if lost != c.isolated.Load() {
			c.isolated.Store(lost)
			if lost {
				c.metrics.quorum.Set(0)
				d.log.Error("cluster: quorum lost: no leader reachable; callers are routed as to unstaffed queues (overflow) and no advocate is rung until it is back",
					"node", c.node, "state", st.State, "since", lastLeader.UTC().Format(time.RFC3339))
			} else {
				c.metrics.quorum.Set(1)
				d.log.Info("cluster: quorum back", "node", c.node, "leader", st.Leader)
			}
			if rt := c.rt.Load(); rt != nil {
				rt.flow.Isolate(lost)
			}
		}
		d.claimsChanged() // claims lapse without an entry
		if !lost {
			d.syncWaiting(now)
		}
		if now.Sub(lastRenew) >= callRenew && !lost {
			lastRenew = now
			c.mu.Lock()
			var ops []state.Op
			for a, h := range c.held {
				if h.onCall {
					ops = append(ops, state.Op{Kind: state.KindClaim, Claim: &state.Claim{Advocate: a, Node: c.node, Call: h.call, Until: now.Add(callLease)}})
				}
			}
			c.mu.Unlock()
			d.store.Submit(ops...)
		}
	}
}

// readyDetail is /readyz's line about the cluster: "" while all is well.
func (d *durable) readyDetail() string {
	if d == nil || d.cl == nil || !d.cl.isolated.Load() {
		return ""
	}
	return "cluster: no quorum: callers routed as to unstaffed queues"
}

// clusterStatus is GET /admin/v1/cluster: the store's view and the node's quorum.
type clusterStatus struct {
	state.Status
	// Quorum is false while the node has lost its cluster's quorum (isolated).
	Quorum bool `json:"quorum"`
}

// status is for admin.Options.Cluster; nil without a store.
func (d *durable) status() func() any {
	if d == nil {
		return nil
	}
	return func() any {
		return clusterStatus{Status: d.store.Status(), Quorum: d.cl == nil || !d.cl.isolated.Load()}
	}
}

// members is for admin.Options.Members; nil for a single node.
func (d *durable) members() admin.Members {
	if d == nil || d.cl == nil {
		return nil
	}
	return d.store
}

// clusterCmd runs `hotline cluster status|add|remove` against a running node's admin API.
func clusterCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = "cluster: want: hotline cluster status [-server URL] | add -id NODE -addr IP:PORT [-server URL] | remove -id NODE [-server URL]"
	if len(args) == 0 {
		return errors.New(usage)
	}
	sub := args[0]
	fs := flag.NewFlagSet("cluster "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "http://127.0.0.1:9095", "a node's HTTP `URL` (admin API; token in $"+admin.TokenEnv+")")
	id := fs.String("id", "", "the node's `id` (add, remove)")
	addr := fs.String("addr", "", "the node's cluster `address` IP:port (add)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("cluster %s: unexpected argument %q", sub, fs.Arg(0))
	}
	switch sub {
	case "status":
		body, err := adminRequest(ctx, http.MethodGet, *server, "/admin/v1/cluster", http.StatusOK)
		if err != nil {
			return fmt.Errorf("cluster status: %w", err)
		}
		var st clusterStatus
		if err := json.Unmarshal(body, &st); err != nil {
			return fmt.Errorf("cluster status: %s: %w", *server, err)
		}
		quorum := "yes"
		if !st.Quorum {
			quorum = "NO: callers are routed as to unstaffed queues"
		}
		_, err = fmt.Fprintf(stdout, "node     %s (%s)\nleader   %s\nquorum   %s\nmembers  %s\napplied  %d (commit %d, last %d, lag %d)\ncontact  %dms since the leader was last heard from\npending  %d changes not yet written\ndir      %s\n",
			st.Node, st.State, st.Leader, quorum, strings.Join(st.Members, ", "), st.AppliedIndex, st.CommitIndex, st.LastIndex,
			st.CommitIndex-min(st.CommitIndex, st.AppliedIndex), st.LastContactMS, st.Pending, st.Dir)
		return err
	case "add":
		if *id == "" || *addr == "" {
			return errors.New("cluster add: want -id and -addr")
		}
		q := url.Values{"id": {*id}, "addr": {*addr}}
		if _, err := adminRequest(ctx, http.MethodPost, *server, "/admin/v1/cluster/members?"+q.Encode(), http.StatusOK); err != nil {
			return fmt.Errorf("cluster add: %w", err)
		}
		_, err := fmt.Fprintf(stdout, "added %s (%s)\n", *id, *addr)
		return err
	case "remove":
		if *id == "" {
			return errors.New("cluster remove: want -id")
		}
		if _, err := adminRequest(ctx, http.MethodDelete, *server, "/admin/v1/cluster/members/"+url.PathEscape(*id), http.StatusOK); err != nil {
			return fmt.Errorf("cluster remove: %w", err)
		}
		_, err := fmt.Fprintf(stdout, "removed %s\n", *id)
		return err
	}
	return errors.New(usage)
}
