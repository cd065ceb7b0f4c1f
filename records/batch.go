package records

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// opKind is what an op asks of the store.
type opKind uint8

const (
	// opProgress writes a call in progress: its row is created or brought up to date,
	// unless it has ended already (a Finish or RecoverInterrupted overtook it).
	opProgress opKind = iota + 1
	// opFinish writes an ended call over whatever its row held.
	opFinish
	// opAttempts adds counts to call_attempts.
	opAttempts
	// opRecover marks the node's calls left in progress by an earlier run as interrupted.
	// It is queued first when a Recorder starts, so that it runs after the earlier run's
	// spooled records and before this run's.
	opRecover
	// opHeartbeat and opPurge are the Recorder's housekeeping; never spooled.
	opHeartbeat
	opPurge
	// opBarrier writes nothing: its waiters learn that everything before it is settled.
	opBarrier
)

// op is one entry of the Recorder's queue and of its spool file (JSON lines).
type op struct {
	Kind opKind    `json:"k"`
	Rec  *Record   `json:"r,omitempty"`
	Att  *Attempts `json:"a,omitempty"`
	At   time.Time `json:"t,omitzero"` // opRecover: when this run started; opPurge: the cut-off
	Node string    `json:"n,omitempty"`

	waiters []chan error // Finish and Wait callers, told when the op is settled
}

// durable reports whether the op belongs in the spool: housekeeping is redone, not replayed.
func (o *op) durable() bool {
	return o.Kind == opProgress || o.Kind == opFinish || o.Kind == opAttempts || o.Kind == opRecover
}

// Attempts counts the call attempts of one minute, node, line, outcome and reason: what
// the store keeps of refused INVITEs (and, in a flood, of calls that ended unanswered)
// instead of a row each.
type Attempts struct {
	Minute  time.Time // the start of the minute, UTC
	Node    string
	Line    string
	Outcome Outcome
	Reason  string
	Count   int64
}

// batchWriter is what a store offers the Recorder beyond Store: several records in one
// transaction.
type batchWriter interface {
	write(ctx context.Context, ops []*op) error
}

var _ batchWriter = (*DB)(nil)

// progressUpsert writes a call in progress unless its row has ended.
var progressUpsert = recordUpsert + ` WHERE call_records.outcome = '` + string(OutcomeInProgress) + `'`

const attemptsUpsert = `INSERT INTO call_attempts (minute, node, line, outcome, reason, count)
	VALUES ($1, $2, $3, $4, $5, $6)
	ON CONFLICT (minute, node, line, outcome, reason) DO UPDATE SET count = call_attempts.count + excluded.count`

// statement returns the SQL and arguments that write o (opProgress, opFinish, opAttempts).
func (s *DB) statement(o *op) (string, []any, error) {
	switch o.Kind {
	case opProgress, opFinish:
		r := *o.Rec
		if err := check(&r); err != nil {
			return "", nil, err
		}
		q := recordUpsert
		if o.Kind == opProgress {
			r.End, r.Outcome = time.Time{}, OutcomeInProgress
			q = progressUpsert
		} else if r.End.IsZero() {
			return "", nil, fmt.Errorf("records: finish %s: no end time", r.CallID)
		}
		r.derive()
		return q, s.args(&r), nil
	case opAttempts:
		a := o.Att
		return attemptsUpsert, []any{s.d.time(a.Minute), a.Node, a.Line, string(a.Outcome), a.Reason, a.Count}, nil
	}
	return "", nil, fmt.Errorf("records: op %d is not a write", o.Kind)
}

// write writes ops (opProgress, opFinish, opAttempts) in one transaction: all or none.
// A record that cannot be written at all (no call id, say; Recorder never queues one) is
// skipped rather than allowed to fail the others.
func (s *DB) write(ctx context.Context, ops []*op) error {
	if s.d.name == "postgres" {
		return s.writePostgres(ctx, ops)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("records: write: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	stmts := map[string]*sql.Stmt{}
	for _, o := range ops {
		q, args, err := s.statement(o)
		if err != nil {
			continue // check rejected it: Recorder never queues such a record
		}
		st := stmts[q]
		if st == nil {
			if st, err = tx.PrepareContext(ctx, q); err != nil {
				return fmt.Errorf("records: write: %w", err)
			}
			defer st.Close()
			stmts[q] = st
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("records: write: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("records: write: commit: %w", err)
	}
	return nil
}

// writePostgres sends ops as one pgx batch: one round trip, run by the server as one
// implicit transaction.
func (s *DB) writePostgres(ctx context.Context, ops []*op) error {
	b := &pgx.Batch{}
	for _, o := range ops {
		q, args, err := s.statement(o)
		if err != nil {
			continue
		}
		b.Queue(q, args...)
	}
	if b.Len() == 0 {
		return nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("records: write: %w", err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("records: write: unexpected driver connection %T", dc)
		}
		return sc.Conn().SendBatch(ctx, b).Close()
	})
	if err != nil {
		// A batch cut off by ctx closes pgx's connection, and database/sql then drops it.
		return fmt.Errorf("records: write: %w", err)
	}
	return nil
}
