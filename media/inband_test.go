package media

import (
	"math"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/hotline-project/hotline/media/g711"
)

// dtmfFreqs returns the row and column frequencies of key k.
func dtmfFreqs(t testing.TB, k rune) (float64, float64) {
	for r := range 4 {
		for c := range 4 {
			if inbandKeys[r][c] == k {
				return inbandRows[r], inbandCols[c]
			}
		}
	}
	t.Fatalf("no key %q", k)
	return 0, 0
}

// toneSpec is one stretch of signal: a key's two tones (or silence, key 0).
type toneSpec struct {
	key       rune
	ms        int
	lowDBm0   float64 // level of the low-group tone
	twistDB   float64 // high-group level minus low-group level
	deviation float64 // relative frequency error of both tones, e.g. 0.015
}

// synth renders specs at 8 kHz, with white noise at noiseDBm0 (or none below -100).
func synth(t testing.TB, specs []toneSpec, noiseDBm0 float64) []int16 {
	amp := func(dbm0 float64) float64 { return 32767 * math.Pow(10, (dbm0-inbandFullScaleDBm0)/20) }
	rng := rand.New(rand.NewPCG(1, 2))
	var out []int16
	n := 0
	for _, s := range specs {
		var lo, hi float64
		if s.key != 0 {
			lo, hi = dtmfFreqs(t, s.key)
			lo, hi = lo*(1+s.deviation), hi*(1+s.deviation)
		}
		a1, a2 := amp(s.lowDBm0), amp(s.lowDBm0+s.twistDB)
		for range s.ms * 8 {
			v := 0.0
			if s.key != 0 {
				v = a1*math.Sin(2*math.Pi*lo*float64(n)/8000) + a2*math.Sin(2*math.Pi*hi*float64(n)/8000)
			}
			if noiseDBm0 > -100 {
				v += amp(noiseDBm0) / math.Sqrt2 * rng.NormFloat64()
			}
			out = append(out, int16(max(-32768, min(32767, v))))
			n++
		}
	}
	return out
}

// detect runs pcm through G.711 (law 0 or 8) and the detector in 20 ms frames.
func detect(pcm []int16, pt uint8) string {
	var d InbandDetector
	var got []rune
	for i := 0; i < len(pcm); i += 160 {
		frame := pcm[i:min(i+160, len(pcm))]
		var payload []byte
		if pt == 8 {
			payload = g711.AppendAlaw(nil, frame)
		} else {
			payload = g711.AppendUlaw(nil, frame)
		}
		if k, ok := d.FeedPayload(pt, payload); ok {
			got = append(got, k)
		}
	}
	return string(got)
}

// TestInbandDetect: the Q.24 cases, through PCMU and PCMA: every key at a usual level,
// 40 ms tones with 40 ms pauses, twist and frequency error within the limits, a tone in
// noise; tones too short, too weak, too twisted or too far off frequency are not keys.
func TestInbandDetect(t *testing.T) {
	press := func(k rune, ms int, lvl, twist, dev float64) []toneSpec {
		return []toneSpec{{key: k, ms: ms, lowDBm0: lvl, twistDB: twist, deviation: dev}, {ms: 60}}
	}
	all := func(ms int) []toneSpec {
		var s []toneSpec
		for _, k := range "123A456B789C*0#D" {
			s = append(s, toneSpec{key: k, ms: ms, lowDBm0: -10, twistDB: -2}, toneSpec{ms: 40})
		}
		return s
	}
	devAll := func(dev float64) []toneSpec {
		var s []toneSpec
		for _, k := range "123A456B789C*0#D" {
			s = append(s, toneSpec{key: k, ms: 60, lowDBm0: -10, deviation: dev}, toneSpec{ms: 60})
		}
		return s
	}
	tests := []struct {
		name  string
		specs []toneSpec
		noise float64
		want  string
	}{
		{"every key 50 ms", all(50), -200, "123A456B789C*0#D"},
		{"every key 40 ms, 40 ms pauses", all(40), -200, "123A456B789C*0#D"},
		{"long press is one key", press('5', 1000, -10, 0, 0), -200, "5"},
		{"same key twice", append(press('#', 60, -10, 0, 0), press('#', 60, -10, 0, 0)...), -200, "##"},
		{"weak: -30 dBm0", press('7', 60, -30, 0, 0), -200, "7"},
		{"too weak: -45 dBm0", press('7', 60, -45, 0, 0), -200, ""},
		{"normal twist 6 dB", press('9', 60, -8, -6, 0), -200, "9"},
		{"normal twist 10 dB", press('9', 60, -8, -10, 0), -200, ""},
		{"reverse twist 3 dB", press('9', 60, -12, 3, 0), -200, "9"},
		{"reverse twist 6 dB", press('9', 60, -12, 6, 0), -200, ""},
		{"frequency +1.5%", press('1', 60, -10, 0, 0.015), -200, "1"},
		{"frequency -1.5%", press('1', 60, -10, 0, -0.015), -200, "1"},
		{"frequency +6%", press('1', 60, -10, 0, 0.06), -200, ""},
		{"every key +1.5%", devAll(0.015), -200, "123A456B789C*0#D"},
		{"every key -1.5%", devAll(-0.015), -200, "123A456B789C*0#D"},
		{"every key +3.5%", devAll(0.035), -200, ""},
		{"every key -3.5%", devAll(-0.035), -200, ""},
		{"20 ms is too short", press('3', 20, -10, 0, 0), -200, ""},
		{"in noise, 20 dB below", press('0', 60, -10, 0, 0), -27, "0"},
		{"silence", []toneSpec{{ms: 2000}}, -200, ""},
		{"noise", []toneSpec{{ms: 2000}}, -20, ""},
	}
	for _, tt := range tests {
		for _, pt := range []uint8{0, 8} {
			if got := detect(synth(t, tt.specs, tt.noise), pt); got != tt.want {
				t.Errorf("%s (payload type %d): detected %q, want %q", tt.name, pt, got, tt.want)
			}
		}
	}
}

