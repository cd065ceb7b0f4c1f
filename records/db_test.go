package records

import (
	"bytes"
	"context"
	"database/sql"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hotline-project/hotline/internal/golden"
)

var t0 = time.Date(2026, 3, 1, 2, 3, 4, 567_000_000, time.UTC)

// sample returns a finished call that started at start.
func sample(id string, start time.Time) Record {
	return Record{
		CallID: id, Node: "node-a", Line: "main", CallerHash: strings.Repeat("ab", 32),
		Start: start, Answered: start.Add(time.Second), QueueEnter: start.Add(40 * time.Second),
		Connected: start.Add(70 * time.Second), End: start.Add(10 * time.Minute),
		Language: "es", Reason: "help_now", Route: "help_now_es", Steps: []string{"es", "en"},
		Queue: "en", Advocate: "maria", WrapUp: 30 * time.Second, Outcome: OutcomeCompleted,
	}
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustRecords(t *testing.T, db *DB, since, until time.Time) []Record {
	t.Helper()
	recs, err := db.Records(ctxT(t), since, until)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func byID(t *testing.T, db *DB) map[string]Record {
	t.Helper()
	m := map[string]Record{}
	for _, r := range mustRecords(t, db, time.Time{}, time.Time{}) {
		m[r.CallID] = r
	}
	return m
}

// TestStartFinish: a call is in progress after Start and complete after Finish, with every
// field as written and the wait and talk derived from the times, in both stores.
func TestStartFinish(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			db, _ := openStore(t, b)
			ctx := ctxT(t)
			full := sample("c1", t0)
			started := Record{CallID: "c1", Node: "node-a", Line: "main", CallerHash: full.CallerHash, Start: t0}
			if err := db.Start(ctx, started); err != nil {
				t.Fatal(err)
			}
			got := byID(t, db)["c1"]
			want := started
			want.Outcome = OutcomeInProgress
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("after Start:\n got %+v\nwant %+v", got, want)
			}
			// A second Start (a retry) changes nothing.
			if err := db.Start(ctx, started); err != nil {
				t.Fatal(err)
			}
			if err := db.Finish(ctx, full); err != nil {
				t.Fatal(err)
			}
			want = full
			want.Wait, want.Talk = 30*time.Second, 530*time.Second
			if got := mustRecords(t, db, time.Time{}, time.Time{}); len(got) != 1 || !reflect.DeepEqual(got[0], want) {
				t.Fatalf("after Finish:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestFinishBeforeStart: a Start that the database sees after the Finish (it runs in the
// background) does not undo the finished record.
func TestFinishBeforeStart(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			db, _ := openStore(t, b)
			ctx := ctxT(t)
			r := sample("c1", t0)
			if err := db.Finish(ctx, r); err != nil {
				t.Fatal(err)
			}
			if err := db.Start(ctx, Record{CallID: "c1", Node: "node-a", Start: t0}); err != nil {
				t.Fatal(err)
			}
			if got := byID(t, db)["c1"]; got.Outcome != OutcomeCompleted || got.Advocate != "maria" {
				t.Fatalf("got %+v, want the finished record", got)
			}
		})
	}
}

// TestRejects: records without the fields every row needs are refused, with no row written.
func TestRejects(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			db, _ := openStore(t, b)
			ctx := ctxT(t)
			for _, tc := range []struct {
				name string
				r    Record
				op   func(context.Context, Record) error
			}{
				{"no call id", Record{Node: "n", Start: t0, End: t0}, db.Finish},
				{"no node", Record{CallID: "x", Start: t0}, db.Start},
				{"no start", Record{CallID: "x", Node: "n", End: t0}, db.Finish},
				{"no end", Record{CallID: "x", Node: "n", Start: t0}, db.Finish},
			} {
				if err := tc.op(ctx, tc.r); err == nil {
					t.Errorf("%s: no error", tc.name)
				}
			}
			if n := len(mustRecords(t, db, time.Time{}, time.Time{})); n != 0 {
				t.Fatalf("%d rows written", n)
			}
		})
	}
}

