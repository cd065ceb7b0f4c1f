package main

// End-to-end tests of the Kamailio front (issue 17): the shipped deploy/kamailio/kamailio.cfg,
// run by Kamailio itself (the Debian package) with its settings given as -A defines (listen
// address, dispatcher list, probe interval), in front of hotline nodes on 127.0.0.2, .3 and .4.
// Callers and phones speak to Kamailio on 127.0.0.5 only.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
)

// Kamailio settings in the tests: probes every second, a node silent for a second is dead.
const (
	kamProbeInterval = time.Second
	kamFRTimer       = time.Second
	kamIP            = "127.0.0.5"
)

// kamailio is a Kamailio process running deploy/kamailio/kamailio.cfg.
type kamailio struct {
	addr string // its UDP host:port
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
}

// freeUDPPortOn returns a UDP port on ip that was free a moment ago.
func freeUDPPortOn(t *testing.T, ip string) int {
	t.Helper()
	c, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// startKamailio runs the shipped configuration in the foreground with a dispatcher list of
// nodes (host:port), on a free port of 127.0.0.5 (another one if that was taken meanwhile),
// and waits until it answers.
func startKamailio(t *testing.T, nodes ...string) *kamailio {
	t.Helper()
	bin := lookTool(t, "kamailio", "kamailio")
	cfg, err := filepath.Abs(filepath.Join("..", "..", "deploy", "kamailio", "kamailio.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var list strings.Builder
	list.WriteString("# setid destination flags priority attributes\n")
	for _, n := range nodes {
		fmt.Fprintf(&list, "1 sip:%s 0 0\n", n)
	}
	listPath := filepath.Join(dir, "dispatcher.list")
	if err := os.WriteFile(listPath, []byte(list.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		port := strconv.Itoa(freeUDPPortOn(t, kamIP))
		k := &kamailio{addr: net.JoinHostPort(kamIP, port), logs: &syncBuffer{}, done: make(chan struct{})}
		k.cmd = exec.Command(bin, "-f", cfg, "-DD", "-E", "-w", dir, "-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"),
			"-m", "32", "-M", "4",
			"-A", "LISTEN=udp:"+k.addr, "-A", "LISTEN_TCP=tcp:"+k.addr, "-A", "CHILDREN=2",
			"-A", `DISPATCHER_LIST="`+listPath+`"`,
			"-A", "PROBE_INTERVAL="+strconv.Itoa(int(kamProbeInterval/time.Second)),
			"-A", "FR_TIMER="+strconv.Itoa(int(kamFRTimer/time.Millisecond)))
		k.cmd.Stdout, k.cmd.Stderr = k.logs, k.logs
		// Its own process group: its children go with it.
		k.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := k.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = k.cmd.Wait(); close(k.done) }()
		if k.waitReady(10 * time.Second) {
			t.Cleanup(func() { k.stop(t) })
			return k
		}
		k.stop(t)
		t.Logf("kamailio on %s did not start (retrying on another port):\n%s", k.addr, lastBytes(k.logs.String(), 4000))
	}
	t.Fatal("kamailio did not start")
	return nil
}

// waitReady sends OPTIONS until Kamailio answers anything, the process exits or d passes.
func (k *kamailio) waitReady(d time.Duration) bool {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return false
	}
	defer c.Close()
	to, _ := net.ResolveUDPAddr("udp", k.addr)
	deadline := time.Now().Add(d)
	buf := make([]byte, 4096)
	for time.Now().Before(deadline) {
		select {
		case <-k.done:
			return false
		default:
		}
		msg := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n"+
			"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=%s\r\nTo: <sip:%s>\r\nCall-ID: %s\r\n"+
			"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", k.addr, c.LocalAddr(), randHex(6), randHex(4), k.addr, randHex(8))
		if _, err := c.WriteTo([]byte(msg), to); err != nil {
			return false
		}
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, _, err := c.ReadFrom(buf); err == nil && strings.HasPrefix(string(buf[:n]), "SIP/2.0 ") {
			return true
		}
	}
	return false
}

