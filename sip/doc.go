// Package sip is the hotline's SIP side: a sipgo server that takes callers' calls to the
// configured lines and advocates' registrations and feature codes, and places the outbound
// legs to advocates' phones and transfer targets. It owns the SIP leg of every call, from
// the INVITE to the BYE, and hands the call to its Handler (the call flow) once answered.
//
// What it owns, by file:
//   - server.go: the server, its options and listeners, and a new call's steps: admit (whom
//     the INVITE is for, and whether the server takes it), negotiate (the SDP offer, under
//     the line's SRTP policy), set up (the call's RTP leg and dialog), answer (the 200 and
//     its ACK), run (the Handler) and close, counting the leg's outcome (outcome.Leg);
//     re-INVITEs, BYE, CANCEL, INFO and OPTIONS.
//   - call.go: the Call, what the call flow sees of a leg (play, digits, hang up).
//   - dial.go: outbound legs (Dial) and their dialogs.
//   - register.go, info.go: REGISTER with digest authentication, feature codes, SIP INFO
//     digits.
//   - defence.go, attempts.go: admission against the per-source defences and the untrusted
//     sources' budget (package sip/defence), and the refused or unanswered attempts the call
//     records count.
//   - overload.go: overload control, which sheds new calls (503 with Retry-After) that could
//     not be set up in time, early in the gate's admission and again at set-up.
//   - tls.go, log.go: SIP over TLS, and sipgo's logs into slog.
//
// What it does not own: every received message goes through package sip/gate (checks,
// framing, connection caps, stateless answers) before sipgo parses it; SDP and SDES keys are
// package sip/sdp's; digest is package sip/digest's. sip plays audio and relays RTP through
// package media, and knows nothing of menus, queues or records.
package sip
