// Package state keeps what a hotline node must not forget when it restarts: advocates'
// registrations (with their expiry and the flow they came in on), advocates' states (pause
// reasons, logouts, wrap-up ends) and the emergency overrides. It is built on
// github.com/hashicorp/raft: every change is a command in a replicated log, applied by a
// deterministic state machine (FSM) that never reads a clock (each entry carries its
// time), with snapshots. A single node is a one-voter cluster whose log and snapshots on
// disk (raft-boltdb and a file snapshot store) are its restart store; more voters make the
// same log a cluster's shared state (issue 17, part 2).
//
// Today the live objects (registrar.Registrar, the queue engine, routing.Overrides) stay
// the runtime's source of truth: they report each change (Submit), the Store writes the
// changes to the log in the order they were reported, and at start the FSM's state seeds
// them again (State). Sync waits until what was submitted is on disk.
package state