// stop ends Kamailio (SIGTERM to its process group, then SIGKILL) and shows its log when the
// test failed.
func (k *kamailio) stop(t *testing.T) {
	t.Helper()
	pgid := k.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-k.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-k.done
	}
	if t.Failed() {
		t.Logf("kamailio log:\n%s", lastBytes(k.logs.String(), 16000))
	}
}

// kamNode is a hotline node: the binary, run as its own process, on its own loopback address.
type kamNode struct {
	*sippServer
	bin, dir, cfg string
}

// nodeYAML is a node's configuration: SIP on ip:port, HTTP on ip, media on 127.0.0.1,
// records and state in dir, and the Kamailio front trusted (all callers come from it).
func nodeYAML(t *testing.T, ip string, port int, dir string) string {
	t.Helper()
	lo, hi := rtpRange(t, 200)
	return fmt.Sprintf(`sip:
  listen: %s:%d
  ack_timeout: 2s
  overload: {max_setup_latency: 0s, max_scheduler_lateness: 0s, max_cpu_wait: 0s}
http:
  listen: %s:0
media:
  bind_address: 127.0.0.1
  port_min: %d
  port_max: %d
  inactivity_timeout: 30s
ivr:
  first_digit_timeout: 3s
lines:
  - number: "18883737888"
    name: main
records:
  path: %s
state:
  dir: %s
security:
  trusted_sources: [%s]
`, ip, port, ip, lo, hi, filepath.Join(dir, "records.db"), filepath.Join(dir, "state"), kamIP)
}

