package main

import (
	"bufio"
	"fmt"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotline-project/hotline/internal/sipagent"
	"github.com/hotline-project/hotline/internal/testtool"
)

// vmKB reads a "VmRSS"-style field of /proc/pid/status, in KiB.
func vmKB(t *testing.T, pid int, field string) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.Atoi(strings.Fields(rest)[0])
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// gaps returns the inter-arrival times of the packets received in [from, to].
func gaps(ps []recvPacket, from, to time.Time) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(ps); i++ {
		if ps[i-1].at.Before(from) || ps[i].at.After(to) {
			continue
		}
		out = append(out, ps[i].at.Sub(ps[i-1].at))
	}
	slices.Sort(out)
	return out
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(math.Ceil(p*float64(len(sorted))))-1)]
}

// pacingLate returns how many of the scheduler's send slots were more than 20 ms late, and
// how many there were, from a scrape.
func pacingLate(text string) (late, total float64) {
	total = metricOr0(text, "hotline_rtp_pacing_error_seconds_count")
	return total - metricOr0(text, `hotline_rtp_pacing_error_seconds_bucket{le="0.02"}`), total
}

var floodTestConfig = strings.Replace(fdTestConfig, "  port_max: PORT_MAX\n", "  port_max: PORT_MAX\n  inactivity_timeout: 60s\n", 1) + `
ivr:
  first_digit_timeout: 30s
security:
  request_rate: 5
  request_burst: 5
  max_calls_per_source: 1
`

// A flood of OPTIONS, REGISTER and INVITE (to the hotline's line and to unknown numbers)
// from 40 addresses (issue 14 part 4: about 111,000 packets/s for 12 s grew the heap from
// 16 MB to 890 MB, as sipgo kept every transaction 32 s, and each refused INVITE's 503 or
// 404 was retransmitted 11 times towards its claimed source). Now: every refused request is
// answered once, statelessly, or dropped; the server's memory stays within a bound; a caller
// placed before the flood hears its audio paced as before; and a new caller gets through.
func TestSIPFloodIsAnsweredOnceAndHoldsNoMemory(t *testing.T) {
	testtool.Alone(t) // it measures the caller's RTP pacing, under a flood it makes
	bin := buildBinary(t)
	srv := startLimitedBinary(t, bin, floodTestConfig, 20, 0)
	server, err := net.ResolveUDPAddr("udp", srv.sip)
	if err != nil {
		t.Fatal(err)
	}

	// The caller, in a call before the flood starts.
	caller := newUACAt(t, net.IPv4(127, 0, 0, 3), srv.sip)
	stream := caller.receiveRTP()
	_, media := answer(t, caller.dial("0 101"))
	var seq uint16 = 1
	var rtpTS uint32 = 1000
	caller.sendSilence(media, 3, &seq, &rtpTS)
	stream.waitFor(t, "the greeting", mustPrompt(t, "en", "greeting").PCMU[:1600], 10*time.Second)

	// Pacing is measured on a machine the flooder shares with the server (and, on a busy
	// machine, with more): a round whose pacing misses the bar is run again, up to three
	// times, and every round must meet the other checks.
	for round := range 3 {
		if floodRound(t, srv, server, stream, round) {
			break
		}
		if round == 2 {
			t.Error("the caller's audio missed the pacing bar in every round of the flood (see the figures above)")
		}
	}

	// The caller is still in the call, and a new caller gets through.
	caller.hangup()
	callGetsThrough(t, net.IPv4(127, 0, 0, 4), srv.sip)
}