// TestRecoverInterrupted: at start-up a node's calls left in progress become interrupted,
// ending at its last heartbeat (or their start, if later); other nodes' calls are left.
func TestRecoverInterrupted(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			db, _ := openStore(t, b)
			ctx := ctxT(t)
			hb := t0.Add(time.Hour)
			now := t0.Add(3 * time.Hour)
			start := func(id, node string, r Record) {
				r.CallID, r.Node = id, node
				if err := db.Start(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			start("queued", "node-a", Record{Start: t0, QueueEnter: t0.Add(time.Minute)})
			// Start writes whatever the record holds: here, how far each call had got.
			start("talking", "node-a", Record{Start: t0, QueueEnter: t0.Add(time.Minute), Connected: t0.Add(2 * time.Minute), Advocate: "maria"})
			start("after-beat", "node-a", Record{Start: hb.Add(10 * time.Second)})
			start("connected-after-beat", "node-a", Record{Start: t0, QueueEnter: t0.Add(time.Minute), Connected: hb.Add(20 * time.Second)})
			start("other-node", "node-b", Record{Start: t0})
			if err := db.Finish(ctx, sample("done", t0)); err != nil {
				t.Fatal(err)
			}
			if err := db.Heartbeat(ctx, "node-a", t0.Add(30*time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := db.Heartbeat(ctx, "node-a", hb); err != nil { // the last one counts
				t.Fatal(err)
			}
			n, err := db.RecoverInterrupted(ctx, "node-a", now)
			if err != nil || n != 4 {
				t.Fatalf("RecoverInterrupted = %d, %v; want 4", n, err)
			}
			got := byID(t, db)
			for _, tc := range []struct {
				id         string
				outcome    Outcome
				end        time.Time
				wait, talk time.Duration
			}{
				{"queued", OutcomeInterrupted, hb, 59 * time.Minute, 0},
				{"talking", OutcomeInterrupted, hb, time.Minute, 58 * time.Minute},
				{"after-beat", OutcomeInterrupted, hb.Add(10 * time.Second), 0, 0},
				{"connected-after-beat", OutcomeInterrupted, hb.Add(20 * time.Second), hb.Add(20 * time.Second).Sub(t0.Add(time.Minute)), 0},
				{"other-node", OutcomeInProgress, time.Time{}, 0, 0},
				{"done", OutcomeCompleted, t0.Add(10 * time.Minute), 30 * time.Second, 530 * time.Second},
			} {
				r := got[tc.id]
				if r.Outcome != tc.outcome || !r.End.Equal(tc.end) || r.Wait != tc.wait || r.Talk != tc.talk {
					t.Errorf("%s: outcome %s end %v wait %v talk %v; want %s %v %v %v", tc.id,
						r.Outcome, r.End, r.Wait, r.Talk, tc.outcome, tc.end, tc.wait, tc.talk)
				}
			}
			if n, err := db.RecoverInterrupted(ctx, "node-a", now); err != nil || n != 0 {
				t.Fatalf("second RecoverInterrupted = %d, %v; want 0", n, err)
			}
			// A node that never sent a heartbeat: its calls end at the start-up time.
			if n, err := db.RecoverInterrupted(ctx, "node-b", now); err != nil || n != 1 {
				t.Fatalf("node-b: RecoverInterrupted = %d, %v; want 1", n, err)
			}
			if r := byID(t, db)["other-node"]; r.Outcome != OutcomeInterrupted || !r.End.Equal(now) {
				t.Fatalf("node-b's call: %s at %v, want interrupted at %v", r.Outcome, r.End, now)
			}
		})
	}
}

// TestPurge: records of calls that started before the cut-off go, except calls still in
// progress; the rest stay.
func TestPurge(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			db, _ := openStore(t, b)
			ctx := ctxT(t)
			cut := t0.Add(24 * time.Hour)
			for _, r := range []Record{sample("old", t0), sample("old2", cut.Add(-time.Millisecond)), sample("at-cut", cut), sample("new", cut.Add(time.Hour))} {
				if err := db.Finish(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Start(ctx, Record{CallID: "old-open", Node: "node-a", Start: t0}); err != nil {
				t.Fatal(err)
			}
			n, err := db.Purge(ctx, cut)
			if err != nil || n != 2 {
				t.Fatalf("Purge = %d, %v; want 2", n, err)
			}
			var ids []string
			for _, r := range mustRecords(t, db, time.Time{}, time.Time{}) {
				ids = append(ids, r.CallID)
			}
			if want := []string{"old-open", "at-cut", "new"}; !reflect.DeepEqual(ids, want) {
				t.Fatalf("left %v, want %v", ids, want)
			}
		})
	}
}

// exportFixture is what TestExport writes: every kind of record, with a caller hash, a
// route with overflow, and fields that need CSV quoting.
func exportFixture() []Record {
	a := sample("7f3a9c", t0)
	a.CallerHash = CallerHash([]byte("0123456789abcdef0123456789abcdef"), "sip:+15551234567@carrier.example;user=phone")
	b := Record{CallID: "8b21d0", Node: "node-a", Line: "text,line", Start: t0.Add(time.Hour),
		Answered: t0.Add(time.Hour + time.Second), QueueEnter: t0.Add(time.Hour + time.Minute),
		End: t0.Add(time.Hour + 5*time.Minute), Language: "en", Reason: "tip", Route: `say "hi"`,
		Steps: []string{"en"}, Queue: "en"}
	c := Record{CallID: "9c0e11", Node: "node-b", Line: "main", Start: t0.Add(2 * time.Hour),
		End: t0.Add(2*time.Hour + 20*time.Second), Outcome: OutcomeMenuHangup}
	return []Record{a, b, c}
}

