package main

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotline-project/hotline/config"
)

// TestBenchConfig checks that the generated configuration is one the server accepts, with
// the advocates and limits asked for.
func TestBenchConfig(t *testing.T) {
	text, err := benchConfig(3, 150, 30000, 30600, "/tmp/bench records/records.db")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("bench.yaml", []byte(text))
	if err != nil {
		t.Fatalf("the server refuses the generated config: %v\n%s", err, text)
	}
	if got := len(cfg.Advocates); got != 3 {
		t.Errorf("advocates = %d, want 3", got)
	}
	if cfg.SIP.MaxCalls != 150 || cfg.Media.PortMin != 30000 || cfg.Media.PortMax != 30600 {
		t.Errorf("max_calls %d, ports %d-%d; want 150, 30000-30600", cfg.SIP.MaxCalls, cfg.Media.PortMin, cfg.Media.PortMax)
	}
	if l := cfg.CallLimits(); l.UntrustedCalls != 75 || len(cfg.Security.TrustedSources) != 1 {
		t.Errorf("the generator is not the trusted trunk: %+v, trusted %v", l, cfg.Security.TrustedSources)
	}
	// The generator's address is trusted, as a carrier's trunk is; otherwise the per-source
	// limits refuse most of its calls.
	if !slices.Contains(cfg.Security.TrustedPrefixes(), netip.MustParsePrefix(generatorAddr+"/32")) {
		t.Errorf("trusted_sources %v does not hold the generator's address %s", cfg.Security.TrustedSources, generatorAddr)
	}
	if cfg.Records.Driver != "sqlite" || cfg.Records.Path != "/tmp/bench records/records.db" {
		t.Errorf("records %s at %q, want sqlite at the path given", cfg.Records.Driver, cfg.Records.Path)
	}
	text, err = benchConfig(0, 0, 30000, 30100, "none")
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err = config.Parse("bench.yaml", []byte(text)); err != nil || cfg.Records.Driver != "none" {
		t.Errorf("-records none: %v, driver %v", err, cfg)
	}
}

func TestParseSteps(t *testing.T) {
	tests := []struct {
		in   string
		want []int
		err  bool
	}{
		{"", nil, false},
		{"500, 1000,2000", []int{500, 1000, 2000}, false},
		{"500,x", nil, true},
		{"0", nil, true},
	}
	for _, tt := range tests {
		got, err := parseSteps(tt.in)
		if (err != nil) != tt.err || len(got) != len(tt.want) {
			t.Errorf("parseSteps(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("parseSteps(%q) = %v, want %v", tt.in, got, tt.want)
			}
		}
	}
}

func TestTagRoundTrip(t *testing.T) {
	p := make([]byte, payloadLen)
	want := tag{stream: 7, nominal: 123456789, actual: 123999999}
	putTag(p, want)
	got, ok := readTag(p)
	if !ok || got != want {
		t.Fatalf("readTag = %+v, %v; want %+v", got, ok, want)
	}
	if _, ok := readTag(bytes.Repeat([]byte{0xff}, payloadLen)); ok {
		t.Fatal("PCMU silence read as a tagged packet")
	}
}

func FuzzReadTag(f *testing.F) {
	p := make([]byte, tagLen)
	putTag(p, tag{stream: 1, nominal: 2, actual: 3})
	f.Add(p)
	f.Add([]byte{0x48, 0x4c})
	f.Fuzz(func(t *testing.T, b []byte) {
		tg, ok := readTag(b)
		if !ok {
			return
		}
		q := make([]byte, tagLen)
		putTag(q, tg)
		if !bytes.Equal(q, b[:tagLen]) {
			t.Fatalf("tag %+v does not print back to %x", tg, b[:tagLen])
		}
	})
}

// TestSenderToPool sends one tagged stream through the paced sender to the receiving
// pool over loopback and checks what the receiver makes of it.
func TestSenderToPool(t *testing.T) {
	pool, err := newRTPPool(1)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.close()
	out, err := newRTPPool(1) // a socket to send from
	if err != nil {
		t.Fatal(err)
	}
	defer out.close()
	rx := newRxStream()
	pool.listen(addrPort(t, out).Port(), rx)
	snd := newSender(1)
	stop := make(chan struct{})
	defer close(stop)
	go snd.run(stop)
	pool.w.on.Store(true)
	snd.add(&txStream{conn: out.conns[0], to: addrPort(t, pool), ssrc: 1, every: 1, tagged: true})
	deadline := time.Now().Add(10 * time.Second)
	for {
		rx.mu.Lock()
		n, tagged, gaps, nD := rx.n, rx.tagged, rx.gaps.n, rx.nD
		rx.mu.Unlock()
		if n >= 5 {
			if tagged != n || gaps != uint64(n-1) || nD != n-1 {
				t.Fatalf("received %d, tagged %d, gaps %d, jitter samples %d; want all tagged, %d gaps and samples", n, tagged, gaps, nD, n-1)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d packets, want 5", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func addrPort(t *testing.T, p *rtpPool) netip.AddrPort {
	t.Helper()
	return p.conns[0].LocalAddr().(*net.UDPAddr).AddrPort()
}

// TestConfigOverload: loadgen config -overload sets sip.overload's bounds (the others keep
// their defaults); -overload-off turns them all off.
func TestConfigOverload(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		pending int
		latency time.Duration
	}{
		{nil, 200, 100 * time.Millisecond},
		{[]string{"-overload", "{max_pending: 40}"}, 40, 100 * time.Millisecond},
		{[]string{"-overload-off"}, 0, 0},
	} {
		var out, errs strings.Builder
		if err := configCmd(append([]string{"-records", "none"}, tc.args...), &out, &errs); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		cfg, err := config.Parse("bench.yaml", []byte(out.String()))
		if err != nil {
			t.Fatalf("%v: the server refuses the config: %v", tc.args, err)
		}
		if o := cfg.SIP.Overload; o.MaxPending != tc.pending || o.MaxSetupLatency != tc.latency {
			t.Errorf("%v: overload %+v, want max_pending %d, max_setup_latency %v", tc.args, o, tc.pending, tc.latency)
		}
	}
}
