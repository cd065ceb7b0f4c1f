package main

// baresip (Debian package baresip-core: baresip 1.0 on libre) as a real advocate's phone:
// other people's SIP stack registering with digest, dialling feature codes, and taking a
// bridged call with audio checked both ways by tone (issue 13). Skipped when baresip is not
// installed, unless HOTLINE_REQUIRE_TOOLS=1 (as .ci/run sets).

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// baresip is a running baresip process configured as one advocate's phone.
type baresip struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *syncBuffer
	snd   string // where the sndfile module dumps what the phone hears (*-dec.wav)
	done  chan struct{}
}

// startBaresip runs baresip registered to server (host:port) as advocate id with password pw,
// answering calls at once and sending a sine tone of freq Hz (the ausine module) as its
// microphone. It has no sound card: calls are played to aubridge (nowhere) and both
// directions are dumped to WAV files by the sndfile module.
func startBaresip(t *testing.T, server, id, pw string, freq int) *baresip {
	t.Helper()
	path := lookTool(t, "baresip", "baresip-core")
	dir := t.TempDir()
	snd := filepath.Join(dir, "snd")
	if err := os.Mkdir(snd, 0o700); err != nil {
		t.Fatal(err)
	}
	// Digest credentials are sent as the account asks: auth_pass; answermode=auto answers
	// every call; regint is the registration's expiry in seconds.
	accounts := fmt.Sprintf("<sip:%s@%s>;auth_pass=%s;answermode=auto;regint=300\n", id, server, pw)
	config := strings.Join([]string{
		fmt.Sprintf("sip_listen 127.0.0.1:%d", freeUDPTCPPort(t)),
		// Loopback only: without this baresip puts the machine's first interface in SDP.
		"net_interface 127.0.0.1",
		"module_path /usr/lib/baresip/modules",
		"module stdio.so",
		"module g711.so",
		"module ausine.so",
		"module aubridge.so",
		"module sndfile.so",
		"module_app account.so",
		"module_app menu.so",
		// ausine generates 48 kHz stereo only; baresip resamples it to the codec's rate.
		fmt.Sprintf("audio_source ausine,%d", freq),
		"ausrc_srate 48000",
		"ausrc_channels 2",
		"audio_player aubridge,nowhere",
		"audio_alert aubridge,nowhere",
		"snd_path " + snd,
		"",
	}, "\n")
	for name, text := range map[string]string{"accounts": accounts, "config": config} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b := &baresip{t: t, out: &syncBuffer{}, snd: snd, done: make(chan struct{})}
	b.cmd = exec.Command(path, "-f", dir)
	b.cmd.Env = append(os.Environ(), "HOME="+dir)
	b.cmd.Stdout, b.cmd.Stderr = b.out, b.out
	stdin, err := b.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	b.stdin = stdin
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	t.Cleanup(func() {
		_, _ = io.WriteString(b.stdin, "/quit\n")
		select {
		case <-b.done:
		case <-time.After(5 * time.Second):
			_ = b.cmd.Process.Kill()
			<-b.done
		}
		if t.Failed() {
			t.Logf("baresip output:\n%s", lastBytes(b.out.String(), 12000))
		}
	})
	return b
}

// freeUDPTCPPort returns a port on 127.0.0.1 that was free for both UDP and TCP a moment ago
// (baresip's sip_listen binds both).
func freeUDPTCPPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		p := freeUDPPort(t)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}

// command types a command on baresip's console (the menu module), such as "/dial URI".
func (b *baresip) command(cmd string) {
	b.t.Helper()
	if _, err := io.WriteString(b.stdin, cmd+"\n"); err != nil {
		b.t.Fatalf("baresip %s: %v", cmd, err)
	}
}

// waitOutput waits until baresip has printed want n times in all.
func (b *baresip) waitOutput(what, want string, n int, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Count(b.out.String(), want) >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.t.Fatalf("baresip: %s: %q not printed %d times within %v", what, want, n, timeout)
}