// TestExport: the CSV export is the documented header and one row per call in the time
// window, oldest first; identical from both stores (testdata/export.csv, -update rewrites).
func TestExport(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			db, _ := openStore(t, b)
			ctx := ctxT(t)
			for _, r := range exportFixture() {
				if err := db.Finish(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Start(ctx, Record{CallID: "a0live", Node: "node-a", Line: "main", Start: t0.Add(3 * time.Hour)}); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := db.Export(ctx, &buf, time.Time{}, time.Time{}); err != nil {
				t.Fatal(err)
			}
			if b.name == "sqlite" || !golden.Updating() {
				golden.Check(t, "testdata/export.csv", buf.String())
			}
			for _, tc := range []struct {
				since, until time.Time
				want         []string
			}{
				{t0.Add(time.Hour), time.Time{}, []string{"8b21d0", "9c0e11", "a0live"}},
				{time.Time{}, t0.Add(2 * time.Hour), []string{"7f3a9c", "8b21d0"}},
				{t0.Add(time.Millisecond), t0.Add(2*time.Hour + time.Millisecond), []string{"8b21d0", "9c0e11"}},
				{t0.Add(4 * time.Hour), time.Time{}, nil},
			} {
				buf.Reset()
				if err := db.Export(ctx, &buf, tc.since, tc.until); err != nil {
					t.Fatal(err)
				}
				lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
				if lines[0] != CSVHeader {
					t.Fatalf("header %q", lines[0])
				}
				var ids []string
				for _, l := range lines[1:] {
					id, _, _ := strings.Cut(l, ",")
					ids = append(ids, id)
				}
				if !reflect.DeepEqual(ids, tc.want) {
					t.Errorf("since %v until %v: %v, want %v", tc.since, tc.until, ids, tc.want)
				}
			}
		})
	}
}

// TestMigrations: opening again applies nothing twice; schema_migrations records each
// version; a database from a newer hotline is refused rather than used.
func TestMigrations(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			db, loc := openStore(t, b)
			ctx := ctxT(t)
			if err := db.Finish(ctx, sample("c1", t0)); err != nil {
				t.Fatal(err)
			}
			ms, err := loadMigrations(db.d.name)
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			db, err = b.open(ctx, loc)
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			if v, err := db.SchemaVersion(ctx); err != nil || v != len(ms) {
				t.Fatalf("schema version %d, %v; want %d", v, err, len(ms))
			}
			if n := len(mustRecords(t, db, time.Time{}, time.Time{})); n != 1 {
				t.Fatalf("%d records after reopening, want 1", n)
			}
			if _, err := db.db.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				len(ms)+1, "9999_future", db.d.time(t0)); err != nil {
				t.Fatal(err)
			}
			db.Close()
			if db, err := b.open(ctx, loc); err == nil || !strings.Contains(err.Error(), "newer than this hotline knows") {
				if db != nil {
					db.Close()
				}
				t.Fatalf("open of a newer schema: %v", err)
			}
		})
	}
}

// TestMigrationRollsBack: a migration that fails leaves no trace: neither its tables nor
// a schema_migrations row.
func TestMigrationRollsBack(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			loc := b.location(t)
			d := sqliteDialect
			driver, dsn := "sqlite", "file:"+loc
			if b.name == "postgres" {
				d, driver, dsn = postgresDialect, "pgx", loc
			}
			raw, err := sql.Open(driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			ctx := ctxT(t)
			// The table the migration creates exists already under another shape, so the
			// CREATE TABLE fails half-way through the file.
			if _, err := raw.ExecContext(ctx, `CREATE TABLE nodes (x INTEGER)`); err != nil {
				t.Fatal(err)
			}
			if err := migrate(ctx, raw, d); err == nil {
				t.Fatal("migrate succeeded over a conflicting table")
			}
			var n int
			err = raw.QueryRowContext(ctx, `SELECT COUNT(*) FROM call_records`).Scan(&n)
			if err == nil {
				t.Fatal("call_records exists after the failed migration")
			}
			if err := raw.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err == nil {
				t.Fatalf("schema_migrations exists after the failed migration (%d rows)", n)
			}
		})
	}
}
