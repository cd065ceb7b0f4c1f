package sipagent

import (
	"net"
	"testing"
	"time"
)

// A packet that waited in the socket's buffer is stamped with when it arrived, not with
// when the recorder read it.
func TestRecorderStampsArrival(t *testing.T) {
	t.Parallel()
	recv, send := udpPair(t)
	if !kernelTimestamps(recv) {
		t.Fatal("SO_TIMESTAMPNS refused")
	}
	// The kernel turns stamping on for the system a moment after the first socket asks
	// (a deferred static key); packets before that are stamped when read.
	time.Sleep(100 * time.Millisecond)
	s := NewStream(send, recv.LocalAddr().(*net.UDPAddr), 0)
	sent := time.Now()
	s.Silence(1)
	time.Sleep(300 * time.Millisecond)
	reading := time.Now()
	rec := Record(recv)
	waitLen(t, rec, 1)
	at := rec.Snapshot()[0].At
	if at.Before(sent.Add(-time.Second)) || !at.Before(reading.Add(-200*time.Millisecond)) {
		t.Errorf("packet sent at %v, read from %v, stamped %v: want the arrival", sent, reading, at)
	}
}