// startKamNode runs the binary as a node on ip, on a port free a moment ago.
func startKamNode(t *testing.T, bin, ip string) *kamNode {
	t.Helper()
	n := &kamNode{bin: bin, dir: t.TempDir()}
	n.cfg = filepath.Join(n.dir, "hotline.yaml")
	if err := os.WriteFile(n.cfg, []byte(nodeYAML(t, ip, freeUDPPortOn(t, ip), n.dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	n.start(t)
	return n
}

// start runs (or runs again) the node on its configuration.
func (n *kamNode) start(t *testing.T) {
	t.Helper()
	n.sippServer = startCommand(t, exec.Command(n.bin, "serve", "-config", n.cfg, "-log-format", "json"), n.dir)
}

// metric is the value of a series on the node's /metrics (-1 when absent).
func (n *kamNode) metric(t *testing.T, series string) float64 {
	t.Helper()
	return sippMetric(scrapeSIPp(t, n.sippServer), series)
}

const invitesAnswered = `hotline_sip_responses_total{method="INVITE",status="200"}`

// inDialog is a request of u's call, answered by res (a 200 that came through a proxy): to
// the 200's Contact, with the Route set from its Record-Route (RFC 3261 12.2.1.1).
func inDialog(u *uac, method string, res *sipmsg.Response) string {
	var routes []string
	rr := res.GetHeaders("Record-Route")
	for i := len(rr) - 1; i >= 0; i-- {
		routes = append(routes, "Route: "+rr[i].Value())
	}
	msg := u.request(method, hotlineNumber, "", "", routes...)
	return method + " " + res.Contact().Address.String() + " SIP/2.0" + msg[strings.Index(msg, "\r\n"):]
}

// proxiedCall is a caller's call placed through Kamailio.
type proxiedCall struct {
	*uac
	res    *sipmsg.Response
	stream *rtpStream
	media  *net.UDPAddr
	node   string // the host:port of the node that answered (its Contact)
}

// callVia calls the hotline through Kamailio at addr, acknowledges the answer through it and
// waits until the caller hears the greeting.
func callVia(t *testing.T, addr string) *proxiedCall {
	t.Helper()
	u := newUAC(t, addr)
	stream := u.receiveRTP()
	u.invite(hotlineNumber, sdpOffer(u.rtpPort(), "0 101", ""))
	// A node that is dead is given up after FR_TIMER; the next one answers.
	res := u.expectResponse("INVITE", 200, 3*kamFRTimer+2*time.Second)
	u.branch = "z9hG4bK" + randHex(6)
	u.send(inDialog(u, "ACK", res))
	_, media := answer(t, res)
	var seq uint16 = 1
	var rtpTS uint32 = 1000
	u.sendSilence(media, 3, &seq, &rtpTS)
	stream.waitFor(t, "the greeting", mustPrompt(t, "en", "greeting").PCMU[:1600], 5*time.Second)
	ct := res.Contact().Address
	return &proxiedCall{uac: u, res: res, stream: stream, media: media,
		node: net.JoinHostPort(ct.Host, strconv.Itoa(ct.Port))}
}

// hangup sends BYE through Kamailio and expects 200.
func (c *proxiedCall) hangup(t *testing.T) {
	t.Helper()
	c.cseq++
	c.send(inDialog(c.uac, "BYE", c.res))
	c.expectResponse("BYE", 200, 3*time.Second)
}

// TestKamailioFront runs three nodes behind the shipped Kamailio configuration: calls reach
// a node and hear the greeting, spread over the nodes; a draining node (SIGTERM with a call
// in progress) gets no new call and none fails; once it has stopped and started again it
// takes calls again.
func TestKamailioFront(t *testing.T) {
	t.Parallel()
	lookTool(t, "kamailio", "kamailio") // before building and starting anything
	bin := buildBinary(t)
	nodes := []*kamNode{startKamNode(t, bin, "127.0.0.2"), startKamNode(t, bin, "127.0.0.3"), startKamNode(t, bin, "127.0.0.4")}
	k := startKamailio(t, nodes[0].sip, nodes[1].sip, nodes[2].sip)

	t.Run("calls spread over the nodes", func(t *testing.T) {
		// Round robin: two each (a node slow to answer a probe on a loaded machine may be
		// out for a moment, so only "each took some" is required).
		seen := map[string]int{}
		for range 6 {
			c := callVia(t, k.addr)
			seen[c.node]++
			c.hangup(t)
		}
		t.Logf("calls per node: %v", seen)
		for _, n := range nodes {
			if seen[n.sip] == 0 {
				t.Errorf("node %s took none of 6 calls: %v", n.sip, seen)
			}
		}
	})

	t.Run("a draining node gets no new calls", func(t *testing.T) {
		drain := nodes[2]
		// A call in progress on it keeps it running while it drains.
		held := newUAC(t, drain.sip)
		heldStream := held.receiveRTP()
		_, media := answer(t, held.dial("0 101"))
		var seq uint16 = 1
		var rtpTS uint32 = 1000
		held.sendSilence(media, 3, &seq, &rtpTS)
		heldStream.waitFor(t, "the greeting", mustPrompt(t, "en", "greeting").PCMU[:1600], 5*time.Second)
		before := drain.metric(t, invitesAnswered)
		if err := drain.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		// The signal is handled asynchronously: wait until the node says it drains.
		for deadline := time.Now().Add(5 * time.Second); !drain.logged(func(rec map[string]any) bool {
			msg, _ := rec["msg"].(string)
			return strings.HasPrefix(msg, "draining")
		}); {
			if time.Now().After(deadline) {
				t.Fatal("the node did not log that it drains within 5s of SIGTERM")
			}
			time.Sleep(20 * time.Millisecond)
		}
		// At once (before any probe) and after two probe intervals: every call is answered,
		// none by the draining node. One sent to it meanwhile gets 503 and moves on.
		for i := range 6 {
			if i == 3 {
				time.Sleep(2 * kamProbeInterval)
			}
			c := callVia(t, k.addr)
			if c.node == drain.sip {
				t.Errorf("call %d answered by the draining node", i)
			}
			c.hangup(t)
		}
		if got := drain.metric(t, invitesAnswered); got != before {
			t.Errorf("the draining node answered %v INVITEs, want none", got-before)
		}
		if got := drain.metric(t, `hotline_sip_responses_total{method="OPTIONS",status="503"}`); got < 1 {
			t.Errorf("the draining node answered no probe with 503 (%v)", got)
		}
		held.hangup()
		select {
		case <-drain.done:
		case <-time.After(10 * time.Second):
			t.Fatal("the draining node did not stop when its last call ended")
		}

		// Started again (an upgrade, one node at a time): within a probe interval it is back
		// in the rotation.
		drain.start(t)
		time.Sleep(2 * kamProbeInterval)
		took := false
		for range 4 {
			c := callVia(t, k.addr)
			took = took || c.node == drain.sip
			c.hangup(t)
		}
		if !took {
			t.Errorf("the restarted node %s took none of 4 calls", drain.sip)
		}
	})
}

// steadyLog is what SIPp's hotline_steady.xml logged: when each call started, and which
// ended well.
type steadyLog struct {
	start, answered map[int]time.Time
	ok              map[int]bool
}

func readSteadyLog(t *testing.T, path string) steadyLog {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l := steadyLog{start: map[int]time.Time{}, answered: map[int]time.Time{}, ok: map[int]bool{}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		switch {
		case len(fs) == 4 && (fs[0] == "start" || fs[0] == "answered"):
			n, _ := strconv.Atoi(fs[1])
			// SIPp prints its variables as floating point numbers.
			sec, err1 := strconv.ParseFloat(fs[2], 64)
			usec, err2 := strconv.ParseFloat(fs[3], 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("sipp log line %q: %v %v", sc.Text(), err1, err2)
			}
			at := time.Unix(int64(sec), int64(usec)*1000)
			if fs[0] == "start" {
				l.start[n] = at
			} else {
				l.answered[n] = at
			}
		case len(fs) == 2 && fs[0] == "ok":
			n, _ := strconv.Atoi(fs[1])
			l.ok[n] = true
		}
	}
	return l
}

// TestKamailioFailover: SIPp calls through Kamailio at a steady rate while one of three
// nodes is killed with SIGKILL and later started again. No call placed after the kill plus
// the probe interval fails (those placed inside it are counted and reported); the node
// takes calls again after its restart.
func TestKamailioFailover(t *testing.T) {
	t.Parallel()
	lookTool(t, "kamailio", "kamailio") // before building and starting anything
	sipp := lookSIPp(t)
	bin := buildBinary(t)
	nodes := []*kamNode{startKamNode(t, bin, "127.0.0.2"), startKamNode(t, bin, "127.0.0.3"), startKamNode(t, bin, "127.0.0.4")}
	k := startKamailio(t, nodes[0].sip, nodes[1].sip, nodes[2].sip)

	victim := nodes[1]
	var killed, restarted time.Time
	l := runSteady(t, sipp, k, 5, 16, func() {
		time.Sleep(4 * time.Second)
		if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Error(err)
			return
		}
		killed = time.Now()
		<-victim.done
		time.Sleep(5 * time.Second)
		victim.start(t)
		restarted = time.Now()
	})
	if killed.IsZero() {
		return
	}
	r := l.around(killed)
	t.Logf("%d calls at 5/s; node killed at %+.2fs of the run, started again %.1fs later; failed: %d in progress at the kill, %d placed within the probe interval (%v), %d after it; %v",
		len(l.start), killed.Sub(minTime(l.start)).Seconds(), restarted.Sub(killed).Seconds(),
		len(r.before), len(r.inside), kamProbeInterval, len(r.after), r.failed)
	t.Logf("after the kill: %d calls answered after half FR_TIMER (%v) or later, by the next node; slowest answer %v",
		r.slow, kamFRTimer, r.slowest.Round(time.Millisecond))
	if len(r.after) > 0 {
		t.Errorf("%d calls placed more than the probe interval (%v) after the kill failed", len(r.after), kamProbeInterval)
	}
	if got := victim.metric(t, invitesAnswered); got < 1 {
		t.Errorf("the restarted node answered no call (%v INVITEs)", got)
	}
}

// TestKamailioFrozenNode: as TestKamailioFailover, with a node frozen by SIGSTOP (a hung
// process, or a partition) for four seconds and then thawed by SIGCONT.
func TestKamailioFrozenNode(t *testing.T) {
	t.Parallel()
	lookTool(t, "kamailio", "kamailio") // before building and starting anything
	sipp := lookSIPp(t)
	bin := buildBinary(t)
	nodes := []*kamNode{startKamNode(t, bin, "127.0.0.2"), startKamNode(t, bin, "127.0.0.3"), startKamNode(t, bin, "127.0.0.4")}
	k := startKamailio(t, nodes[0].sip, nodes[1].sip, nodes[2].sip)

	victim := nodes[2]
	var stopped, thawed time.Time
	var answeredBefore float64
	l := runSteady(t, sipp, k, 5, 14, func() {
		time.Sleep(3 * time.Second)
		if err := victim.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Error(err)
			return
		}
		stopped = time.Now()
		time.Sleep(4 * time.Second)
		if err := victim.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Error(err)
			return
		}
		thawed = time.Now()
		answeredBefore = victim.metric(t, invitesAnswered)
	})
	if stopped.IsZero() {
		return
	}
	r := l.around(stopped)
	t.Logf("%d calls at 5/s; node frozen at %+.2fs of the run for %.1fs; failed: %d in progress at the freeze, %d placed within the probe interval (%v), %d after it; %v",
		len(l.start), stopped.Sub(minTime(l.start)).Seconds(), thawed.Sub(stopped).Seconds(),
		len(r.before), len(r.inside), kamProbeInterval, len(r.after), r.failed)
	t.Logf("after the freeze: %d calls answered after half FR_TIMER (%v) or later, by the next node; slowest answer %v",
		r.slow, kamFRTimer, r.slowest.Round(time.Millisecond))
	if len(r.after) > 0 {
		t.Errorf("%d calls placed more than the probe interval (%v) after the freeze failed", len(r.after), kamProbeInterval)
	}
	if got := victim.metric(t, invitesAnswered); got <= answeredBefore {
		t.Errorf("the thawed node answered no call after SIGCONT (%v INVITEs, %v at the thaw)", got, answeredBefore)
	}
	// The INVITEs the node had not read when it froze are answered when it thaws; their
	// callers were answered by another node meanwhile, so those answers get no ACK.
	orphans := 0
	for _, line := range strings.Split(victim.stderr.String(), "\n") {
		if strings.Contains(line, `"msg":"no ack for 200 ok, ending call"`) {
			orphans++
		}
	}
	t.Logf("after the thaw the node answered %d stale INVITEs that were never acknowledged (ended after sip.ack_timeout)", orphans)
}

