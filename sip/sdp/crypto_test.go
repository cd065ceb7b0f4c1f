package sdp

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/hotline-project/hotline/media"
)

const testSuite80 = "AES_CM_128_HMAC_SHA1_80"

// testKeyB64 is 30 bytes (0x00..0x1d), base64.
var testKeyB64 = base64.StdEncoding.EncodeToString(testKey())

func testKey() []byte {
	k := make([]byte, media.SRTPKeyLen)
	for i := range k {
		k[i] = byte(i)
	}
	return k
}

func TestParseCrypto(t *testing.T) {
	short := base64.StdEncoding.EncodeToString(make([]byte, 29))
	tests := []struct {
		value   string
		tag     uint32
		suite   media.SRTPSuite
		wantErr string
	}{
		{value: "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64, tag: 1, suite: media.SuiteAESCM128HMACSHA180},
		{value: "2 AES_CM_128_HMAC_SHA1_32 inline:" + testKeyB64, tag: 2, suite: media.SuiteAESCM128HMACSHA132},
		{value: "123456789  AES_CM_128_HMAC_SHA1_80\tinline:" + testKeyB64 + "|2^31", tag: 123456789, suite: media.SuiteAESCM128HMACSHA180},
		{value: "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64 + "|1048576", tag: 1, suite: media.SuiteAESCM128HMACSHA180},
		{value: "1 AES_CM_128_HMAC_SHA1_80", wantErr: "want tag, suite and key"},
		{value: "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64 + " UNENCRYPTED_SRTCP", wantErr: "session parameters"},
		{value: "1234567890 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64, wantErr: "tag"},
		{value: "-1 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64, wantErr: "tag"},
		{value: "x AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64, wantErr: "tag"},
		{value: "1 AES_256_CM_HMAC_SHA1_80 inline:" + testKeyB64, wantErr: "unsupported suite"},
		{value: "1 F8_128_HMAC_SHA1_80 inline:" + testKeyB64, wantErr: "unsupported suite"},
		{value: "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64 + "|2^20|1:4", wantErr: "MKI"},
		{value: "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64 + "|1:4", wantErr: "MKI"},
		{value: "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64 + "|2^x", wantErr: "lifetime"},
		{value: "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64 + "|", wantErr: "lifetime"},
		{value: "1 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64 + ";inline:" + testKeyB64, wantErr: "more than one key"},
		{value: "1 AES_CM_128_HMAC_SHA1_80 uri:https://example.com/key", wantErr: "not inline"},
		{value: "1 AES_CM_128_HMAC_SHA1_80 inline:" + short, wantErr: "29 bytes"},
		{value: "1 AES_CM_128_HMAC_SHA1_80 inline:!!!notbase64!!!", wantErr: "not base64"},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			c, err := ParseCrypto(tt.value)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrCrypto) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrCrypto containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Tag != tt.tag || c.Suite != tt.suite || !bytes.Equal(c.Key, testKey()) {
				t.Fatalf("got %+v, want tag %d suite %v and the test key", c, tt.tag, tt.suite)
			}
		})
	}
}

// FuzzParseCrypto: a result or an error, never both; what parses prints and parses again
// to the same crypto.
func FuzzParseCrypto(f *testing.F) {
	f.Add("1 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64)
	f.Add("7 AES_CM_128_HMAC_SHA1_32 inline:" + testKeyB64 + "|2^31")
	f.Add("1 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64 + "|2^20|1:4")
	f.Add("1 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64 + " KDR=1")
	f.Fuzz(func(t *testing.T, v string) {
		c, err := ParseCrypto(v)
		if err != nil {
			if c.Key != nil || c.Tag != 0 || c.Suite != 0 {
				t.Fatal("crypto and error both returned")
			}
			return
		}
		again, err := ParseCrypto(c.String())
		if err != nil {
			t.Fatalf("printed %q does not parse: %v", c.String(), err)
		}
		if again.Tag != c.Tag || again.Suite != c.Suite || !bytes.Equal(again.Key, c.Key) {
			t.Fatalf("round trip %+v != %+v", again, c)
		}
	})
}

func TestNegotiateSecureOffer(t *testing.T) {
	crypto80 := "a=crypto:1 " + testSuite80 + " inline:" + testKeyB64 + "\r\n"
	savp := baseOffer + "m=audio 4000 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n" + crypto80
	avp := baseOffer + "m=audio 4000 RTP/AVP 0\r\n"
	tests := []struct {
		name    string
		sdp     string
		mode    SRTPMode
		secure  bool
		port    uint16
		tag     uint32
		wantErr string
	}{
		{name: "off refuses savp", sdp: savp, mode: SRTPOff, wantErr: "unsupported transport RTP/SAVP"},
		{name: "off takes avp", sdp: avp, mode: SRTPOff, port: 4000},
		{name: "optional takes savp", sdp: savp, mode: SRTPOptional, secure: true, port: 4000, tag: 1},
		{name: "optional takes avp", sdp: avp, mode: SRTPOptional, port: 4000},
		{name: "required takes savp", sdp: savp, mode: SRTPRequired, secure: true, port: 4000, tag: 1},
		{name: "required refuses avp", sdp: avp, mode: SRTPRequired, wantErr: "srtp required"},
		{name: "required refuses savp without crypto", sdp: baseOffer + "m=audio 4000 RTP/SAVP 0\r\n", mode: SRTPRequired, wantErr: "no usable a=crypto"},
		{
			name: "first usable crypto wins",
			sdp: baseOffer + "m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:" + testKeyB64 +
				"\r\na=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:" + testKeyB64 + "\r\na=crypto:3 " + testSuite80 + " inline:" + testKeyB64 + "\r\n",
			mode: SRTPRequired, secure: true, port: 4000, tag: 2,
		},
		{
			name: "required skips an avp line for the savp one",
			sdp:  baseOffer + "m=audio 4002 RTP/AVP 0\r\nm=audio 4000 RTP/SAVP 0\r\n" + crypto80,
			mode: SRTPRequired, secure: true, port: 4000, tag: 1,
		},
		{
			name: "optional takes the first acceptable line",
			sdp:  baseOffer + "m=audio 4000 RTP/SAVP 0\r\n" + crypto80 + "m=audio 4002 RTP/AVP 0\r\n",
			mode: SRTPOptional, secure: true, port: 4000, tag: 1,
		},
		{name: "savpf is not savp", sdp: baseOffer + "m=audio 4000 RTP/SAVPF 0\r\n" + crypto80, mode: SRTPRequired, wantErr: "unsupported transport RTP/SAVPF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NegotiateSecureOffer([]byte(tt.sdp), tt.mode)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrNotAcceptable) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrNotAcceptable containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Secure != tt.secure || m.Remote.Port() != tt.port {
				t.Fatalf("secure %v port %d, want %v %d", m.Secure, m.Remote.Port(), tt.secure, tt.port)
			}
			if !tt.secure {
				if m.SRTP() != nil {
					t.Fatal("SRTP() set for plain rtp")
				}
				return
			}
			if m.RemoteCrypto.Tag != tt.tag || m.LocalCrypto.Tag != tt.tag || m.LocalCrypto.Suite != m.RemoteCrypto.Suite {
				t.Fatalf("crypto remote %+v local %+v, want tag %d", m.RemoteCrypto, m.LocalCrypto, tt.tag)
			}
			if len(m.LocalCrypto.Key) != media.SRTPKeyLen || bytes.Equal(m.LocalCrypto.Key, m.RemoteCrypto.Key) {
				t.Fatalf("local key %x: want a fresh %d-byte key", m.LocalCrypto.Key, media.SRTPKeyLen)
			}
			s := m.SRTP()
			if s == nil || !bytes.Equal(s.RemoteKey, testKey()) || !bytes.Equal(s.LocalKey, m.LocalCrypto.Key) || s.Suite != m.RemoteCrypto.Suite {
				t.Fatalf("SRTP() = %+v", s)
			}
		})
	}
}

// TestSecureAnswer checks the answer's m-line and a=crypto: RTP/SAVP, the offer's tag and
// suite, our key.
func TestSecureAnswer(t *testing.T) {
	offer := baseOffer + "m=audio 4000 RTP/SAVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=crypto:5 AES_CM_128_HMAC_SHA1_32 inline:" + testKeyB64 + "\r\n"
	m, err := NegotiateSecureOffer([]byte(offer), SRTPRequired)
	if err != nil {
		t.Fatal(err)
	}
	m.LocalCrypto.Key = bytes.Repeat([]byte{0xab}, media.SRTPKeyLen)
	got := string(m.Answer(netip.MustParseAddr("203.0.113.5"), 10002, 42, 1))
	want := "v=0\r\no=hotline 42 1 IN IP4 203.0.113.5\r\ns=hotline\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n" +
		"m=audio 10002 RTP/SAVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n" +
		"a=crypto:5 AES_CM_128_HMAC_SHA1_32 inline:" + base64.StdEncoding.EncodeToString(m.LocalCrypto.Key) + "\r\n" +
		"a=ptime:20\r\na=sendrecv\r\n"
	if got != want {
		t.Fatalf("answer:\n%s\nwant:\n%s", got, want)
	}
}

func TestSRTPPolicyModeOver(t *testing.T) {
	tests := []struct {
		policy     SRTPPolicy
		transport  string
		mode       SRTPMode
		downgraded bool
		err        bool
	}{
		{SRTPPolicy{Mode: SRTPOff}, "UDP", SRTPOff, false, false},
		{SRTPPolicy{Mode: SRTPOptional}, "TLS", SRTPOptional, false, false},
		{SRTPPolicy{Mode: SRTPOptional}, "UDP", SRTPOff, true, false},
		{SRTPPolicy{Mode: SRTPRequired}, "tls", SRTPRequired, false, false},
		{SRTPPolicy{Mode: SRTPRequired}, "TCP", SRTPOff, true, true},
		{SRTPPolicy{Mode: SRTPRequired, AllowInsecureSignalling: true}, "UDP", SRTPRequired, false, false},
	}
	for _, tt := range tests {
		mode, down, err := tt.policy.ModeOver(tt.transport)
		if mode != tt.mode || down != tt.downgraded || (err != nil) != tt.err {
			t.Errorf("%+v over %s = %d, %v, %v; want %d, %v, err %v", tt.policy, tt.transport, mode, down, err, tt.mode, tt.downgraded, tt.err)
		}
	}
}

func TestRenegotiateKeepsKeys(t *testing.T) {
	offer := func(tag int, key string, proto string) []byte {
		return []byte(baseOffer + "m=audio 4000 " + proto + " 0\r\na=crypto:" + string(rune('0'+tag)) + " " + testSuite80 + " inline:" + key + "\r\na=sendonly\r\n")
	}
	cur, err := NegotiateSecureOffer(offer(1, testKeyB64, "RTP/SAVP"), SRTPRequired)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Renegotiate(offer(3, testKeyB64, "RTP/SAVP"), cur)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Secure || !bytes.Equal(m.LocalCrypto.Key, cur.LocalCrypto.Key) || m.LocalCrypto.Tag != 3 || m.Send {
		t.Fatalf("hold re-offer: %+v", m)
	}
	other := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, media.SRTPKeyLen))
	if _, err := Renegotiate(offer(1, other, "RTP/SAVP"), cur); err == nil || !strings.Contains(err.Error(), "rekeying") {
		t.Fatalf("new key: err = %v, want rekeying refused", err)
	}
	if _, err := Renegotiate([]byte(baseOffer+"m=audio 4000 RTP/AVP 0\r\n"), cur); err == nil {
		t.Fatal("an srtp call accepted a plain re-offer")
	}
	plain, _ := NegotiateOffer([]byte(baseOffer + "m=audio 4000 RTP/AVP 0\r\n"))
	if _, err := Renegotiate(offer(1, testKeyB64, "RTP/SAVP"), plain); err == nil {
		t.Fatal("a plain call accepted an srtp re-offer")
	}
}
