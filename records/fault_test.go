package records

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Issue 15: records never decide whether a call is answered. Each store fault (locked, full,
// read-only, PostgreSQL down), at start-up and during calls: the Recorder takes every call's
// record at once, says the store is down (Stats, for the metric and /readyz), keeps the
// records in its spool (or memory), and writes them all when the store is back.

// faultOpts are Options for the fault tests: quick retries.
func faultOpts(t *testing.T, spool string) Options {
	return Options{Hasher: testHasher(t), Node: "node-a", Logger: quietLog(), Spool: spool,
		Retry: 20 * time.Millisecond, Timeout: time.Second, AttemptsEvery: 10 * time.Millisecond}
}

// placeCalls records n finished calls and one in progress (id "live"), as the call path
// would, and returns the finished calls' ids. Finish must never take long.
func placeCalls(t *testing.T, rec *Recorder, prefix string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		c := rec.Begin(id, "main", "+15551234567", t0.Add(time.Duration(i)*time.Second))
		c.Answered(t0.Add(time.Duration(i)*time.Second + time.Millisecond))
		c.Menus("en", "tip")
		c.Queued("en", t0.Add(time.Duration(i)*time.Second+2*time.Second))
		c.Connected("maria", t0.Add(time.Duration(i)*time.Second+3*time.Second))
		c.Ended("", t0.Add(time.Duration(i)*time.Second+time.Minute))
		began := time.Now()
		_ = c.Finish(context.Background()) // may be ErrHeldInMemory: the record still waits
		if d := time.Since(began); d > 1500*time.Millisecond {
			t.Fatalf("Finish took %v", d)
		}
		ids = append(ids, id)
	}
	live := rec.Begin(prefix+"-live", "main", "", t0)
	live.Menus("es", "help_now")
	rec.Refused("main", "capacity", t0)
	return ids
}

// checkComplete waits until every call in ids is in db complete, the live call in
// progress with its menus, and the refused attempt counted.
func checkComplete(t *testing.T, db *DB, prefix string, ids []string) {
	t.Helper()
	waitFor(t, "every record written", func() bool {
		got := byID(t, db)
		for _, id := range ids {
			if r := got[id]; r.Outcome != OutcomeCompleted || r.Advocate != "maria" || r.Language != "en" {
				return false
			}
		}
		live := got[prefix+"-live"]
		return live.Outcome == OutcomeInProgress && live.Language == "es" && attemptCounts(t, db)["main refused capacity"] >= 1
	})
}

// waitDown waits until rec reports the store down, with records waiting.
func waitDown(t *testing.T, rec *Recorder) Stats {
	t.Helper()
	var s Stats
	waitFor(t, "the store reported down", func() bool {
		s = rec.Stats()
		return !s.StoreUp && s.Failures > 0 && s.LastError != "" && !s.DownSince.IsZero()
	})
	return s
}

// TestFaultInjected: the unit-level cases with a store that fails on demand: at start-up
// (open fails) and during calls (writes fail), with a spool file and without one.
func TestFaultInjected(t *testing.T) {
	for _, spooled := range []bool{true, false} {
		for _, at := range []string{"start-up", "during calls"} {
			t.Run(fmt.Sprintf("%s spool=%v", at, spooled), func(t *testing.T) {
				db := sqliteDB(t)
				fs := &faultStore{Store: db}
				var opens atomic.Int32
				openOK := atomic.Bool{}
				open := func(context.Context) (Store, error) {
					opens.Add(1)
					if !openOK.Load() {
						return nil, errors.New("database is locked")
					}
					return fs, nil
				}
				spool := ""
				if spooled {
					spool = filepath.Join(t.TempDir(), "records.spool")
				}
				rec := Open(open, faultOpts(t, spool))
				closeRecorder(t, rec)
				if at == "during calls" {
					openOK.Store(true)
					rec.Wait()
					fs.fail(errors.New("disk I/O error"))
				}
				ids := placeCalls(t, rec, "c", 20)
				s := waitDown(t, rec)
				if spooled {
					waitFor(t, "records spooled", func() bool { return rec.Stats().Spooled > 0 })
				} else if s.Queued == 0 {
					t.Fatalf("no records waiting: %+v", s)
				}
				openOK.Store(true)
				fs.fail(nil)
				checkComplete(t, db, "c", ids)
				waitFor(t, "the store reported up", func() bool {
					s := rec.Stats()
					return s.StoreUp && s.Spooled == 0 && s.LastError == ""
				})
				if d := rec.Stats().Dropped; d != [dropKinds]uint64{} {
					t.Fatalf("dropped %v", d)
				}
			})
		}
	}
}