// runSteady runs sipp/hotline_steady.xml through k at rate calls a second for seconds,
// calls during on another goroutine meanwhile, and returns what SIPp logged once both are
// done.
func runSteady(t *testing.T, sipp string, k *kamailio, rate, seconds int, during func()) steadyLog {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	logPath := filepath.Join(dir, "steady.log")
	args := []string{"-sf", filepath.Join("sipp", "hotline_steady.xml"), "-s", hotlineNumber,
		"-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", strconv.Itoa(freeUDPPort(t)), "-mp", strconv.Itoa(freeMediaPort(t)),
		"-r", strconv.Itoa(rate), "-m", strconv.Itoa(rate * seconds), "-recv_timeout", "6000", "-nostdin",
		"-trace_logs", "-log_file", logPath, "-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
		k.addr}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds)*time.Second+60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sipp, args...)
	cmd.Dir = root
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sippDone := make(chan error, 1)
	go func() { sippDone <- cmd.Wait() }()
	duringDone := make(chan struct{})
	go func() { defer close(duringDone); during() }()
	<-duringDone
	var sippErr error
	select {
	case sippErr = <-sippDone:
	case <-ctx.Done():
		t.Fatalf("sipp did not finish:\n%s", lastBytes(out.String(), 4000))
	}
	l := readSteadyLog(t, logPath)
	if len(l.start) != rate*seconds {
		t.Fatalf("sipp logged %d calls, want %d (%v):\n%s", len(l.start), rate*seconds, exitStatus(sippErr), lastBytes(out.String(), 4000))
	}
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "errors.log")); err == nil {
				t.Logf("sipp errors:\n%s", lastBytes(string(b), 8000))
			}
		}
	})
	return l
}

