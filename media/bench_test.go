package media

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSendFrame measures one frame through the scheduler's sending
// path (runSlot, sendFrame, MarshalTo, WriteToUDPAddrPort) on loopback.
func BenchmarkSendFrame(b *testing.B) {
	for _, playing := range []bool{false, true} {
		name := "silence"
		if playing {
			name = "prompt"
		}
		b.Run(name, func(b *testing.B) {
			s := NewScheduler(SchedulerOptions{Workers: 1}) // not running: the loop drives it
			min, max := testRange(b, 1)
			snk := newSink(b)
			l, err := NewLeg(s, NewPorts(loopback, min, max), LegConfig{Remote: addrOf(snk.conn)})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			const promptFrames = 5000
			audio := prompt(promptFrames)
			w, slot := l.worker, l.slot
			var frame uint64
			b.ReportAllocs()
			for b.Loop() {
				if playing && frame%promptFrames == 0 {
					// One playback per 5000 frames, as Play would set it.
					l.mu.Lock()
					l.cur = &Playback{audio: audio, done: make(chan struct{})}
					l.mu.Unlock()
				}
				w.runSlot(slot, frame)
				frame++
			}
			if st := s.Stats(); st.SendErrors != 0 || st.FramesSent == 0 {
				b.Fatalf("stats %+v", st)
			}
		})
	}
}

// BenchmarkLegs runs N legs playing prompts through a running scheduler to
// a sink socket, and reports the process's CPU time per leg-second of
// audio, excluding the sink's own thread (which stands for the phones).
// One iteration is one 20 ms frame period.
func BenchmarkLegs(b *testing.B) {
	for _, n := range []int{500, 2000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := startScheduler(b, SchedulerOptions{})
			min, max := testRange(b, n+50)
			ports := NewPorts(loopback, min, max)
			snk := newThreadSink(b)

			legs := make([]*Leg, n)
			for i := range legs {
				l, err := NewLeg(s, ports, LegConfig{Remote: snk.addr})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				legs[i] = l
			}
			audio := prompt(250) // 5 s, shared read-only by every leg
			var wg sync.WaitGroup
			defer wg.Wait()
			defer cancel()
			for _, l := range legs {
				wg.Go(func() {
					for l.Play(ctx, audio) == nil {
					}
				})
			}
			time.Sleep(200 * time.Millisecond) // every leg placed and playing

			ru0, sink0, sent0, t0 := rusage(b), snk.cpu(b), s.Stats().FramesSent, time.Now()
			for b.Loop() {
				time.Sleep(frameDuration)
			}
			ru1, sink1, sent1, elapsed := rusage(b), snk.cpu(b), s.Stats().FramesSent, time.Since(t0)

			legSeconds := float64(n) * elapsed.Seconds()
			cpu := ru1 - ru0 - (sink1 - sink0)
			b.ReportMetric(float64(cpu.Microseconds())/legSeconds, "cpu-µs/leg-s")
			b.ReportMetric(float64((sink1-sink0).Microseconds())/legSeconds, "sink-µs/leg-s")
			b.ReportMetric(float64(sent1-sent0)/(legSeconds*float64(time.Second/frameDuration)), "sent/due")
			if errs := s.Stats().SendErrors; errs != 0 {
				b.Errorf("%d send errors", errs)
			}
		})
	}
}

// rusage returns the process's user and system CPU time.
func rusage(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// threadSink drains a socket from a goroutine locked to its own OS thread,
// so that its CPU time can be read from /proc and left out.
type threadSink struct {
	addr netip.AddrPort
	conn *net.UDPConn // also writable, from the address the legs send to
	tid  int
}

func newThreadSink(b *testing.B) *threadSink {
	conn := newPeer(b)
	_ = conn.SetReadBuffer(4 << 20)
	tids := make(chan int, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread exits with us
		tids <- syscall.Gettid()
		buf := make([]byte, 2048)
		for {
			if _, _, err := conn.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
		}
	}()
	b.Cleanup(func() {
		conn.Close()
		<-done
	})
	return &threadSink{addr: addrOf(conn), conn: conn, tid: <-tids}
}

// cpu returns the CPU time of the sink's thread, from schedstat.
func (s *threadSink) cpu(b *testing.B) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/schedstat", s.tid))
	if err != nil {
		b.Fatalf("read sink thread cpu: %v", err)
	}
	ns, err := strconv.ParseInt(strings.Fields(string(raw))[0], 10, 64)
	if err != nil {
		b.Fatalf("parse %q: %v", raw, err)
	}
	return time.Duration(ns)
}
