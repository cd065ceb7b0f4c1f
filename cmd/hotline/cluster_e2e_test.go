package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/hotline-project/hotline/admin"
)

// clusterNode is one node of a test cluster, in process, on its own loopback address.
type clusterNode struct {
	*testServer
	ip string
}

// startCluster starts len(ips) nodes of one cluster, node i on ips[i] (sip, http, media
// and the cluster port, all port 0); the first starts the cluster and the others join
// through it. cfg is a queueTestConfig.
func startCluster(t *testing.T, cfg string, ips ...string) []*clusterNode {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "cluster-secret")
	if err := os.WriteFile(secret, []byte("a-test-cluster-secret-of-some-length\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var nodes []*clusterNode
	for i, ip := range ips {
		c := strings.ReplaceAll(cfg, "127.0.0.1", ip)
		c += "\nstate:\n  dir: " + filepath.Join(t.TempDir(), "state") + "\n  cluster:\n    node_id: n" + string(rune('1'+i)) +
			"\n    bind: " + ip + ":0\n    secret_file: " + secret + "\n    quorum_grace: 1s\n"
		if i > 0 {
			c += "    join: [\"" + nodes[0].addrs.Cluster + "\"]\n"
		}
		ts := startServerLogging(t, c, "debug")
		if ts.addrs.Cluster == "" {
			t.Fatalf("node %d has no cluster address", i+1)
		}
		nodes = append(nodes, &clusterNode{testServer: ts, ip: ip})
	}
	for _, n := range nodes {
		n.waitMetricFor(t, "hotline_cluster_members", float64(len(ips)), 20*time.Second)
	}
	return nodes
}

// waitMetricFor is waitMetric with its own timeout.
func (ts *testServer) waitMetricFor(t *testing.T, series string, want float64, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	var text string
	for time.Now().Before(deadline) {
		text = ts.scrape(t)
		if metricValue(text, series) == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("metric %s = %v, want %v", series, metricValue(text, series), want)
}

// TestClusterAdvocateOnACallerOnB is issue 17's first cluster case: three nodes on
// 127.0.0.2, .3 and .4 form one cluster; an advocate registers through node A (.2); every
// node learns she is available; a caller arrives on node B (.3); B claims her through the
// cluster's log and rings her phone at its registered contact; audio flows both ways;
// when the call ends she is available everywhere again. Then two callers arrive at once
// on B and C: she is rung for one of them only, and for the other after the first call.
func TestClusterAdvocateOnACallerOnB(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("three nodes and elections take seconds")
	}
	nodes := startCluster(t, queueTestConfig(t, "", "ana:es:pw-ana"), "127.0.0.2", "127.0.0.3", "127.0.0.4")
	a, b, c := nodes[0], nodes[1], nodes[2]
	ana := newPhone(t, a.addrs.SIPUDP, "ana", "pw-ana", 8, 1000)
	ana.viaReplies = true
	ana.register(300)
	const avail = `hotline_advocates{language="es",queue="es",state="available"}`
	for _, n := range nodes {
		n.waitMetric(t, avail, 1)
	}

	c1 := callIn(t, b.testServer, "21", 440)
	inv := ana.expectInvite(20 * time.Second)
	if via := inv.Via(); via == nil || via.Host != "127.0.0.3" {
		t.Fatalf("ana's INVITE did not come from node B: Via %v", inv.Via())
	}
	ana.answer(inv)
	waitTone(t, "the caller on B hears ana (registered on A)", c1.stream, 0, 1000, 5*time.Second)
	waitTone(t, "ana hears the caller on B", ana.stream, 8, 440, 5*time.Second)
	b.waitMetric(t, `hotline_cluster_claims_total{result="granted"}`, 1)
	const onCall = `hotline_advocates{language="es",queue="es",state="on_call"}`
	for _, n := range nodes {
		n.waitMetric(t, onCall, 1) // on B on the call; on A and C taken elsewhere
	}
	c1.hangup()
	ana.expectBye(5 * time.Second)
	for _, n := range nodes {
		n.waitMetric(t, avail, 1)
	}

	// Two callers at once, on B and C: one ring, then the other after the first call.
	c2 := callIn(t, b.testServer, "21", 440)
	c3 := callIn(t, c.testServer, "21", 550)
	inv = ana.expectInvite(20 * time.Second)
	first := inv.Via().Host
	expectNoOtherInvite(t, ana, inv, 3*time.Second) // not rung for the other caller meanwhile
	ana.answer(inv)
	served, other := c2, c3
	if first == "127.0.0.4" {
		served, other = c3, c2
	}
	waitTone(t, "the first caller hears ana", served.stream, 0, 1000, 5*time.Second)
	served.hangup()
	ana.expectBye(5 * time.Second)
	inv = ana.expectInvite(20 * time.Second)
	if inv.Via().Host == first {
		t.Fatalf("the second ring came from %s again", first)
	}
	ana.answer(inv)
	waitTone(t, "the second caller hears ana", other.stream, 0, 1000, 5*time.Second)
	other.hangup()
	ana.expectBye(5 * time.Second)
	var refused float64
	for _, n := range nodes {
		refused += metricValue(n.scrape(t), `hotline_cluster_claims_total{result="refused"}`)
	}
	t.Logf("claims refused (the loser of a race for ana): %v", refused)
}

// TestClusterReplicatesState: what one node is told reaches every node's live state: a
// registration through A, a pause with its reason set through C's admin API, an
// emergency override set through B, and the end of the pause through A.
func TestClusterReplicatesState(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("three nodes and elections take seconds")
	}
	tokenFile := writeFile(t, t.TempDir(), "token", "admin-secret\n")
	nodes := startCluster(t, queueTestConfig(t, "admin:\n  token_file: "+tokenFile+"\n", "ana:es:pw-ana"),
		"127.0.0.5", "127.0.0.6", "127.0.0.7")
	a, b, c := nodes[0], nodes[1], nodes[2]
	api := func(n *clusterNode) string { return "http://" + n.addrs.HTTP + "/admin/v1" }
	ana := newPhone(t, a.addrs.SIPUDP, "ana", "pw-ana", 8, 1000)
	ana.register(300)
	const avail = `hotline_advocates{language="es",queue="es",state="available"}`
	const paused = `hotline_advocates{language="es",queue="es",state="paused"}`
	for _, n := range nodes {
		n.waitMetric(t, avail, 1)
	}
	if code, body := httpDo(t, "PUT", api(c)+"/advocates/ana/state", "admin-secret", `{"state":"paused","reason":"meal"}`); code != 200 {
		t.Fatalf("pause through C: %d %s", code, body)
	}
	for _, n := range nodes {
		n.waitMetric(t, paused, 1)
		if st := advocatesByID(t, api(n))["ana"]; st.PauseReason != "meal" {
			t.Errorf("node %s: ana %+v, want paused for meal", n.ip, st)
		}
	}
	if code, body := httpDo(t, "PUT", api(b)+"/overrides", "admin-secret", `{"kind":"closed","schedule":"advocates","reason":"storm"}`); code != 200 {
		t.Fatalf("override through B: %d %s", code, body)
	}
	for _, n := range []*clusterNode{a, c} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, body := httpDo(t, "GET", api(n)+"/overrides", "admin-secret", "")
			if strings.Contains(body, "storm") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s has not the override: %s", n.ip, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if code, body := httpDo(t, "PUT", api(a)+"/advocates/ana/state", "admin-secret", `{"state":"available"}`); code != 200 {
		t.Fatalf("available through A: %d %s", code, body)
	}
	for _, n := range nodes {
		n.waitMetric(t, avail, 1)
	}
	// The override was not written back by the nodes it reached (no echo): one entry.
	if code, body := httpDo(t, "DELETE", api(c)+"/overrides?kind=closed&schedule=advocates", "admin-secret", ""); code != 200 {
		t.Fatalf("clear through C: %d %s", code, body)
	}
	for _, n := range nodes {
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, body := httpDo(t, "GET", api(n)+"/overrides", "admin-secret", "")
			if !strings.Contains(body, "storm") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s still has the override: %s", n.ip, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestClusterOps: `hotline cluster status` on a follower shows the leader, the quorum
// and the three members; `hotline cluster remove` through a follower removes a node; a
// node replaced from scratch (new id, empty directory) joins through any member and
// receives the state (an advocate's pause) it never saw written.
func TestClusterOps(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("three nodes and elections take seconds")
	}
	tokenFile := writeFile(t, t.TempDir(), "token", "admin-secret\n")
	cfg := queueTestConfig(t, "admin:\n  token_file: "+tokenFile+"\n", "ana:es:pw-ana")
	nodes := startCluster(t, cfg, "127.0.0.11", "127.0.0.12", "127.0.0.13")
	a, b, c := nodes[0], nodes[1], nodes[2]
	// The command as an operator runs it, a process with the token in its environment (not
	// this one's: the in-process servers of the parallel tests read it too).
	bin := buildBinary(t)
	cli := func(args ...string) string {
		t.Helper()
		var out, errs bytes.Buffer
		cmd := exec.Command(bin, append([]string{"cluster"}, args...)...)
		cmd.Env = append(os.Environ(), admin.TokenEnv+"=admin-secret")
		cmd.Stdout, cmd.Stderr = &out, &errs
		if err := cmd.Run(); err != nil {
			t.Fatalf("hotline cluster %v: %v\n%s", args, err, errs.String())
		}
		return out.String()
	}
	out := cli("status", "-server", "http://"+b.addrs.HTTP)
	for _, want := range []string{"node     n2 (Follower)", "leader   n1", "quorum   yes", "n1 " + a.addrs.Cluster + " (Voter)", "n3 " + c.addrs.Cluster + " (Voter)"} {
		if !strings.Contains(out, want) {
			t.Errorf("cluster status lacks %q:\n%s", want, out)
		}
	}
	if code, body := httpDo(t, "PUT", "http://"+a.addrs.HTTP+"/admin/v1/advocates/ana/state", "admin-secret", `{"state":"paused","reason":"training"}`); code != 200 {
		t.Fatalf("pause: %d %s", code, body)
	}
	// n3 is removed (through a follower), then stopped for good.
	cli("remove", "-id", "n3", "-server", "http://"+b.addrs.HTTP)
	a.waitMetric(t, "hotline_cluster_members", 2)
	c.stop(t)
	// Its replacement, from scratch, joins through B.
	c4 := strings.ReplaceAll(cfg, "127.0.0.1", "127.0.0.14") + "\nstate:\n  dir: " + filepath.Join(t.TempDir(), "state") +
		"\n  cluster:\n    node_id: n4\n    bind: 127.0.0.14:0\n    secret_file: " + clusterSecretPath(t, a) +
		"\n    join: [\"" + b.addrs.Cluster + "\"]\n"
	d := startServerLogging(t, c4, "debug")
	for _, n := range []*testServer{a.testServer, b.testServer, d} {
		n.waitMetricFor(t, "hotline_cluster_members", 3, 20*time.Second)
	}
	deadline := time.Now().Add(10 * time.Second)
	for advocatesByID(t, "http://"+d.addrs.HTTP+"/admin/v1")["ana"].PauseReason != "training" {
		if time.Now().After(deadline) {
			t.Fatalf("the new node has not ana's pause: %+v", advocatesByID(t, "http://"+d.addrs.HTTP+"/admin/v1")["ana"])
		}
		time.Sleep(50 * time.Millisecond)
	}
	out = cli("status", "-server", "http://"+d.addrs.HTTP)
	if !strings.Contains(out, "n4 127.0.0.14:") || strings.Contains(out, "n3 ") {
		t.Errorf("status after the replacement:\n%s", out)
	}
}

