package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/hotline-project/hotline/registrar"
	"go.etcd.io/bbolt"
)

// Options configure a Store; zero values take the defaults.
type Options struct {
	// Dir holds the log (raft.db) and the snapshots; required. It is created (0700).
	Dir string
	// NodeID names this node in the cluster's configuration; default "node1".
	NodeID string
	// Bind is the address (host:port) this node's raft traffic is served on, for a cluster
	// of nodes; "" is a single node with no network transport at all.
	Bind string
	// Join starts the node without a configuration of its own: it waits to be added by
	// the cluster's leader (AddVoter) and Open does not wait for a leader. Otherwise a
	// node with no log starts a one-voter cluster of itself.
	Join bool
	// Peers are raft addresses of members of the cluster this node joins: at start it asks
	// them, one after the other until one answers, to have the leader add it as a voter
	// (a member that is not the leader passes the request on). Peers imply Join. A node
	// that is a member already (it has a log) asks too; it is harmless.
	Peers []string
	// Secret is the cluster's shared secret, required with Bind: every connection between
	// nodes presents it (stream.go), or is closed unread.
	Secret string
	// OnApply, if set, is told of each entry applied to the state, in log order (entries
	// of other nodes included); see FSM.
	OnApply func(e Entry, index uint64)
	// SnapshotThreshold is how many entries make a snapshot (and let the log be
	// truncated); default 1024.
	SnapshotThreshold uint64
	// SnapshotInterval is how often the threshold is looked at; default 2 minutes.
	SnapshotInterval time.Duration
	// Logger receives the store's and raft's warnings; nil discards them.
	Logger *slog.Logger
	// Now is the clock entries are stamped with; nil is time.Now.
	Now func() time.Time
	// OnCommit, if set, is told how long each entry took to commit, or its error.
	OnCommit func(time.Duration, error)
}

// pendingOp is a change waiting to be written; res, when set, is given its entry's error
// (a claim is written in an entry of its own, and its caller waits for the answer).
type pendingOp struct {
	op  Op
	res chan error
}

// maxBatch is the most changes written as one entry.
const maxBatch = 256

// Store is a node's replicated state: a raft node over an FSM. Submit writes changes to
// the log in the order submitted; Sync waits until they are committed.
type Store struct {
	opts  Options
	addr  raft.ServerAddress
	fsm   *FSM
	raft  *raft.Raft
	bolt  *raftboltdb.BoltStore
	log   *slog.Logger
	kick  chan struct{}
	quit  chan struct{}
	done  chan struct{}
	start time.Time

	leaderChanges atomic.Uint64
	observer      *raft.Observer
	layer         *streamLayer // nil for a single node
	forwarded     atomic.Uint64

	mu        sync.Mutex
	pending   []pendingOp
	submitted uint64        // changes submitted so far
	written   uint64        // changes whose entry has been committed or has failed
	progress  chan struct{} // closed and replaced when written moves
	failLo    uint64        // the changes of the last entry that failed: (failLo, failHi]
	failHi    uint64
	failErr   error
}

// ErrClosed is returned by Sync after Close.
var ErrClosed = errors.New("state: store closed")

