// Package sdp negotiates a call's audio stream: the SDP offer/answer model (RFC 3264) for one
// audio m-line in PCMU or PCMA with telephone-event, and SDES keys for SRTP (RFC 4568).
//
// It is pure: it parses and writes SDP bodies and knows nothing of SIP transactions or
// sockets. The sip package calls it when an INVITE, a re-INVITE, an ACK or a 200 carries SDP,
// and hands the negotiated Media to the RTP leg. A line's SRTPPolicy decides whether an
// RTP/SAVP offer is taken, and ModeOver refuses SDES keys over signalling that is not
// encrypted unless the configuration allows it.
package sdp
