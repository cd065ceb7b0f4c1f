package sdp

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

const baseOffer = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"

func TestNegotiateOffer(t *testing.T) {
	tests := []struct {
		name     string
		sdp      string
		wantErr  string
		pt, dtmf uint8
		remote   string
		send     bool
		recv     bool
	}{
		{
			name: "pcmu first with telephone-event",
			sdp:  baseOffer + "m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n",
			pt:   0, dtmf: 101, remote: "192.0.2.10:4000", send: true, recv: true,
		},
		{
			name: "pcma preferred",
			sdp:  baseOffer + "m=audio 4000 RTP/AVP 18 8 0 96\r\na=rtpmap:18 G729/8000\r\na=rtpmap:96 telephone-event/8000\r\n",
			pt:   8, dtmf: 96, remote: "192.0.2.10:4000", send: true, recv: true,
		},
		{
			name: "static types without rtpmap",
			sdp:  baseOffer + "m=audio 4000 RTP/AVP 0\r\n",
			pt:   0, remote: "192.0.2.10:4000", send: true, recv: true,
		},
		{
			name: "media-level connection wins",
			sdp:  baseOffer + "m=audio 4002 RTP/AVP 0\r\nc=IN IP4 198.51.100.7\r\n",
			pt:   0, remote: "198.51.100.7:4002", send: true, recv: true,
		},
		{
			name: "sendonly peer holds us",
			sdp:  baseOffer + "m=audio 4000 RTP/AVP 0\r\na=sendonly\r\n",
			pt:   0, remote: "192.0.2.10:4000", send: false, recv: true,
		},
		{
			name: "old style hold",
			sdp:  strings.ReplaceAll(baseOffer, "c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0") + "m=audio 4000 RTP/AVP 0\r\n",
			pt:   0, remote: "0.0.0.0:4000", send: false, recv: true,
		},
		{
			name: "video first then audio",
			sdp:  baseOffer + "m=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\nm=audio 4000 RTP/AVP 8\r\n",
			pt:   8, remote: "192.0.2.10:4000", send: true, recv: true,
		},
		{
			name: "ipv6",
			sdp:  "v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
			pt:   0, remote: "[2001:db8::1]:4000", send: true, recv: true,
		},
		{name: "no common codec", sdp: baseOffer + "m=audio 4000 RTP/AVP 18\r\n", wantErr: "no common codec"},
		{name: "dynamic pcmu is not used", sdp: baseOffer + "m=audio 4000 RTP/AVP 97\r\na=rtpmap:97 PCMU/8000\r\n", wantErr: "no common codec"},
		{name: "srtp", sdp: baseOffer + "m=audio 4000 RTP/SAVP 0\r\n", wantErr: "unsupported transport"},
		{name: "rejected audio", sdp: baseOffer + "m=audio 0 RTP/AVP 0\r\n", wantErr: "no audio"},
		{name: "no connection", sdp: "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", wantErr: "no connection address"},
		{name: "hostname connection", sdp: strings.ReplaceAll(baseOffer, "c=IN IP4 192.0.2.10", "c=IN IP4 evil.example") + "m=audio 4000 RTP/AVP 0\r\n", wantErr: "not an IP address"},
		{name: "multicast", sdp: strings.ReplaceAll(baseOffer, "c=IN IP4 192.0.2.10", "c=IN IP4 224.2.1.1/127") + "m=audio 4000 RTP/AVP 0\r\n", wantErr: "connection address"},
		{name: "empty", sdp: "", wantErr: "empty body"},
		{name: "garbage", sdp: "hello", wantErr: "sdp not acceptable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NegotiateOffer([]byte(tt.sdp))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.PayloadType != tt.pt || m.DTMFPayloadType != tt.dtmf {
				t.Errorf("pt %d dtmf %d, want %d %d", m.PayloadType, m.DTMFPayloadType, tt.pt, tt.dtmf)
			}
			if m.Remote.String() != tt.remote {
				t.Errorf("remote %s, want %s", m.Remote, tt.remote)
			}
			if m.Send != tt.send || m.Recv != tt.recv {
				t.Errorf("send %v recv %v, want %v %v", m.Send, m.Recv, tt.send, tt.recv)
			}
		})
	}
}

// TestAnswerMirrorsMLines checks the answer keeps every m-line, in order, rejecting the unused.
func TestAnswerMirrorsMLines(t *testing.T) {
	offer := baseOffer + "m=video 5000 RTP/AVP 96\r\nm=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n"
	m, err := NegotiateOffer([]byte(offer))
	if err != nil {
		t.Fatal(err)
	}
	got := string(m.Answer(netip.MustParseAddr("203.0.113.5"), 10002, 42, 1))
	want := "v=0\r\no=hotline 42 1 IN IP4 203.0.113.5\r\ns=hotline\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n" +
		"m=video 0 RTP/AVP 96\r\n" +
		"m=audio 10002 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=recvonly\r\n"
	if got != want {
		t.Fatalf("answer:\n%s\nwant:\n%s", got, want)
	}
	// Our own answer must be acceptable to our own parser (round trip).
	back, err := NegotiateAnswer([]byte(got))
	if err != nil {
		t.Fatalf("our answer does not parse: %v", err)
	}
	if back.PayloadType != 8 || back.DTMFPayloadType != 101 || back.Remote.Port() != 10002 {
		t.Fatalf("round trip: %+v", back)
	}
}

