package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procNode is a cluster node run as its own process (the built binary), so that it can
// be frozen with SIGSTOP.
type procNode struct {
	*sippServer
	ip, cluster string
}

func (n *procNode) ts() *testServer { return &testServer{addrs: Addrs{SIPUDP: n.sip, HTTP: n.http}} }

func (n *procNode) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := n.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%v to %s: %v", sig, n.ip, err)
	}
}

// metric scrapes one series of the node (-1 when absent).
func (n *procNode) metric(t *testing.T, series string) float64 {
	return metricValue(scrapeURL(t, "http://"+n.http+"/metrics"), series)
}

func (n *procNode) waitMetric(t *testing.T, series string, want float64, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for n.metric(t, series) != want {
		if time.Now().After(deadline) {
			t.Fatalf("node %s: %s = %v, want %v", n.ip, series, n.metric(t, series), want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startProcCluster starts one node process per ip, the first starting the cluster.
func startProcCluster(t *testing.T, bin, cfg string, ips ...string) []*procNode {
	t.Helper()
	dir := t.TempDir()
	secret := filepath.Join(dir, "cluster-secret")
	if err := os.WriteFile(secret, []byte("a-test-cluster-secret-of-some-length\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lo, hi := rtpRange(t, 400)
	var nodes []*procNode
	for i, ip := range ips {
		ndir := filepath.Join(dir, "n"+fmt.Sprint(i+1))
		if err := os.MkdirAll(ndir, 0o700); err != nil {
			t.Fatal(err)
		}
		c := strings.NewReplacer("127.0.0.1", ip, "PORT_MIN", fmt.Sprint(lo), "PORT_MAX", fmt.Sprint(hi),
			"RECORDS_PATH", filepath.Join(ndir, "records.db")).Replace(cfg)
		c += fmt.Sprintf("\nstate:\n  dir: %s\n  cluster:\n    node_id: n%d\n    bind: %s:0\n    secret_file: %s\n    quorum_grace: 1s\n",
			filepath.Join(ndir, "state"), i+1, ip, secret)
		if i > 0 {
			c += "    join: [\"" + nodes[0].cluster + "\"]\n"
		}
		path := filepath.Join(ndir, "hotline.yaml")
		if err := os.WriteFile(path, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
		srv := startCommand(t, exec.Command(bin, "serve", "-log-format", "json", "-log-level", "debug", "-config", path), ndir)
		n := &procNode{sippServer: srv, ip: ip}
		srv.logged(func(rec map[string]any) bool {
			if rec["msg"] == "hotline listening" {
				n.cluster, _ = rec["cluster"].(string)
			}
			return false
		})
		if n.cluster == "" {
			t.Fatalf("node %s logged no cluster address", ip)
		}
		t.Cleanup(func() { _ = n.cmd.Process.Signal(syscall.SIGCONT) }) // before the kill
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		n.waitMetric(t, "hotline_cluster_members", float64(len(ips)), 20*time.Second)
	}
	return nodes
}

// TestClusterFreeze is issue 17's partition case, with real processes frozen by SIGSTOP:
// with one node of three frozen the other two still ring the advocate (once per caller);
// with two frozen the last has no quorum: it says so (log, hotline_cluster_quorum,
// /readyz), rings nobody, and routes a new caller as to an unstaffed queue, to the backup
// center, who answers; after SIGCONT every node has its quorum back and the frozen node's
// callers reach the advocate again.
func TestClusterFreeze(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("processes, elections and freezes take seconds")
	}
	bin := buildBinary(t)
	// The backup center's phone; not on 127.0.0.1, which the nodes' configurations replace.
	partner := newPhoneAt(t, net.IPv4(127, 0, 1, 1), "127.0.0.1:9", "partner", "", 0, 1500)
	partner.viaReplies = true
	routes := fmt.Sprintf(`targets:
  - {name: partner, uri: "%s"}
routes:
  - {name: unstaffed, when: {nobody_in: en}, to: partner}
  - {name: default, to: en, priority: 10}
`, partner.contactURI)
	cfg := queueTestConfig(t, routes, "ana:en:pw-ana")
	nodes := startProcCluster(t, bin, cfg, "127.0.0.8", "127.0.0.9", "127.0.0.10")
	a, b, c := nodes[0], nodes[1], nodes[2]
	ana := newPhone(t, a.sip, "ana", "pw-ana", 8, 1000)
	ana.viaReplies = true
	ana.register(300)
	const avail = `hotline_advocates{language="en",queue="en",state="available"}`
	for _, n := range nodes {
		n.waitMetric(t, avail, 1, 10*time.Second)
	}

	// One of three frozen: the two others keep their quorum and ring ana for a caller.
	c.signal(t, syscall.SIGSTOP)
	c1 := callIn(t, b.ts(), "11", 440)
	inv := ana.expectInvite(20 * time.Second)
	if h := inv.Via().Host; h != b.ip {
		t.Fatalf("ana rung by %s, want B %s", h, b.ip)
	}
	ana.answer(inv)
	waitTone(t, "the caller on B hears ana, C frozen", c1.stream, 0, 1000, 5*time.Second)
	c1.hangup()
	ana.expectBye(5 * time.Second)
	for _, n := range []*procNode{a, b} {
		if q := n.metric(t, "hotline_cluster_quorum"); q != 1 {
			t.Errorf("node %s: quorum %v with one node of three frozen", n.ip, q)
		}
		n.waitMetric(t, avail, 1, 10*time.Second)
	}

	// Two of three frozen: A is alone. It says so, and sends a new caller to the backup.
	b.signal(t, syscall.SIGSTOP)
	a.waitMetric(t, "hotline_cluster_quorum", 0, 20*time.Second)
	if body := scrapeURL(t, "http://"+a.http+"/readyz"); !strings.Contains(body, "no quorum") {
		t.Errorf("A's /readyz without quorum: %q", body)
	}
	if !a.logged(func(rec map[string]any) bool {
		m, _ := rec["msg"].(string)
		return strings.HasPrefix(m, "cluster: quorum lost")
	}) {
		t.Error("A did not log the lost quorum")
	}
	c2 := callIn(t, a.ts(), "11", 440)
	pinv := partner.expectInvite(20 * time.Second)
	if h := pinv.Via().Host; h != a.ip {
		t.Fatalf("the backup rung by %s, want A", h)
	}
	partner.answer(pinv)
	waitTone(t, "the caller on A, without quorum, hears the backup center", c2.stream, 0, 1500, 5*time.Second)
	ana.expectNoInvite(time.Second) // nobody rung without a claim
	c2.hangup()
	partner.expectBye(5 * time.Second)

	// Thawed: every node has its quorum back, and C's caller reaches ana.
	b.signal(t, syscall.SIGCONT)
	c.signal(t, syscall.SIGCONT)
	for _, n := range nodes {
		n.waitMetric(t, "hotline_cluster_quorum", 1, 20*time.Second)
	}
	if body := scrapeURL(t, "http://"+a.http+"/readyz"); strings.Contains(body, "quorum") {
		t.Errorf("A's /readyz with quorum back: %q", body)
	}
	c.waitMetric(t, avail, 1, 10*time.Second)
	c3 := callIn(t, c.ts(), "11", 440)
	inv = ana.expectInvite(20 * time.Second)
	if h := inv.Via().Host; h != c.ip {
		t.Fatalf("ana rung by %s, want C %s", h, c.ip)
	}
	ana.answer(inv)
	waitTone(t, "the caller on C, thawed, hears ana", c3.stream, 0, 1000, 5*time.Second)
	c3.hangup()
	ana.expectBye(5 * time.Second)
	// Nobody was rung for two callers: each node's granted claims add up to the rings.
	var granted float64
	for _, n := range nodes {
		granted += n.metric(t, `hotline_cluster_claims_total{result="granted"}`)
	}
	if granted != 2 {
		t.Errorf("%v claims granted over the cluster, want 2 (one per ring of ana)", granted)
	}
}
