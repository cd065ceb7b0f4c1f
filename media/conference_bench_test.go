package media

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hotline-project/hotline/media/g711"
)

// BenchmarkConferenceFrame measures one participant-frame of a conference:
// one packet from the participant's phone received into its jitter buffer
// (handlePacket: parse, learn, decode) and one mixed frame sent to it
// (sendFrame: the mix, its own voice taken out, encoded, sent on loopback),
// the same work as BenchmarkRelay's one packet received and re-sent. One
// op is one 20 ms frame of the whole conference; ns/participant-frame is
// the figure to compare with Relay's ns/op.
func BenchmarkConferenceFrame(b *testing.B) {
	for _, n := range []int{3, 5} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			s := NewScheduler(SchedulerOptions{Workers: 1}) // not running: the loop drives it
			min, max := testRange(b, n)
			ports := NewPorts(loopback, min, max)
			snk := newSink(b)
			conf := NewConference(s, nil)
			defer conf.Close()
			legs := make([]*Leg, n)
			pkts := make([][]byte, n)
			for i := range legs {
				pt := PayloadPCMU
				if i == 1 {
					pt = PayloadPCMA // one leg transcodes
				}
				l, err := NewLeg(s, ports, LegConfig{PayloadType: pt, Remote: addrOf(snk.conn)})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				if err := conf.Join(l, JoinOptions{}); err != nil {
					b.Fatal(err)
				}
				legs[i] = l
				pkts[i] = rtpBytes(b, pt, 0, 0, uint32(i+1), false, toneFrames(pt, float64(400+300*i), 1))
			}
			src := addrOf(snk.conn)
			sts := make([]recvState, n)
			w := legs[0].worker
			var frame uint64
			b.ReportAllocs()
			for b.Loop() {
				frame++
				for i, l := range legs {
					p := pkts[i]
					p[2], p[3] = byte(frame>>8), byte(frame)
					l.handlePacket(&sts[i], p, src)
				}
				for _, l := range legs {
					l.sendFrame(frame, w)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/participant-frame")
			if st := conf.Stats(); st.Jitter.Played == 0 {
				b.Fatalf("nothing mixed: %+v", st)
			}
		})
	}
}

// BenchmarkMix measures the mixing alone, without sockets: one op is one
// frame of an N-party conference mixed and encoded for every participant.
func BenchmarkMix(b *testing.B) {
	for _, n := range []int{3, 5, 10} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			c := &Conference{}
			frame := toneFrames(PayloadPCMU, 700, 1)
			for range n {
				m := &member{conf: c}
				c.members = append(c.members, m)
			}
			var dst [FrameSize]byte
			var f uint64
			b.ReportAllocs()
			for b.Loop() {
				f++
				for _, m := range c.members {
					m.jb.push(uint16(f), PayloadPCMU, frame)
				}
				for _, m := range c.members {
					m.render(f, PayloadPCMU, nil, dst[:])
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/participant-frame")
		})
	}
}

// BenchmarkAddedLatency measures, on a running scheduler with real sockets,
// how long after phone A sends the first packet of a tone phone B receives
// audio that carries it: through a Bridge (the relay, no buffering) and
// through a three-party Conference (jitter buffer and mixing on the
// scheduler's frame). One op is one tone onset.
func BenchmarkAddedLatency(b *testing.B) {
	for _, mode := range []string{"bridge", "conference"} {
		b.Run(mode, func(b *testing.B) {
			s := startScheduler(b, SchedulerOptions{Workers: 2})
			min, max := testRange(b, 4)
			ports := NewPorts(loopback, min, max)
			pa, pb, pc := newPeer(b), newPeer(b), newPeer(b)
			var legs []*Leg
			for _, p := range []*net.UDPConn{pa, pb, pc} {
				l, err := NewLeg(s, ports, LegConfig{Remote: addrOf(p)})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				legs = append(legs, l)
			}
			if mode == "bridge" {
				br, err := NewBridge(legs[0], legs[1])
				if err != nil {
					b.Fatal(err)
				}
				defer br.Unbridge()
			} else {
				conf := NewConference(s, nil)
				defer conf.Close()
				for _, l := range legs {
					if err := conf.Join(l, JoinOptions{}); err != nil {
						b.Fatal(err)
					}
				}
			}
			legA := netip.AddrPortFrom(loopback, uint16(legs[0].LocalPort()))
			var loud atomic.Bool
			var onset atomic.Int64 // ns since start of the first loud packet sent
			start := time.Now()
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer wg.Wait()
			defer cancel()
			wg.Go(func() { // phone A: silence or a tone, every 20 ms
				tone, quiet := toneFrames(PayloadPCMU, 1000, 1), silenceFrameUlaw[:]
				tick := time.NewTicker(frameDuration)
				defer tick.Stop()
				var seq uint16
				wasLoud := false
				for {
					payload := quiet
					l := loud.Load()
					if l {
						payload = tone
					}
					seq++
					pkt := rtpBytes(b, PayloadPCMU, seq, uint32(seq)*FrameSize, 0xa, false, payload)
					if l && !wasLoud {
						onset.Store(int64(time.Since(start)))
					}
					wasLoud = l
					_, _ = pa.WriteToUDPAddrPort(pkt, legA)
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
					}
				}
			})
			// Phone B reads; a loud packet ends a measurement.
			heardAt := make(chan int64, 1)
			wg.Go(func() {
				buf := make([]byte, 2048)
				for {
					_ = pb.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
					n, _, err := pb.ReadFromUDPAddrPort(buf)
					if ctx.Err() != nil {
						return
					}
					if err != nil || n < rtpHeaderSize+FrameSize {
						continue
					}
					if loud.Load() && rms(decode(PayloadPCMU, buf[n-FrameSize:n])) > 1000 {
						select {
						case heardAt <- int64(time.Since(start)):
						default:
						}
					}
				}
			})
			time.Sleep(200 * time.Millisecond)
			var lat []time.Duration
			for b.Loop() {
				loud.Store(true)
				var at int64
				select {
				case at = <-heardAt:
				case <-time.After(2 * time.Second):
					b.Fatal("tone never heard")
				}
				lat = append(lat, time.Duration(at-onset.Load()))
				loud.Store(false)
				time.Sleep(300 * time.Millisecond) // the tone dies out, concealment included
				select {
				case <-heardAt:
				default:
				}
			}
			slices.Sort(lat)
			var sum time.Duration
			for _, d := range lat {
				sum += d
			}
			b.ReportMetric(float64(sum.Microseconds())/float64(len(lat))/1000, "ms-mean")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "ms-max")
		})
	}
}

