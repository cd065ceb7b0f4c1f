package records

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// faultStore is a Store that wraps a real one and fails (or hangs) on demand: the unit-level
// stand-in for a store that is locked, full or down. The real faults are in fault_test.go.
type faultStore struct {
	Store
	err    atomic.Pointer[error]         // every operation fails with it while set
	hang   atomic.Pointer[chan struct{}] // writes block until it is closed, ignoring ctx
	writes atomic.Int32                  // transactions attempted
}

func (f *faultStore) fail(err error) {
	if err == nil {
		f.err.Store(nil)
		return
	}
	f.err.Store(&err)
}

func (f *faultStore) fault() error {
	if e := f.err.Load(); e != nil {
		return *e
	}
	return nil
}

func (f *faultStore) write(ctx context.Context, ops []*op) error {
	f.writes.Add(1)
	if h := f.hang.Load(); h != nil {
		<-*h
	}
	if err := f.fault(); err != nil {
		return err
	}
	return f.Store.write(ctx, ops)
}

func (f *faultStore) Heartbeat(ctx context.Context, node string, now time.Time) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.Store.Heartbeat(ctx, node, now)
}

func (f *faultStore) RecoverInterrupted(ctx context.Context, node string, now time.Time) (int, error) {
	if err := f.fault(); err != nil {
		return 0, err
	}
	return f.Store.RecoverInterrupted(ctx, node, now)
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testHasher(t *testing.T) *Hasher {
	t.Helper()
	h, err := NewHasher(testKey, "1")
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func sqliteDB(t *testing.T) *DB {
	t.Helper()
	db, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// closeRecorder closes rec when the test ends.
func closeRecorder(t *testing.T, rec *Recorder) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rec.Close(ctx); err != nil {
			t.Error(err)
		}
	})
}

// TestRecorderCall: a call's record, set piece by piece from several goroutines as the call
// path would, is written in full by Finish, with the caller hashed; a nil Recorder (no
// records configured) takes the same calls and does nothing.
func TestRecorderCall(t *testing.T) {
	db := sqliteDB(t)
	h := testHasher(t)
	live := NewRecorder(db, Options{Hasher: h, Node: "node-a", Logger: quietLog()})
	closeRecorder(t, live)
	for _, rec := range []*Recorder{nil, live} {
		c := rec.Begin("c1", "main", "sip:+15551234567@carrier.example", t0)
		c.Answered(t0.Add(time.Second))
		c.Menus("es", "help_now")
		c.Routed("help_now_es", "es")
		var wg sync.WaitGroup
		wg.Go(func() { c.Queued("es", t0.Add(40*time.Second)) })
		wg.Go(func() { _ = c.Record() })
		wg.Wait()
		c.Overflowed("en")
		c.Queued("en", t0.Add(100*time.Second)) // the queue changes, not the queue enter time
		c.Connected("maria", t0.Add(2*time.Minute))
		c.WrapUp(30 * time.Second)
		c.Ended("", t0.Add(12*time.Minute))
		c.Ended(OutcomeShutdown, t0.Add(13*time.Minute)) // the first end counts
		if err := c.Finish(context.Background()); err != nil {
			t.Fatal(err)
		}
		c.Connected("someone-else", t0) // after Finish: ignored
		if err := c.Finish(context.Background()); err != nil {
			t.Fatal(err)
		}
		rec.Wait()
		if rec == nil {
			if c != nil || rec.Failures() != 0 || rec.Close(context.Background()) != nil || rec.Stats() != (Stats{}) {
				t.Fatal("a nil Recorder did something")
			}
			continue
		}
		recs := mustRecords(t, db, time.Time{}, time.Time{})
		want := Record{
			CallID: "c1", Node: "node-a", Line: "main", CallerHash: h.Hash("+15551234567"),
			Start: t0, Answered: t0.Add(time.Second), QueueEnter: t0.Add(40 * time.Second),
			Connected: t0.Add(2 * time.Minute), End: t0.Add(12 * time.Minute),
			Language: "es", Reason: "help_now", Route: "help_now_es", Steps: []string{"es", "en"},
			Queue: "en", Advocate: "maria", Wait: 80 * time.Second, Talk: 10 * time.Minute,
			WrapUp: 30 * time.Second, Outcome: OutcomeCompleted,
		}
		if len(recs) != 1 || !reflect.DeepEqual(recs[0], want) {
			t.Fatalf("got %+v\nwant %+v", recs, want)
		}
		if s := rec.Stats(); s.Failures != 0 || !s.StoreUp || s.Written == 0 {
			t.Fatalf("stats %+v", s)
		}
	}
}

