// Package records keeps one record per call (its times, line, language, reason, route,
// overflow steps, queue, wait, talk and wrap-up time, advocate and outcome) in a store that
// survives a crash: an embedded SQLite database by default, or PostgreSQL.
//
// The caller appears only as a keyed hash (HMAC-SHA256, see Hasher), so repeat callers can
// be counted and nobody can read their number back out of the records.
//
// A call's row is written when it starts, with outcome in_progress, and rewritten,
// synchronously and committed, when it ends; a node that was killed marks the rows it left
// in progress as interrupted when it starts again (DB.RecoverInterrupted). Recorder is the
// handle the call path uses: it never blocks a caller on the database and never drops a
// call because of it.
package records
