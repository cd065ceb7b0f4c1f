// Package logs bounds how often one log line repeats. A caller or an attacker can make the
// server log the same thing thousands of times a second (an RFC 4733 flood once wrote
// 30,100 "digit buffer full" lines in 3 s, issue 14): a log that floods hides everything
// else in it, fills disks and costs CPU on every call.
//
// Handler wraps any slog.Handler. Lines are grouped by level and message, per call (the
// "call" attribute the SIP server gives each call's logger) and across all calls: in each
// interval the first PerCall lines of a group for one call, and the first Global lines of
// a group for all calls together (warnings and errors, and lines of no call), are written;
// the rest are counted and dropped, and when the interval is over one summary line says
// how many were dropped. Every dropped line is also reported to Options.OnSuppressed, for
// a metric.
package logs
