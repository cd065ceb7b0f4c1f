// Package routing makes the hotline's routing decisions as pure functions: no I/O, no
// clock and no SIP types. For now it only answers which configured line a dialled number
// belongs to; schedules, queues and overflow will join it.
package routing
