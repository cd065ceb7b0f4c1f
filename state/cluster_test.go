package state

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func pausedAs(s *Store, id, reason string) bool {
	st, _ := s.State()
	a, ok := st.Advocates[id]
	return ok && a.Paused && a.PauseReason == reason
}

// TestCluster: three nodes on 127.0.0.2, .3 and .4 form one raft cluster (the first
// starts alone, the others join); a change made on the leader reaches every node; a
// follower cannot write; when the leader dies the two others elect a new one and keep
// writing; the dead node restarts from its directory and catches up; with two of three
// gone the last cannot write (no quorum) and says so.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("elections take seconds")
	}
	ctx := context.Background()
	open := func(id, bind string, join bool, dir string) *Store {
		t.Helper()
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		s, err := Open(octx, Options{Dir: dir, NodeID: id, Bind: bind, Join: join, Secret: "s3cret"})
		if err != nil {
			t.Fatalf("open %s: %v", id, err)
		}
		return s
	}
	dirs := map[string]string{"n1": t.TempDir(), "n2": t.TempDir(), "n3": t.TempDir()}
	n1 := open("n1", "127.0.0.2:0", false, dirs["n1"])
	n2 := open("n2", "127.0.0.3:0", true, dirs["n2"])
	n3 := open("n3", "127.0.0.4:0", true, dirs["n3"])
	nodes := map[string]*Store{"n1": n1, "n2": n2, "n3": n3}
	defer func() {
		for _, s := range nodes {
			if s != nil {
				s.Close(ctx)
			}
		}
	}()
	if err := n1.AddVoter("n2", n2.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := n1.AddVoter("n3", n3.Addr()); err != nil {
		t.Fatal(err)
	}
	n1.Submit(Op{Kind: KindAdvocate, Advocate: &Advocate{ID: "ana", Paused: true, PauseReason: "meal"}})
	if err := n1.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for id, s := range nodes {
		waitFor(t, id+" has ana paused", func() bool { return pausedAs(s, "ana", "meal") })
	}
	if st := n3.Status(); st.Leader != "n1" || len(st.Members) != 3 || st.State != "Follower" {
		t.Errorf("n3's status: %+v", st)
	}

	// A follower's write is forwarded to the leader, and reaches every node.
	n2.Submit(Op{Kind: KindAdvocate, Advocate: &Advocate{ID: "ben", Paused: true, PauseReason: "x"}})
	if err := n2.Sync(ctx); err != nil {
		t.Fatalf("a follower's write: %v", err)
	}
	if n2.Forwarded() == 0 {
		t.Error("n2's write was not forwarded")
	}
	for id, s := range nodes {
		waitFor(t, id+" has ben paused", func() bool { return pausedAs(s, "ben", "x") })
	}
	// One advocate, two calls on two nodes: the first claim is granted, the second
	// refused, whichever node the claims come through; the holder's release frees it.
	until := time.Now().Add(time.Minute)
	if err := n2.Claim(ctx, Claim{Advocate: "ana", Node: "n2", Call: "c1", Until: until}); err != nil {
		t.Fatalf("first claim: %v", err)
	}
	if err := n3.Claim(ctx, Claim{Advocate: "ana", Node: "n3", Call: "c2", Until: until}); !errors.Is(err, ErrClaimed) {
		t.Fatalf("second claim: %v, want ErrClaimed", err)
	}
	if err := n1.Claim(ctx, Claim{Advocate: "ana", Node: "n1", Call: "c3", Until: until}); !errors.Is(err, ErrClaimed) {
		t.Fatalf("third claim, on the leader: %v, want ErrClaimed", err)
	}
	n2.Submit(Op{Kind: KindRelease, Claim: &Claim{Advocate: "ana", Node: "n2", Call: "c1"}})
	if err := n2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n3.Claim(ctx, Claim{Advocate: "ana", Node: "n3", Call: "c2", Until: until}); err != nil {
		t.Fatalf("claim after the release: %v", err)
	}
	n3.Submit(Op{Kind: KindReleaseNode, Claim: &Claim{Node: "n3"}})
	if err := n3.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for id, s := range nodes {
		waitFor(t, id+" has no claims", func() bool { st, _ := s.State(); return len(st.Claims) == 0 })
	}
	// The leader dies.
	n1Addr := n1.Addr()
	if err := n1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	nodes["n1"] = nil
	var leader, other *Store
	waitFor(t, "a new leader", func() bool {
		for _, s := range []*Store{n2, n3} {
			if s.raft.State() == raft.Leader {
				leader = s
			}
		}
		return leader != nil
	})
	other = n2
	if leader == n2 {
		other = n3
	}
	leader.Submit(Op{Kind: KindAdvocate, Advocate: &Advocate{ID: "ana", Paused: true, PauseReason: "training"}})
	if err := leader.Sync(ctx); err != nil {
		t.Fatalf("writing with two of three: %v", err)
	}
	waitFor(t, "the other follower has it", func() bool { return pausedAs(other, "ana", "training") })
	if n := other.LeaderChanges(); n < 2 {
		t.Errorf("the other follower saw %d leader changes, want at least 2 (n1, then the new one)", n)
	}

	// It comes back from its directory, on its address, and catches up.
	n1 = open("n1", n1Addr, false, dirs["n1"])
	nodes["n1"] = n1
	waitFor(t, "n1 catches up", func() bool { return pausedAs(n1, "ana", "training") })

	// Two of three gone: the last has no quorum and cannot write.
	if err := n1.Close(ctx); err != nil {
		t.Errorf("close n1: %v", err)
	}
	_ = other.Close(ctx) // n2 may report its refused write again

	nodes = map[string]*Store{"last": leader}
	leader.Submit(Op{Kind: KindAdvocate, Advocate: &Advocate{ID: "ana"}})
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := leader.Sync(sctx); err == nil {
		t.Error("a write without quorum succeeded")
	}
	waitFor(t, "the last node to step down", func() bool { return leader.Status().State != "Leader" })
	if !pausedAs(leader, "ana", "training") {
		t.Error("the last node's state changed without quorum")
	}
}

