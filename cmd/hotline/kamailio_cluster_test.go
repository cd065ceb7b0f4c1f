package main

// End-to-end tests of Kamailio (deploy/kamailio/kamailio.cfg, kamailio_test.go) in front of a
// three-node cluster (cluster*.go) run as processes on 127.0.0.2, .3 and .4 (issue 17's
// tests): an advocate registered through Kamailio (Path) on one node is rung over her flow
// for a caller on another; a waiting caller whose node is SIGKILLed redials through
// Kamailio and gets their place back on a surviving node; the node restarts and catches up.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kamCluster is a three-node cluster (processes) behind Kamailio, with an admin token.
type kamCluster struct {
	nodes []*procNode
	k     *kamailio
	bin   string
}

const kamAdminToken = "admin-secret"

// startKamCluster builds the binary, starts three cluster nodes trusting Kamailio (one
// advocate, ana, in queue es; with sharedKey, callers' numbers hashed with one key file
// shared by the nodes, as a kept place must match on any node: without, each node warns
// that it is not) and Kamailio in front of them.
func startKamCluster(t *testing.T, sharedKey bool) *kamCluster {
	t.Helper()
	lookTool(t, "kamailio", "kamailio") // before building and starting anything
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	keyFile := filepath.Join(dir, "hash-key")
	for path, v := range map[string]string{tokenFile: kamAdminToken, keyFile: "a-caller-hash-key-shared-by-the-nodes"} {
		if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := queueTestConfig(t, "admin:\n  token_file: "+tokenFile+"\nsecurity:\n  trusted_sources: ["+kamIP+"]\n", "ana:es:pw-ana")
	if sharedKey {
		cfg = strings.Replace(cfg, "  path: RECORDS_PATH\n", "  path: RECORDS_PATH\n  hash_key_file: "+keyFile+"\n", 1)
	}
	// As nodeYAML: a loaded test machine must not shed the calls.
	cfg = strings.Replace(cfg, "  ack_timeout: 2s\n", "  ack_timeout: 2s\n  overload: {max_setup_latency: 0s, max_scheduler_lateness: 0s, max_cpu_wait: 0s}\n", 1)
	c := &kamCluster{bin: buildBinary(t)}
	c.nodes = startProcCluster(t, c.bin, cfg, "127.0.0.2", "127.0.0.3", "127.0.0.4")
	c.k = startKamailio(t, c.nodes[0].sip, c.nodes[1].sip, c.nodes[2].sip)
	for _, n := range c.nodes {
		warned := n.logged(func(rec map[string]any) bool {
			msg, _ := rec["msg"].(string)
			return strings.HasPrefix(msg, "cluster: records.hash_key_file is not set")
		})
		if warned == sharedKey {
			t.Errorf("node %s: warned of no shared hash key: %v, with a shared key file: %v", n.ip, warned, sharedKey)
		}
	}
	return c
}

// node returns the node whose SIP address is sip.
func (c *kamCluster) node(t *testing.T, sip string) *procNode {
	t.Helper()
	for _, n := range c.nodes {
		if n.sip == sip {
			return n
		}
	}
	t.Fatalf("no node at %s", sip)
	return nil
}

// registerAna registers ana's phone behind NAT through Kamailio (her Contact is an address
// nothing listens on; only the flow reaches her), waits until every node has her
// available, and returns the phone and the node that took the REGISTER.
func (c *kamCluster) registerAna(t *testing.T) (*phone, *procNode) {
	t.Helper()
	ana := newPhoneAt(t, net.IPv4(127, 0, 0, 6), c.k.addr, "ana", "pw-ana", 8, 1000)
	ana.contactURI = "sip:ana@" + net.JoinHostPort("127.0.0.7", strconv.Itoa(freeUDPPortOn(t, "127.0.0.7")))
	ana.register(300)
	for _, n := range c.nodes {
		n.waitMetric(t, `hotline_advocates{language="es",queue="es",state="available"}`, 1, 10*time.Second)
	}
	for _, n := range c.nodes {
		if n.logged(func(rec map[string]any) bool { return rec["msg"] == "registered" && rec["path"] == true }) {
			return ana, n
		}
	}
	t.Fatal(`no node logged "registered" with path=true`)
	return nil, nil
}

// setAna sets ana's state through node n's admin API and waits until every live node has
// her in state ("": no wait; a caller waiting takes her at once).
func (c *kamCluster) setAna(t *testing.T, n *procNode, body, state string) {
	t.Helper()
	if code, res := httpDo(t, "PUT", "http://"+n.http+"/admin/v1/advocates/ana/state", kamAdminToken, body); code != 200 {
		t.Fatalf("ana's state %s through %s: %d %s", body, n.ip, code, res)
	}
	for _, m := range c.nodes {
		if m.alive() && state != "" {
			m.waitMetric(t, `hotline_advocates{language="es",queue="es",state="`+state+`"}`, 1, 10*time.Second)
		}
	}
}

// alive reports whether the node's process is running.
func (n *procNode) alive() bool {
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// restart starts a node that was stopped (or killed) again, on the same SIP and cluster
// addresses (Kamailio's dispatcher list and the other members know it by those), with
// its state directory as it was left.
func (n *procNode) restart(t *testing.T, bin string) {
	t.Helper()
	args := n.cmd.Args[1:]
	cfgPath := args[len(args)-1]
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "sip:\n  listen: "+n.ip+":0\n", "sip:\n  listen: "+n.sip+"\n", 1)
	cfg = strings.Replace(cfg, "bind: "+n.ip+":0\n", "bind: "+n.cluster+"\n", 1)
	if cfg == string(b) {
		t.Fatal("the node's configuration has no port 0 left to fix")
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startCommand(t, exec.Command(bin, args...), n.dir)
	if srv.sip != n.sip {
		t.Fatalf("restarted node listens on %s, want %s", srv.sip, n.sip)
	}
	n.sippServer = srv
}

// status is the node's /admin/v1/cluster.
func (n *procNode) status(t *testing.T) clusterStatus {
	t.Helper()
	code, body := httpDo(t, "GET", "http://"+n.http+"/admin/v1/cluster", kamAdminToken, "")
	var st clusterStatus
	if code != 200 || json.Unmarshal([]byte(body), &st) != nil {
		t.Fatalf("cluster status of %s: %d %s", n.ip, code, body)
	}
	return st
}

// dialQueue presses 2 (Spanish) then 1 on a call through Kamailio and sends a tone at freq
// for the rest of the call.
func (p *proxiedCall) dialQueue(t *testing.T, freq float64) {
	t.Helper()
	seq, rtpTS := uint16(5000), uint32(900000)
	p.sendDigit(p.media, 101, 2, &seq, &rtpTS)
	p.sendDigit(p.media, 101, 1, &seq, &rtpTS)
	p.tone(t, freq)
}

// tone sends a tone at freq from the caller until the test ends.
func (p *proxiedCall) tone(t *testing.T, freq float64) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go sendTone(ctx, p.rtp, p.media, 0, freq)
}

// TestKamailioClusterAdvocateElsewhere: ana's phone, behind NAT, registers through Kamailio,
// which hashes the REGISTER to one node and adds a Path; a caller whose call Kamailio sends
// to another node is put through to her: that node claims her through the cluster's log
// and rings her with the replicated Path as its Route set, so the INVITE leaves Kamailio
// over her flow. Audio both ways; her hang-up reaches the caller through Kamailio.
func TestKamailioClusterAdvocateElsewhere(t *testing.T) {
	if testing.Short() {
		t.Skip("processes, elections and Kamailio take seconds")
	}
	t.Parallel()
	c := startKamCluster(t, false)
	ana, regNode := c.registerAna(t)

	// Round robin: at most two calls until one lands on another node than ana's.
	var call *proxiedCall
	for range 3 {
		call = callVia(t, c.k.addr)
		if call.node != regNode.sip {
			break
		}
		call.hangup(t)
		call = nil
	}
	if call == nil {
		t.Fatalf("three calls in a row went to ana's node %s", regNode.ip)
	}
	callNode := c.node(t, call.node)
	t.Logf("ana registered on %s, the caller is on %s", regNode.ip, callNode.ip)
	call.dialQueue(t, 440)

	inv := ana.expectInvite(20 * time.Second)
	if v := inv.Via(); v == nil || v.Host != kamIP {
		t.Errorf("INVITE's top Via %v: want Kamailio (%s), which relayed it over the flow", v, kamIP)
	}
	var vias []string
	for _, h := range inv.GetHeaders("Via") {
		vias = append(vias, h.Value())
	}
	if all := strings.Join(vias, ", "); !strings.Contains(all, callNode.ip+":") {
		t.Errorf("INVITE's Vias %q: not sent by the caller's node %s", all, callNode.ip)
	}
	ana.answer(inv)
	waitTone(t, "the caller hears ana (registered on another node)", call.stream, 0, 1000, 5*time.Second)
	waitTone(t, "ana hears the caller", ana.stream, 8, 440, 5*time.Second)
	if got := callNode.metric(t, `hotline_cluster_claims_total{result="granted"}`); got < 1 {
		t.Errorf("the caller's node granted no claim (%v)", got)
	}
	for _, n := range c.nodes {
		n.waitMetric(t, `hotline_advocates{language="es",queue="es",state="on_call"}`, 1, 10*time.Second)
	}
	hangupVia(ana)
	call.expectRequest("BYE", 5*time.Second)
	for _, n := range c.nodes {
		n.waitMetric(t, `hotline_advocates{language="es",queue="es",state="available"}`, 1, 10*time.Second)
	}
}

// TestKamailioClusterKillKeepsPlace: nobody is free (ana paused); caller A waits on node X
// (the node that took ana's REGISTER), then caller B on another node. X is killed with SIGKILL: A's call is gone with it. A
// redials with the same caller ID through Kamailio, lands on a surviving node, hears that
// they kept their place and skips the menus. When ana comes free she is rung for A first,
// then for B. X starts again, catches up with the log (cluster status), takes calls and
// rings ana for them over her flow.
func TestKamailioClusterKillKeepsPlace(t *testing.T) {
	if testing.Short() {
		t.Skip("processes, elections and Kamailio take seconds")
	}
	t.Parallel()
	c := startKamCluster(t, true)
	ana, regNode := c.registerAna(t)
	c.setAna(t, c.nodes[0], `{"state":"paused","reason":"meal"}`, "paused")
	const waiting = `hotline_queue_waiting{queue="es"}`

	// A on the node that took ana's REGISTER, so that the restart must also bring back
	// what the node itself wrote to the log before it died (her registration).
	var a *proxiedCall
	var fromA string
	for i := range 3 {
		fromA = fmt.Sprintf("+1555777010%d", i)
		a = callViaFrom(t, c.k.addr, fromA, "en", "greeting")
		if a.node == regNode.sip {
			break
		}
		a.hangup(t) // in the menus: no place kept
		a = nil
	}
	if a == nil {
		t.Fatalf("three calls in a row missed ana's node %s", regNode.ip)
	}
	a.dialQueue(t, 440)
	x := c.node(t, a.node)
	x.waitMetric(t, waiting, 1, 10*time.Second)
	var b *proxiedCall
	for i := range 3 {
		b = callViaFrom(t, c.k.addr, fmt.Sprintf("+1555777020%d", i), "en", "greeting")
		if b.node != x.sip {
			break
		}
		b.hangup(t)
		b = nil
	}
	if b == nil {
		t.Fatalf("three calls in a row went to A's node %s", x.ip)
	}
	b.dialQueue(t, 550)
	c.node(t, b.node).waitMetric(t, waiting, 1, 10*time.Second)
	time.Sleep(time.Second) // the waiters and A's place in the log (written within 0.2 s)

	if err := x.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-x.done
	killed := time.Now()
	t.Logf("A waited on %s (killed), B on %s", x.ip, b.node)

	again := callViaFrom(t, c.k.addr, fromA, "es", "place_kept")
	t.Logf("A redialled %.1fs after the kill and kept their place on %s", time.Since(killed).Seconds(), again.node)
	if again.node == x.sip {
		t.Fatal("the redial was answered by the killed node")
	}
	again.tone(t, 440)
	live := c.node(t, again.node)
	c.setAna(t, live, `{"state":"available"}`, "")

	inv := ana.expectInvite(20 * time.Second)
	ana.answer(inv)
	waitTone(t, "ana hears A first (their kept place, ahead of B)", ana.stream, 8, 440, 5*time.Second)
	waitTone(t, "A hears ana", again.stream, 0, 1000, 5*time.Second)
	hangupVia(ana)
	again.expectRequest("BYE", 5*time.Second)
	inv = ana.expectInvite(20 * time.Second)
	ana.answer(inv)
	waitTone(t, "ana hears B next", ana.stream, 8, 550, 5*time.Second)
	waitTone(t, "B hears ana", b.stream, 0, 1000, 5*time.Second)
	hangupVia(ana)
	b.expectRequest("BYE", 5*time.Second)

	// X starts again on its state directory: it rejoins and catches up with what was
	// written while it was down (ana's state changes, the claims, the places taken).
	restarted := time.Now()
	x.restart(t, c.bin)
	x.waitMetric(t, "hotline_cluster_members", 3, 20*time.Second)
	x.waitMetric(t, "hotline_cluster_quorum", 1, 20*time.Second)
	var st clusterStatus
	for deadline := time.Now().Add(20 * time.Second); ; {
		st = x.status(t)
		if ref := live.status(t); st.Leader != "" && st.AppliedIndex >= ref.CommitIndex {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted node has not caught up: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the restarted node caught up in %.1fs: %s, leader %s, applied %d, commit %d",
		time.Since(restarted).Seconds(), st.State, st.Leader, st.AppliedIndex, st.CommitIndex)
	// Her registration came through X before it died: X has it back (from its own log
	// entries, replayed) and has her available, as every node does.
	x.waitMetric(t, `hotline_advocates{language="es",queue="es",state="available"}`, 1, 10*time.Second)

	// Back in Kamailio's rotation after a probe: it answers a caller again, and puts them
	// through to ana over her flow.
	time.Sleep(2 * kamProbeInterval)
	var onX *proxiedCall
	for range 4 {
		call := callVia(t, c.k.addr)
		if call.node == x.sip {
			onX = call
			break
		}
		call.hangup(t)
	}
	if onX == nil {
		t.Fatalf("the restarted node %s took none of 4 calls", x.ip)
	}
	onX.dialQueue(t, 660)
	inv = ana.expectInvite(20 * time.Second)
	var vias []string
	for _, h := range inv.GetHeaders("Via") {
		vias = append(vias, h.Value())
	}
	if all := strings.Join(vias, ", "); !strings.Contains(all, x.ip+":") {
		t.Errorf("INVITE's Vias %q: not sent by the restarted node %s", all, x.ip)
	}
	ana.answer(inv)
	waitTone(t, "ana hears the restarted node's caller", ana.stream, 8, 660, 5*time.Second)
	waitTone(t, "the restarted node's caller hears ana", onX.stream, 0, 1000, 5*time.Second)
	hangupVia(ana)
	onX.expectRequest("BYE", 5*time.Second)
}
