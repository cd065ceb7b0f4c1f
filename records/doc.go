// Package records keeps one record per call (its times, line, language, reason, route,
// overflow steps, queue, wait, talk and wrap-up time, advocate and outcome) in a store that
// survives a crash: an embedded SQLite database by default, or PostgreSQL; and counts, per
// minute, the call attempts refused before they became calls (call_attempts).
//
// The caller appears only as a keyed hash (HMAC-SHA256, see Hasher), so repeat callers can
// be counted and nobody can read their number back out of the records.
//
// Recorder is the handle the call path uses. A call's record is queued when the call starts
// (in progress) and at each milestone, and its end is committed before Call.Finish returns;
// one writer goroutine group-commits everything queued (writer.go). The store never decides
// whether a call is answered: the writer opens it in the background, and while it is
// unavailable (locked, full, read-only, down) records wait in a spool file (spool.go) or in
// memory, bounded, dropped only when both are full and then counted (Stats). A node that was
// killed marks the rows it left in progress as interrupted when it starts again
// (DB.RecoverInterrupted, run by the writer before any of the new run's records).
package records
