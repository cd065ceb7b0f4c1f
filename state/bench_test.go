package state

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"
)

// BenchmarkCommit measures one state change submitted and synced (written and fsynced
// through raft on a one-voter cluster), reporting the median and 99th percentile.
func BenchmarkCommit(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	measure(b, func(i int) error { return pause(ctx, s, i) })
}

// BenchmarkCommitBatched: 64 changes submitted at once share entries (and fsyncs).
func BenchmarkCommitBatched(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Submit(Op{Kind: KindAdvocate, Advocate: &Advocate{ID: "a", Paused: i%2 == 0, PauseReason: "meal"}})
		if i%64 == 63 {
			if err := s.Sync(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := s.Sync(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCommitCluster is BenchmarkCommit on a leader with two followers on
// 127.0.0.3 and .4: a change counts once it is on the disks of two of the three.
func BenchmarkCommitCluster(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := threeNodes(b, ctx)[0]
	measure(b, func(i int) error { return pause(ctx, s, i) })
}

// BenchmarkCommitClusterFollower is BenchmarkCommitCluster with the change made on a
// follower: forwarded to the leader over the cluster port, committed, answered.
func BenchmarkCommitClusterFollower(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes := threeNodes(b, ctx)
	s := nodes[2]
	measure(b, func(i int) error { return pause(ctx, s, i) })
}

// BenchmarkClaim is one claim (before a ring) made on a follower of three nodes and
// answered: what a ring waits for in a cluster.
func BenchmarkClaim(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes := threeNodes(b, ctx)
	s := nodes[1]
	measure(b, func(i int) error {
		err := s.Claim(ctx, Claim{Advocate: "a", Node: "n2", Call: strconv.Itoa(i), Until: time.Now().Add(time.Minute)})
		s.Submit(Op{Kind: KindRelease, Claim: &Claim{Advocate: "a", Node: "n2", Call: strconv.Itoa(i)}})
		return err
	})
}

// measure runs op b.N times, timing each, and reports the median and 99th percentile.
func measure(b *testing.B, op func(i int) error) {
	b.Helper()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := op(i); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	report(b, lat)
}

// pause submits a change of an advocate's state and waits until it is committed.
func pause(ctx context.Context, s *Store, i int) error {
	s.Submit(Op{Kind: KindAdvocate, Advocate: &Advocate{ID: "a", Paused: i%2 == 0, PauseReason: "meal"}})
	return s.Sync(ctx)
}

// threeNodes opens a cluster of three on 127.0.0.2, .3 and .4, the later two joining the
// first through Peers; closed when the benchmark ends.
func threeNodes(b *testing.B, ctx context.Context) []*Store {
	b.Helper()
	var nodes []*Store
	b.Cleanup(func() {
		for _, s := range nodes {
			s.Close(context.Background())
		}
	})
	for i, bind := range []string{"127.0.0.2:0", "127.0.0.3:0", "127.0.0.4:0"} {
		o := Options{Dir: b.TempDir(), NodeID: "n" + string(rune('1'+i)), Bind: bind, Secret: "bench"}
		if i > 0 {
			o.Peers = []string{nodes[0].Addr()}
		}
		s, err := Open(ctx, o)
		if err != nil {
			b.Fatal(err)
		}
		nodes = append(nodes, s)
	}
	return nodes
}

// report sorts the latencies and reports their median and 99th percentile.
func report(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
