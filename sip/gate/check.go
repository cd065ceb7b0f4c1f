package gate

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	sipmsg "github.com/emiago/sipgo/sip"
)

// This file holds the checks every received SIP message goes through before sipgo's transport
// hands it to the transaction layer (RFC 3261 8.2, 18.3 and the RFC 4475 torture tests). sipgo
// drops what it cannot parse without a word, answers some valid messages 400, and accepts
// some invalid ones (a wrong SIP version, conflicting Content-Length values, a CSeq method that
// is not the request's). checkMessage works on the raw bytes, so it can answer what sipgo
// cannot parse, and then on sipgo's own parse of them, so both agree on what passes.

// AllowedMethods are the methods we serve; the Allow header lists them. (REGISTER is served
// when Options has Auth and a Registrar, as the hotline command always gives.)
var AllowedMethods = []string{"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO", "REGISTER"}

// KnownMethods are SIP methods we recognise but do not serve: 405 with Allow. Anything else is 501.
var KnownMethods = map[string]bool{
	"REGISTER": true, "SUBSCRIBE": true, "NOTIFY": true, "REFER": true, "MESSAGE": true,
	"PRACK": true, "UPDATE": true, "PUBLISH": true,
}

// NewParser returns the parser the gate and sipgo share: sipgo's, with every Via given rport.
func NewParser() *sipmsg.Parser {
	return sipmsg.NewParser(sipmsg.WithHeadersParsers(forceRportParsers()))
}

// forceRportParsers returns sipgo's header parsers with Via parsing extended so that every Via
// carries rport. Responses then go to the packet's source address and port (RFC 3581, like
// Kamailio's force_rport), never to a host or port named in Via: callers behind NAT get answers,
// and a forged Via cannot aim our responses at a third party.
func forceRportParsers() map[string]sipmsg.HeaderParser {
	base := sipmsg.DefaultHeadersParser()
	m := make(map[string]sipmsg.HeaderParser, len(base))
	for k, v := range base {
		m[k] = v
	}
	viaParser := base["via"]
	wrapped := func(name []byte, text string) (sipmsg.Header, error) {
		h, err := viaParser(name, text)
		if err != nil {
			return h, err
		}
		if via, ok := h.(*sipmsg.ViaHeader); ok {
			if via.Params == nil {
				via.Params = sipmsg.NewParams()
			}
			if !via.Params.Has("rport") {
				via.Params.Add("rport", "")
			}
		}
		return h, nil
	}
	m["via"] = wrapped
	m["v"] = wrapped
	return m
}

// Action is what the transport does with a received message.
type Action int

const (
	Pass  Action = iota // hand the message (Verdict.msg, or the original bytes) to sipgo
	Reply               // answer Verdict.reply to the sender, statelessly; sipgo never sees it
	Drop                // discard silently (responses, ACKs, messages with nowhere to answer)
)

// Verdict is the outcome of checking one message.
type Verdict struct {
	act    Action
	status int    // with Reply
	method string // request method, for metrics ("" for responses)
	reason string // why it was rejected or dropped, for logs; never message text
	reply  []byte // with Reply: the response to send
	msg    []byte // with Pass: replacement bytes, nil to pass the original

	req *sipmsg.Request // with Pass of a request: sipgo's parse of it
	raw *rawMessage     // with Pass of a request: its raw fields
}

// Action is what the transport does with the message.
func (v Verdict) Action() Action { return v.act }

// Status is the status of the stateless answer (with Reply).
func (v Verdict) Status() int { return v.status }

// Reason says why the message was answered or dropped, for logs; never message text.
func (v Verdict) Reason() string { return v.reason }

// Response is the stateless answer to send (with Reply).
func (v Verdict) Response() []byte { return v.reply }

// rawHeader is one header field as received: name as sent, value unfolded and trimmed.
type rawHeader struct {
	name  string
	key   string // canonicalName(name), computed once
	value string
}

// rawMessage is a SIP message split at the framing level.
type rawMessage struct {
	startLine string
	headers   []rawHeader
	body      []byte
	complete  bool // the empty line ending the header section was present
}

var (
	errEmpty         = errors.New("empty message")
	errHeaderSyntax  = errors.New("malformed header line")
	errStartLineCtrl = errors.New("control character in start line")
)