// TestSpoolAcrossRestart: records spooled by a server that stopped with its store down are
// written by the next one; the call it left in progress becomes interrupted (with what was
// known of it), and the new run's calls are untouched by that recovery.
func TestSpoolAcrossRestart(t *testing.T) {
	db := sqliteDB(t)
	spool := filepath.Join(t.TempDir(), "records.spool")
	down := func(context.Context) (Store, error) { return nil, errors.New("connection refused") }
	rec := Open(down, faultOpts(t, spool))
	ids := placeCalls(t, rec, "run1", 5)
	waitFor(t, "records spooled", func() bool { return rec.Stats().Spooled >= 5 })
	if err := rec.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(spool); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("spool file: %v, %v; want mode 0600", fi, err)
	}
	// A torn last line, as a full disk or a crash mid-append leaves.
	f, err := os.OpenFile(spool, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, `{"k":2,"r":{"CallID":"torn`)
	f.Close()

	// A run that finds the store still down appends behind the torn line, not onto it.
	rec = Open(down, faultOpts(t, spool))
	c := rec.Begin("run1b", "main", "", t0)
	_ = c.Finish(context.Background())
	if err := rec.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, "run1b")

	rec = Open(func(context.Context) (Store, error) { return db, nil }, faultOpts(t, spool))
	closeRecorder(t, rec)
	if s := rec.Stats(); s.Spooled < 5 {
		t.Fatalf("the new run sees %d spooled records", s.Spooled)
	}
	c = rec.Begin("run2-live", "main", "", t0.Add(time.Hour))
	c.Answered(t0.Add(time.Hour))
	rec.Wait()
	waitFor(t, "the spool written", func() bool { return rec.Stats().Spooled == 0 })
	got := byID(t, db)
	for _, id := range ids {
		if o := got[id].Outcome; o != OutcomeCompleted && (id != "run1b" || o != OutcomeMenuHangup) {
			t.Errorf("%s: %+v", id, got[id])
		}
	}
	if r := got["run1-live"]; r.Outcome != OutcomeInterrupted || r.Language != "es" {
		t.Errorf("run 1's call in progress: %+v", r)
	}
	if r := got["run2-live"]; r.Outcome != OutcomeInProgress || r.Answered.IsZero() {
		t.Errorf("run 2's call: %+v", r)
	}
	if fi, err := os.Stat(spool); err != nil || fi.Size() != 0 {
		t.Errorf("spool after replay: %v, %v", fi, err)
	}
}

// TestBounds: with the store down and no spool, the memory queue holds QueueMax records;
// past it records are dropped and counted, never silently; with a spool, past SpoolMax
// records wait in memory.
func TestBounds(t *testing.T) {
	down := func(context.Context) (Store, error) { return nil, errors.New("down") }
	opts := faultOpts(t, "")
	opts.QueueMax = 10
	rec := Open(down, opts)
	closeRecorder(t, rec)
	for i := range 20 {
		c := rec.Begin(fmt.Sprintf("c%d", i), "main", "", t0)
		_ = c.Finish(context.Background())
	}
	s := rec.Stats()
	// Up to 10, and the start's recovery marker that waits with them.
	if s.Queued > 11 || s.Dropped[dropProgress]+s.Dropped[dropFinish] == 0 {
		t.Fatalf("stats %+v: want at most 11 queued and some dropped", s)
	}

	opts = faultOpts(t, filepath.Join(t.TempDir(), "records.spool"))
	opts.SpoolMax = 4096
	rec = Open(down, opts)
	closeRecorder(t, rec)
	for i := range 40 {
		c := rec.Begin(fmt.Sprintf("c%d", i), "main", "", t0)
		_ = c.Finish(context.Background())
	}
	rec.Wait()
	s = rec.Stats()
	if s.Spooled == 0 || s.Queued == 0 || s.Dropped != [dropKinds]uint64{} {
		t.Fatalf("stats %+v: want some spooled, the rest queued, none dropped", s)
	}
}

