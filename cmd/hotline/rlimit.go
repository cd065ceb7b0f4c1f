package main

import (
	"log/slog"
	"syscall"

	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/sip/gate"
)

// openFileLimit returns the process's open-file limit (RLIMIT_NOFILE), or 0 if it cannot be
// read. Go (1.19 and later) has already raised the soft limit to the hard one at start-up.
func openFileLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0
	}
	return r.Cur
}

// maxConnections is security.max_connections, or, when it is 0, what the open-file limit
// leaves after the RTP ports and a reserve (sip/gate.MaxConnectionsFor). It warns when the limit
// cannot hold the configured port range and connections as well.
func maxConnections(cfg *config.Config, fdLimit uint64, log *slog.Logger) int {
	ports := cfg.Media.MediaPorts()
	n := cfg.Security.MaxConnections
	if n == 0 {
		if fdLimit == 0 {
			return gate.DefaultLimits.MaxConnections
		}
		n = gate.MaxConnectionsFor(fdLimit, ports)
	}
	if fdLimit > 0 && uint64(ports)+uint64(n)+128 > fdLimit {
		log.Warn("the open-file limit is too low for the media port range and the sip connections; raise it (LimitNOFILE= in systemd, ulimit -n)",
			"open_file_limit", fdLimit, "media_ports", ports, "max_connections", n)
	}
	return n
}
