package main

// An end-to-end test with SIPp (https://sipp.sourceforge.net/), the SIP traffic generator:
// the hotline binary, built and run as a separate process, takes a real call from SIPp
// running the scenarios in sipp/ at the root of the repository.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sippServer is a hotline process started by startSIPpServer.
type sippServer struct {
	dir    string // the working directory: where the call records go
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{} // closed when the process has exited; then waitErr is set
	err    error
	sip    string // UDP host:port
	http   string // host:port
}

// TestSIPpCall runs SIPp against the real server binary: an OPTIONS ping, then a call that
// sends audio, presses 2 (RFC 4733) during the greeting and hangs up.
func TestSIPpCall(t *testing.T) {
	t.Parallel()
	sipp := lookSIPp(t)
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "sipp", "hotline_uac.xml")); err != nil {
		t.Fatalf("scenario missing: %v", err)
	}

	bin := buildBinary(t)
	srv := startSIPpServer(t, bin)
	t.Logf("hotline: sip %s, http %s", srv.sip, srv.http)

	t.Run("options", func(t *testing.T) {
		runSIPp(t, sipp, root, srv, "options.xml", "-timeout", "10s")
		waitSIPpMetric(t, srv, `hotline_sip_responses_total{method="OPTIONS",status="200"}`, 1)
	})

	t.Run("call", func(t *testing.T) {
		runSIPp(t, sipp, root, srv, "hotline_uac.xml", "-timeout", "60s", "-mp", strconv.Itoa(freeMediaPort(t)))
		waitSIPpMetric(t, srv, `hotline_calls_total{line="main",outcome="caller_hangup"}`, 1)
		text := scrapeSIPp(t, srv)
		if v := sippMetric(text, "hotline_rtp_packets_received_total"); v <= 0 {
			t.Errorf("hotline_rtp_packets_received_total = %v, want > 0 (SIPp's audio did not arrive)", v)
		}
		if v := sippMetric(text, "hotline_rtp_packets_sent_total"); v <= 0 {
			t.Errorf("hotline_rtp_packets_sent_total = %v, want > 0", v)
		}
		for _, reason := range []string{"foreign_source", "invalid", "learning"} {
			series := `hotline_rtp_packets_dropped_total{reason="` + reason + `"}`
			if v := sippMetric(text, series); v != 0 {
				t.Errorf("%s = %v, want 0", series, v)
			}
		}
		// The digits 2 then 1, sent as RFC 4733 events, chose Spanish and "help now", and
		// routing sent the call to the Spanish help-now route.
		if !srv.logged(func(rec map[string]any) bool {
			return rec["msg"] == "menus done" && rec["language"] == "es" && rec["reason"] == "help_now" && rec["end"] == "choice"
		}) {
			t.Errorf(`no "menus done" log with language=es reason=help_now end=choice: the RFC 4733 digits 2 and 1 were not both detected`)
		}
		if !srv.logged(func(rec map[string]any) bool {
			return rec["msg"] == "call routed" && rec["route"] == "help_now_es"
		}) {
			t.Errorf(`no "call routed" log with route=help_now_es`)
		}

		// The call's record, from the embedded default store (SQLite in the working
		// directory), exported as CSV the way an operator would.
		cmd := exec.Command(bin, "records")
		cmd.Dir = srv.dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("hotline records: %v", err)
		}
		rows, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
		if err != nil || len(rows) != 2 {
			t.Fatalf("records CSV: %v, %d rows:\n%s", err, len(rows), out)
		}
		row := map[string]string{}
		for i, h := range rows[0] {
			row[h] = rows[1][i]
		}
		for k, want := range map[string]string{"line": "main", "language": "es", "reason": "help_now",
			"route": "help_now_es", "queue": "es", "outcome": "abandoned"} {
			if row[k] != want {
				t.Errorf("record %s = %q, want %q (row %v)", k, row[k], want, row)
			}
		}
		if len(row["caller_hash"]) != 64 || strings.Contains(string(out), "sipp@") {
			t.Errorf("caller_hash %q: want a 64-hex HMAC and no caller URI in the export", row["caller_hash"])
		}
	})

	// Caller safety (issue 16) from a phone we did not write: SIPp presses the quick-exit
	// key (#, SIPp's own RFC 4733 capture) during the greeting and the server hangs up (the
	// scenario waits for the BYE). Runs after "call", whose record check counts one row.
	t.Run("quick exit", func(t *testing.T) {
		runSIPp(t, sipp, root, srv, "hotline_quick_exit.xml", "-timeout", "30s", "-mp", strconv.Itoa(freeMediaPort(t)))
		waitSIPpMetric(t, srv, `hotline_quick_exits_total{phase="menus"}`, 1)
	})

	// A clean shutdown on SIGTERM.
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.done:
		if srv.err != nil {
			t.Errorf("hotline exited with %v after SIGTERM", srv.err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("hotline did not exit within 10s of SIGTERM")
	}
}