// TestFaultLocked: another connection holds SQLite's write lock (BEGIN IMMEDIATE, as a
// backup or an operator's sqlite3 does), at start-up and during calls.
func TestFaultLocked(t *testing.T) {
	for _, at := range []string{"start-up", "during calls"} {
		t.Run(at, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "records.db")
			db, err := OpenSQLite(ctxT(t), path)
			if err != nil {
				t.Fatal(err)
			}
			if at == "start-up" {
				db.Close()
			}
			locker, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
			if err != nil {
				t.Fatal(err)
			}
			defer locker.Close()
			conn, err := locker.Conn(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var rec *Recorder
			opts := faultOpts(t, filepath.Join(dir, "records.spool"))
			if at == "start-up" {
				if _, err := conn.ExecContext(ctxT(t), "BEGIN IMMEDIATE"); err != nil {
					t.Fatal(err)
				}
				rec = Open(func(ctx context.Context) (Store, error) { return OpenSQLite(ctx, path) }, opts)
			} else {
				rec = NewRecorder(db, opts)
				defer db.Close()
				rec.Wait()
				if _, err := conn.ExecContext(ctxT(t), "BEGIN IMMEDIATE"); err != nil {
					t.Fatal(err)
				}
			}
			closeRecorder(t, rec)
			ids := placeCalls(t, rec, "c", 5)
			waitDown(t, rec)
			waitFor(t, "records spooled", func() bool { return rec.Stats().Spooled > 0 })
			if _, err := conn.ExecContext(ctxT(t), "ROLLBACK"); err != nil {
				t.Fatal(err)
			}
			reader, err := OpenSQLite(ctxT(t), path)
			if err != nil {
				t.Fatal(err)
			}
			defer reader.Close()
			checkComplete(t, reader, "c", ids)
			waitFor(t, "the store reported up", func() bool { return rec.Stats().StoreUp })
		})
	}
}

// mountTmpfs mounts a tmpfs of size bytes at a new directory, unmounted when the test ends.
// It needs root (CAP_SYS_ADMIN); elsewhere the test is skipped.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func remount(t *testing.T, dir, mode string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,"+mode, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s %s: %v: %s", dir, mode, err, out)
	}
}

// fill writes a file in dir until the disk is full, and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	return p
}

// TestFaultDiskFull: the disk of the database (and of the spool beside it) is full, at
// start-up and during calls: records wait in memory, and are written when space is freed.
func TestFaultDiskFull(t *testing.T) {
	for _, at := range []string{"start-up", "during calls"} {
		t.Run(at, func(t *testing.T) {
			dir := mountTmpfs(t, 4<<20)
			path := filepath.Join(dir, "records.db")
			opts := faultOpts(t, filepath.Join(dir, "records.spool"))
			var filler string
			if at == "start-up" {
				filler = fill(t, dir)
			}
			rec := Open(func(ctx context.Context) (Store, error) { return OpenSQLite(ctx, path) }, opts)
			closeRecorder(t, rec)
			if at == "during calls" {
				rec.Wait()
				waitFor(t, "the store open", func() bool { return rec.Stats().StoreUp })
				filler = fill(t, dir)
			}
			ids := placeCalls(t, rec, "c", 40)
			waitDown(t, rec)
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			reader := waitOpen(t, path)
			checkComplete(t, reader, "c", ids)
		})
	}
}

// TestFaultReadOnly: the database's file system is read-only (remounted so: root ignores
// file modes), with no database yet and with one from an earlier run. (Linux will not
// remount a file system read-only under SQLite's open files, as a disk error does; the
// write errors of that case are the injected ones of TestFaultInjected.)
func TestFaultReadOnly(t *testing.T) {
	for _, existing := range []bool{false, true} {
		t.Run(fmt.Sprintf("existing=%v", existing), func(t *testing.T) {
			dir := mountTmpfs(t, 8<<20)
			path := filepath.Join(dir, "records.db")
			opts := faultOpts(t, filepath.Join(dir, "records.spool"))
			if existing {
				db, err := OpenSQLite(ctxT(t), path)
				if err != nil {
					t.Fatal(err)
				}
				db.Close()
			}
			remount(t, dir, "ro")
			rec := Open(func(ctx context.Context) (Store, error) { return OpenSQLite(ctx, path) }, opts)
			closeRecorder(t, rec)
			ids := placeCalls(t, rec, "c", 5)
			s := waitDown(t, rec)
			if !strings.Contains(s.LastError, "read-only") {
				t.Errorf("last error %q does not say read-only", s.LastError)
			}
			remount(t, dir, "rw")
			reader := waitOpen(t, path)
			checkComplete(t, reader, "c", ids)
		})
	}
}

// waitOpen opens the SQLite database at path once it can be.
func waitOpen(t *testing.T, path string) *DB {
	t.Helper()
	var db *DB
	waitFor(t, "the database to open", func() bool {
		var err error
		db, err = OpenSQLite(ctxT(t), path)
		return err == nil
	})
	t.Cleanup(func() { db.Close() })
	return db
}

