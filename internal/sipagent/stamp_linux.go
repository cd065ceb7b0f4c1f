package sipagent

import (
	"net"
	"syscall"
	"time"
	"unsafe"
)

// kernelTimestamps asks the kernel to stamp each datagram conn receives (SO_TIMESTAMPNS)
// and reports whether it will.
func kernelTimestamps(conn *net.UDPConn) bool {
	raw, err := conn.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return false
	}
	return serr == nil
}

// kernelTime returns the receive time in a datagram's control messages, if there is one.
func kernelTime(oob []byte) (time.Time, bool) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false
	}
	for _, m := range msgs {
		if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SCM_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(syscall.Timespec{})) {
			var ts syscall.Timespec
			copy((*[unsafe.Sizeof(ts)]byte)(unsafe.Pointer(&ts))[:], m.Data)
			return time.Unix(ts.Unix()), true
		}
	}
	return time.Time{}, false
}
