// Package callflow owns a call from the moment sip hands it over until its record is
// written: the menus, the routing decision, the queue (hold audio, announcements, overflow
// steps), the rings to advocates' phones, the whisper, the bridge, a target's leg, and the
// typed outcome the record and metrics get.
//
// One Call object per call holds its legs, record, attributes, decision, rings and
// outcome, and keeps the configuration Snapshot it started with. One routing function
// (Flow.route) makes the first decision and every re-route after a reload. The queue
// engine's clock is a timer set to its NextDeadline. A waiting call runs one select loop
// (waitLoop): its overflow steps and announcements are timers of their own, so a step that
// falls due while a prompt plays is taken on time, and the bridge to the advocate who
// answered is made on the caller's side of the flow, after its hold audio has stopped.
//
// While an advocate talks to a caller, the advocate's feature codes add an interpreter,
// 911 or a partner in a conference, and drop them again (midcall.go); the console's
// buttons key the same codes into the call (Press, press.go).
//
// Its collaborators are small interfaces defined here (Leg, Dialer, Contacts, Bridger,
// Mixer, Clock, Recorder, Menus), so the flow is tested with a fake clock and fake legs; package
// main wires the SIP server, the media bridge and the records database to them.
package callflow
