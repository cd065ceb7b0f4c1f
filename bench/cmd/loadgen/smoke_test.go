package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// freePort returns a loopback port the kernel just handed out as free for both UDP and TCP
// (the server listens on both); bench/run takes fixed ports.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port for both udp and tcp")
	return 0
}

// TestBenchRunSmoke runs the real bench/run (the server built from this tree, records on,
// the load generator) with tiny numbers: a few seconds of each part but sipp (an
// external tool) and overload (it waits out a 30 s timeout). It checks that the harness
// runs and reports figures, not a speed: every part's table is there, calls were answered,
// and bench/run itself exits 0 (loadgen fails a run in which no call was answered, or in
// which the server's per-source limits refused its calls). About 15 s.
func TestBenchRunSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server: not with -short")
	}
	for _, tool := range []string{"bash", "curl", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("HOTLINE_REQUIRE_TOOLS") != "" { // .ci/run sets it: the smoke must run there
				t.Fatalf("bench/run needs %s", tool)
			}
			t.Skipf("bench/run needs %s", tool)
		}
	}
	out := filepath.Join(t.TempDir(), "bench.md")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "../../run", "floor", "play", "rate", "surge", "bridge")
	cmd.Env = append(os.Environ(),
		"OUT="+out, "QUIET_WAIT=0",
		"SIP_PORT="+strconv.Itoa(freePort(t)), "HTTP_PORT="+strconv.Itoa(freePort(t)),
		"FLOOR_DURATION=300ms",
		"PLAY_STEPS=10", "PLAY_WINDOW=1s", "PLAY_SETTLE=0s",
		"RATE_STEPS=20", "RATE_STEP=1s", "RATE_HOLD=200ms", "SURGE_RATE=40",
		"BRIDGES=3", "BRIDGE_WINDOW=1s", "BRIDGE_SETTLE=0s",
	)
	start := time.Now()
	b, err := cmd.CombinedOutput()
	t.Logf("bench/run took %v", time.Since(start).Round(time.Second))
	if err != nil {
		t.Fatalf("bench/run: %v\n%s", err, b)
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	text := string(md)
	for _, want := range []string{"### Floor", "### Playing calls", "### Call setup rate", "### Set-up surge", "### Bridged calls"} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q table in bench/run's report:\n%s", want, text)
		}
	}
	// Rows with figures: calls answered (not 0), CPU measured.
	for _, re := range []string{
		`\| [1-9][0-9]* \| [1-9][0-9]* \| [0-9.]+ µs \| [0-9.]+ µs \|`, // floor: sent, received, CPU
		`\| 10 \| 10 \| `,                  // play: 10 calls, 10 up
		`\| 20/s \| 20 \| [1-9][0-9]* \| `, // rate: 20 offered, some answered
		`\| 40/s \| 40 \| [1-9][0-9]* \| `, // surge: 40 offered, some answered
		`\| 3 \| 3 \| `,                    // bridge: 3 bridged
	} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("bench/run's report has no row matching %s:\n%s", re, text)
		}
	}
}

// TestSane: a run in which no call was answered, or in which the server's per-source limits
// refused the generator's requests, is an error, not a table of zeros.
func TestSane(t *testing.T) {
	limited := "0"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`hotline_sip_rate_limited_total{method="INVITE",reason="rate"} ` + limited + "\n"))
	}))
	defer srv.Close()
	g := &gen{}
	if err := g.sane(srv.URL, 0); err == nil || !strings.Contains(err.Error(), "answered no call") {
		t.Errorf("no call answered: err = %v", err)
	}
	g.answered.Add(1)
	if err := g.sane(srv.URL, 0); err != nil {
		t.Errorf("a call answered, nothing refused: %v", err)
	}
	limited = "1900"
	if err := g.sane(srv.URL, 0); err == nil || !strings.Contains(err.Error(), "trusted_sources") {
		t.Errorf("1,900 refused: err = %v", err)
	}
}