// lookSIPp returns the path of sipp, or skips the test when it is not installed (fails when
// HOTLINE_REQUIRE_SIPP=1, as in CI, so that the test cannot silently stop running).
func lookSIPp(t *testing.T) string {
	t.Helper()
	required := os.Getenv("HOTLINE_REQUIRE_SIPP") == "1"
	path, err := exec.LookPath("sipp")
	if err != nil {
		if required {
			t.Fatalf("HOTLINE_REQUIRE_SIPP=1 but sipp is not installed: %v", err)
		}
		t.Skip("sipp not installed (apt-get install sip-tester); set HOTLINE_REQUIRE_SIPP=1 to fail instead")
	}
	if testing.Short() && !required {
		t.Skip("skipping the SIPp call in -short mode")
	}
	return path
}

// goTool returns the go command that is running the tests, if it can be found.
func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		if p := filepath.Join(strings.TrimSpace(string(out)), "bin", "go"); fileExists(p) {
			return p
		}
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// startSIPpServer runs bin on loopback ports chosen by the system and waits for its
// "hotline listening" log line.
func startSIPpServer(t *testing.T, bin string) *sippServer {
	t.Helper()
	// The embedded configuration keeps its call records in the working directory.
	return startBinary(t, bin, t.TempDir())
}

// startBinary runs the server binary on its embedded configuration in the working
// directory dir, on loopback ports it picks, and waits until it listens.
func startBinary(t *testing.T, bin, dir string) *sippServer {
	t.Helper()
	return startCommand(t, exec.Command(bin, "serve", "-sip", "127.0.0.1:0", "-http", "127.0.0.1:0", "-log-format", "json"), dir)
}

