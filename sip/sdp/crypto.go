package sdp

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hotline-project/hotline/media"
)

// SRTPMode is a line's SRTP (SDES, RFC 4568) policy for callers' offers.
type SRTPMode int

// The SRTP modes of a line.
const (
	// SRTPOff accepts only plain RTP/AVP offers; an RTP/SAVP m-line is not used.
	SRTPOff SRTPMode = iota
	// SRTPOptional accepts RTP/SAVP with a usable a=crypto (answered with our own key)
	// and plain RTP/AVP, whichever audio m-line of the offer comes first.
	SRTPOptional
	// SRTPRequired accepts only RTP/SAVP with a usable a=crypto.
	SRTPRequired
)

// SRTPPolicy is what a line allows: its mode, and whether SDES keys may travel over SIP
// that is not encrypted (UDP or TCP). Without AllowInsecureSignalling a=crypto is used only
// on calls that arrived over TLS: over plain SIP anyone on the path reads the keys, and
// SRTP would only pretend to protect the call (RFC 4568 section 8.3).
type SRTPPolicy struct {
	Mode                    SRTPMode
	AllowInsecureSignalling bool
}

// ErrCrypto is returned by ParseCrypto for an a=crypto attribute we cannot use.
var ErrCrypto = errors.New("unusable a=crypto")

// Crypto is one SDES crypto attribute (RFC 4568 section 9.1):
// "a=crypto:<tag> <suite> inline:<base64 key||salt>[|lifetime]".
type Crypto struct {
	Tag   uint32
	Suite media.SRTPSuite
	Key   []byte // media.SRTPKeyLen bytes: master key then master salt
}

// ParseCrypto parses the value of an a=crypto attribute (what follows "a=crypto:"). It
// accepts the suites AES_CM_128_HMAC_SHA1_80 and AES_CM_128_HMAC_SHA1_32 with exactly one
// inline key, an optional lifetime and no MKI and no session parameters; anything else is
// an error matching ErrCrypto, so that the caller can try the offer's next a=crypto.
func ParseCrypto(value string) (Crypto, error) {
	fields := strings.Fields(value)
	if len(fields) < 3 {
		return Crypto{}, fmt.Errorf("%w: want tag, suite and key parameters", ErrCrypto)
	}
	if len(fields) > 3 {
		return Crypto{}, fmt.Errorf("%w: session parameters are not supported", ErrCrypto)
	}
	if len(fields[0]) > 9 {
		return Crypto{}, fmt.Errorf("%w: bad tag", ErrCrypto)
	}
	tag, err := strconv.ParseUint(fields[0], 10, 32)
	if err != nil || strings.ContainsAny(fields[0], "+-") {
		return Crypto{}, fmt.Errorf("%w: bad tag", ErrCrypto)
	}
	c := Crypto{Tag: uint32(tag)}
	switch fields[1] {
	case "AES_CM_128_HMAC_SHA1_80":
		c.Suite = media.SuiteAESCM128HMACSHA180
	case "AES_CM_128_HMAC_SHA1_32":
		c.Suite = media.SuiteAESCM128HMACSHA132
	default:
		return Crypto{}, fmt.Errorf("%w: unsupported suite", ErrCrypto)
	}
	params := fields[2]
	if strings.Contains(params, ";") {
		return Crypto{}, fmt.Errorf("%w: more than one key", ErrCrypto)
	}
	inline, ok := strings.CutPrefix(params, "inline:")
	if !ok {
		return Crypto{}, fmt.Errorf("%w: key method is not inline", ErrCrypto)
	}
	parts := strings.Split(inline, "|")
	switch {
	case len(parts) > 3:
		return Crypto{}, fmt.Errorf("%w: bad key parameters", ErrCrypto)
	case len(parts) == 3 || (len(parts) == 2 && strings.Contains(parts[1], ":")):
		return Crypto{}, fmt.Errorf("%w: MKI is not supported", ErrCrypto)
	case len(parts) == 2 && !validLifetime(parts[1]):
		return Crypto{}, fmt.Errorf("%w: bad key lifetime", ErrCrypto)
	}
	key, err := base64.StdEncoding.DecodeString(parts[0])
	if err != nil {
		return Crypto{}, fmt.Errorf("%w: key is not base64", ErrCrypto)
	}
	if len(key) != media.SRTPKeyLen {
		return Crypto{}, fmt.Errorf("%w: key and salt of %d bytes, want %d", ErrCrypto, len(key), media.SRTPKeyLen)
	}
	c.Key = key
	return c, nil
}

