// Package sipagent holds the SIP and RTP agents the tests drive against a real hotline on
// loopback: a caller (INVITE with SDP over UDP, TCP or TLS, ACK, BYE, hand-built messages so
// that a test can also send what a well-behaved stack would not), an advocate's phone
// (REGISTER with digest, answers or refuses the INVITEs it is sent, plays a tone and records
// what it hears), a flooder (one source sending out-of-dialog requests as fast as asked and
// counting the answers), test certificates, an RTP stream that keeps its own sequence
// numbers and timestamps (silence, tones, RFC 4733 key presses) and a recorder of the RTP a
// socket receives that can tell which tone it hears (Goertzel).
//
// Messages are parsed with sipgo's parser; digest answers are computed with icholy/digest,
// the library sipgo itself uses. Every socket binds port 0 on 127.0.0.0/8 and is closed by
// the test's Cleanup.
package sipagent
