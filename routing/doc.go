// Package routing makes the hotline's routing decisions as pure functions: no I/O, no
// clock and no SIP types, so that every decision can be tested and explained.
//
//   - number.go: which configured line a dialled number reaches.
//   - hours.go, schedule.go: opening hours ("22:00-06:00") and dates, in a schedule's time
//     zone, with date overrides; wall-clock semantics across daylight-saving changes.
//   - spec.go, compile.go: Compile checks a Spec (the routing part of the configuration) and
//     compiles it into an immutable Table, reporting problems by configuration path.
//   - table.go: Table.Route picks the first route whose conditions hold for a call's Attrs
//     at a time, given a State (queue states and emergency overrides), and explains why.
//   - overrides.go: the in-memory, concurrency-safe store of emergency overrides, which
//     outlives Tables (reloads) but not the process.
//
// Routing does not import config, which imports it: config fills in a Spec
// (config.Config.RoutingSpec) and runs Compile while parsing, so that `hotline check`
// reports routing problems with file and line.
package routing
