package records

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // the pure-Go SQLite driver, "sqlite"
)

// The connection pools' sizes: the Recorder writes through one connection at a time; the
// others serve exports and the heartbeat.
const (
	sqliteConns   = 4
	postgresConns = 4
)

// sqliteSynchronous is SQLite's synchronous setting (see OpenSQLite); a variable for the
// benchmark that compares them.
var sqliteSynchronous = "FULL"

// DSNEnv is the environment variable that, when set, is the PostgreSQL DSN instead of the
// configuration's records.dsn.
const DSNEnv = "HOTLINE_RECORDS_DSN"

// DB is a store of call records in SQLite or PostgreSQL. It is safe for concurrent use.
type DB struct {
	db *sql.DB
	d  dialect
}

// dialect is what differs between SQLite and PostgreSQL: how times are stored and the
// migrations. Both take $1-style placeholders and INSERT ... ON CONFLICT.
type dialect struct {
	name string // "sqlite" or "postgres": the directory of its migrations
	// timeType is the column type of schema_migrations.applied_at.
	timeType string
	// lock is run first in the migration transaction, to keep nodes that start at the same
	// time from migrating at once; "" when the transaction itself locks (SQLite's
	// BEGIN IMMEDIATE).
	lock string
	// time converts a time to the value stored (nil for the zero time); fromDB back.
	time func(time.Time) any
}

// ms is the precision of stored times: Unix milliseconds in SQLite, and the same in
// PostgreSQL so that both stores give the same records back.
func ms(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

var (
	sqliteDialect = dialect{
		name:     "sqlite",
		timeType: "INTEGER",
		time: func(t time.Time) any {
			if t.IsZero() {
				return nil
			}
			return t.UnixMilli()
		},
	}
	postgresDialect = dialect{
		name:     "postgres",
		timeType: "TIMESTAMPTZ",
		// An arbitrary constant that names hotline's migration lock.
		lock: "SELECT pg_advisory_xact_lock(7261746563)",
		time: func(t time.Time) any {
			if t.IsZero() {
				return nil
			}
			return ms(t)
		},
	}
)

// fromDB converts a stored time (int64 milliseconds from SQLite, time.Time from
// PostgreSQL, nil for none) to a time.Time in UTC.
func fromDB(v any) (time.Time, error) {
	switch v := v.(type) {
	case nil:
		return time.Time{}, nil
	case int64:
		return time.UnixMilli(v).UTC(), nil
	case time.Time:
		return v.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("unexpected time value of type %T", v)
}

// OpenSQLite opens (creating it, mode 0600, if needed) the SQLite database at path and
// applies the migrations it lacks.
//
// The database runs in WAL mode with synchronous=FULL: a call's record is on disk when
// Finish returns, so neither kill -9 nor a power cut loses it (NORMAL would survive kill -9
// but not a power cut). The cost, one fsync per call start and end, is nothing at a
// hotline's call rate.
func OpenSQLite(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("records: no SQLite path")
	}
	// Create the file before SQLite does, so that it is private: records are sensitive
	// even without numbers in them. SQLite gives the -wal and -shm files the same mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("records: %w", err)
	}
	f.Close()
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+sqliteSynchronous+")")
	// A lock held by another process (a backup, sqlite3 in a terminal) is waited for this
	// long; then the write fails and the Recorder spools and retries. Longer only delays
	// the spooling.
	q.Add("_pragma", "busy_timeout(3000)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate") // a transaction takes the write lock at BEGIN
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("records: open %s: %w", path, err)
	}
	// A fixed pool: the Recorder's one writer and a few readers (exports). database/sql
	// keeps only 2 idle connections by default and closes the rest, so that bursts paid for
	// opening SQLite connections (and applying their pragmas) again and again.
	db.SetMaxOpenConns(sqliteConns)
	db.SetMaxIdleConns(sqliteConns)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return open(ctx, db, sqliteDialect, path)
}

// errBadDSN is a DSN that does not parse; pgx's message may quote it, password included.
var errBadDSN = errors.New("records: the PostgreSQL DSN does not parse")

