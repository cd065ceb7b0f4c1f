package records

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"
)

// fakeStore is a Store made of funcs; a nil func succeeds.
type fakeStore struct {
	start     func(context.Context, Record) error
	finish    func(context.Context, Record) error
	heartbeat func(context.Context, string, time.Time) error
	purge     func(context.Context, time.Time) (int, error)
}

func (f *fakeStore) Start(ctx context.Context, r Record) error {
	if f.start == nil {
		return nil
	}
	return f.start(ctx, r)
}

func (f *fakeStore) Finish(ctx context.Context, r Record) error {
	if f.finish == nil {
		return nil
	}
	return f.finish(ctx, r)
}

func (f *fakeStore) Heartbeat(ctx context.Context, node string, now time.Time) error {
	if f.heartbeat == nil {
		return nil
	}
	return f.heartbeat(ctx, node, now)
}

func (f *fakeStore) Purge(ctx context.Context, before time.Time) (int, error) {
	if f.purge == nil {
		return 0, nil
	}
	return f.purge(ctx, before)
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

// TestRecorderCall: a call's record, set piece by piece from several goroutines as the call
// path would, is written in full by Finish, with the caller hashed; a nil Recorder (no
// records configured) takes the same calls and does nothing.
func TestRecorderCall(t *testing.T) {
	db, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h := testHasher(t)
	for _, rec := range []*Recorder{nil, NewRecorder(db, Options{Hasher: h, Node: "node-a", Logger: quietLog()})} {
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
			if c != nil || rec.Failures() != 0 || rec.Run(context.Background()) != nil || rec.Purge(context.Background()) != 0 {
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
		if rec.Failures() != 0 {
			t.Fatalf("%d failures", rec.Failures())
		}
	}
}

// TestRecorderOutcomes: an outcome left out is derived from how far the call got.
func TestRecorderOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Call)
		want Outcome
	}{
		{"hung up in the menus", func(*Call) {}, OutcomeMenuHangup},
		{"hung up in the queue", func(c *Call) { c.Queued("en", t0) }, OutcomeAbandoned},
		{"talked", func(c *Call) { c.Queued("en", t0); c.Connected("maria", t0) }, OutcomeCompleted},
		{"set explicitly", func(c *Call) { c.Ended(OutcomeMessage, t0.Add(time.Second)) }, OutcomeMessage},
	} {
		var got Record
		store := &fakeStore{finish: func(_ context.Context, r Record) error {
			r.derive()
			got = r
			return nil
		}}
		rec := NewRecorder(store, Options{Hasher: testHasher(t), Node: "n", Now: func() time.Time { return t0.Add(time.Hour) }})
		c := rec.Begin("c", "main", "", t0)
		tc.set(c)
		if err := c.Finish(context.Background()); err != nil {
			t.Fatal(err)
		}
		rec.Wait()
		if got.Outcome != tc.want || got.End.IsZero() {
			t.Errorf("%s: outcome %s, end %v; want %s", tc.name, got.Outcome, got.End, tc.want)
		}
	}
}

// TestRecorderSlowStore: a database that hangs never holds up Begin (the start is written
// in the background); Finish gives up after the timeout, and the failures are counted and
// reported, not returned to the call as anything but an error to log.
func TestRecorderSlowStore(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var ops []string
	store := &fakeStore{
		start: func(context.Context, Record) error {
			<-release // ignores its context: the worst database driver
			return errors.New("too late")
		},
		finish: func(ctx context.Context, _ Record) error {
			<-ctx.Done()
			return ctx.Err()
		},
	}
	rec := NewRecorder(store, Options{Hasher: testHasher(t), Node: "n", Timeout: time.Millisecond, Logger: quietLog(),
		OnError: func(op string) { mu.Lock(); ops = append(ops, op); mu.Unlock() }})
	c := rec.Begin("c1", "main", "+15551234567", t0) // returns although Start hangs
	if err := c.Finish(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Finish = %v, want the deadline", err)
	}
	close(release)
	rec.Wait()
	if rec.Failures() != 2 || len(ops) != 2 {
		t.Fatalf("%d failures, reported %v; want finish and start", rec.Failures(), ops)
	}
}

// TestRecorderFinishOnShutdown: a call ended because the server is stopping (its context is
// cancelled) is still written.
func TestRecorderFinishOnShutdown(t *testing.T) {
	var wrote bool
	store := &fakeStore{finish: func(ctx context.Context, _ Record) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wrote = true
		return nil
	}}
	rec := NewRecorder(store, Options{Hasher: testHasher(t), Node: "n"})
	ctx, cancel := context.WithCancel(context.Background())
	c := rec.Begin("c1", "main", "", t0)
	cancel()
	if err := c.Finish(ctx); err != nil || !wrote {
		t.Fatalf("Finish after cancel: %v, written %v", err, wrote)
	}
	rec.Wait()
}

// TestRecorderRun: Run sends a heartbeat and purges records older than the retention at
// once, then on its tickers, until its context ends.
func TestRecorderRun(t *testing.T) {
	now := t0
	beats := make(chan time.Time, 10)
	purges := make(chan time.Time, 10)
	store := &fakeStore{
		heartbeat: func(_ context.Context, node string, at time.Time) error {
			if node != "node-a" {
				t.Errorf("heartbeat for %q", node)
			}
			select {
			case beats <- at:
			default: // the test has seen enough
			}
			return nil
		},
		purge: func(_ context.Context, before time.Time) (int, error) {
			select {
			case purges <- before:
			default:
			}
			return 2, nil
		},
	}
	rec := NewRecorder(store, Options{Hasher: testHasher(t), Node: "node-a", Retention: 400 * 24 * time.Hour,
		Heartbeat: time.Millisecond, PurgeEvery: time.Millisecond, Now: func() time.Time { return now }, Logger: quietLog()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- rec.Run(ctx) }()
	for range 2 { // the first at once, then the tickers'
		if at := <-beats; !at.Equal(now) {
			t.Errorf("heartbeat at %v, want %v", at, now)
		}
		if before := <-purges; !before.Equal(now.Add(-400 * 24 * time.Hour)) {
			t.Errorf("purge before %v, want 400 days before %v", before, now)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for len(purges) > 0 {
		<-purges
	}
	// No retention: nothing is purged.
	rec = NewRecorder(store, Options{Hasher: testHasher(t), Node: "node-a"})
	if n := rec.Purge(context.Background()); n != 0 || len(purges) != 0 {
		t.Fatalf("Purge without retention = %d, %d store purges", n, len(purges))
	}
}