// TestFaultPostgresDown: the PostgreSQL server is stopped, at start-up and during calls,
// and started again.
func TestFaultPostgresDown(t *testing.T) {
	for _, at := range []string{"start-up", "during calls"} {
		t.Run(at, func(t *testing.T) {
			dsn := postgresDSN(t)
			opts := faultOpts(t, filepath.Join(t.TempDir(), "records.spool"))
			opts.Timeout = 2 * time.Second
			if at == "start-up" {
				pgPause(t)
			}
			rec := Open(func(ctx context.Context) (Store, error) { return OpenPostgres(ctx, dsn) }, opts)
			closeRecorder(t, rec)
			if at == "during calls" {
				waitFor(t, "the store open", func() bool { return rec.Stats().StoreUp })
				pgPause(t)
			}
			ids := placeCalls(t, rec, "c", 10)
			waitDown(t, rec)
			waitFor(t, "records spooled", func() bool { return rec.Stats().Spooled > 0 })
			pgResume(t)
			db, err := OpenPostgres(ctxT(t), dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			checkComplete(t, db, "c", ids)
		})
	}
}

// poisonStore refuses any batch with the record of one call, as a store might refuse a row
// it cannot take, while it takes everything else.
type poisonStore struct {
	Store
	id string
}

func (p *poisonStore) write(ctx context.Context, ops []*op) error {
	for _, o := range ops {
		if o.Rec != nil && o.Rec.CallID == p.id {
			return errors.New("invalid byte sequence for encoding UTF8")
		}
	}
	return p.Store.write(ctx, ops)
}

// TestPoisonRecord: a record the store refuses on its own (while it takes the heartbeat) is
// skipped and counted; the records behind it are written, and the store is up again.
func TestPoisonRecord(t *testing.T) {
	for _, spool := range []bool{true, false} {
		t.Run(fmt.Sprintf("spool=%v", spool), func(t *testing.T) { testPoisonRecord(t, spool) })
	}
}

func testPoisonRecord(t *testing.T, spool bool) {
	db := sqliteDB(t)
	opts := faultOpts(t, "")
	if spool {
		opts.Spool = filepath.Join(t.TempDir(), "records.spool")
	}
	rec := NewRecorder(&poisonStore{Store: db, id: "c-2"}, opts)
	closeRecorder(t, rec)
	ids := placeCalls(t, rec, "c", 5)
	waitFor(t, "the others written", func() bool {
		got := byID(t, db)
		for _, id := range ids {
			if _, ok := got[id]; !ok && id != "c-2" {
				return false
			}
		}
		return rec.Stats().StoreUp
	})
	if _, ok := byID(t, db)["c-2"]; ok {
		t.Fatal("the refused record is in the store")
	}
	if s := rec.Stats(); s.Dropped[dropProgress]+s.Dropped[dropFinish] == 0 || s.Spooled != 0 {
		t.Fatalf("stats %+v: want the refused record counted as dropped, nothing left spooled", s)
	}
}

// TestRetryUnderTraffic: records arriving all the time do not push the next try of an
// unavailable store back: it is tried every Retry, and found back while calls go on.
func TestRetryUnderTraffic(t *testing.T) {
	db := sqliteDB(t)
	var opens atomic.Int32
	open := func(context.Context) (Store, error) {
		if opens.Add(1) < 3 {
			return nil, errors.New("connection refused")
		}
		return db, nil
	}
	opts := faultOpts(t, filepath.Join(t.TempDir(), "records.spool"))
	opts.Retry = 30 * time.Millisecond
	rec := Open(open, opts)
	closeRecorder(t, rec)
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; !rec.Stats().StoreUp; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("the store was tried %d times in 5 s of traffic", opens.Load())
		}
		rec.Begin(fmt.Sprintf("c%d", i), "main", "", t0)
		time.Sleep(2 * time.Millisecond)
	}
}

// TestCloseWritesAll: Close writes everything queued, more than one batch of it.
func TestCloseWritesAll(t *testing.T) {
	db := sqliteDB(t)
	opts := faultOpts(t, "")
	opts.MaxBatch = 10
	fs := &faultStore{Store: db}
	release := make(chan struct{})
	fs.hang.Store(&release)
	rec := NewRecorder(fs, opts)
	for i := range 100 {
		c := rec.Begin(fmt.Sprintf("c%d", i), "main", "", t0)
		c.Ended("", t0.Add(time.Second))
	}
	close(release)
	if err := rec.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if n := len(byID(t, db)); n != 100 {
		t.Fatalf("%d records after Close, want 100", n)
	}
}