// CheckDSN reports whether dsn parses as a PostgreSQL DSN, without connecting: a server
// refuses to start with one that does not (a store that is down, it starts with).
func CheckDSN(dsn string) error {
	if _, err := pgx.ParseConfig(dsn); err != nil {
		return errBadDSN
	}
	return nil
}

// OpenPostgres connects to the PostgreSQL database dsn names (a URL or key=value string;
// the PG* environment variables and ~/.pgpass fill in what it leaves out, the password
// especially) and applies the migrations it lacks.
func OpenPostgres(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, errBadDSN
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(postgresConns)
	db.SetMaxIdleConns(postgresConns) // no churn: idle connections are kept, not reopened
	db.SetConnMaxIdleTime(5 * time.Minute)
	return open(ctx, db, postgresDialect, fmt.Sprintf("postgres %s/%s", cfg.Host, cfg.Database))
}

func open(ctx context.Context, db *sql.DB, d dialect, name string) (*DB, error) {
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("records: open %s: %w", name, err)
	}
	if err := migrate(ctx, db, d); err != nil {
		db.Close()
		return nil, fmt.Errorf("records: %s: %w", name, err)
	}
	return &DB{db: db, d: d}, nil
}

// Close closes the database.
func (s *DB) Close() error { return s.db.Close() }

const recordColumns = `call_id, node, line, caller_hash, start_time, answer_time, queue_time, connect_time,
	end_time, language, reason, route, steps, queue, advocate, wait_ms, talk_ms, wrapup_ms, outcome, end_reason`

// recordValues are the placeholders of recordColumns.
const recordValues = `($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`

// recordUpsert is the INSERT of a whole row that overwrites the one already there; the
// progress writes add a WHERE that leaves ended rows alone.
const recordUpsert = `INSERT INTO call_records (` + recordColumns + `) VALUES ` + recordValues + `
		ON CONFLICT (call_id) DO UPDATE SET
			node = excluded.node, line = excluded.line, caller_hash = excluded.caller_hash,
			start_time = excluded.start_time, answer_time = excluded.answer_time,
			queue_time = excluded.queue_time, connect_time = excluded.connect_time,
			end_time = excluded.end_time, language = excluded.language, reason = excluded.reason,
			route = excluded.route, steps = excluded.steps, queue = excluded.queue,
			advocate = excluded.advocate, wait_ms = excluded.wait_ms, talk_ms = excluded.talk_ms,
			wrapup_ms = excluded.wrapup_ms, outcome = excluded.outcome, end_reason = excluded.end_reason`

func (s *DB) args(r *Record) []any {
	return []any{
		r.CallID, r.Node, r.Line, r.CallerHash, s.d.time(r.Start), s.d.time(r.Answered),
		s.d.time(r.QueueEnter), s.d.time(r.Connected), s.d.time(r.End), r.Language, r.Reason,
		r.Route, strings.Join(r.Steps, stepSep), r.Queue, r.Advocate, r.Wait.Milliseconds(),
		r.Talk.Milliseconds(), r.WrapUp.Milliseconds(), string(r.Outcome), r.EndReason,
	}
}

// stepSep joins Record.Steps in the database and the CSV export; names of queues and
// targets cannot contain it.
const stepSep = " > "

// Start writes r as a call in progress. A row already written for r.CallID (by a Finish
// that overtook this Start) is left as it is.
func (s *DB) Start(ctx context.Context, r Record) error {
	if err := check(&r); err != nil {
		return err
	}
	r.End, r.Outcome = time.Time{}, OutcomeInProgress
	_, err := s.db.ExecContext(ctx, `INSERT INTO call_records (`+recordColumns+`) VALUES `+recordValues+`
		ON CONFLICT (call_id) DO NOTHING`, s.args(&r)...)
	if err != nil {
		return fmt.Errorf("records: start %s: %w", r.CallID, err)
	}
	return nil
}