// floodRound floods the server from 40 new addresses and checks the answers and the memory
// (failing the test), and reports whether the caller's audio kept its pacing meanwhile.
func floodRound(t *testing.T, srv *sippServer, server *net.UDPAddr, stream *rtpStream, round int) (paced bool) {
	t.Helper()
	pid := srv.cmd.Process.Pid
	const nSources = 40
	floodFor := 4 * time.Second
	sources := make([]*sipagent.Flooder, nSources)
	for i := range sources {
		sources[i] = sipagent.NewFlooder(t, net.IPv4(127, 0, 1, byte(10+nSources*round+i)), srv.sip)
	}
	// A quiet window first: the machine's own noise, to tell it from the flood's effect.
	quiet := scrapeAt(t, srv.http, 10*time.Second)
	quietStart := time.Now()
	time.Sleep(2 * time.Second)
	rssBefore := vmKB(t, pid, "VmRSS")
	before := scrapeAt(t, srv.http, 10*time.Second)
	quietEnd := time.Now()

	kinds := []struct{ method, user string }{
		{"OPTIONS", hotlineNumber}, {"REGISTER", "maria"}, {"INVITE", "999"}, {"INVITE", hotlineNumber},
	}
	sent := map[string]int{} // method user -> sent
	var n, rssPeak int
	// 30,000 requests/s is more than the server reads on this 2-core box (about 26,000/s),
	// while leaving the flooder, in this process, some of the CPU. HOTLINE_FLOOD_PPS=max
	// floods as fast as the flooder can; HOTLINE_FLOOD_SECONDS sets the length.
	pace := 30_000
	if v := os.Getenv("HOTLINE_FLOOD_PPS"); v != "" {
		pace, _ = strconv.Atoi(v) // "max": 0, no pacing
	}
	if v, err := strconv.Atoi(os.Getenv("HOTLINE_FLOOD_SECONDS")); err == nil && v > 0 {
		floodFor = time.Duration(v) * time.Second
	}
	start := time.Now()
	nextSample := start
	for time.Since(start) < floodFor {
		if pace > 0 {
			if ahead := time.Duration(float64(n)/float64(pace)*float64(time.Second)) - time.Since(start); ahead > 0 {
				time.Sleep(ahead)
			}
		}
		for _, s := range sources {
			for _, k := range kinds {
				id := randHex(8)
				if _, err := s.Conn.WriteToUDP(s.Request(k.method, k.user, id), server); err == nil {
					sent[k.method+" "+k.user]++
					n++
				}
			}
		}
		if now := time.Now(); now.After(nextSample) {
			rssPeak = max(rssPeak, vmKB(t, pid, "VmRSS"))
			nextSample = now.Add(100 * time.Millisecond)
		}
	}
	floodEnd := time.Now()
	elapsed := floodEnd.Sub(start)

	// Retransmissions, if any, come 0.5, 1 and 2 s after a response (RFC 3261 Timer G).
	for range 30 {
		rssPeak = max(rssPeak, vmKB(t, pid, "VmRSS"))
		time.Sleep(100 * time.Millisecond)
	}
	alive(t, srv)
	after := scrapeAt(t, srv.http, 10*time.Second)
	hwm := vmKB(t, pid, "VmHWM")

	// Every request got at most one final response; an error response is never repeated.
	answered := map[int]int{}
	repeated := 0
	for _, s := range sources {
		for _, statuses := range s.Finals() {
			answered[statuses[0]]++
			if len(statuses) > 1 && statuses[0] >= 300 {
				repeated++
			}
		}
	}
	received := 0.0
	for _, m := range []string{"INVITE", "OPTIONS", "REGISTER"} {
		series := fmt.Sprintf(`hotline_sip_requests_total{method="%s"}`, m)
		received += metricOr0(after, series) - metricOr0(before, series)
	}
	cpu := metricOr0(after, "process_cpu_seconds_total") - metricOr0(before, "process_cpu_seconds_total")
	t.Logf("round %d: %d requests in %v (%.0f/s) from %d addresses, %v; the server read %.0f of them and used %.1f s of CPU; final responses by status %v",
		round+1, n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), nSources, sent, received, cpu, answered)
	if repeated > 0 {
		t.Errorf("%d requests got their error response more than once (retransmitted)", repeated)
	}
	if answered[404] == 0 || answered[503] == 0 || answered[200] == 0 {
		t.Errorf("want 404s, 503s and 200s among the answers: %v", answered)
	}

	// Memory: the process's resident set, sampled through the flood, and its peak.
	heap := metricValue(after, "go_memstats_heap_inuse_bytes")
	t.Logf("round %d: RSS %d MiB before the flood, peak %d MiB sampled (VmHWM %d MiB), Go heap in use %.0f MiB after",
		round+1, rssBefore>>10, rssPeak>>10, hwm>>10, heap/(1<<20))
	const boundMiB = 128
	if hwm>>10 > boundMiB {
		t.Errorf("peak RSS %d MiB, over the bound of %d MiB", hwm>>10, boundMiB)
	}

	// The caller's audio during the flood: inter-arrival at the caller (p99 at most 40 ms),
	// and the scheduler's own lateness, free of the test process's delays (at most 1% of its
	// slots more than 20 ms late).
	g := gaps(stream.snapshot(), start, floodEnd)
	q := gaps(stream.snapshot(), quietStart, quietEnd)
	lateQuiet0, totalQuiet0 := pacingLate(quiet)
	lateBefore, totalBefore := pacingLate(before)
	lateAfter, totalAfter := pacingLate(after)
	late, slots := lateAfter-lateBefore, totalAfter-totalBefore
	qLate, qSlots := lateBefore-lateQuiet0, totalBefore-totalQuiet0
	t.Logf("round %d: caller's rtp during the flood: %d packets, gap p50 %v p99 %v max %v; scheduler slots more than 20 ms late: %.0f of %.0f (2 s before it, without the flood: gap p99 %v max %v, %.0f of %.0f slots late)",
		round+1, len(g)+1, percentile(g, 0.5), percentile(g, 0.99), percentile(g, 1), late, slots,
		percentile(q, 0.99), percentile(q, 1), qLate, qSlots)
	// The bar: p99 of the gaps at most 40 ms, and at most 1% of the slots late, unless the
	// machine was already that noisy without the flood; then no worse than that noise.
	gapBar := max(40*time.Millisecond, percentile(q, 0.99)+10*time.Millisecond)
	lateBar := max(0.01, 2*qLate/max(qSlots, 1)+0.005)
	return percentile(g, 0.99) <= gapBar && late <= lateBar*slots
}
