package records

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The writer's throughput, SQLite in a temporary directory (issue 15: records took 43% of
// the server's CPU at 750 calls/s, each start and end its own transaction):
//
//	go test ./records -run '^$' -bench Records -benchtime 2000x
//
// BenchmarkRecordsPerCall is the old way: each call's start and end written by its own
// goroutine, each its own transaction. BenchmarkRecordsGroupCommit is the Recorder: a
// start, four milestones and an end per call, from as many goroutines, group-committed by
// one writer. Both report calls/s and the CPU time per call; each at synchronous FULL and
// NORMAL.

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per call since start.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/call")
}

func benchDB(b *testing.B, sync string) *DB {
	b.Helper()
	old := sqliteSynchronous
	sqliteSynchronous = sync
	defer func() { sqliteSynchronous = old }()
	db, err := OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "r.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

func BenchmarkRecordsPerCall(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run("synchronous="+sync, func(b *testing.B) {
			db := benchDB(b, sync)
			var n atomic.Int64
			b.SetParallelism(16) // calls end on their own goroutines
			b.ResetTimer()
			cpu := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					id := fmt.Sprintf("c%d", n.Add(1))
					r := sample(id, t0)
					if err := db.Start(ctx, Record{CallID: id, Node: r.Node, Line: r.Line, Start: t0}); err != nil {
						b.Error(err)
						return
					}
					if err := db.Finish(ctx, r); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
			reportCPU(b, cpu)
		})
	}
}

func BenchmarkRecordsGroupCommit(b *testing.B) {
	h, err := NewHasher(testKey, "1")
	if err != nil {
		b.Fatal(err)
	}
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run("synchronous="+sync, func(b *testing.B) {
			db := benchDB(b, sync)
			rec := NewRecorder(db, Options{Hasher: h, Node: "node-a", Logger: quietLog(), Timeout: time.Minute})
			var n atomic.Int64
			b.SetParallelism(16)
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c := rec.Begin(fmt.Sprintf("c%d", n.Add(1)), "main", "+15551234567", t0)
					c.Answered(t0.Add(time.Second))
					c.Menus("es", "help_now")
					c.Queued("es", t0.Add(40*time.Second))
					c.Connected("maria", t0.Add(time.Minute))
					c.Ended("", t0.Add(10*time.Minute))
					if err := c.Finish(context.Background()); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
			reportCPU(b, cpu)
			b.StopTimer()
			if err := rec.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
			if got := len(mustRecordsB(b, db)); got != b.N {
				b.Fatalf("%d records, want %d", got, b.N)
			}
		})
	}
}

func mustRecordsB(b *testing.B, db *DB) []Record {
	recs, err := db.Records(context.Background(), time.Time{}, time.Time{})
	if err != nil {
		b.Fatal(err)
	}
	return recs
}
