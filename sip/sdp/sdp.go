package sdp

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	psdp "github.com/pion/sdp/v3"
)

// Static payload types of the two codecs we speak (RFC 3551).
const (
	PayloadPCMU uint8 = 0
	PayloadPCMA uint8 = 8
	// OfferDTMFPayload is the telephone-event payload type we use when we make the offer.
	OfferDTMFPayload uint8 = 101
)

// ErrNotAcceptable is returned when an SDP offer or answer has no usable audio stream:
// no common codec, a malformed body, or an unsupported transport. It maps to 488.
var ErrNotAcceptable = errors.New("sdp not acceptable")

// Media is the outcome of an SDP offer/answer exchange for one audio stream.
type Media struct {
	// Remote is where the peer wants RTP sent (unspecified address when on hold).
	Remote netip.AddrPort
	// PayloadType is the chosen audio codec, PayloadPCMU or PayloadPCMA.
	PayloadType uint8
	// DTMFPayloadType is the peer's telephone-event payload type, 0 when none.
	DTMFPayloadType uint8
	// Send and Recv are our directions: Send=false when the peer holds us (sendonly or inactive),
	// Recv=false when the peer will not send (recvonly or inactive).
	Send, Recv bool
	// Secure is set when the chosen m-line is RTP/SAVP: RemoteCrypto is the peer's a=crypto
	// we use, LocalCrypto ours for the answer (same tag and suite, a fresh key).
	Secure                    bool
	RemoteCrypto, LocalCrypto Crypto
	// audioIndex is the position of the chosen m-line; rejected is the list of all m-lines' media names
	// so the answer can mirror them (RFC 3264 section 6: same number and order of m-lines).
	audioIndex int
	mlines     []mline
}

type mline struct {
	media string
	proto string
	fmts  []string
}

// NegotiateOffer picks, from an SDP offer, the first audio codec among PCMU and PCMA in the
// offer's order of preference and keeps telephone-event at the offered payload type. Only
// plain RTP/AVP is accepted (SRTPOff).
func NegotiateOffer(body []byte) (Media, error) {
	return negotiate(body, SRTPOff)
}

// NegotiateSecureOffer is NegotiateOffer under a line's SRTP mode. When it chooses an
// RTP/SAVP m-line, Media.Secure is set, RemoteCrypto is the first usable a=crypto of that
// m-line and LocalCrypto our answer to it, with a fresh random key.
func NegotiateSecureOffer(body []byte, mode SRTPMode) (Media, error) {
	m, err := negotiate(body, mode)
	if err != nil || !m.Secure {
		return m, err
	}
	if m.LocalCrypto, err = newLocalCrypto(m.RemoteCrypto); err != nil {
		return Media{}, err
	}
	return m, nil
}

// NegotiateAnswer reads the peer's SDP answer to an offer we made (INVITE without SDP:
// our offer was in the 200 OK, the answer comes in the ACK). We offer only RTP/AVP.
func NegotiateAnswer(body []byte) (Media, error) {
	return negotiate(body, SRTPOff)
}

func negotiate(body []byte, mode SRTPMode) (m Media, err error) {
	defer func() {
		// pion/sdp is robust, but a parser bug must never take a call down.
		if r := recover(); r != nil {
			// The panic value may quote the message: it is not kept.
			m, err = Media{}, fmt.Errorf("%w: sdp parser panic", ErrNotAcceptable)
		}
	}()
	if len(body) == 0 {
		return Media{}, fmt.Errorf("%w: empty body", ErrNotAcceptable)
	}
	var sd psdp.SessionDescription
	if err := sd.UnmarshalString(string(body)); err != nil {
		// pion/sdp's errors quote the offending line, which may carry a caller's number:
		// errors from here reach the logs, so they name the problem, never the text.
		return Media{}, fmt.Errorf("%w: malformed sdp", ErrNotAcceptable)
	}
	m.audioIndex = -1
	var reason string
	for i, md := range sd.MediaDescriptions {
		m.mlines = append(m.mlines, mline{
			media: md.MediaName.Media,
			proto: strings.Join(md.MediaName.Protos, "/"),
			fmts:  md.MediaName.Formats,
		})
		if m.audioIndex >= 0 || md.MediaName.Media != "audio" || md.MediaName.Port.Value == 0 {
			continue
		}
		a, why := takeAudio(&sd, md, mode)
		if why != "" {
			reason = why
			continue
		}
		a.audioIndex, a.mlines = i, m.mlines
		m = a
	}
	if m.audioIndex < 0 {
		if reason == "" {
			reason = "no audio stream"
		}
		return Media{}, fmt.Errorf("%w: %s", ErrNotAcceptable, reason)
	}
	return m, nil
}

