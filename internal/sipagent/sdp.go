package sipagent

import (
	"strconv"
	"strings"
)

// Offer is an SDP body offering one audio stream on 127.0.0.1:port with the payload types
// in fmts (space separated: 0 PCMU, 8 PCMA, 18 G729, 101 telephone-event; others are
// offered without an rtpmap) and the extra lines appended (each ending in CRLF).
func Offer(port int, fmts string, extra string) string {
	var b strings.Builder
	b.WriteString("v=0\r\no=test 1 1 IN IP4 127.0.0.1\r\ns=test\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n")
	b.WriteString("m=audio " + strconv.Itoa(port) + " RTP/AVP " + fmts + "\r\n")
	for _, f := range strings.Fields(fmts) {
		switch f {
		case "0":
			b.WriteString("a=rtpmap:0 PCMU/8000\r\n")
		case "8":
			b.WriteString("a=rtpmap:8 PCMA/8000\r\n")
		case "18":
			b.WriteString("a=rtpmap:18 G729/8000\r\n")
		case "101":
			b.WriteString("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n")
		}
	}
	return b.String() + extra
}