// heard returns the samples of the newest call baresip dumped as heard (decoded), and the
// file's sample rate.
func (b *baresip) heard() ([]float64, int) {
	b.t.Helper()
	files, err := filepath.Glob(filepath.Join(b.snd, "*-dec.wav"))
	if err != nil || len(files) == 0 {
		b.t.Fatalf("baresip dumped no received audio in %s (%v)", b.snd, err)
	}
	sort.Strings(files) // dump-YYYY-MM-DD-hh-mm-ss-dec.wav
	data, err := os.ReadFile(files[len(files)-1])
	if err != nil {
		b.t.Fatal(err)
	}
	samples, rate, err := wavMono16(data)
	if err != nil {
		b.t.Fatalf("%s: %v", files[len(files)-1], err)
	}
	return samples, rate
}

// wavMono16 reads a mono 16-bit PCM WAV file's samples and rate. The data chunk's size is not
// trusted: a file still being written has a header that does not count everything yet.
func wavMono16(data []byte) ([]float64, int, error) {
	if len(data) < 12 || string(data[:4]) != "RIFF" || string(data[8:12]) != "WAVE" {
		return nil, 0, fmt.Errorf("not a WAV file")
	}
	rate := 0
	for p := 12; p+8 <= len(data); {
		id, size := string(data[p:p+4]), int(binary.LittleEndian.Uint32(data[p+4:p+8]))
		body := data[p+8:]
		switch id {
		case "fmt ":
			if len(body) < 16 {
				return nil, 0, fmt.Errorf("short fmt chunk")
			}
			format, channels := binary.LittleEndian.Uint16(body[0:2]), binary.LittleEndian.Uint16(body[2:4])
			bits := binary.LittleEndian.Uint16(body[14:16])
			if format != 1 || channels != 1 || bits != 16 {
				return nil, 0, fmt.Errorf("format %d, %d channels, %d bits; want PCM mono 16-bit", format, channels, bits)
			}
			rate = int(binary.LittleEndian.Uint32(body[4:8]))
		case "data":
			if rate == 0 {
				return nil, 0, fmt.Errorf("data before fmt")
			}
			out := make([]float64, len(body)/2)
			for i := range out {
				out[i] = float64(int16(binary.LittleEndian.Uint16(body[2*i:])))
			}
			return out, rate, nil
		}
		p += 8 + size + size%2
	}
	return nil, 0, fmt.Errorf("no data chunk")
}

// goertzel returns the power of freq relative to the whole signal (0..1) in samples taken
// at rate.
func goertzel(samples []float64, rate int, freq float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	coeff := 2 * math.Cos(2*math.Pi*freq/float64(rate))
	var s1, s2, total float64
	for _, x := range samples {
		s0 := x + coeff*s1 - s2
		s2, s1 = s1, s0
		total += x * x
	}
	if total == 0 {
		return 0
	}
	return (s1*s1 + s2*s2 - coeff*s1*s2) / (total * float64(len(samples)) / 2)
}

// TestGoertzel checks the tone detector the baresip test relies on.
func TestGoertzel(t *testing.T) {
	tone := func(freq float64) []float64 {
		s := make([]float64, 8000)
		for i := range s {
			s[i] = 8000 * math.Sin(2*math.Pi*freq*float64(i)/8000)
		}
		return s
	}
	if l := goertzel(tone(440), 8000, 440); l < 0.95 {
		t.Errorf("440 Hz in a 440 Hz tone: %.2f, want about 1", l)
	}
	if l := goertzel(tone(1000), 8000, 440); l > 0.01 {
		t.Errorf("440 Hz in a 1000 Hz tone: %.2f, want about 0", l)
	}
	if l := goertzel(make([]float64, 100), 8000, 440); l != 0 {
		t.Errorf("440 Hz in silence: %.2f", l)
	}
}

