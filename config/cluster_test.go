package config

import "testing"

func TestClusterErrors(t *testing.T) {
	checkLoadErrors(t, []loadErrorCase{
		{"cluster-bad.yaml", `testdata/cluster-bad.yaml:3: state.dir: a cluster node keeps its log on disk: not none
testdata/cluster-bad.yaml:5: state.cluster.node_id: "n 1": letters, digits, '.', '_' and '-', at most 63
testdata/cluster-bad.yaml:6: state.cluster.bind: "0.0.0.0:7000": want the IP:port the other nodes reach this one on
testdata/cluster-bad.yaml:7: state.cluster.join[1]: "hotline-2": want a member's IP:port
testdata/cluster-bad.yaml:8: state.cluster.quorum_grace: must not be negative`},
	})
}

func TestClusterGood(t *testing.T) {
	c, err := Parse("t.yaml", []byte(`
lines: [{number: "1"}]
state:
  cluster: {node_id: n2, bind: "127.0.0.3:7000", join: ["127.0.0.2:7000"], secret_file: /etc/hotline/cluster-secret}
`))
	if err != nil {
		t.Fatal(err)
	}
	if cl := c.State.Cluster; cl.NodeID != "n2" || cl.Bind != "127.0.0.3:7000" || len(cl.Join) != 1 || cl.QuorumGrace.Seconds() != 3 {
		t.Errorf("cluster %+v", cl)
	}
}