// splitMessage splits b into start line, unfolded header fields (RFC 3261 7.3.1) and body. It
// never fails on a missing end of headers: complete says whether the empty line was there. An
// error other than errEmpty comes with whatever was split before the bad line.
func splitMessage(b []byte) (rawMessage, error) {
	var m rawMessage
	for len(b) >= 2 && b[0] == '\r' && b[1] == '\n' {
		b = b[2:]
	}
	if len(bytes.Trim(b, "\r\n\x00")) == 0 {
		return m, errEmpty
	}
	head := b
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		head, m.body, m.complete = b[:i], b[i+4:], true
	}
	lines := strings.Split(string(head), "\r\n")
	m.startLine = lines[0]
	if strings.ContainsAny(m.startLine, "\r\n\x00") {
		return m, errStartLineCtrl
	}
	for _, l := range lines[1:] {
		if l == "" {
			// A trailing CRLF of a header section without the empty line.
			continue
		}
		if l[0] == ' ' || l[0] == '\t' {
			if len(m.headers) == 0 {
				return m, errHeaderSyntax
			}
			h := &m.headers[len(m.headers)-1]
			h.value = strings.TrimSpace(h.value + " " + strings.TrimSpace(l))
			continue
		}
		i := strings.IndexByte(l, ':')
		if i <= 0 {
			return m, errHeaderSyntax
		}
		name := strings.TrimRight(l[:i], " \t")
		if !isToken(name) {
			return m, errHeaderSyntax
		}
		m.headers = append(m.headers, rawHeader{name: name, key: canonicalName(name), value: strings.TrimSpace(l[i+1:])})
	}
	return m, nil
}

// compactForms maps RFC 3261 7.3.3 (and later RFCs') compact header names to full ones.
var compactForms = map[string]string{
	"i": "call-id", "f": "from", "t": "to", "v": "via", "l": "content-length", "m": "contact",
	"c": "content-type", "e": "content-encoding", "k": "supported", "s": "subject",
	"o": "event", "r": "refer-to", "u": "allow-events", "x": "session-expires", "b": "referred-by",
}

// canonicalName returns the lower-case full name of a header field.
func canonicalName(name string) string {
	n := strings.ToLower(name)
	if full, ok := compactForms[n]; ok {
		return full
	}
	return n
}

// values returns the values of every header field called name (canonical).
func (m *rawMessage) values(name string) []string {
	var vs []string
	for _, h := range m.headers {
		if h.key == name {
			vs = append(vs, h.value)
		}
	}
	return vs
}

// isToken reports whether s is a non-empty RFC 3261 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-.!%*_+`'~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isSIPVersion reports whether v has the SIP-Version shape: "SIP/" 1*DIGIT "." 1*DIGIT.
func isSIPVersion(v string) bool {
	if len(v) < 4 || !strings.EqualFold(v[:4], "SIP/") {
		return false
	}
	maj, min, ok := strings.Cut(v[4:], ".")
	return ok && isDigits(maj) && isDigits(min)
}

