package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
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

	mu        sync.Mutex
	pending   []Op
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
		tcp, err := raft.NewTCPTransportWithLogger(o.Bind, nil, 3, 5*time.Second, hl)
		if err != nil {
			bolt.Close()
			return nil, fmt.Errorf("state: raft transport on %s: %w", o.Bind, err)
		}
		addr, trans = tcp.LocalAddr(), tcp
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

// Submit queues changes to be written, in order, after those submitted before. It does
// not wait; Sync does.
func (s *Store) Submit(ops ...Op) {
	if len(ops) == 0 {
		return
	}
	s.mu.Lock()
	s.pending = append(s.pending, ops...)
	s.submitted += uint64(len(ops))
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
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
		ops := s.pending[:n:n]
		s.pending = s.pending[n:]
		from := s.written
		s.mu.Unlock()
		if n == 0 {
			select {
			case <-s.kick:
				continue
			case <-s.quit:
				return
			}
		}
		err := s.write(ops)
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
	b, err := Encode(Entry{At: s.opts.Now(), Ops: ops})
	if err == nil {
		start := time.Now()
		f := s.raft.Apply(b, 10*time.Second)
		err = f.Error()
		if err == nil {
			if r, ok := f.Response().(error); ok {
				err = r
			}
		}
		if s.opts.OnCommit != nil {
			s.opts.OnCommit(time.Since(start), err)
		}
	}
	if err != nil {
		err = fmt.Errorf("state: write %d changes: %w", len(ops), err)
		s.log.Error("state not saved: a restart would lose these changes", "changes", len(ops), "err", err)
	}
	return err
}

// Close writes what is pending (until ctx ends), then stops raft and closes the log.
func (s *Store) Close(ctx context.Context) error {
	serr := s.Sync(ctx)
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
}

// Status returns the node's status.
func (s *Store) Status() Status {
	_, leader := s.raft.LeaderWithID()
	st := Status{Node: s.opts.NodeID, State: s.raft.State().String(), Leader: string(leader),
		AppliedIndex: s.raft.AppliedIndex(), CommitIndex: s.raft.CommitIndex(), LastIndex: s.raft.LastIndex(),
		Dir: s.opts.Dir}
	if f := s.raft.GetConfiguration(); f.Error() == nil {
		for _, m := range f.Configuration().Servers {
			st.Members = append(st.Members, fmt.Sprintf("%s (%s)", m.ID, m.Suffrage))
		}
	}
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