// Finish writes r, an ended call, over whatever was written for it before. Wait, Talk
// and Outcome are derived from the times when they are not set.
func (s *DB) Finish(ctx context.Context, r Record) error {
	if err := check(&r); err != nil {
		return err
	}
	if r.End.IsZero() {
		return fmt.Errorf("records: finish %s: no end time", r.CallID)
	}
	r.derive()
	_, err := s.db.ExecContext(ctx, recordUpsert, s.args(&r)...)
	if err != nil {
		return fmt.Errorf("records: finish %s: %w", r.CallID, err)
	}
	return nil
}

// check rejects a record without the fields every row needs.
func check(r *Record) error {
	switch {
	case r.CallID == "":
		return errors.New("records: a record needs a call id")
	case r.Node == "":
		return fmt.Errorf("records: %s: a record needs a node", r.CallID)
	case r.Start.IsZero():
		return fmt.Errorf("records: %s: a record needs a start time", r.CallID)
	}
	return nil
}

// Heartbeat records that node is alive at now: RecoverInterrupted ends the calls a node
// left in progress at its last heartbeat.
func (s *DB) Heartbeat(ctx context.Context, node string, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO nodes (node, heartbeat) VALUES ($1, $2)
		ON CONFLICT (node) DO UPDATE SET heartbeat = excluded.heartbeat`, node, s.d.time(now))
	if err != nil {
		return fmt.Errorf("records: heartbeat: %w", err)
	}
	return nil
}

// RecoverInterrupted marks node's calls still in progress as interrupted, and returns how
// many there were. It is for start-up, before node takes calls: those calls were cut off
// when node stopped without ending them.
//
// Their end time is node's last heartbeat (or the latest time in the row, if later): the node was
// alive then and dead by the next heartbeat, so the estimate is short by less than one
// heartbeat interval. Without any heartbeat it is now. Start-up time alone would count
// all the time the node was down as talk or wait time.
func (s *DB) RecoverInterrupted(ctx context.Context, node string, now time.Time) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("records: recover: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var hbv any
	switch err := tx.QueryRowContext(ctx, `SELECT heartbeat FROM nodes WHERE node = $1`, node).Scan(&hbv); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return 0, fmt.Errorf("records: recover: %w", err)
	}
	hb, err := fromDB(hbv)
	if err != nil {
		return 0, fmt.Errorf("records: recover: heartbeat: %w", err)
	}
	if hb.IsZero() || hb.After(now) {
		hb = now
	}
	rows, err := tx.QueryContext(ctx, `SELECT call_id, start_time, queue_time, connect_time
		FROM call_records WHERE node = $1 AND outcome = $2`, node, string(OutcomeInProgress))
	if err != nil {
		return 0, fmt.Errorf("records: recover: %w", err)
	}
	var open []Record
	for rows.Next() {
		var r Record
		var start, queued, connected any
		if err := rows.Scan(&r.CallID, &start, &queued, &connected); err != nil {
			rows.Close()
			return 0, fmt.Errorf("records: recover: %w", err)
		}
		r.Start, err = fromDB(start)
		if err == nil {
			r.QueueEnter, err = fromDB(queued)
		}
		if err == nil {
			r.Connected, err = fromDB(connected)
		}
		if err != nil {
			rows.Close()
			return 0, fmt.Errorf("records: recover %s: %w", r.CallID, err)
		}
		open = append(open, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("records: recover: %w", err)
	}
	for _, r := range open {
		// The last sign of life: the heartbeat, or the latest time the row itself shows
		// (a call that got further after the last heartbeat).
		r.End = hb
		for _, t := range []time.Time{r.Start, r.QueueEnter, r.Connected} {
			if t.After(r.End) {
				r.End = t
			}
		}
		r.Outcome = OutcomeInterrupted
		r.derive()
		if _, err := tx.ExecContext(ctx, `UPDATE call_records SET end_time = $1, wait_ms = $2, talk_ms = $3,
			outcome = $4 WHERE call_id = $5`, s.d.time(r.End), r.Wait.Milliseconds(), r.Talk.Milliseconds(),
			string(r.Outcome), r.CallID); err != nil {
			return 0, fmt.Errorf("records: recover %s: %w", r.CallID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("records: recover: %w", err)
	}
	return len(open), nil
}

// Purge deletes the records of calls that started before before, except calls still in
// progress, and returns how many it deleted.
func (s *DB) Purge(ctx context.Context, before time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM call_records WHERE start_time < $1 AND outcome <> $2`,
		s.d.time(before), string(OutcomeInProgress))
	if err != nil {
		return 0, fmt.Errorf("records: purge: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("records: purge: %w", err)
	}
	return int(n), nil
}