// Open opens (or creates) the store in o.Dir, replays its snapshot and log, and returns
// once this node leads its one-voter cluster and has applied everything in the log, so
// that State is the state before the restart.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.Dir == "" {
		return nil, errors.New("state: no directory")
	}
	if o.NodeID == "" {
		o.NodeID = "node1"
	}
	if o.SnapshotThreshold == 0 {
		o.SnapshotThreshold = 1024
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if len(o.Peers) > 0 {
		o.Join = true
	}
	if o.Bind != "" && o.Secret == "" {
		return nil, errors.New("state: a cluster node needs the cluster's secret")
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	// A second server on the same directory waits a second for the lock, then refuses.
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(o.Dir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: time.Second}})
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w (is another hotline using it?)", filepath.Join(o.Dir, "raft.db"), err)
	}
	s := &Store{opts: o, fsm: NewFSM(), bolt: bolt, log: o.Logger, kick: make(chan struct{}, 1),
		quit: make(chan struct{}), done: make(chan struct{}), progress: make(chan struct{}), start: time.Now()}
	s.fsm.onApply = o.OnApply
	s.fsm.onErr = func(index uint64, err error) {
		s.log.Error("state: log entry skipped", "index", index, "err", err)
	}
	// A single node's election at every start is no news; a cluster's warnings are.
	level := hclog.Warn
	if o.Bind == "" {
		level = hclog.Error
	}
	hl := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: level, Output: slogWriter{o.Logger}})
	snaps, err := raft.NewFileSnapshotStoreWithLogger(o.Dir, 2, hl)
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("state: snapshots: %w", err)
	}
	cfg := raft.DefaultConfig()
	cfg.LocalID = raft.ServerID(o.NodeID)
	cfg.Logger = hl
	cfg.SnapshotThreshold = o.SnapshotThreshold
	cfg.TrailingLogs = o.SnapshotThreshold
	if o.SnapshotInterval > 0 {
		cfg.SnapshotInterval = o.SnapshotInterval
	}
	// One voter: there is nobody to wait for, so the election need not wait long.
	cfg.BatchApplyCh = true
	var addr raft.ServerAddress
	var trans raft.Transport
	if o.Bind == "" {
		// One voter: there is nobody to wait for, so the election need not wait long.
		cfg.HeartbeatTimeout = 50 * time.Millisecond
		cfg.ElectionTimeout = 50 * time.Millisecond
		cfg.LeaderLeaseTimeout = 50 * time.Millisecond
		addr, trans = raft.NewInmemTransport(raft.ServerAddress(o.NodeID))
	} else {
		// Followers learn that an entry is committed from the leader's next AppendEntries,
		// sent at the latest CommitTimeout after it (default 50 ms): a pause's end or a claim
		// reaches the other nodes' engines that much later. 10 ms costs an idle cluster 100
		// small RPCs a second per follower.
		cfg.CommitTimeout = 10 * time.Millisecond
		ln, err := net.Listen("tcp", o.Bind)
		if err != nil {
			bolt.Close()
			return nil, fmt.Errorf("state: raft transport on %s: %w", o.Bind, err)
		}
		if a, ok := ln.Addr().(*net.TCPAddr); !ok || a.IP.IsUnspecified() {
			ln.Close()
			bolt.Close()
			return nil, fmt.Errorf("state: raft address %s: give the address the other nodes reach this one on, not an unspecified one", o.Bind)
		}
		s.layer = newStreamLayer(ln, o.Secret, s.serveRequest, o.Logger)
		nt := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: s.layer, MaxPool: 3,
			Timeout: 5 * time.Second, Logger: hl})
		addr, trans = nt.LocalAddr(), nt
	}
	s.addr = addr
	has, err := raft.HasExistingState(bolt, bolt, snaps)
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("state: %w", err)
	}
	if !has && !o.Join {
		err := raft.BootstrapCluster(cfg, bolt, bolt, snaps, trans, raft.Configuration{
			Servers: []raft.Server{{Suffrage: raft.Voter, ID: cfg.LocalID, Address: addr}}})
		if err != nil {
			bolt.Close()
			return nil, fmt.Errorf("state: bootstrap: %w", err)
		}
	}
	r, err := raft.NewRaft(cfg, s.fsm, bolt, bolt, snaps, trans)
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("state: %w", err)
	}
	s.raft = r
	s.watchLeader()
	if o.Join {
		go s.run()
		if len(o.Peers) > 0 && !has {
			if err := s.join(ctx); err != nil {
				_ = s.Close(context.Background())
				return nil, err
			}
		}
		return s, nil
	}
	if err := s.waitLeader(ctx); err != nil {
		_ = r.Shutdown().Error()
		bolt.Close()
		return nil, err
	}
	go s.run()
	return s, nil
}

// watchLeader counts the changes of leader this node sees, until Close.
func (s *Store) watchLeader() {
	ch := make(chan raft.Observation, 16)
	s.observer = raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	s.raft.RegisterObserver(s.observer)
	go func() {
		for {
			select {
			case o := <-ch:
				s.leaderChanges.Add(1)
				lo := o.Data.(raft.LeaderObservation)
				s.log.Info("state: leader changed", "node", s.opts.NodeID, "leader", string(lo.LeaderID))
			case <-s.quit:
				return
			}
		}
	}()
}

// LeaderChanges returns how many times this node has seen the leader change.
func (s *Store) LeaderChanges() uint64 { return s.leaderChanges.Load() }

// waitLeader waits until this node leads and has applied the whole log.
func (s *Store) waitLeader(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var alone <-chan time.Time
	if s.opts.Bind != "" {
		// A cluster node whose peers are down starts anyway, without a quorum: it answers
		// callers (routing them as to unstaffed queues) until a leader is elected.
		t := time.NewTimer(5 * time.Second)
		defer t.Stop()
		alone = t.C
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if s.raft.State() == raft.Leader {
			break
		}
		if a, _ := s.raft.LeaderWithID(); a != "" && s.opts.Bind != "" {
			return nil // a follower of a cluster that has a leader
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("state: not leader of its own log (%s): %w", s.raft.State(), ctx.Err())
		case <-alone:
			s.log.Warn("state: no leader yet: starting without the cluster's quorum", "node", s.opts.NodeID)
			return nil
		case <-t.C:
		}
	}
	if err := s.raft.Barrier(30 * time.Second).Error(); err != nil {
		return fmt.Errorf("state: replay the log: %w", err)
	}
	return nil
}