// TestJoinThroughPeers: a node given a member's address (a follower's, even) is added by
// the leader; one with the wrong secret is refused before raft sees a byte, and never
// joins.
func TestJoinThroughPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("elections take seconds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	open := func(id, bind, secret string, peers ...string) (*Store, error) {
		return Open(ctx, Options{Dir: t.TempDir(), NodeID: id, Bind: bind, Secret: secret, Peers: peers})
	}
	n1, err := open("n1", "127.0.0.2:0", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	defer n1.Close(ctx)
	n2, err := open("n2", "127.0.0.3:0", "s3cret", n1.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close(ctx)
	n3, err := open("n3", "127.0.0.4:0", "s3cret", n2.Addr()) // through a follower
	if err != nil {
		t.Fatal(err)
	}
	defer n3.Close(ctx)
	waitFor(t, "three members", func() bool { return len(n1.Status().Members) == 3 })
	jctx, jcancel := context.WithTimeout(ctx, 3*time.Second)
	defer jcancel()
	bad, err := Open(jctx, Options{Dir: t.TempDir(), NodeID: "n4", Bind: "127.0.0.5:0", Secret: "guess", Peers: []string{n1.Addr()}})
	if err == nil {
		bad.Close(ctx)
		t.Fatal("a node with the wrong secret joined")
	}
	if n1.RefusedConns() == 0 {
		t.Error("the wrong secret's connections were not refused")
	}
	if m := n1.Status().Members; len(m) != 3 {
		t.Errorf("members %v", m)
	}
	if _, err := Open(ctx, Options{Dir: t.TempDir(), NodeID: "n5", Bind: "127.0.0.5:0"}); err == nil {
		t.Error("a cluster node without a secret opened")
	}
}

// TestWholeClusterRestarts: all three nodes stop (a power cut) and start again, one after
// the other, on their directories and addresses: the first starts without a quorum (it
// does not wait for the others forever), the others do not ask to join again, a leader
// is elected once two are up, and the state is whole.
func TestWholeClusterRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("elections take seconds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	type node struct{ id, dir, addr string }
	ns := []*node{{id: "n1", dir: t.TempDir(), addr: "127.0.0.2:0"}, {id: "n2", dir: t.TempDir(), addr: "127.0.0.3:0"},
		{id: "n3", dir: t.TempDir(), addr: "127.0.0.4:0"}}
	open := func(n *node, peers ...string) *Store {
		t.Helper()
		s, err := Open(ctx, Options{Dir: n.dir, NodeID: n.id, Bind: n.addr, Secret: "s3cret", Peers: peers})
		if err != nil {
			t.Fatalf("open %s: %v", n.id, err)
		}
		n.addr = s.Addr()
		return s
	}
	var stores []*Store
	stores = append(stores, open(ns[0]))
	stores = append(stores, open(ns[1], ns[0].addr), open(ns[2], ns[0].addr))
	waitFor(t, "three members", func() bool { return len(stores[0].Status().Members) == 3 })
	stores[2].Submit(Op{Kind: KindAdvocate, Advocate: &Advocate{ID: "ana", Paused: true, PauseReason: "meal"}})
	if err := stores[2].Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range stores {
		waitFor(t, "ana paused", func() bool { return pausedAs(s, "ana", "meal") })
	}
	for _, s := range stores {
		if err := s.Close(ctx); err != nil {
			t.Logf("close: %v", err)
		}
	}
	start := time.Now()
	stores = []*Store{open(ns[0])}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the first node took %v to start alone", d)
	}
	stores = append(stores, open(ns[1], ns[0].addr), open(ns[2], ns[0].addr))
	defer func() {
		for _, s := range stores {
			s.Close(ctx)
		}
	}()
	waitFor(t, "a leader", func() bool { return stores[0].Status().Leader != "" })
	stores[1].Submit(Op{Kind: KindAdvocate, Advocate: &Advocate{ID: "ben", Paused: true, PauseReason: "x"}})
	if err := stores[1].Sync(ctx); err != nil {
		t.Fatalf("a write after the restart: %v", err)
	}
	for _, s := range stores {
		waitFor(t, "the state whole", func() bool { return pausedAs(s, "ana", "meal") && pausedAs(s, "ben", "x") })
	}
}