func TestOfferRoundTrip(t *testing.T) {
	o := Offer(netip.MustParseAddr("::1"), 10000, 1, 2)
	m, err := NegotiateOffer(o)
	if err != nil {
		t.Fatalf("our offer does not parse: %v\n%s", err, o)
	}
	if m.PayloadType != PayloadPCMU || m.DTMFPayloadType != OfferDTMFPayload || m.Remote.String() != "[::1]:10000" {
		t.Fatalf("offer round trip: %+v", m)
	}
}

// FuzzNegotiateOffer: any body gives media xor an error, never a panic, under every SRTP
// mode, and any accepted offer yields an answer that we accept again (with our own key
// for RTP/SAVP).
func FuzzNegotiateOffer(f *testing.F) {
	f.Add([]byte(baseOffer + "m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"))
	f.Add([]byte(baseOffer + "m=video 5000 RTP/AVP 96\r\nm=audio 4000 RTP/AVP 8\r\na=inactive\r\n"))
	f.Add([]byte("v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n"))
	f.Add([]byte("garbage"))
	f.Add([]byte(baseOffer + "m=audio 4000 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=crypto:1 " + testSuite80 + " inline:" + testKeyB64 + "\r\n"))
	f.Add([]byte(baseOffer + "m=audio 4000 RTP/SAVP 8\r\na=crypto:2 AES_256_CM_HMAC_SHA1_80 inline:" + testKeyB64 + "\r\na=crypto:7 AES_CM_128_HMAC_SHA1_32 inline:" + testKeyB64 + "|2^31\r\n"))
	f.Add([]byte(baseOffer + "m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64 + "|2^20|1:4\r\nm=audio 4002 RTP/AVP 0\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, mode := range []SRTPMode{SRTPOff, SRTPOptional, SRTPRequired} {
			m, err := NegotiateSecureOffer(b, mode)
			if err != nil {
				if m.Remote.IsValid() {
					t.Fatal("media and error both returned")
				}
				continue
			}
			if m.PayloadType != PayloadPCMU && m.PayloadType != PayloadPCMA {
				t.Fatalf("chose payload type %d", m.PayloadType)
			}
			if m.Secure == (mode == SRTPOff) && (mode != SRTPOptional) {
				t.Fatalf("mode %d: secure=%v", mode, m.Secure)
			}
			ans := m.Answer(netip.MustParseAddr("127.0.0.1"), 10000, 1, 1)
			back, err := negotiate(ans, mode)
			if err != nil {
				t.Fatalf("our answer to an accepted offer does not parse: %v\n%s", err, ans)
			}
			if back.PayloadType != m.PayloadType || back.DTMFPayloadType != m.DTMFPayloadType || back.Secure != m.Secure {
				t.Fatalf("answer changed the media: %+v vs %+v", back, m)
			}
			if m.Secure && (!bytes.Equal(back.RemoteCrypto.Key, m.LocalCrypto.Key) || back.RemoteCrypto.Tag != m.RemoteCrypto.Tag ||
				back.RemoteCrypto.Suite != m.RemoteCrypto.Suite || bytes.Equal(m.LocalCrypto.Key, m.RemoteCrypto.Key)) {
				t.Fatalf("answer's a=crypto: %+v, offered %+v, ours %+v", back.RemoteCrypto, m.RemoteCrypto, m.LocalCrypto)
			}
		}
	})
}

// Errors from an offer reach the logs, so they never quote the offer's text: a caller's
// number in c= (issue 14 saw it in a log line), in the transport or in a malformed line.
func TestOfferErrorsQuoteNothing(t *testing.T) {
	const number = "+12025550147"
	bodies := []string{
		strings.ReplaceAll(baseOffer, "c=IN IP4 192.0.2.10", "c=IN IP4 "+number) + "m=audio 4000 RTP/AVP 0\r\n",
		strings.ReplaceAll(baseOffer, "c=IN IP4 192.0.2.10", "c="+number) + "m=audio 4000 RTP/AVP 0\r\n",
		strings.ReplaceAll(baseOffer, "c=IN IP4 192.0.2.10", "c="+number+" IP4 192.0.2.10") + "m=audio 4000 RTP/AVP 0\r\n",
		baseOffer + "m=audio 4000 RTP/" + number + " 0\r\n",
		baseOffer + "m=audio 4000 RTP/SAVP 0\r\na=crypto:" + number + " AES_CM_128_HMAC_SHA1_80 inline:x\r\n",
		baseOffer + "m=audio 4000 RTP/SAVP 0\r\na=crypto:1 " + number + " inline:x\r\n",
	}
	for _, b := range bodies {
		for _, mode := range []SRTPMode{SRTPOff, SRTPOptional, SRTPRequired} {
			_, err := NegotiateSecureOffer([]byte(b), mode)
			if err == nil {
				t.Fatalf("accepted:\n%s", b)
			}
			if strings.Contains(err.Error(), "2025550147") {
				t.Errorf("error quotes the number: %v", err)
			}
		}
	}
	for _, v := range []string{number + " AES_CM_128_HMAC_SHA1_80 inline:x", "1 " + number + " inline:x",
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + testKeyB64 + "|" + number} {
		if _, err := ParseCrypto(v); err == nil || strings.Contains(err.Error(), "2025550147") {
			t.Errorf("ParseCrypto(%q): %v", v, err)
		}
	}
}