// State returns the replicated state and the index of the last entry applied.
func (s *Store) State() (State, uint64) { return s.fsm.State() }

// Bindings returns aor's bindings in the replicated state.
func (s *Store) Bindings(aor string) []registrar.Binding { return s.fsm.Bindings(aor) }

// Claims returns the replicated state's claims, by advocate: less to copy than State for
// a node that looks at them every tick.
func (s *Store) Claims() map[string]Claim { return s.fsm.Claims() }

// Submit queues changes to be written, in order, after those submitted before. It does
// not wait; Sync does.
func (s *Store) Submit(ops ...Op) {
	if len(ops) == 0 {
		return
	}
	s.mu.Lock()
	for _, op := range ops {
		s.pending = append(s.pending, pendingOp{op: op})
	}
	s.submitted += uint64(len(ops))
	s.mu.Unlock()
	s.wake()
}

func (s *Store) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Claim writes the claim c, after the changes submitted before it, and returns once it
// is committed: nil when granted, ErrClaimed when another call holds the advocate, or the
// error that kept it from being written (no quorum, say: then nobody may be rung).
func (s *Store) Claim(ctx context.Context, c Claim) error {
	res := make(chan error, 1)
	s.mu.Lock()
	s.pending = append(s.pending, pendingOp{op: Op{Kind: KindClaim, Claim: &c}, res: res})
	s.submitted++
	s.mu.Unlock()
	s.wake()
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return fmt.Errorf("state: claim: %w", ctx.Err())
	case <-s.done:
		return ErrClosed
	}
}

// Sync waits until everything submitted before it is committed (on disk), and returns
// the error of the entry that carried the last of it, if it failed.
func (s *Store) Sync(ctx context.Context) error {
	s.mu.Lock()
	target := s.submitted
	for s.written < target {
		ch := s.progress
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return fmt.Errorf("state: sync: %w", ctx.Err())
		case <-s.done:
			return ErrClosed
		case <-ch:
		}
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	if target > s.failLo && target <= s.failHi {
		return s.failErr
	}
	return nil
}

// run writes the submitted changes until Close, each batch one entry.
func (s *Store) run() {
	defer close(s.done)
	for {
		s.mu.Lock()
		n := min(len(s.pending), maxBatch)
		// A claim goes in an entry of its own, so that its answer is its own.
		for i, p := range s.pending[:n] {
			if p.res != nil {
				n = max(i, 1)
				break
			}
		}
		batch := s.pending[:n:n]
		s.pending = s.pending[n:]
		from := s.written
		s.mu.Unlock()
		ops := make([]Op, len(batch))
		for i, p := range batch {
			ops[i] = p.op
		}
		if n == 0 {
			select {
			case <-s.kick:
				continue
			case <-s.quit:
				return
			}
		}
		err := s.write(ops)
		if n == 1 && batch[0].res != nil {
			batch[0].res <- err
			if errors.Is(err, ErrClaimed) {
				err = nil // an answer, not a failure to write
			}
		}
		s.mu.Lock()
		s.written = from + uint64(n)
		if err != nil {
			s.failLo, s.failHi, s.failErr = from, s.written, err
		}
		close(s.progress)
		s.progress = make(chan struct{})
		s.mu.Unlock()
	}
}

// write commits ops as one entry.
func (s *Store) write(ops []Op) error {
	b, err := Encode(Entry{At: s.opts.Now(), Node: s.opts.NodeID, Ops: ops})
	if err == nil {
		start := time.Now()
		err = s.apply(b)
		if s.opts.OnCommit != nil && !errors.Is(err, ErrClaimed) {
			s.opts.OnCommit(time.Since(start), err)
		}
	}
	if errors.Is(err, ErrClaimed) {
		return err
	}
	if err != nil {
		err = fmt.Errorf("state: write %d changes: %w", len(ops), err)
		s.log.Error("state not saved: a restart would lose these changes", "changes", len(ops), "err", err)
	}
	return err
}

// apply commits an encoded entry: through raft on the leader, forwarded to the leader
// on a follower of a cluster.
func (s *Store) apply(b []byte) error {
	if s.layer == nil || s.raft.State() == raft.Leader {
		err := s.applyLocal(b)
		if s.layer == nil || !errors.Is(err, raft.ErrNotLeader) {
			return err
		}
	}
	return s.forward(b)
}

