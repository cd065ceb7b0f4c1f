package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/hotline-project/hotline/sip/sdp"
)

// srtpLines puts srtp: required on the main line and adds a plain line (srtp off).
func srtpLines(cfg string) string {
	return strings.Replace(cfg, "    name: main\n", "    name: main\n    srtp: required\n  - number: \"18005550100\"\n    name: plain\n", 1)
}

// savpOffer is sdpOffer as RTP/SAVP with one a=crypto carrying key.
func savpOffer(port int, fmts string, key []byte) string {
	return strings.Replace(sdpOffer(port, fmts, ""), " RTP/AVP ", " RTP/SAVP ", 1) +
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.StdEncoding.EncodeToString(key) + "\r\n"
}

// srtpStream decrypts what arrives on the UAC's media socket with the server's answered key.
type srtpStream struct {
	mu     sync.Mutex
	audio  []byte
	failed int
}

func (u *uac) receiveSRTP(t *testing.T, key []byte) *srtpStream {
	t.Helper()
	dec, err := srtp.CreateContext(key[:16], key[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
	if err != nil {
		t.Fatal(err)
	}
	s := &srtpStream{}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := u.rtp.ReadFromUDP(buf)
			if err != nil {
				return
			}
			plain, err := dec.DecryptRTP(nil, buf[:n], nil)
			var p rtp.Packet
			s.mu.Lock()
			if err != nil || p.Unmarshal(plain) != nil {
				s.failed++
			} else {
				s.audio = append(s.audio, p.Payload...)
			}
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *srtpStream) waitFor(t *testing.T, what string, want []byte, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		ok, failed := bytes.Contains(s.audio, want), s.failed
		s.mu.Unlock()
		if failed > 0 {
			t.Fatalf("%d packets did not decrypt with the answered key", failed)
		}
		if ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("did not hear %s within %v", what, timeout)
}

// srtpSender encrypts the caller's RTP with the caller's offered key.
type srtpSender struct {
	u   *uac
	enc *srtp.Context
	to  *net.UDPAddr
	seq uint16
	ts  uint32
}

func (s *srtpSender) send(t *testing.T, pt uint8, marker bool, ts uint32, payload []byte) {
	t.Helper()
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: s.seq, Timestamp: ts, SSRC: 0x5151, Marker: marker}, Payload: payload}
	s.seq++
	plain, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.enc.EncryptRTP(nil, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.u.rtp.WriteToUDP(b, s.to); err != nil {
		t.Fatal(err)
	}
}

func (s *srtpSender) silence(t *testing.T, n int) {
	for range n {
		s.send(t, 0, false, s.ts, bytes.Repeat([]byte{0xff}, 160))
		s.ts += 160
	}
}

// digit sends an RFC 4733 key press (start, updates, three ends), encrypted.
func (s *srtpSender) digit(t *testing.T, event byte) {
	for i := range 6 {
		dur := uint16(160 * (i + 1))
		flags := byte(10)
		if i >= 3 {
			dur, flags = 480, flags|0x80
		}
		s.send(t, 101, i == 0, s.ts, []byte{event, flags, byte(dur >> 8), byte(dur)})
		time.Sleep(5 * time.Millisecond)
	}
	s.ts += 160 * 4
}

// A line with srtp: required answers an RTP/SAVP offer over TLS with RTP/SAVP and its own
// a=crypto; the caller decrypts the greeting, presses 2 as encrypted RFC 4733 and hears the
// Spanish reason menu, decrypted.
func TestSRTPCallOverTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, roots := selfSigned(t, t.TempDir())
	ts := startServer(t, srtpLines(tlsConfig(certFile, keyFile, "")))
	u := newTLSUAC(t, ts.addrs.SIPTLS, roots)
	key := make([]byte, 30)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	u.invite(hotlineNumber, savpOffer(u.rtpPort(), "0 101", key))
	res := u.expectResponse("INVITE", 200, 3*time.Second)
	body := string(res.Body())
	if !strings.Contains(body, " RTP/SAVP 0 101\r\n") || !strings.Contains(body, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:") {
		t.Fatalf("answer is not RTP/SAVP with a=crypto tag 1:\n%s", body)
	}
	m, err := sdp.NegotiateSecureOffer(res.Body(), sdp.SRTPRequired)
	if err != nil {
		t.Fatalf("answer: %v\n%s", err, body)
	}
	if bytes.Equal(m.RemoteCrypto.Key, key) {
		t.Fatal("the server answered with the caller's own key")
	}
	stream := u.receiveSRTP(t, m.RemoteCrypto.Key)
	u.ack(hotlineNumber, "")

	enc, err := srtp.CreateContext(key[:16], key[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
	if err != nil {
		t.Fatal(err)
	}
	snd := &srtpSender{u: u, enc: enc, to: net.UDPAddrFromAddrPort(m.Remote), seq: 1, ts: 1000}
	snd.silence(t, 3)
	greeting := mustPrompt(t, "en", "greeting")
	stream.waitFor(t, "the greeting's first second", greeting.PCMU[:8000], 10*time.Second)
	snd.digit(t, 2)
	reason := mustPrompt(t, "es", "reason_menu")
	stream.waitFor(t, "the Spanish reason menu's first second", reason.PCMU[:8000], 10*time.Second)
	ts.waitMetric(t, `hotline_ivr_menu_selections_total{key="2",menu="welcome"}`, 1)
	u.hangup()
	ts.waitMetric(t, `hotline_calls_total{line="main",outcome="caller_hangup"}`, 1)
}

// What a line's srtp setting refuses, with 488 and a Warning: plain RTP/AVP to a line that
// requires SRTP, RTP/SAVP to a line without SRTP, and SDES keys over plain UDP.
func TestSRTPRefusals(t *testing.T) {
	t.Parallel()
	certFile, keyFile, roots := selfSigned(t, t.TempDir())
	ts := startServer(t, srtpLines(tlsConfig(certFile, keyFile, "")))
	key := make([]byte, 30)
	for _, tc := range []struct {
		name, number, warning string
		tls, savp             bool
	}{
		{"plain offer to srtp required", hotlineNumber, "srtp required: plain RTP/AVP refused", true, false},
		{"srtp offer to srtp off", "18005550100", "unsupported transport RTP/SAVP", true, true},
		{"srtp offer over udp", hotlineNumber, "sdes keys are accepted only over sip over tls", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var u *uac
			if tc.tls {
				u = newTLSUAC(t, ts.addrs.SIPTLS, roots)
			} else {
				u = newUAC(t, ts.addrs.SIPUDP)
			}
			offer := sdpOffer(u.rtpPort(), "0 101", "")
			if tc.savp {
				offer = savpOffer(u.rtpPort(), "0 101", key)
			}
			u.invite(tc.number, offer)
			res := u.expectResponse("INVITE", 488, 3*time.Second)
			if w := res.GetHeader("Warning"); w == nil || !strings.Contains(w.Value(), tc.warning) {
				t.Fatalf("Warning = %v, want one containing %q", w, tc.warning)
			}
		})
	}
	// The plain line still takes plain RTP over TLS.
	u := newTLSUAC(t, ts.addrs.SIPTLS, roots)
	u.invite("18005550100", sdpOffer(u.rtpPort(), "0 101", ""))
	u.expectResponse("INVITE", 200, 3*time.Second)
	u.ack("18005550100", "")
	u.hangup()
}