// takeAudio negotiates one audio m-line of sd under mode: the media it gives, or why it is
// not usable (a reason that names no one).
func takeAudio(sd *psdp.SessionDescription, md *psdp.MediaDescription, mode SRTPMode) (m Media, reason string) {
	switch p := strings.Join(md.MediaName.Protos, "/"); {
	case p == "RTP/AVP" && mode == SRTPRequired:
		return m, "srtp required: plain RTP/AVP refused"
	case p == "RTP/AVP":
	case p == "RTP/SAVP" && mode != SRTPOff:
		var ok bool
		if m.RemoteCrypto, ok = pickCrypto(md); !ok {
			return m, "no usable a=crypto (want AES_CM_128_HMAC_SHA1_80 or _32, one inline key)"
		}
		m.Secure = true
	default:
		reason = "unsupported transport"
		if knownProtos[p] {
			reason += " " + p // one of a fixed set: names no one
		}
		return m, reason
	}
	pt, dtmf, ok := pickCodec(md)
	if !ok {
		return m, "no common codec (want PCMU or PCMA)"
	}
	addr, err := connectionAddr(sd, md)
	if err != nil {
		return m, err.Error()
	}
	port := md.MediaName.Port.Value
	if port < 1 || port > 65535 {
		return m, "bad media port " + strconv.Itoa(port)
	}
	m.PayloadType = pt
	m.DTMFPayloadType = dtmf
	m.Remote = netip.AddrPortFrom(addr, uint16(port))
	m.Send, m.Recv = direction(sd, md)
	if addr.IsUnspecified() { // RFC 2543 style hold: c=0.0.0.0
		m.Send = false
	}
	return m, ""
}

// pickCrypto returns the first a=crypto of the m-line that ParseCrypto accepts (RFC 4568
// section 7.1.1: the offerer lists them in its order of preference).
func pickCrypto(md *psdp.MediaDescription) (Crypto, bool) {
	for _, a := range md.Attributes {
		if a.Key != "crypto" {
			continue
		}
		if c, err := ParseCrypto(a.Value); err == nil {
			return c, true
		}
	}
	return Crypto{}, false
}

// pickCodec walks the m-line's formats in order and returns the first of PCMU or PCMA, and the
// telephone-event payload type if offered at 8000 Hz.
func pickCodec(md *psdp.MediaDescription) (audio, dtmf uint8, ok bool) {
	rtpmap := map[uint8]string{}
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		ptStr, enc, found := strings.Cut(a.Value, " ")
		if !found {
			continue
		}
		pt, err := strconv.ParseUint(ptStr, 10, 7)
		if err != nil {
			continue
		}
		rtpmap[uint8(pt)] = strings.ToLower(strings.TrimSpace(enc))
	}
	for _, f := range md.MediaName.Formats {
		pt64, err := strconv.ParseUint(f, 10, 7)
		if err != nil {
			continue
		}
		pt := uint8(pt64)
		enc, mapped := rtpmap[pt]
		switch {
		case !ok && pt == PayloadPCMU && (!mapped || strings.HasPrefix(enc, "pcmu/8000")):
			audio, ok = PayloadPCMU, true
		case !ok && pt == PayloadPCMA && (!mapped || strings.HasPrefix(enc, "pcma/8000")):
			audio, ok = PayloadPCMA, true
		case dtmf == 0 && pt >= 96 && strings.HasPrefix(enc, "telephone-event/8000"):
			dtmf = pt
		}
	}
	// A dynamic payload type mapped to PCMU or PCMA is not used: every phone offers the static
	// numbers, and sending with the wrong number would be noise.
	return audio, dtmf, ok
}

// knownProtos are m-line transports an error may name: a fixed set, so that no text of the
// message reaches a log through them.
var knownProtos = map[string]bool{"RTP/AVP": true, "RTP/SAVP": true, "RTP/AVPF": true, "RTP/SAVPF": true,
	"UDP/TLS/RTP/SAVP": true, "UDP/TLS/RTP/SAVPF": true, "udp": true, "TCP/RTP/AVP": true}