// TestBaresipAdvocate: baresip registers with digest as advocate ana (the default MD5
// challenge is one libre accepts), pauses for a break and makes itself available with the
// feature codes *121 and *11, and answers a caller who went through the menus into the
// English queue. The caller (a Go phone sending 440 Hz) hears baresip's 1000 Hz sine, and
// baresip records 440 Hz.
func TestBaresipAdvocate(t *testing.T) {
	t.Parallel()
	lookTool(t, "baresip", "baresip-core")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("admin-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, queueTestConfig(t, "admin:\n  token_file: "+tokenFile+"\n", "ana:en:pw-ana"))
	const available = `hotline_advocates{language="en",queue="en",state="available"}`
	const paused = `hotline_advocates{language="en",queue="en",state="paused"}`

	b := startBaresip(t, ts.addrs.SIPUDP, "ana", "pw-ana", 1000)
	ts.waitMetric(t, "hotline_sip_registrations", 1)
	ts.waitMetric(t, available, 1)

	// Feature codes: an INVITE challenged with digest, then a confirmation prompt. *121 is
	// a pause for the first of advocate_pause_reasons, a break.
	b.command("/dial sip:*121@" + ts.addrs.SIPUDP)
	ts.waitMetric(t, paused, 1)
	if a := advocateState(t, ts, "admin-secret", "ana"); a.PauseReason != "break" {
		t.Errorf("after *121 from baresip: pause reason %q, want break", a.PauseReason)
	}
	b.waitOutput("the *121 call ends", "session closed", 1, 10*time.Second)
	b.command("/dial sip:*11@" + ts.addrs.SIPUDP)
	ts.waitMetric(t, available, 1)
	b.waitOutput("the *11 call ends", "session closed", 2, 10*time.Second)

	c := callIn(t, ts, "11", 440) // English, help now
	waitTone(t, "the caller hears baresip's sine", c.stream, 0, 1000, 30*time.Second)
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="on_call"}`, 1)
	// Baresip records the caller's tone meanwhile; the caller's last second is all bridged.
	time.Sleep(1500 * time.Millisecond)
	callerLevel := toneLevel(c.stream, 0, 1000, 50)
	if callerLevel < 0.9 {
		t.Errorf("the caller: 1000 Hz carries %.2f of the last second's power, want > 0.9", callerLevel)
	}
	c.hangup()
	b.waitOutput("the bridged call ends", "session closed", 3, 10*time.Second)
	ts.waitMetric(t, available, 1)

	samples, rate := b.heard()
	// The caller's tone, bridged: the second before the caller hung up (the call's end
	// trimmed by 200 ms, the whisper long over).
	end := len(samples) - rate/5
	if end-rate < 0 {
		t.Fatalf("baresip heard %d samples at %d Hz, want more than 1.2 s", len(samples), rate)
	}
	level := goertzel(samples[end-rate:end], rate, 440)
	t.Logf("baresip heard %.1f s of the call; 440 Hz carries %.2f of its last second's power; 1000 Hz carried %.2f of what the caller heard in a second",
		float64(len(samples))/float64(rate), level, callerLevel)
	if level < 0.8 {
		t.Errorf("baresip: 440 Hz carries %.2f of the last second's power, want > 0.8", level)
	}
	if strings.Contains(b.out.String(), c.from) {
		t.Error("the caller's number reached the advocate's phone")
	}
}

// TestSIPpRegister: SIPp 3.6 registers and un-registers as advocate ana with digest
// (sipp/register_auth.xml, [authentication] from -au/-ap: MD5, the first challenge only),
// against the default challenge; with a wrong password its REGISTER is refused.
func TestSIPpRegister(t *testing.T) {
	t.Parallel()
	sipp := lookSIPp(t)
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, queueTestConfig(t, "", "ana:en:pw-ana"))
	run := func(pw string) (string, error) {
		host, port, _ := net.SplitHostPort(ts.addrs.SIPUDP)
		args := []string{"-sf", filepath.Join("sipp", "register_auth.xml"), "-s", "ana", "-au", "ana", "-ap", pw,
			"-i", "127.0.0.1", "-p", strconv.Itoa(freeUDPPort(t)), "-m", "1", "-timeout", "10s", "-timeout_error",
			"-nostdin", "-trace_err", "-error_file", filepath.Join(t.TempDir(), "errors.log"), net.JoinHostPort(host, port)}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, sipp, args...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		return fmt.Sprintf("sipp %s: %v\n%s", strings.Join(args, " "), err, lastBytes(string(out), 4000)), err
	}
	if out, err := run("pw-ana"); err != nil {
		t.Fatalf("SIPp could not register and un-register with the right password:\n%s", out)
	}
	// It was registered (the advocate came online) and then un-registered.
	ts.waitMetric(t, "hotline_sip_registrations", 0)
	if !strings.Contains(ts.logs.String(), `msg="advocate presence" advocate=ana online=true`) {
		t.Error("ana never came online")
	}
	if out, err := run("wrong"); err == nil {
		t.Errorf("SIPp registered with a wrong password:\n%s", out)
	}
	ts.waitMetric(t, `hotline_sip_auth_failures_total{reason="bad_credentials"}`, 1)
}