// validScheme reports whether s is an RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
func validScheme(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// servedMethod reports whether method (case-sensitive, RFC 3261 7.1) is one we know: served
// (Allow) or recognised (405).
func servedMethod(method string) bool {
	for _, m := range AllowedMethods {
		if m == method {
			return true
		}
	}
	return KnownMethods[method]
}

// maxCSeq bounds the CSeq sequence number: "MUST be less than 2**31" (RFC 3261 8.1.1.5).
const maxCSeq = 1<<31 - 1

// checkMessage decides what to do with one received SIP message b, a whole datagram or one
// message framed from a stream. p is the parser sipgo uses; maxLen the largest message
// accepted. It never panics and never returns a reply to a response or an ACK.
func checkMessage(p *sipmsg.Parser, b []byte, maxLen int) Verdict {
	return checkMessageEarly(p, b, maxLen, nil)
}

// checkMessageEarly is checkMessage with early, which sees a request that passed the checks
// of its raw text (before sipgo's parse, the dearer half) and may settle it there: with ok,
// its verdict is the message's. ACKs of the gate's own stateless answers end there too.
func checkMessageEarly(p *sipmsg.Parser, b []byte, maxLen int, early func(m *rawMessage, method, uri string) (Verdict, bool)) Verdict {
	m, splitErr := splitMessage(b)
	if errors.Is(splitErr, errEmpty) {
		return Verdict{act: Pass} // keep-alive; sipgo answers or ignores it
	}
	if strings.HasPrefix(m.startLine, "SIP/") {
		return checkResponse(p, b, m, splitErr)
	}
	method, uri, version, ok := splitRequestLine(m.startLine)
	v := Verdict{method: method}
	reject := func(pr *problem) Verdict {
		v.reason = pr.reason
		if method == "ACK" {
			// An ACK is never answered (RFC 3261 17.2.3).
			v.act = Drop
			return v
		}
		if len(m.values("via")) == 0 {
			v.act, v.reason = Drop, pr.reason+"; no via to answer to"
			return v
		}
		v.act, v.status, v.reply = Reply, pr.status, m.reply(pr.status, reasonPhrase(pr.status), pr.extra)
		return v
	}
	if pr := checkStart(ok, version, splitErr, m.complete); pr != nil {
		return reject(pr)
	}
	for _, check := range []func() *problem{
		func() *problem { return checkFraming(&m, maxLen) },
		func() *problem { return checkMandatory(&m, method) },
		func() *problem { return checkRequestURI(uri) },
	} {
		if pr := check(); pr != nil {
			return reject(pr)
		}
	}
	if method == "ACK" && statelessAck(&m) {
		// The ACK of a non-2xx answer the gate gave without a transaction (RFC 3261
		// 17.1.1.3): sipgo would parse it and find no transaction for it. Each INVITE shed
		// under overload brings one.
		return Verdict{act: Drop, method: method, reason: "ack of a stateless answer"}
	}
	if early != nil {
		if ev, ok := early(&m, method, uri); ok {
			return ev
		}
	}
	msg, err := p.ParseSIP(b)
	if err != nil {
		return reject(refuse(400, "unparseable: "+parseErrorKind(err)))
	}
	req, ok := msg.(*sipmsg.Request)
	if !ok || req.Via() == nil || req.From() == nil || req.To() == nil || req.CSeq() == nil || req.CallID() == nil {
		return reject(refuse(400, "unparseable header fields"))
	}
	if pr := checkContent(&m, req); pr != nil {
		return reject(pr)
	}
	if out := rfc2543Branch(req); out != nil {
		// sipgo parses again what it printed; a message it cannot read back is not passed.
		if _, err := p.ParseSIP(out); err != nil {
			return reject(refuse(400, "no transaction id and unreadable fields"))
		}
		v.msg = out
	}
	v.act, v.req, v.raw = Pass, req, &m
	return v
}

// problem is why a request is refused: the status to answer, the reason for the logs (never
// message text), and extra header lines for the answer.
type problem struct {
	status int
	reason string
	extra  []string
}

func refuse(status int, reason string, extra ...string) *problem {
	return &problem{status: status, reason: reason, extra: extra}
}

// checkStart checks the request line and that the header section was read whole.
func checkStart(lineOK bool, version string, splitErr error, complete bool) *problem {
	switch {
	case !lineOK:
		return refuse(400, "malformed request line")
	case !isSIPVersion(version):
		return refuse(400, "malformed sip version")
	case !strings.EqualFold(version, "SIP/2.0"):
		return refuse(505, "unsupported sip version")
	case splitErr != nil:
		return refuse(400, splitErr.Error())
	case !complete:
		return refuse(400, "header section not terminated")
	}
	return nil
}

// checkFraming checks the framing: one Content-Length, decimal, within the message (RFC 3261
// 18.3, 20.14).
func checkFraming(m *rawMessage, maxLen int) *problem {
	cls := m.values("content-length")
	if len(cls) > 1 {
		return refuse(400, "more than one content-length")
	}
	if len(cls) == 1 {
		if !isDigits(cls[0]) || len(cls[0]) > 9 {
			return refuse(400, "malformed content-length")
		}
		n, _ := strconv.Atoi(cls[0])
		if n > maxLen {
			return refuse(513, "content-length beyond the size limit")
		}
		if n > len(m.body) {
			return refuse(400, "content-length larger than the message")
		}
	}
	return nil
}

// checkMandatory checks the header fields every request carries exactly once (RFC 3261
// 8.1.1, 20), the CSeq, and that the method is one we serve.
func checkMandatory(m *rawMessage, method string) *problem {
	for _, name := range []string{"call-id", "from", "to", "cseq"} {
		if n := len(m.values(name)); n != 1 {
			return refuse(400, fmt.Sprintf("%d %s header fields", n, name))
		}
	}
	if len(m.values("max-forwards")) > 1 {
		return refuse(400, "more than one max-forwards")
	}
	num, cseqMethod, ok := strings.Cut(strings.Join(strings.Fields(m.values("cseq")[0]), " "), " ")
	if !ok || !isDigits(num) || len(num) > 10 {
		return refuse(400, "malformed cseq")
	}
	if n, _ := strconv.ParseUint(num, 10, 64); n > maxCSeq {
		return refuse(400, "cseq number out of range")
	}
	if cseqMethod != method {
		if !servedMethod(method) {
			return refuse(501, "unknown method (cseq method differs)", AllowLine())
		}
		return refuse(400, "cseq method differs from the request method")
	}
	if !servedMethod(method) {
		// Methods are case-sensitive; sipgo upper-cases them, so "invite" would reach INVITE.
		return refuse(501, "unknown method", AllowLine())
	}
	return nil
}

// checkRequestURI checks the Request-URI (RFC 3261 8.2.2.1).
func checkRequestURI(uri string) *problem {
	if strings.HasPrefix(uri, "<") {
		return refuse(400, "request-uri in angle brackets")
	}
	scheme, _, ok := strings.Cut(uri, ":")
	if !ok || !validScheme(scheme) {
		return refuse(400, "malformed request-uri")
	}
	switch strings.ToLower(scheme) {
	case "sip", "sips", "tel":
		return nil
	}
	return refuse(416, "unsupported uri scheme")
}

// checkContent is an INVITE's content processing (RFC 3261 8.2.3): we take SDP and answer
// with SDP.
func checkContent(m *rawMessage, req *sipmsg.Request) *problem {
	if req.Method != sipmsg.INVITE {
		return nil
	}
	if ct := req.ContentType(); ct != nil && len(req.Body()) > 0 && mediaType(ct.Value()) != "application/sdp" {
		return refuse(415, "unsupported content type", "Accept: application/sdp")
	}
	if accepts := m.values("accept"); !acceptsSDP(accepts) {
		return refuse(406, "accept excludes application/sdp", "Accept: application/sdp",
			`Warning: 399 hotline "only application/sdp bodies are produced"`)
	}
	return nil
}

// checkResponse passes a response only if sipgo parses it and its status code is a real one;
// a bad response is never answered (RFC 4475 3.1.2.5, 3.1.2.19).
func checkResponse(p *sipmsg.Parser, b []byte, m rawMessage, splitErr error) Verdict {
	drop := func(reason string) Verdict { return Verdict{act: Drop, reason: reason} }
	f := strings.SplitN(m.startLine, " ", 3)
	if len(f) < 2 || !strings.EqualFold(f[0], "SIP/2.0") || len(f[1]) != 3 || !isDigits(f[1]) || f[1][0] < '1' || f[1][0] > '6' {
		return drop("malformed status line")
	}
	if splitErr != nil || !m.complete {
		return drop("malformed response headers")
	}
	if len(m.values("content-length")) > 1 {
		return drop("more than one content-length")
	}
	if _, err := p.ParseSIP(b); err != nil {
		return drop("unparseable response: " + parseErrorKind(err))
	}
	return Verdict{act: Pass}
}

// splitRequestLine splits "Method SP Request-URI SP SIP-Version", one SP each (RFC 3261 7.1).
func splitRequestLine(l string) (method, uri, version string, ok bool) {
	f := strings.Split(l, " ")
	if len(f) != 3 || !isToken(f[0]) || f[1] == "" || f[2] == "" || strings.ContainsAny(l, "\t") {
		if len(f) > 0 && isToken(f[0]) {
			method = f[0]
		}
		if len(f) == 3 {
			version = f[2]
		}
		return method, "", version, false
	}
	return f[0], f[1], f[2], true
}

// parseErrorKind names a sipgo parse error without the message text some of them quote.
func parseErrorKind(err error) string {
	s := err.Error()
	if i := strings.IndexAny(s, "'\""); i >= 0 {
		s = s[:i]
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return strings.TrimSpace(s)
}

// mediaType returns the lower-case type/subtype of a Content-Type or Accept value.
func mediaType(v string) string {
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	return strings.ToLower(strings.Join(strings.Fields(v), ""))
}

// acceptsSDP reports whether Accept header values (none: SDP is assumed, RFC 3261 20.1) allow
// an application/sdp body.
func acceptsSDP(values []string) bool {
	listed := false
	for _, v := range values {
		for _, r := range strings.Split(v, ",") {
			t := mediaType(r)
			if t == "" {
				continue
			}
			listed = true
			if t == "application/sdp" || t == "application/*" || t == "*/*" {
				return true
			}
		}
	}
	return !listed
}

// rfc2543Branch returns req re-serialised with a Via branch when sipgo could not key its
// transaction otherwise, or nil. A request without an RFC 3261 branch is matched by From tag,
// Call-ID, CSeq and Via (RFC 3261 17.2.3); sipgo rejects it 400 if the From tag is missing or
// one it cannot parse (RFC 2543 peers send none; wsinv's is folded around '='). The branch is
// derived from what identifies the transaction, minus the method, so an ACK or CANCEL for the
// same INVITE gets the same one and matches its transaction. The peer sees the branch in our
// responses' Via, a parameter RFC 2543 elements ignore.
func rfc2543Branch(req *sipmsg.Request) []byte {
	via := req.Via()
	if b, ok := via.Params.Get("branch"); ok && strings.HasPrefix(b, sipmsg.RFC3261BranchMagicCookie) && len(b) > len(sipmsg.RFC3261BranchMagicCookie) {
		return nil
	}
	if tag, ok := req.From().Params.Get("tag"); ok && tag != "" {
		return nil
	}
	h := fnv.New64a()
	for _, s := range []string{req.CallID().Value(), strconv.FormatUint(uint64(req.CSeq().SeqNo), 10), req.From().Value(), via.Host, strconv.Itoa(via.Port)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	via.Params.Add("branch", fmt.Sprintf("%s-2543-%016x", sipmsg.RFC3261BranchMagicCookie, h.Sum64()))
	return []byte(req.String())
}

// reply builds a stateless response to m (RFC 3261 8.2.6.2): Via, From, To (with a tag), Call-ID
// and CSeq copied from the request, then extra header lines.
func (m *rawMessage) reply(status int, reason string, extra []string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", status, reason)
	seen := map[string]bool{}
	for _, h := range m.headers {
		name := h.key
		var out string
		switch name {
		case "via":
			out = "Via"
		case "from":
			out = "From"
		case "to":
			out = "To"
		case "call-id":
			out = "Call-ID"
		case "cseq":
			out = "CSeq"
		default:
			continue
		}
		if name != "via" {
			if seen[name] {
				continue
			}
			seen[name] = true
		}
		value := strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' {
				return ' '
			}
			return r
		}, h.value)
		if name == "to" && !strings.Contains(strings.ToLower(strings.Join(strings.Fields(value), "")), ";tag=") {
			value += ";tag=" + m.statelessTag()
		}
		fmt.Fprintf(&b, "%s: %s\r\n", out, value)
	}
	for _, e := range extra {
		b.WriteString(e + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.Bytes()
}

// statelessTag is a To tag that is the same for every retransmission of a request. It
// starts with statelessTagPrefix, which no tag of a dialog has (sipgo's are letters and
// digits), so that the ACK of a stateless answer is known by it (statelessAck).
func (m *rawMessage) statelessTag() string {
	h := fnv.New64a()
	h.Write([]byte(m.startLine))
	for _, hd := range m.headers {
		h.Write([]byte(hd.name))
		h.Write([]byte(hd.value))
	}
	return statelessTagPrefix + strconv.FormatUint(h.Sum64(), 36)
}

// statelessTagPrefix begins the To tag of every answer the gate gives without a transaction.
const statelessTagPrefix = "sl-"

// statelessAck reports whether m, an ACK, acknowledges an answer the gate gave without a
// transaction: its To tag is one of statelessTag's.
func statelessAck(m *rawMessage) bool {
	to := m.values("to")
	if len(to) != 1 {
		return false
	}
	tag, ok := toTag(to[0])
	return ok && strings.HasPrefix(tag, statelessTagPrefix)
}

// toTag returns the tag parameter of a To (or From) header value, and whether it has one.
// It is conservative: a value it cannot read simply (quotes, escapes) has none for it.
func toTag(v string) (string, bool) {
	if strings.ContainsAny(v, "\"\\") {
		return "", false
	}
	if i := strings.LastIndexByte(v, '>'); i >= 0 {
		v = v[i+1:] // header parameters follow the name-addr
	}
	for _, p := range strings.Split(v, ";")[1:] {
		name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(name), "tag") {
			return strings.TrimSpace(value), true
		}
	}
	return "", false
}

func AllowLine() string { return "Allow: " + strings.Join(AllowedMethods, ", ") }

func reasonPhrase(status int) string {
	switch status {
	case 200:
		return "OK"
	case 404:
		return "Not Found"
	case 503:
		return "Service Unavailable"
	case 400:
		return "Bad Request"
	case 406:
		return "Not Acceptable"
	case 415:
		return "Unsupported Media Type"
	case 416:
		return "Unsupported URI Scheme"
	case 501:
		return "Not Implemented"
	case 505:
		return "Version Not Supported"
	case 513:
		return "Message Too Large"
	}
	return "Error"
}
