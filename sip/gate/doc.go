// Package gate is the message gate in front of sipgo's transports: every UDP datagram, and
// every message framed from a TCP or TLS stream, is checked here before sipgo parses it.
//
// It owns three things:
//   - the checks of one message (check.go): framing, start line, mandatory headers and
//     their syntax, with the right SIP error for a malformed request (RFC 3261 8.2, 18.3,
//     the RFC 4475 torture tests) and silence for what has nowhere to be answered;
//   - the transports' wrappers (limits.go): a PacketConn and a Listener that frame messages
//     themselves, bound their size and the time they take to arrive, cap the stream
//     connections in total and per source, and keep accepting through errors;
//   - the stateless answers: a request that passes the checks goes to Config.Admit (the sip
//     server's per-source defences and line lookup), which may answer or drop it at once,
//     so that sipgo never creates a transaction for it.
//
// Limits are what one message or connection may cost; the per-source request rates, bans
// and the call budget are package sip/defence's, applied through Config.Admit.
package gate