// aroundEvent sorts the failed calls of a run by when they were placed against an event
// (a node killed or frozen), and measures how long the calls placed after it waited.
type aroundEvent struct {
	before, inside, after []int    // failed calls placed before it, within the probe interval, later
	failed                []string // each failed call and when it was placed, against the event
	slow                  int      // calls placed after it answered after half FR_TIMER or later
	slowest               time.Duration
}

func (l steadyLog) around(event time.Time) aroundEvent {
	var r aroundEvent
	for n, at := range l.start {
		if !l.ok[n] {
			switch off := at.Sub(event); {
			case off < 0:
				r.before = append(r.before, n)
			case off <= kamProbeInterval:
				r.inside = append(r.inside, n)
			default:
				r.after = append(r.after, n)
			}
			r.failed = append(r.failed, fmt.Sprintf("call %d at %+.2fs", n, at.Sub(event).Seconds()))
		}
		// Calls sent to the dead node before it was taken out were answered by the next
		// one after FR_TIMER: the caller waits longer, but gets through.
		if ans, ok := l.answered[n]; ok && at.After(event) {
			d := ans.Sub(at)
			r.slowest = max(r.slowest, d)
			if d >= kamFRTimer/2 {
				r.slow++
			}
		}
	}
	sort.Strings(r.failed)
	return r
}

