//go:build !linux

package sipagent

import (
	"net"
	"time"
)

// kernelTimestamps reports that receive times come from this process's clock.
func kernelTimestamps(*net.UDPConn) bool { return false }

func kernelTime([]byte) (time.Time, bool) { return time.Time{}, false }