// FuzzInbandDetector: any audio, in any frame sizes, never panics.
func FuzzInbandDetector(f *testing.F) {
	f.Add([]byte{0xff, 0x7f, 0x00}, uint8(0))
	f.Fuzz(func(t *testing.T, b []byte, pt uint8) {
		var d InbandDetector
		for len(b) > 0 {
			n := min(len(b), 1+int(pt)%400)
			d.FeedPayload(pt&8, b[:n])
			b = b[n:]
		}
	})
}

// BenchmarkInbandDetector is the detector's cost per 20 ms frame: what a call without
// telephone-event costs on its receive goroutine, 50 times a second.
func BenchmarkInbandDetector(b *testing.B) {
	pcm := synth(b, []toneSpec{{key: '5', ms: 100, lowDBm0: -10}, {ms: 100}}, -40)
	payload := g711.AppendUlaw(nil, pcm)
	var d InbandDetector
	b.SetBytes(160)
	b.ResetTimer()
	for i := range b.N {
		off := (i * 160) % (len(payload) - 160)
		d.FeedPayload(0, payload[off:off+160])
	}
}

// TestLegInband: a leg that negotiated no telephone-event (InbandAuto) reports keys
// its phone sends as tones, in PCMU and PCMA; one that negotiated telephone-event does not
// look at its audio in auto mode, and does in InbandAlways.
func TestLegInband(t *testing.T) {
	sched := startScheduler(t, SchedulerOptions{Workers: 1})
	lo, hi := testRange(t, 8)
	ports := NewPorts(loopback, lo, hi)
	for _, tt := range []struct {
		name   string
		pt     uint8
		dtmfPT uint8
		mode   InbandMode
		want   string
	}{
		{"pcmu auto", PayloadPCMU, 0, InbandAuto, "#15"},
		{"pcma auto", PayloadPCMA, 0, InbandAuto, "#15"},
		{"telephone-event auto", PayloadPCMU, 101, InbandAuto, ""},
		{"telephone-event always", PayloadPCMU, 101, InbandAlways, "#15"},
		{"off", PayloadPCMU, 0, InbandOff, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IP(loopback.AsSlice())})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			digits := make(chan rune, 8)
			leg, err := NewLeg(sched, ports, LegConfig{
				Remote: conn.LocalAddr().(*net.UDPAddr).AddrPort(), PayloadType: tt.pt, DTMFPayloadType: tt.dtmfPT,
				Inband: tt.mode, OnDigit: func(d rune) { digits <- d },
			})
			if err != nil {
				t.Fatal(err)
			}
			defer leg.Close()
			var specs []toneSpec
			for _, k := range "#15" {
				specs = append(specs, toneSpec{key: k, ms: 60, lowDBm0: -10, twistDB: -2}, toneSpec{ms: 60})
			}
			pcm := synth(t, specs, -200)
			to := &net.UDPAddr{IP: net.IP(loopback.AsSlice()), Port: leg.LocalPort()}
			for i, seq := 0, uint16(1); i+160 <= len(pcm); i, seq = i+160, seq+1 {
				var payload []byte
				if tt.pt == PayloadPCMA {
					payload = g711.AppendAlaw(nil, pcm[i:i+160])
				} else {
					payload = g711.AppendUlaw(nil, pcm[i:i+160])
				}
				pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: tt.pt, SequenceNumber: seq, Timestamp: uint32(i), SSRC: 0x77}, Payload: payload}
				b, _ := pkt.Marshal()
				if _, err := conn.WriteToUDP(b, to); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Millisecond) // keep the order on a loaded machine
			}
			var got []rune
			deadline := time.After(time.Duration(len(tt.want)+1) * 500 * time.Millisecond)
			for len(got) < len(tt.want) {
				select {
				case d := <-digits:
					got = append(got, d)
				case <-deadline:
					t.Fatalf("keys %q, want %q", string(got), tt.want)
				}
			}
			select {
			case d := <-digits:
				got = append(got, d)
			case <-time.After(100 * time.Millisecond):
			}
			if string(got) != tt.want {
				t.Errorf("keys %q, want %q", string(got), tt.want)
			}
		})
	}
}