// Records returns the records of calls that started in [since, until), oldest first;
// a zero since or until leaves that end open.
func (s *DB) Records(ctx context.Context, since, until time.Time) ([]Record, error) {
	var out []Record
	err := s.each(ctx, since, until, func(r *Record) error {
		out = append(out, *r)
		return nil
	})
	return out, err
}

// each calls f with every record of a call that started in [since, until), oldest first.
func (s *DB) each(ctx context.Context, since, until time.Time, f func(*Record) error) error {
	q := `SELECT ` + recordColumns + ` FROM call_records WHERE 1 = 1`
	var args []any
	if !since.IsZero() {
		args = append(args, s.d.time(since))
		q += fmt.Sprintf(" AND start_time >= $%d", len(args))
	}
	if !until.IsZero() {
		args = append(args, s.d.time(until))
		q += fmt.Sprintf(" AND start_time < $%d", len(args))
	}
	rows, err := s.db.QueryContext(ctx, q+" ORDER BY start_time, call_id", args...)
	if err != nil {
		return fmt.Errorf("records: query: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r Record
		var times [5]any
		var steps, outcome string
		var wait, talk, wrap int64
		if err := rows.Scan(&r.CallID, &r.Node, &r.Line, &r.CallerHash, &times[0], &times[1], &times[2],
			&times[3], &times[4], &r.Language, &r.Reason, &r.Route, &steps, &r.Queue, &r.Advocate,
			&wait, &talk, &wrap, &outcome, &r.EndReason); err != nil {
			return fmt.Errorf("records: query: %w", err)
		}
		for i, p := range []*time.Time{&r.Start, &r.Answered, &r.QueueEnter, &r.Connected, &r.End} {
			if *p, err = fromDB(times[i]); err != nil {
				return fmt.Errorf("records: %s: %w", r.CallID, err)
			}
		}
		if steps != "" {
			r.Steps = strings.Split(steps, stepSep)
		}
		r.Wait, r.Talk, r.WrapUp = time.Duration(wait)*time.Millisecond, time.Duration(talk)*time.Millisecond,
			time.Duration(wrap)*time.Millisecond
		r.Outcome = Outcome(outcome)
		if err := f(&r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("records: query: %w", err)
	}
	return nil
}

// Attempts returns the counts of call attempts (refused, and in a flood unanswered) in
// minutes that started in [since, until), oldest first, summed over the node's runs; a zero
// since or until leaves that end open.
func (s *DB) Attempts(ctx context.Context, since, until time.Time) ([]Attempts, error) {
	q := `SELECT minute, node, line, outcome, reason, count FROM call_attempts WHERE 1 = 1`
	var args []any
	if !since.IsZero() {
		args = append(args, s.d.time(since))
		q += fmt.Sprintf(" AND minute >= $%d", len(args))
	}
	if !until.IsZero() {
		args = append(args, s.d.time(until))
		q += fmt.Sprintf(" AND minute < $%d", len(args))
	}
	rows, err := s.db.QueryContext(ctx, q+" ORDER BY minute, node, line, outcome, reason", args...)
	if err != nil {
		return nil, fmt.Errorf("records: attempts: %w", err)
	}
	defer rows.Close()
	var out []Attempts
	for rows.Next() {
		var a Attempts
		var minute any
		var outcome string
		if err := rows.Scan(&minute, &a.Node, &a.Line, &outcome, &a.Reason, &a.Count); err != nil {
			return nil, fmt.Errorf("records: attempts: %w", err)
		}
		if a.Minute, err = fromDB(minute); err != nil {
			return nil, fmt.Errorf("records: attempts: %w", err)
		}
		a.Outcome = Outcome(outcome)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("records: attempts: %w", err)
	}
	return out, nil
}
