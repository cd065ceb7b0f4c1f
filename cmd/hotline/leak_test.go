package main

import (
	"runtime"
	"testing"
	"time"
)

// TestNoGoroutineLeak: after calls end and the server stops, every goroutine it started is
// gone. Not parallel, so that other tests' goroutines do not count.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	ts := startServer(t, testConfig)
	for i := 0; i < 3; i++ {
		u := newUAC(t, ts.addrs.SIPUDP)
		u.dial("0 101")
		u.hangup()
		u.conn.Close()
		u.rtp.Close()
	}
	u := newUAC(t, ts.addrs.SIPUDP)
	u.dial("0") // left up: the server hangs it up when it stops
	ts.waitMetric(t, `hotline_calls_active{line="main"}`, 1)
	ts.stop(t)
	u.conn.Close()
	u.rtp.Close()

	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}