func minTime(m map[int]time.Time) time.Time {
	var first time.Time
	for _, at := range m {
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	return first
}

// TestKamailioPathNAT: an advocate's phone behind NAT registers through Kamailio, which adds
// a Path (RFC 3327) naming itself and the phone's flow. The phone's Contact names an
// address it cannot be reached at (its private address: here a loopback port nothing
// listens on); only the flow through Kamailio reaches it. A caller through Kamailio is put
// through to the advocate: the node's INVITE carries the Path as its Route set, Kamailio
// sends it over the flow. A first caller hangs up while the phone rings: the CANCEL comes
// the same way. The second is answered with audio both ways; the advocate's hang-up goes
// through Kamailio to the node, and the node's to the caller.
func TestKamailioPathNAT(t *testing.T) {
	t.Parallel()
	lookTool(t, "kamailio", "kamailio") // before building and starting anything
	cfg := queueTestConfig(t, "security:\n  trusted_sources: ["+kamIP+"]\n", "ana:es:pw-ana")
	cfg = strings.Replace(cfg, "sip:\n  listen: 127.0.0.1:0", "sip:\n  listen: 127.0.0.2:0", 1)
	ts := startServer(t, cfg)
	k := startKamailio(t, ts.addrs.SIPUDP)

	ana := newPhoneAt(t, net.IPv4(127, 0, 0, 6), k.addr, "ana", "pw-ana", 8, 1000)
	private := net.JoinHostPort("127.0.0.7", strconv.Itoa(freeUDPPortOn(t, "127.0.0.7")))
	ana.contactURI = "sip:ana@" + private
	ana.register(300)
	ts.waitMetric(t, `hotline_advocates{language="es",queue="es",state="available"}`, 1)
	if !strings.Contains(ts.logs.String(), "path=true") {
		t.Error(`no "registered" log with path=true: the node did not keep the REGISTER's Path`)
	}
	// The phone keeps its flow open with OPTIONS to Kamailio, which answers them itself.
	ana.send(fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\nMax-Forwards: 70\r\n"+
		"From: <sip:ana@%s>;tag=%s\r\nTo: <sip:%s>\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
		k.addr, ana.conn.LocalAddr(), randHex(6), k.addr, randHex(4), k.addr, randHex(8)))
	ana.expectResponse("OPTIONS", 200, 2*time.Second)

	// A first caller hangs up while the phone rings: the node's CANCEL reaches the phone over
	// the flow too.
	early := callVia(t, k.addr)
	seq, rtpTS := uint16(5000), uint32(900000)
	early.sendDigit(early.media, 101, 2, &seq, &rtpTS)
	early.sendDigit(early.media, 101, 1, &seq, &rtpTS)
	first := ana.expectInvite(20 * time.Second)
	early.hangup(t)
	ana.expectCancel(first, 5*time.Second)

	c := callVia(t, k.addr)
	c.sendDigit(c.media, 101, 2, &seq, &rtpTS)
	c.sendDigit(c.media, 101, 1, &seq, &rtpTS)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go sendTone(ctx, c.rtp, c.media, 0, 440)

	inv := ana.expectInvite(20 * time.Second)
	if got := inv.Recipient.Host + ":" + strconv.Itoa(inv.Recipient.Port); got != private {
		t.Errorf("INVITE Request-URI host %s, want the registered Contact's %s", got, private)
	}
	if v := inv.Via(); v == nil || v.Host != kamIP {
		t.Errorf("INVITE's top Via %v: want Kamailio (%s), which relayed it over the flow", v, kamIP)
	}
	if inv.GetHeader("Record-Route") == nil {
		t.Error("INVITE without Record-Route: in-dialog requests would not follow the flow")
	}
	ana.answer(inv) // waits for the node's ACK, which comes over the flow too
	waitTone(t, "the caller hears the advocate", c.stream, 0, 1000, 5*time.Second)
	waitTone(t, "the advocate hears the caller", ana.stream, 8, 440, 5*time.Second)
	ts.waitMetric(t, `hotline_queue_calls_total{queue="es",result="answered"}`, 1)

	// The advocate hangs up: her BYE follows the Record-Route through Kamailio to the node,
	// and the node's BYE reaches the caller through Kamailio too.
	cancel()
	hangupVia(ana)
	c.expectRequest("BYE", 5*time.Second)

	// Only the nodes may send over a phone's flow: anyone else's INVITE with a Route like a
	// node's (Kamailio as an open relay towards the flow or any address) is refused.
	mallory := newUAC(t, k.addr)
	mallory.send(mallory.request("INVITE", "ana", sdpOffer(mallory.rtpPort(), "0", ""), "application/sdp",
		"Route: <sip:"+k.addr+";lr;received=sip:"+private+">"))
	mallory.expectResponse("INVITE", 403, 3*time.Second)
}