// validLifetime reports whether s is an SDES key lifetime, "2^n" or a decimal count of
// packets. We do not rekey: a call sends far fewer packets than any sane lifetime.
func validLifetime(s string) bool {
	n := s
	if rest, ok := strings.CutPrefix(s, "2^"); ok {
		n = rest
	}
	if n == "" || len(n) > 20 {
		return false
	}
	for _, r := range n {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// String returns the attribute's value, as it follows "a=crypto:".
func (c Crypto) String() string {
	return fmt.Sprintf("%d %s inline:%s", c.Tag, c.Suite, base64.StdEncoding.EncodeToString(c.Key))
}

// newLocalCrypto answers offered with a fresh random key of the same tag and suite.
func newLocalCrypto(offered Crypto) (Crypto, error) {
	key := make([]byte, media.SRTPKeyLen)
	if _, err := rand.Read(key); err != nil {
		return Crypto{}, fmt.Errorf("srtp key: %w", err)
	}
	return Crypto{Tag: offered.Tag, Suite: offered.Suite, Key: key}, nil
}

// SRTP returns the leg configuration for the negotiated media: nil for plain RTP.
func (m Media) SRTP() *media.SRTP {
	if !m.Secure {
		return nil
	}
	return &media.SRTP{Suite: m.RemoteCrypto.Suite, LocalKey: m.LocalCrypto.Key, RemoteKey: m.RemoteCrypto.Key}
}

// errSRTPNeedsTLS refuses a call to a line that requires SRTP over signalling that would
// expose its keys.
var errSRTPNeedsTLS = fmt.Errorf("%w: srtp required: sdes keys are accepted only over sip over tls", ErrNotAcceptable)

// ModeOver returns the mode to negotiate a call that arrived over transport with ("UDP",
// "TCP", "TLS"). Over plain SIP, unless AllowInsecureSignalling, an optional line takes
// only plain RTP and a line that requires SRTP refuses the call (errSRTPNeedsTLS).
// downgraded reports that SAVP would have been accepted over TLS.
func (p SRTPPolicy) ModeOver(transport string) (mode SRTPMode, downgraded bool, err error) {
	if p.Mode == SRTPOff || strings.EqualFold(transport, "TLS") || p.AllowInsecureSignalling {
		return p.Mode, false, nil
	}
	if p.Mode == SRTPRequired {
		return SRTPOff, true, errSRTPNeedsTLS
	}
	return SRTPOff, true, nil
}

// Renegotiate negotiates a re-INVITE's offer for a call whose media is cur. A plain call
// stays plain. An SRTP call stays SRTP with the same keys: the leg's SRTP contexts are
// fixed for its life, so an offer that changes the phone's key or suite is refused (the
// call goes on with what it had); the answer repeats our key under the offer's tag.
func Renegotiate(body []byte, cur Media) (Media, error) {
	if !cur.Secure {
		return NegotiateOffer(body)
	}
	m, err := negotiate(body, SRTPRequired)
	if err != nil {
		return Media{}, err
	}
	if m.RemoteCrypto.Suite != cur.RemoteCrypto.Suite || !bytes.Equal(m.RemoteCrypto.Key, cur.RemoteCrypto.Key) {
		return Media{}, fmt.Errorf("%w: srtp rekeying is not supported", ErrNotAcceptable)
	}
	m.LocalCrypto = cur.LocalCrypto
	m.LocalCrypto.Tag = m.RemoteCrypto.Tag
	return m, nil
}
