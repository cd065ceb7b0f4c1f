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
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		s.Submit(Op{Kind: KindAdvocate, Advocate: &Advocate{ID: "a", Paused: i%2 == 0, PauseReason: "meal"}})
		if err := s.Sync(ctx); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
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
	var nodes []*Store
	defer func() {
		for _, s := range nodes {
			s.Close(context.Background())
		}
	}()
	for i, bind := range []string{"127.0.0.2:0", "127.0.0.3:0", "127.0.0.4:0"} {
		s, err := Open(ctx, Options{Dir: b.TempDir(), NodeID: "n" + string(rune('1'+i)), Bind: bind, Join: i > 0, Secret: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		nodes = append(nodes, s)
		if i > 0 {
			if err := nodes[0].AddVoter(s.opts.NodeID, s.Addr()); err != nil {
				b.Fatal(err)
			}
		}
	}
	s := nodes[0]
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		s.Submit(Op{Kind: KindAdvocate, Advocate: &Advocate{ID: "a", Paused: i%2 == 0, PauseReason: "meal"}})
		if err := s.Sync(ctx); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkCommitClusterFollower is BenchmarkCommitCluster with the change made on a
// follower: forwarded to the leader over the cluster port, committed, answered.
func BenchmarkCommitClusterFollower(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var nodes []*Store
	defer func() {
		for _, s := range nodes {
			s.Close(context.Background())
		}
	}()
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
	s := nodes[2]
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		s.Submit(Op{Kind: KindAdvocate, Advocate: &Advocate{ID: "a", Paused: i%2 == 0, PauseReason: "meal"}})
		if err := s.Sync(ctx); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkClaim is one claim (before a ring) made on a follower of three nodes and
// answered: what a ring waits for in a cluster.
func BenchmarkClaim(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var nodes []*Store
	defer func() {
		for _, s := range nodes {
			s.Close(context.Background())
		}
	}()
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
	s := nodes[1]
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := s.Claim(ctx, Claim{Advocate: "a", Node: "n2", Call: strconv.Itoa(i), Until: time.Now().Add(time.Minute)}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		s.Submit(Op{Kind: KindRelease, Claim: &Claim{Advocate: "a", Node: "n2", Call: strconv.Itoa(i)}})
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