// hangupVia sends BYE from the phone in its current call with the Route set from the
// INVITE's Record-Route (RFC 3261 12.1.1: in order), through the proxy, and expects 200.
func hangupVia(p *phone) {
	p.t.Helper()
	p.mu.Lock()
	inv, tag := p.inCall, p.localTag
	p.byeCSeq++
	cseq := p.byeCSeq
	p.mu.Unlock()
	p.stop()
	var b strings.Builder
	fmt.Fprintf(&b, "BYE %s SIP/2.0\r\n", inv.Contact().Address.String())
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n", p.conn.LocalAddr(), randHex(6))
	b.WriteString("Max-Forwards: 70\r\n")
	fromTag, _ := inv.From().Params.Get("tag")
	fmt.Fprintf(&b, "From: <%s>;tag=%s\r\n", inv.To().Address.String(), tag)
	fmt.Fprintf(&b, "To: <%s>;tag=%s\r\n", inv.From().Address.String(), fromTag)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", inv.CallID().Value())
	fmt.Fprintf(&b, "CSeq: %d BYE\r\n", cseq)
	for _, rr := range inv.GetHeaders("Record-Route") {
		fmt.Fprintf(&b, "Route: %s\r\n", rr.Value())
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	p.send(b.String())
	p.expectResponse("BYE", 200, 3*time.Second)
}
