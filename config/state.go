package config

import (
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// State configures where a node keeps the state that must survive a restart:
// registrations, advocates' pauses and logouts, emergency overrides (package state).
type State struct {
	// Dir is the directory of the state's log and snapshots. "" (the default) puts it
	// next to the records: records.path + ".state" with driver sqlite, "hotline-state"
	// (relative to the working directory) otherwise. "none" keeps the state in memory
	// only: a restart forgets it.
	Dir string `yaml:"dir"`
	// Cluster makes this node one of several sharing the state (README "Cluster").
	Cluster Cluster `yaml:"cluster"`
}

// Cluster configures a node of a cluster. With NodeID "" the node is alone (a one-voter
// cluster of itself, with no network port).
type Cluster struct {
	// NodeID names the node in the cluster; unique, and kept for the node's life (a node
	// replaced from scratch takes a new one).
	NodeID string `yaml:"node_id"`
	// Bind is the address (IP:port) of the node's cluster port (raft and the requests to
	// the leader); the other nodes reach it there, so the IP must be a real one.
	Bind string `yaml:"bind"`
	// Join lists cluster ports of members (any of them) to ask to add this node. Empty,
	// a node with no log of its own starts a new cluster of one.
	Join []string `yaml:"join"`
	// SecretFile holds the cluster's shared secret; $HOTLINE_CLUSTER_SECRET, when set,
	// takes its place.
	SecretFile string `yaml:"secret_file"`
	// QuorumGrace is how long the node may have no leader before it says it has lost
	// the quorum and routes callers as to unstaffed queues; default 3s.
	QuorumGrace time.Duration `yaml:"quorum_grace"`
}

// nodeID is what a node id may be made of: it appears in logs and metrics labels.
var nodeID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// hostPort reports whether v is IP:port with a port number.
func hostPort(v string, unspecifiedOK bool) bool {
	h, port, err := net.SplitHostPort(v)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(h)
	if err != nil || (!unspecifiedOK && ip.IsUnspecified()) {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535
}

// StateDir returns the state directory, or "" when the state is kept in memory only.
func (c *Config) StateDir() string {
	switch {
	case c.State.Dir == "none":
		return ""
	case c.State.Dir != "":
		return c.State.Dir
	case c.Records.Driver == "sqlite" && c.Records.Path != "":
		return c.Records.Path + ".state"
	}
	return "hotline-state"
}

// validateState records problems with the state section.
func (p *parser) validateState(s *State) {
	if s.Dir != "" && s.Dir != "none" && filepath.Clean(s.Dir) == "/" {
		p.errorf("state.dir", "must not be the root directory")
	}
	c := &s.Cluster
	if c.NodeID == "" {
		if c.Bind != "" || len(c.Join) > 0 {
			p.errorf("state.cluster.node_id", "a cluster node needs a node_id")
		}
		return
	}
	if !nodeID.MatchString(c.NodeID) {
		p.errorf("state.cluster.node_id", "%q: letters, digits, '.', '_' and '-', at most 63", c.NodeID)
	}
	if s.Dir == "none" {
		p.errorf("state.dir", "a cluster node keeps its log on disk: not none")
	}
	if !hostPort(c.Bind, false) {
		p.errorf("state.cluster.bind", "%q: want the IP:port the other nodes reach this one on", c.Bind)
	}
	for i, j := range c.Join {
		if !hostPort(j, false) {
			p.errorf("state.cluster.join["+strconv.Itoa(i)+"]", "%q: want a member's IP:port", j)
		}
	}
	if c.QuorumGrace < 0 {
		p.errorf("state.cluster.quorum_grace", "must not be negative")
	}
}