// TestRecorderMilestones: each milestone is in the store while the call goes on, so a
// call cut off by a crash keeps what was known of it: its answer time, menus, queue and
// advocate (issue 15).
func TestRecorderMilestones(t *testing.T) {
	db := sqliteDB(t)
	rec := NewRecorder(db, Options{Hasher: testHasher(t), Node: "node-a", Logger: quietLog()})
	closeRecorder(t, rec)
	c := rec.Begin("c1", "main", "", t0)
	steps := []struct {
		name  string
		do    func()
		check func(Record) bool
	}{
		{"begun", func() {}, func(r Record) bool { return r.Outcome == OutcomeInProgress }},
		{"answered", func() { c.Answered(t0.Add(time.Second)) }, func(r Record) bool { return r.Answered.Equal(t0.Add(time.Second)) }},
		{"menus", func() { c.Menus("es", "help_now") }, func(r Record) bool { return r.Language == "es" && r.Reason == "help_now" }},
		{"routed", func() { c.Routed("r1", "es") }, func(r Record) bool { return r.Route == "r1" && len(r.Steps) == 1 }},
		{"queued", func() { c.Queued("es", t0.Add(40*time.Second)) }, func(r Record) bool { return r.Queue == "es" && !r.QueueEnter.IsZero() }},
		{"connected", func() { c.Connected("maria", t0.Add(time.Minute)) }, func(r Record) bool {
			return r.Advocate == "maria" && r.Wait == 20*time.Second && r.Outcome == OutcomeInProgress
		}},
	}
	for _, s := range steps {
		s.do()
		rec.Wait()
		if got := byID(t, db)["c1"]; !s.check(got) {
			t.Fatalf("after %s: %+v", s.name, got)
		}
	}
	// Cut off: the next start recovers it as interrupted, with everything above.
	n, err := db.RecoverInterrupted(ctxT(t), "node-a", t0.Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("recover: %d, %v", n, err)
	}
	got := byID(t, db)["c1"]
	if got.Outcome != OutcomeInterrupted || got.Advocate != "maria" || got.Language != "es" || got.Answered.IsZero() {
		t.Fatalf("interrupted record: %+v", got)
	}
	// A milestone that arrives after the recovery leaves the interrupted row alone.
	c.Queued("en", t0.Add(2*time.Minute))
	rec.Wait()
	if got := byID(t, db)["c1"]; got.Outcome != OutcomeInterrupted || got.Queue != "es" {
		t.Fatalf("a late milestone overwrote the ended row: %+v", got)
	}
}

// TestRecorderOutcomes: an outcome left out is derived from how far the call got; a
// shutdown during a fatal stop is recorded as such, with its reason.
func TestRecorderOutcomes(t *testing.T) {
	fatal := errors.New("sip: udp listener: use of closed network connection")
	for _, tc := range []struct {
		name     string
		stopping error
		set      func(*Call)
		want     Outcome
		reason   string
	}{
		{"hung up in the menus", nil, func(*Call) {}, OutcomeMenuHangup, ""},
		{"hung up in the queue", nil, func(c *Call) { c.Queued("en", t0) }, OutcomeAbandoned, ""},
		{"talked", nil, func(c *Call) { c.Queued("en", t0); c.Connected("maria", t0) }, OutcomeCompleted, ""},
		{"set explicitly", nil, func(c *Call) { c.Ended(OutcomeMessage, t0.Add(time.Second)) }, OutcomeMessage, ""},
		{"orderly stop", context.Canceled, func(c *Call) { c.Ended(OutcomeShutdown, t0.Add(time.Second)) }, OutcomeShutdown, ""},
		{"fatal stop", fatal, func(c *Call) { c.Ended(OutcomeShutdown, t0.Add(time.Second)) }, OutcomeShutdownFatal, fatal.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := sqliteDB(t)
			rec := NewRecorder(db, Options{Hasher: testHasher(t), Node: "n", Logger: quietLog(),
				Now: func() time.Time { return t0.Add(time.Hour) }})
			closeRecorder(t, rec)
			rec.SetStopping(func() error { return tc.stopping })
			c := rec.Begin("c", "main", "", t0)
			tc.set(c)
			if err := c.Finish(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := byID(t, db)["c"]
			if got.Outcome != tc.want || got.End.IsZero() || got.EndReason != tc.reason {
				t.Errorf("outcome %s (%q), end %v; want %s (%q)", got.Outcome, got.EndReason, got.End, tc.want, tc.reason)
			}
		})
	}
}