// BenchmarkConferences runs N three-party conferences on a running
// scheduler, every participant's phone sending a tone every 20 ms, and
// reports the process's CPU time per conference-second, leaving out the
// threads that stand for the phones (one sending, one receiving), the
// share of scheduler slots that started more than 10 ms late (the quality
// bar of the load benchmark), and the conferences one core would carry at
// that cost. One op is one 20 ms frame period.
func BenchmarkConferences(b *testing.B) {
	for _, n := range []int{100, 200, 300} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			var slots, late atomic.Uint64
			s := startScheduler(b, SchedulerOptions{OnLateness: func(d time.Duration) {
				slots.Add(1)
				if d > 10*time.Millisecond {
					late.Add(1)
				}
			}})
			lo, hi := testRange(b, 3*n+10)
			ports := NewPorts(loopback, lo, hi)
			snk := newThreadSink(b)
			var dests []netip.AddrPort
			for range n {
				conf := NewConference(s, nil)
				defer conf.Close()
				for range 3 {
					l, err := NewLeg(s, ports, LegConfig{Remote: snk.addr})
					if err != nil {
						b.Fatal(err)
					}
					defer l.Close()
					if err := conf.Join(l, JoinOptions{}); err != nil {
						b.Fatal(err)
					}
					dests = append(dests, netip.AddrPortFrom(loopback, uint16(l.LocalPort())))
				}
			}
			feeder := startFeeder(b, snk.conn, dests)
			time.Sleep(300 * time.Millisecond) // every leg learned and buffering

			ru0, sink0, feed0, sent0, t0 := rusage(b), snk.cpu(b), feeder.cpu(b), s.Stats().FramesSent, time.Now()
			slots0, late0 := slots.Load(), late.Load()
			for b.Loop() {
				time.Sleep(frameDuration)
			}
			ru1, sink1, feed1, sent1, elapsed := rusage(b), snk.cpu(b), feeder.cpu(b), s.Stats().FramesSent, time.Since(t0)

			confSeconds := float64(n) * elapsed.Seconds()
			cpu := ru1 - ru0 - (sink1 - sink0) - (feed1 - feed0)
			perConf := float64(cpu.Microseconds()) / confSeconds
			b.ReportMetric(perConf, "cpu-µs/conf-s")
			b.ReportMetric(float64(sent1-sent0)/(3*confSeconds*float64(time.Second/frameDuration)), "sent/due")
			b.ReportMetric(100*float64(late.Load()-late0)/float64(max(1, slots.Load()-slots0)), "%late>10ms")
			b.ReportMetric(1e6/perConf, "conf/core")
		})
	}
}

// feeder sends every destination a PCMU tone frame every 20 ms from conn,
// on a goroutine locked to its own OS thread whose CPU time is left out.
type feeder struct{ tid int }

func startFeeder(b *testing.B, conn *net.UDPConn, dests []netip.AddrPort) *feeder {
	b.Helper()
	tids := make(chan int, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread exits with us
		tids <- syscall.Gettid()
		pcm := toneSamples(700, 0, FrameSize)
		payload := g711.AppendUlaw(nil, pcm)
		pkts := make([][]byte, len(dests))
		for i := range pkts {
			pkts[i] = rtpBytes(b, PayloadPCMU, 0, 0, uint32(i+1), false, payload)
		}
		tick := time.NewTicker(frameDuration)
		defer tick.Stop()
		var seq uint16
		for {
			seq++
			ts := uint32(seq) * FrameSize
			for i, p := range pkts {
				p[2], p[3] = byte(seq>>8), byte(seq)
				p[4], p[5], p[6], p[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
				_, _ = conn.WriteToUDPAddrPort(p, dests[i])
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	return &feeder{tid: <-tids}
}

func (f *feeder) cpu(b *testing.B) time.Duration {
	return (&threadSink{tid: f.tid}).cpu(b)
}