// applyLocal applies b through this node's raft (its leader's).
func (s *Store) applyLocal(b []byte) error {
	f := s.raft.Apply(b, 10*time.Second)
	if err := f.Error(); err != nil {
		return err
	}
	if r, ok := f.Response().(error); ok {
		return r
	}
	return nil
}

// ErrNoLeader is a write's error when no leader could be reached in time: the cluster
// has lost its quorum, or this node is cut off from it.
var ErrNoLeader = errors.New("state: no leader reachable (no quorum)")

// forwardTimeout bounds a follower's write: finding the leader and its commit.
const forwardTimeout = 10 * time.Second

// forward sends the entry to the leader and waits for its answer, trying again while
// there is no leader or the one asked has stepped down, until forwardTimeout.
func (s *Store) forward(b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), forwardTimeout)
	defer cancel()
	return s.askLeader(ctx, request{Entry: b})
}

// askLeader sends req to the leader (itself, if it leads) until it is answered.
func (s *Store) askLeader(ctx context.Context, req request) error {
	var last error = ErrNoLeader
	for {
		if s.raft.State() == raft.Leader {
			return s.handle(req)
		}
		addr, _ := s.raft.LeaderWithID()
		if addr != "" {
			a, err := s.layer.ask(ctx, string(addr), req)
			switch {
			case err != nil:
				last = fmt.Errorf("%w: %w", ErrNoLeader, err)
			case a.Claimed:
				return ErrClaimed
			case a.NotLeader:
			case a.Err != "":
				return errors.New(a.Err)
			default:
				s.forwarded.Add(1)
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return last
		case <-s.quit:
			return ErrClosed
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// handle carries out a request on the leader.
func (s *Store) handle(req request) error {
	if req.JoinID != "" {
		return s.AddVoter(req.JoinID, req.JoinAddr)
	}
	if req.RemoveID != "" {
		if err := s.RemoveServer(req.RemoveID); err != nil {
			return err
		}
		// Its calls are gone with it: the advocates it held are free.
		b, err := Encode(Entry{At: s.opts.Now(), Node: s.opts.NodeID, Ops: []Op{{Kind: KindReleaseNode, Claim: &Claim{Node: req.RemoveID}}}})
		if err != nil {
			return err
		}
		return s.applyLocal(b)
	}
	if _, err := Decode(req.Entry); err != nil {
		return err
	}
	return s.applyLocal(req.Entry)
}

// serveRequest answers one request connection from another node (stream.go): applied
// here on the leader, passed on to the leader by a follower (once).
func (s *Store) serveRequest(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(forwardTimeout + 5*time.Second))
	var req request
	if err := readMsg(c, &req); err != nil {
		return
	}
	var a answer
	var err error
	if s.raft.State() == raft.Leader {
		err = s.handle(req)
	} else if req.JoinID != "" || req.RemoveID != "" {
		ctx, cancel := context.WithTimeout(context.Background(), forwardTimeout)
		err = s.askLeader(ctx, req)
		cancel()
	} else {
		a.NotLeader = true
	}
	switch {
	case errors.Is(err, ErrClaimed):
		a.Claimed = true
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost):
		a.NotLeader = true
	case err != nil:
		a.Err = err.Error()
	}
	_ = writeMsg(c, a)
}

// join asks the peers, in turn, to have this node added to their cluster, until one
// does or ctx ends.
func (s *Store) join(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req := request{JoinID: s.opts.NodeID, JoinAddr: string(s.addr)}
	var last error
	for {
		for _, p := range s.opts.Peers {
			a, err := s.layer.ask(ctx, p, req)
			switch {
			case err != nil:
				last = err
			case a.Err != "":
				last = errors.New(a.Err)
			case a.NotLeader:
				last = ErrNoLeader
			default:
				s.log.Info("state: joined the cluster", "node", s.opts.NodeID, "through", p)
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("state: join through %v: %w", s.opts.Peers, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// LastContact returns how long since this follower last heard from its leader; 0 on the
// leader and on a single node.
func (s *Store) LastContact() time.Duration {
	if s.layer == nil || s.raft.State() == raft.Leader {
		return 0
	}
	t := s.raft.LastContact()
	if t.IsZero() {
		t = s.start
	}
	return time.Since(t)
}

// AddMember has the leader add the node id at addr as a voter (from any member).
func (s *Store) AddMember(ctx context.Context, id, addr string) error {
	if s.layer == nil {
		return errors.New("state: a single node has no cluster to add to")
	}
	return s.askLeader(ctx, request{JoinID: id, JoinAddr: addr})
}

// RemoveMember has the leader remove the node id from the cluster and free the advocates
// its calls held (from any member).
func (s *Store) RemoveMember(ctx context.Context, id string) error {
	if s.layer == nil {
		return errors.New("state: a single node has no cluster to remove from")
	}
	return s.askLeader(ctx, request{RemoveID: id})
}

// Forwarded returns how many of this node's writes the leader applied for it.
func (s *Store) Forwarded() uint64 { return s.forwarded.Load() }

// RefusedConns returns how many cluster connections were refused (wrong preamble or
// secret, or over the bound of connections being checked).
func (s *Store) RefusedConns() uint64 {
	if s.layer == nil {
		return 0
	}
	return s.layer.refused.Load()
}

// Close writes what is pending (until ctx ends), then stops raft and closes the log.
func (s *Store) Close(ctx context.Context) error {
	serr := s.Sync(ctx)
	if s.layer != nil && s.raft.State() == raft.Leader && len(s.Status().Members) > 1 {
		// Hand over at once rather than leave the others to notice the silence (an
		// election timeout): a rolling upgrade's gap is one round trip, not a second.
		if err := s.raft.LeadershipTransfer().Error(); err != nil {
			s.log.Warn("state: leadership not handed over before stopping", "err", err)
		}
	}
	s.raft.DeregisterObserver(s.observer)
	close(s.quit)
	<-s.done
	err := s.raft.Shutdown().Error()
	if cerr := s.bolt.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("state: close: %w", err)
	}
	return serr
}

// Snapshot takes a snapshot now (the log before it can then be truncated).
func (s *Store) Snapshot() error {
	if err := s.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("state: snapshot: %w", err)
	}
	return nil
}

// Addr is the node's raft address (Options.Bind with the port chosen).
func (s *Store) Addr() string { return string(s.addr) }

// AddVoter adds the node id at addr to the cluster as a voter; only the leader can.
func (s *Store) AddVoter(id, addr string) error {
	if err := s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 30*time.Second).Error(); err != nil {
		return fmt.Errorf("state: add voter %s at %s: %w", id, addr, err)
	}
	return nil
}

// RemoveServer removes the node id from the cluster; only the leader can.
func (s *Store) RemoveServer(id string) error {
	if err := s.raft.RemoveServer(raft.ServerID(id), 0, 30*time.Second).Error(); err != nil {
		return fmt.Errorf("state: remove %s: %w", id, err)
	}
	return nil
}

// Status is a node's view of its cluster.
type Status struct {
	Node         string   `json:"node"`
	State        string   `json:"state"` // Leader, Follower, Candidate or Shutdown
	Leader       string   `json:"leader"`
	Members      []string `json:"members"`
	AppliedIndex uint64   `json:"applied_index"`
	CommitIndex  uint64   `json:"commit_index"`
	LastIndex    uint64   `json:"last_index"`
	Pending      int      `json:"pending"` // changes submitted, not yet written
	Dir          string   `json:"dir"`
	// LastContactMS is how long since this follower heard from its leader (0 on the
	// leader and a single node).
	LastContactMS int64 `json:"last_contact_ms"`
}

// Status returns the node's status.
func (s *Store) Status() Status {
	_, leader := s.raft.LeaderWithID()
	st := Status{Node: s.opts.NodeID, State: s.raft.State().String(), Leader: string(leader),
		AppliedIndex: s.raft.AppliedIndex(), CommitIndex: s.raft.CommitIndex(), LastIndex: s.raft.LastIndex(),
		Dir: s.opts.Dir}
	if f := s.raft.GetConfiguration(); f.Error() == nil {
		for _, m := range f.Configuration().Servers {
			if string(m.Address) == string(m.ID) { // a single node's in-memory transport
				st.Members = append(st.Members, fmt.Sprintf("%s (%s)", m.ID, m.Suffrage))
			} else {
				st.Members = append(st.Members, fmt.Sprintf("%s %s (%s)", m.ID, m.Address, m.Suffrage))
			}
		}
	}
	st.LastContactMS = s.LastContact().Milliseconds()
	s.mu.Lock()
	st.Pending = len(s.pending)
	s.mu.Unlock()
	return st
}

// slogWriter passes raft's log lines to slog.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	level := slog.LevelWarn
	// hclog writes "TIME [LEVEL]  raft: message".
	if i := strings.Index(line, "]"); i > 0 && strings.Contains(line[:i], "[") {
		if strings.Contains(line[:i], "[ERROR") {
			level = slog.LevelError
		}
		line = strings.TrimSpace(line[i+1:])
	}
	w.log.Log(context.Background(), level, "raft", "line", line)
	return len(p), nil
}