// TestRecorderSlowStore: a store that hangs never holds up Begin or a milestone; Finish
// gives up after the timeout with ErrNotWritten, and the record is written all the same
// when the store answers.
func TestRecorderSlowStore(t *testing.T) {
	db := sqliteDB(t)
	fs := &faultStore{Store: db}
	release := make(chan struct{})
	fs.hang.Store(&release)
	rec := NewRecorder(fs, Options{Hasher: testHasher(t), Node: "n", Timeout: 50 * time.Millisecond, Logger: quietLog()})
	closeRecorder(t, rec)
	begun := time.Now()
	c := rec.Begin("c1", "main", "+15551234567", t0)
	c.Answered(t0)
	if d := time.Since(begun); d > 20*time.Millisecond {
		t.Fatalf("Begin and Answered took %v with the store hung", d)
	}
	if err := c.Finish(context.Background()); !errors.Is(err, ErrNotWritten) {
		t.Fatalf("Finish = %v, want ErrNotWritten", err)
	}
	close(release)
	fs.hang.Store(nil)
	waitFor(t, "the record written", func() bool { return byID(t, db)["c1"].Outcome == OutcomeMenuHangup })
}

// TestRecorderFinishOnShutdown: a call ended because the server is stopping (its context is
// cancelled) is still written.
func TestRecorderFinishOnShutdown(t *testing.T) {
	db := sqliteDB(t)
	rec := NewRecorder(db, Options{Hasher: testHasher(t), Node: "n", Logger: quietLog()})
	closeRecorder(t, rec)
	ctx, cancel := context.WithCancel(context.Background())
	c := rec.Begin("c1", "main", "", t0)
	cancel()
	if err := c.Finish(ctx); err != nil {
		t.Fatalf("Finish after cancel: %v", err)
	}
	if got := byID(t, db)["c1"]; got.End.IsZero() {
		t.Fatalf("not written: %+v", got)
	}
}

// TestRecorderHousekeeping: the heartbeat is recorded and old records purged at once, then
// on their tickers.
func TestRecorderHousekeeping(t *testing.T) {
	now := time.Now().UTC()
	db := sqliteDB(t)
	old := sample("old", now.Add(-500*24*time.Hour))
	if err := db.Finish(ctxT(t), old); err != nil {
		t.Fatal(err)
	}
	rec := NewRecorder(db, Options{Hasher: testHasher(t), Node: "node-a", Retention: 400 * 24 * time.Hour,
		Heartbeat: 5 * time.Millisecond, PurgeEvery: 5 * time.Millisecond, Logger: quietLog()})
	closeRecorder(t, rec)
	waitFor(t, "the old record purged", func() bool { _, ok := byID(t, db)["old"]; return !ok })
	beat := func() time.Time {
		var v any
		if err := db.db.QueryRow(`SELECT heartbeat FROM nodes WHERE node = 'node-a'`).Scan(&v); err != nil {
			return time.Time{}
		}
		hb, _ := fromDB(v)
		return hb
	}
	waitFor(t, "a heartbeat", func() bool { return !beat().IsZero() })
	first := beat()
	waitFor(t, "a later heartbeat", func() bool { return beat().After(first) })
}

// TestRecorderAttempts: refused attempts are counted per minute, line, outcome and reason;
// a thousand of them are one row.
func TestRecorderAttempts(t *testing.T) {
	db := sqliteDB(t)
	rec := NewRecorder(db, Options{Hasher: testHasher(t), Node: "node-a", Logger: quietLog(),
		AttemptsEvery: 5 * time.Millisecond})
	closeRecorder(t, rec)
	for i := range 1000 {
		rec.Refused("main", "capacity", t0.Add(time.Duration(i)*time.Millisecond))
	}
	rec.Refused("main", "source_rate", t0)
	rec.Unanswered("u1", "main", "+15551234567", t0, t0.Add(time.Second), OutcomeCancelled)
	want := map[string]int64{"main refused capacity": 1000, "main refused source_rate": 1}
	waitFor(t, "the counts", func() bool { return reflect.DeepEqual(attemptCounts(t, db), want) })
	as, err := db.Attempts(ctxT(t), t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil || len(as) != 2 { // one minute: capacity and source_rate
		t.Fatalf("Attempts: %+v, %v", as, err)
	}
	if a := as[0]; !a.Minute.Equal(t0.Truncate(time.Minute)) || a.Node != "node-a" || a.Outcome != OutcomeRefused {
		t.Fatalf("first count: %+v", a)
	}
	rec.Wait()
	if got := byID(t, db)["u1"]; got.Outcome != OutcomeCancelled || got.End.IsZero() || got.CallerHash == "" {
		t.Fatalf("unanswered call: %+v", got)
	}
}

// attemptCounts returns call_attempts as "line outcome reason" -> count, summed over minutes.
func attemptCounts(t *testing.T, db *DB) map[string]int64 {
	t.Helper()
	rows, err := db.db.Query(`SELECT line, outcome, reason, SUM(count) FROM call_attempts GROUP BY line, outcome, reason`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[string]int64{}
	for rows.Next() {
		var l, o, r string
		var n int64
		if err := rows.Scan(&l, &o, &r, &n); err != nil {
			t.Fatal(err)
		}
		m[l+" "+o+" "+r] = n
	}
	return m
}

// waitFor polls ok for up to 10 seconds.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