// startCommand runs cmd, a hotline serve command logging JSON (possibly under a wrapper
// such as prlimit), in dir, and waits until it listens.
func startCommand(t *testing.T, cmd *exec.Cmd, dir string) *sippServer {
	t.Helper()
	srv := &sippServer{stderr: &syncBuffer{}, done: make(chan struct{}), dir: dir, cmd: cmd}
	srv.cmd.Dir = srv.dir
	srv.cmd.Stdout = srv.stderr
	pipe, err := srv.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type addrs struct{ sip, http string }
	ready := make(chan addrs, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Bytes()
			srv.stderr.Write(line)
			srv.stderr.Write([]byte{'\n'})
			var rec struct {
				Msg    string `json:"msg"`
				SIPUDP string `json:"sip_udp"`
				HTTP   string `json:"http"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "hotline listening" {
				select {
				case ready <- addrs{rec.SIPUDP, rec.HTTP}:
				default:
				}
			}
		}
		io.Copy(srv.stderr, pipe)
	}()
	go func() {
		<-copied // Wait must not close the pipe before everything is read
		srv.err = srv.cmd.Wait()
		close(srv.done)
	}()
	t.Cleanup(func() {
		select {
		case <-srv.done:
		default:
			srv.cmd.Process.Kill()
			<-srv.done
		}
		if t.Failed() {
			t.Logf("hotline stderr:\n%s", srv.stderr.String())
		}
	})
	select {
	case a := <-ready:
		if a.sip == "" || a.http == "" {
			t.Fatalf("hotline listening line without sip_udp or http: %+v\n%s", a, srv.stderr.String())
		}
		srv.sip, srv.http = a.sip, a.http
	case <-srv.done:
		t.Fatalf("hotline exited before listening: %v", srv.err)
	case <-time.After(15 * time.Second):
		t.Fatal("hotline did not log \"hotline listening\" within 15s")
	}
	return srv
}

// logged reports whether the server wrote a JSON log record that match accepts.
func (s *sippServer) logged(match func(map[string]any) bool) bool {
	for _, line := range strings.Split(s.stderr.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && match(rec) {
			return true
		}
	}
	return false
}

// runSIPp runs one call of scenario (a file in sipp/) against srv and fails the test unless
// SIPp exits with status 0 (every call succeeded). SIPp runs in the repository root and
// writes its traces to a temporary directory.
func runSIPp(t *testing.T, sipp, root string, srv *sippServer, scenario string, extra ...string) {
	t.Helper()
	dir := t.TempDir()
	host, port, err := net.SplitHostPort(srv.sip)
	if err != nil {
		t.Fatal(err)
	}
	base := strings.TrimSuffix(scenario, ".xml")
	msgLog := filepath.Join(dir, base+"_messages.log")
	errLog := filepath.Join(dir, base+"_errors.log")
	screenLog := filepath.Join(dir, base+"_screen.log")
	args := []string{
		"-sf", filepath.Join("sipp", scenario),
		"-s", "18883737888",
		"-i", "127.0.0.1", "-mi", "127.0.0.1",
		// Without -p (or with -p 0) SIPp takes 5060 when it is free, which may be in use.
		"-p", strconv.Itoa(freeUDPPort(t)),
		"-m", "1", "-timeout_error", "-nostdin",
		"-trace_msg", "-message_file", msgLog,
		"-trace_err", "-error_file", errLog,
		"-trace_screen", "-screen_file", screenLog,
	}
	args = append(args, extra...)
	args = append(args, net.JoinHostPort(host, port))

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sipp, args...)
	cmd.Dir = root
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	t.Logf("sipp %s: %v in %v", scenario, exitStatus(err), time.Since(start).Round(time.Millisecond))
	if err == nil {
		return
	}
	t.Errorf("sipp %s failed: %v (0 = all calls succeeded, 1 = a call failed, 255 = fatal error)\nsipp %s",
		scenario, exitStatus(err), strings.Join(args, " "))
	if os.Geteuid() != 0 {
		t.Log("note: play_pcap_audio sends through a raw socket, which needs root or CAP_NET_RAW")
	}
	t.Logf("sipp output:\n%s", lastBytes(out.String(), 8000))
	for _, f := range []string{errLog, msgLog, screenLog} {
		if b, err := os.ReadFile(f); err == nil {
			t.Logf("%s:\n%s", filepath.Base(f), lastBytes(string(b), 16000))
		}
	}
}

func exitStatus(err error) string {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "exit status 0"
	case errors.As(err, &ee):
		return fmt.Sprintf("exit status %d", ee.ExitCode())
	}
	return err.Error()
}

func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}

// freeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// freeMediaPort returns an even UDP port on 127.0.0.1 whose next three ports are free too
// (SIPp binds the audio port, +2 for video, and RTCP sits on the odd ports).
func freeMediaPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := c.LocalAddr().(*net.UDPAddr).Port &^ 1
		c.Close()
		if p < 1024 || p+3 > 65535 {
			continue
		}
		ok := true
		for q := p; q < p+4 && ok; q++ {
			c, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(q)))
			if err != nil {
				ok = false
				break
			}
			c.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatal("no free UDP media port pair found")
	return 0
}

func scrapeSIPp(t *testing.T, srv *sippServer) string {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	res, err := client.Get("http://" + srv.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", res.Status)
	}
	return string(b)
}

// sippMetric returns the value of the sample series (name plus labels, as exposed), or -1.
func sippMetric(text, series string) float64 {
	for line := range strings.SplitSeq(text, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			if v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
				return v
			}
		}
	}
	return -1
}

// waitSIPpMetric polls /metrics until series equals want; the server records a call's end
// just after it answers the BYE.
func waitSIPpMetric(t *testing.T, srv *sippServer, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		text := scrapeSIPp(t, srv)
		v := sippMetric(text, series)
		if v == want {
			return
		}
		if time.Now().After(deadline) {
			var hotline []string
			for line := range strings.SplitSeq(text, "\n") {
				if strings.HasPrefix(line, "hotline_") {
					hotline = append(hotline, line)
				}
			}
			t.Errorf("%s = %v, want %v; metrics:\n%s", series, v, want, strings.Join(hotline, "\n"))
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