func connectionAddr(sd *psdp.SessionDescription, md *psdp.MediaDescription) (netip.Addr, error) {
	ci := md.ConnectionInformation
	if ci == nil {
		ci = sd.ConnectionInformation
	}
	if ci == nil || ci.Address == nil {
		return netip.Addr{}, errors.New("no connection address")
	}
	if ci.NetworkType != "IN" {
		return netip.Addr{}, errors.New("unsupported network type")
	}
	a, err := netip.ParseAddr(ci.Address.Address)
	if err != nil {
		// Host names in c= are allowed by RFC 4566 but no phone sends them; resolving a name
		// from a caller's packet would let callers make us query DNS, so refuse.
		// The address is not quoted: this error reaches the logs, and a c= line can carry
		// anything, a caller's number included (issue 14).
		return netip.Addr{}, errors.New("connection address is not an IP address")
	}
	if a.Is4In6() {
		a = a.Unmap()
	}
	if a.IsMulticast() {
		return netip.Addr{}, errors.New("multicast media is not supported")
	}
	return a, nil
}

// direction returns our send/recv flags from the peer's direction attribute (media level wins
// over session level).
func direction(sd *psdp.SessionDescription, md *psdp.MediaDescription) (send, recv bool) {
	dir := "sendrecv"
	for _, a := range sd.Attributes {
		if isDirection(a.Key) {
			dir = a.Key
		}
	}
	for _, a := range md.Attributes {
		if isDirection(a.Key) {
			dir = a.Key
		}
	}
	switch dir {
	case "sendonly": // peer only sends: we only receive
		return false, true
	case "recvonly":
		return true, false
	case "inactive":
		return false, false
	}
	return true, true
}

func isDirection(k string) bool {
	return k == "sendrecv" || k == "sendonly" || k == "recvonly" || k == "inactive"
}

// Answer builds our SDP answer for the negotiated media, with local as our media address and
// port as our RTP port. Every m-line of the offer is mirrored; the ones we do not use get port 0.
func (m Media) Answer(local netip.Addr, port int, sessID, version uint64) []byte {
	var b strings.Builder
	writeSessionHeader(&b, local, sessID, version)
	for i, ml := range m.mlines {
		if i != m.audioIndex {
			fmts := ml.fmts
			if len(fmts) == 0 {
				fmts = []string{"0"}
			}
			fmt.Fprintf(&b, "m=%s 0 %s %s\r\n", ml.media, ml.proto, strings.Join(fmts, " "))
			continue
		}
		var crypto *Crypto
		if m.Secure {
			crypto = &m.LocalCrypto
		}
		writeAudio(&b, port, []uint8{m.PayloadType}, m.DTMFPayloadType, answerDirection(m.Send, m.Recv), crypto)
	}
	return []byte(b.String())
}

// Offer builds the SDP offer we send when an INVITE came without one.
func Offer(local netip.Addr, port int, sessID, version uint64) []byte {
	var b strings.Builder
	writeSessionHeader(&b, local, sessID, version)
	writeAudio(&b, port, []uint8{PayloadPCMU, PayloadPCMA}, OfferDTMFPayload, "sendrecv", nil)
	return []byte(b.String())
}

func writeSessionHeader(b *strings.Builder, local netip.Addr, sessID, version uint64) {
	ipv := "IP4"
	if local.Is6() && !local.Is4In6() {
		ipv = "IP6"
	}
	addr := local.Unmap().String()
	fmt.Fprintf(b, "v=0\r\no=hotline %d %d IN %s %s\r\ns=hotline\r\nc=IN %s %s\r\nt=0 0\r\n",
		sessID, version, ipv, addr, ipv, addr)
}

// writeAudio writes our audio m-line: RTP/SAVP with crypto's a=crypto when it is set.
func writeAudio(b *strings.Builder, port int, pts []uint8, dtmf uint8, dir string, crypto *Crypto) {
	proto := "RTP/AVP"
	if crypto != nil {
		proto = "RTP/SAVP"
	}
	fmt.Fprintf(b, "m=audio %d %s", port, proto)
	for _, pt := range pts {
		fmt.Fprintf(b, " %d", pt)
	}
	if dtmf != 0 {
		fmt.Fprintf(b, " %d", dtmf)
	}
	b.WriteString("\r\n")
	for _, pt := range pts {
		switch pt {
		case PayloadPCMU:
			b.WriteString("a=rtpmap:0 PCMU/8000\r\n")
		case PayloadPCMA:
			b.WriteString("a=rtpmap:8 PCMA/8000\r\n")
		}
	}
	if dtmf != 0 {
		fmt.Fprintf(b, "a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-16\r\n", dtmf, dtmf)
	}
	if crypto != nil {
		fmt.Fprintf(b, "a=crypto:%s\r\n", crypto)
	}
	fmt.Fprintf(b, "a=ptime:20\r\na=%s\r\n", dir)
}

func answerDirection(send, recv bool) string {
	switch {
	case send && recv:
		return "sendrecv"
	case send:
		return "sendonly"
	case recv:
		return "recvonly"
	}
	return "inactive"
}
