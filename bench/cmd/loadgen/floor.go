package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// rusageThread is RUSAGE_THREAD: the calling thread's usage.
const rusageThread = 1

func cpuOf(who int) (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// floorResult is the CPU cost of moving one 172-byte RTP-sized packet over loopback in Go.
type floorResult struct {
	sent, received uint64
	send, recv     time.Duration // per packet
}

// measureFloor sends packets of 172 bytes from one socket to dests receiving sockets at
// pps packets per second for d, in 1 ms bursts as a pacing scheduler would, and returns
// the CPU per packet sent (the sending thread's, locked) and per packet received (the rest
// of the process: receiving goroutines and the runtime's network poller).
func measureFloor(pps, dests int, d time.Duration) (floorResult, error) {
	var r floorResult
	conns := make([]*net.UDPConn, dests)
	addrs := make([]*net.UDPAddr, dests)
	var got atomic.Uint64
	var wg sync.WaitGroup
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		wg.Wait()
	}()
	for i := range conns {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return r, fmt.Errorf("floor: %w", err)
		}
		conns[i], addrs[i] = c, c.LocalAddr().(*net.UDPAddr)
		wg.Go(func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
					return
				}
				got.Add(1)
			}
		})
	}
	out, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return r, fmt.Errorf("floor: %w", err)
	}
	defer out.Close()
	to := make([]netip.AddrPort, dests)
	for i, a := range addrs {
		to[i] = a.AddrPort()
	}
	type res struct {
		cpu  time.Duration
		sent uint64
		err  error
	}
	done := make(chan res, 1)
	procBefore, err := cpuOf(syscall.RUSAGE_SELF)
	if err != nil {
		return r, err
	}
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		before, err := cpuOf(rusageThread)
		if err != nil {
			done <- res{err: err}
			return
		}
		pkt := make([]byte, rtpHdr+payloadLen)
		perMs := max(1, pps/1000)
		start := time.Now()
		var sent uint64
		for ms := 0; time.Duration(ms)*time.Millisecond < d; ms++ {
			if w := time.Until(start.Add(time.Duration(ms) * time.Millisecond)); w > 0 {
				time.Sleep(w)
			}
			for range perMs {
				if _, err := out.WriteToUDPAddrPort(pkt, to[sent%uint64(dests)]); err == nil {
					sent++
				}
			}
		}
		after, err := cpuOf(rusageThread)
		done <- res{cpu: after - before, sent: sent, err: err}
	}()
	s := <-done
	if s.err != nil {
		return r, s.err
	}
	time.Sleep(200 * time.Millisecond) // let the receivers drain
	procAfter, err := cpuOf(syscall.RUSAGE_SELF)
	if err != nil {
		return r, err
	}
	r.sent, r.received = s.sent, got.Load()
	if r.sent == 0 || r.received == 0 {
		return r, fmt.Errorf("floor: sent %d, received %d", r.sent, r.received)
	}
	r.send = s.cpu / time.Duration(r.sent)
	r.recv = (procAfter - procBefore - s.cpu) / time.Duration(r.received)
	return r, nil
}

func floorCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pps := fs.Int("pps", 100000, "packets per second")
	dests := fs.Int("dests", 1000, "receiving sockets (peers)")
	d := fs.Duration("d", 5*time.Second, "duration")
	if err := fs.Parse(args); err != nil {
		return err
	}
	load := loadAvg()
	r, err := measureFloor(*pps, *dests, *d)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n### Floor: one 172-byte UDP packet over loopback in Go (%d packets/s to %d sockets for %v)\n\n", *pps, *dests, *d)
	fmt.Fprintln(stdout, "| sent | received | CPU per packet sent | CPU per packet received | load1 |")
	fmt.Fprintln(stdout, "| --- | --- | --- | --- | --- |")
	fmt.Fprintf(stdout, "| %d | %d | %.2f µs | %.2f µs | %.2f |\n", r.sent, r.received, float64(r.send.Nanoseconds())/1e3, float64(r.recv.Nanoseconds())/1e3, load)
	fmt.Fprintf(stdout, "\nFLOOR_SEND_US=%.2f FLOOR_RECV_US=%.2f\n", float64(r.send.Nanoseconds())/1e3, float64(r.recv.Nanoseconds())/1e3)
	return nil
}