// clusterSecretPath returns the secret file a node of startCluster was given.
func clusterSecretPath(t *testing.T, n *clusterNode) string {
	t.Helper()
	for _, line := range strings.Split(n.cfg, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "secret_file: "); ok {
			return v
		}
	}
	t.Fatal("no secret_file in the node's configuration")
	return ""
}

// TestClusterGlobalOrder: callers waiting on different nodes are served in order of
// arrival across the cluster: the advocate, made available through A, is rung for the
// caller who came first, on B in the first round and on C in the second, whichever node
// learns first that she is free.
func TestClusterGlobalOrder(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("three nodes and elections take seconds")
	}
	tokenFile := writeFile(t, t.TempDir(), "token", "admin-secret\n")
	nodes := startCluster(t, queueTestConfig(t, "admin:\n  token_file: "+tokenFile+"\n", "ana:es:pw-ana"),
		"127.0.0.15", "127.0.0.16", "127.0.0.17")
	a, b, c := nodes[0], nodes[1], nodes[2]
	ana := newPhone(t, a.addrs.SIPUDP, "ana", "pw-ana", 8, 1000)
	ana.viaReplies = true
	ana.register(300)
	api := "http://" + a.addrs.HTTP + "/admin/v1/advocates/ana/state"
	const paused = `hotline_advocates{language="es",queue="es",state="paused"}`
	for round, order := range [][2]*clusterNode{{b, c}, {c, b}} {
		if code, body := httpDo(t, "PUT", api, "admin-secret", `{"state":"paused","reason":"meal"}`); code != 200 {
			t.Fatalf("pause: %d %s", code, body)
		}
		for _, n := range nodes {
			n.waitMetric(t, paused, 1)
		}
		first := callIn(t, order[0].testServer, "21", 440)
		order[0].waitMetric(t, `hotline_queue_waiting{queue="es"}`, 1)
		second := callIn(t, order[1].testServer, "21", 550)
		order[1].waitMetric(t, `hotline_queue_waiting{queue="es"}`, 1)
		time.Sleep(time.Second) // both in the log as waiting (written within 0.2 s)
		if code, body := httpDo(t, "PUT", api, "admin-secret", `{"state":"available"}`); code != 200 {
			t.Fatalf("available: %d %s", code, body)
		}
		inv := ana.expectInvite(10 * time.Second)
		if inv.Via().Host != order[0].ip {
			t.Fatalf("round %d: ana rung by %s for the later caller; the first waits on %s", round+1, inv.Via().Host, order[0].ip)
		}
		ana.answer(inv)
		waitTone(t, "the first caller hears ana", first.stream, 0, 1000, 5*time.Second)
		first.hangup()
		ana.expectBye(5 * time.Second)
		inv = ana.expectInvite(20 * time.Second)
		if inv.Via().Host != order[1].ip {
			t.Fatalf("round %d: second ring by %s, want %s", round+1, inv.Via().Host, order[1].ip)
		}
		ana.answer(inv)
		waitTone(t, "the second caller hears ana", second.stream, 0, 1000, 5*time.Second)
		second.hangup()
		ana.expectBye(5 * time.Second)
	}
}

// expectNoOtherInvite checks that the phone is sent no INVITE but retransmissions of inv
// (a loaded node may resend it before the 180 reaches it) for d.
func expectNoOtherInvite(t *testing.T, p *phone, inv *sipmsg.Request, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-p.msgs:
			req, ok := m.(*sipmsg.Request)
			if !ok || req.Method != sipmsg.INVITE {
				continue
			}
			if req.CallID().Value() != inv.CallID().Value() {
				t.Fatalf("phone %s rung for another call (by %s) while ringing for the first", p.id, req.Via().Host)
			}
		case <-deadline:
			return
		}
	}
}
