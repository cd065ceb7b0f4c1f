package media

import (
	"errors"
	"fmt"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// SRTPSuite is an SRTP crypto suite of SDES (RFC 4568), by the parameters it gives to
// SRTP (RFC 3711): AES-128 counter mode and an HMAC-SHA1 tag of 80 or 32 bits.
type SRTPSuite uint8

// The crypto suites a leg speaks.
const (
	SuiteAESCM128HMACSHA180 SRTPSuite = iota + 1 // AES_CM_128_HMAC_SHA1_80
	SuiteAESCM128HMACSHA132                      // AES_CM_128_HMAC_SHA1_32
)

const (
	// SRTPKeyLen is the length of an SRTP master key and salt together (16+14 bytes), as
	// carried by SDES's inline: key parameter.
	SRTPKeyLen       = 30
	srtpMasterKeyLen = 16

	// maxAuthTagLen is the longest SRTP authentication tag of our suites.
	maxAuthTagLen = 10
	// srtpReplayWindow is how many packets back the replay check remembers: more
	// than any reordering on a call's path.
	srtpReplayWindow = 128
)

// ErrSRTP is the reason NewLeg refuses an SRTP configuration: an unknown suite or
// keys of the wrong length.
var ErrSRTP = errors.New("media: bad srtp configuration")

// SRTP configures a leg's SRTP: every packet it sends is protected with LocalKey and
// every packet it receives must be authenticated, and is decrypted, with RemoteKey.
// Each key is the 30-byte master key and master salt (key || salt) of the suite.
type SRTP struct {
	Suite     SRTPSuite
	LocalKey  []byte // ours, as sent in the SDP answer's a=crypto
	RemoteKey []byte // the phone's, from its a=crypto
}

func (s SRTPSuite) profile() (srtp.ProtectionProfile, error) {
	switch s {
	case SuiteAESCM128HMACSHA180:
		return srtp.ProtectionProfileAes128CmHmacSha1_80, nil
	case SuiteAESCM128HMACSHA132:
		return srtp.ProtectionProfileAes128CmHmacSha1_32, nil
	}
	return 0, fmt.Errorf("suite %d: %w", s, ErrSRTP)
}

// String returns the suite's SDES name.
func (s SRTPSuite) String() string {
	switch s {
	case SuiteAESCM128HMACSHA180:
		return "AES_CM_128_HMAC_SHA1_80"
	case SuiteAESCM128HMACSHA132:
		return "AES_CM_128_HMAC_SHA1_32"
	}
	return fmt.Sprintf("SRTPSuite(%d)", uint8(s))
}

// srtpContexts are a leg's two SRTP contexts: pion's Context is not safe for concurrent
// use, and each direction has its own key. enc is used only under Leg.wmu (the
// scheduler and a relay into the leg); dec only by the leg's receive goroutine.
type srtpContexts struct {
	enc, dec *srtp.Context
	encHdr   rtp.Header // scratch for enc, under Leg.wmu
	decHdr   rtp.Header // scratch for dec, receive goroutine
}

func newSRTPContexts(cfg *SRTP) (*srtpContexts, error) {
	p, err := cfg.Suite.profile()
	if err != nil {
		return nil, err
	}
	if len(cfg.LocalKey) != SRTPKeyLen || len(cfg.RemoteKey) != SRTPKeyLen {
		return nil, fmt.Errorf("keys of %d and %d bytes, want %d: %w", len(cfg.LocalKey), len(cfg.RemoteKey), SRTPKeyLen, ErrSRTP)
	}
	enc, err := srtp.CreateContext(cfg.LocalKey[:srtpMasterKeyLen], cfg.LocalKey[srtpMasterKeyLen:], p)
	if err != nil {
		return nil, fmt.Errorf("srtp send context: %w: %w", ErrSRTP, err)
	}
	dec, err := srtp.CreateContext(cfg.RemoteKey[:srtpMasterKeyLen], cfg.RemoteKey[srtpMasterKeyLen:], p,
		srtp.SRTPReplayProtection(srtpReplayWindow))
	if err != nil {
		return nil, fmt.Errorf("srtp receive context: %w: %w", ErrSRTP, err)
	}
	return &srtpContexts{enc: enc, dec: dec}, nil
}

// protect encrypts the RTP packet pkt in place, in buf (which holds pkt at its start and
// has room for the tag), and returns the SRTP packet. Leg.wmu must be held.
func (s *srtpContexts) protect(buf []byte, n int) ([]byte, error) {
	out, err := s.enc.EncryptRTP(buf[:0], buf[:n], &s.encHdr)
	if err != nil {
		return nil, fmt.Errorf("srtp protect: %w", err)
	}
	return out, nil
}

// unprotect authenticates and decrypts the SRTP packet b in place and returns the RTP
// packet, or false when it fails authentication, is a replay or is not SRTP at all. A
// panic in the library counts as a failure: a packet from the network must never take the
// server down.
func (s *srtpContexts) unprotect(b []byte) (out []byte, ok bool) {
	defer func() {
		if recover() != nil {
			out, ok = nil, false
		}
	}()
	if len(b) < rtpHeaderSize || b[0]>>6 != 2 {
		return nil, false
	}
	if pt := b[1] & 0x7f; pt >= 64 && pt <= 95 {
		// SRTCP multiplexed on the RTP port (RFC 5761): we send no RTCP and read none.
		return nil, false
	}
	out, err := s.dec.DecryptRTP(b[:0], b, &s.decHdr)
	if err != nil {
		return nil, false
	}
	return out, true
}
