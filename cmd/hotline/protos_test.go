package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/hotline-project/hotline/internal/testtool"
)

// protosDir is where the PROTOS c07-sip cases are (their README describes the format); the
// suite is GPL test material and 37 MB, so it is not copied into the repository.
func protosDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("HOTLINE_PROTOS_DIR")
	if dir == "" {
		dir = "/work/shared/testdata/protos-c07-sip"
	}
	if _, err := os.Stat(filepath.Join(dir, "cases", "0000000")); err != nil {
		if os.Getenv("HOTLINE_REQUIRE_PROTOS") != "" {
			t.Fatalf("PROTOS cases not found (set HOTLINE_PROTOS_DIR): %v", err)
		}
		t.Skipf("PROTOS cases not found in %s (set HOTLINE_PROTOS_DIR; CI sets HOTLINE_REQUIRE_PROTOS)", dir)
	}
	return dir
}

// protosCase splits a case file into its INVITE and teardown templates.
func protosCase(b []byte) (invite, teardown []byte, err error) {
	var parts [][]byte
	for len(b) > 0 && len(parts) < 2 {
		sp := bytes.IndexByte(b, ' ')
		if sp <= 0 {
			return nil, nil, fmt.Errorf("no length at part %d", len(parts))
		}
		n, err := strconv.Atoi(string(b[:sp]))
		if err != nil || n < 0 || sp+1+n > len(b) {
			return nil, nil, fmt.Errorf("bad length %q at part %d", b[:sp], len(parts))
		}
		parts = append(parts, b[sp+1:sp+1+n])
		b = b[sp+1+n:]
	}
	if len(parts) != 2 {
		return nil, nil, fmt.Errorf("%d parts, want 2", len(parts))
	}
	return parts[0], parts[1], nil
}

// protosFill substitutes the placeholders as the jar's SIPBugCat.replace does, Content-Length
// last, and cuts the PDU to the largest UDP payload.
func protosFill(tmpl []byte, to, from string, localPort, callID int, teardown string) []byte {
	s := strings.NewReplacer(
		"<To>", to, "<From>", from, "<From-Address>", "127.0.0.1", "<From-IP>", "127.0.0.1",
		"<Local-Port>", strconv.Itoa(localPort), "<Call-ID>", strconv.Itoa(callID),
		"<Branch-ID>", fmt.Sprintf("%06d", callID%1000000), "<CSeq>", "1", "<Teardown-Method>", teardown,
	).Replace(string(tmpl))
	cl := 0
	if i := strings.Index(s, "\r\n\r\n"); i >= 0 {
		cl = len(s) - i - 4
	}
	s = strings.ReplaceAll(s, "<Content-Length>", strconv.Itoa(cl))
	if len(s) > 65507 {
		s = s[:65507]
	}
	return []byte(s)
}

// protosReply is one response the replay socket got.
type protosReply struct {
	status int
	callID string
}

// TestPROTOSReplay replays all 4527 PROTOS c07-sip cases over UDP against the running server,
// each with its CANCEL and ACK teardown, and after every case sends a valid INVITE that must
// be answered (180 Ringing: it went through line lookup, SDP and media) and then cancelled
// (487). Afterwards a full call works (menu, digits, queue, an advocate who registers and
// answers, audio both ways), and goroutines return near the
// baseline. The heap before and after is logged.
func TestPROTOSReplay(t *testing.T) {
	dir := protosDir(t)
	testtool.Heavy(t) // 27 s of a replay as fast as the server answers
	files, err := filepath.Glob(filepath.Join(dir, "cases", "*"))
	if err != nil || len(files) != 4527 {
		t.Fatalf("%d PROTOS cases, want 4527 (%v)", len(files), err)
	}
	// Ringing long before answering lets every CANCEL find its INVITE still pending, however
	// slow the machine, and end the call at once: each CANCEL follows its INVITE's 180 by
	// well under a millisecond (4527 cases take about 11 s), so 5 s is ample; the full call
	// afterwards rings as long.
	// The replay comes from loopback as fast as the server answers: trusted, like the
	// carrier's trunk, so the per-source rate limit (which has tests of its own) does not
	// refuse the follow-up INVITEs this test is about.
	cfg := strings.Replace(queueTestConfig(t, "", "ana:es:pw-ana"), "  ack_timeout: 2s\n", "  ack_timeout: 2s\n  answer_delay: 5s\n", 1) +
		"security:\n  trusted_sources: [127.0.0.0/8]\n"
	// Logging at warn: the harness keeps the log in memory, and the heap is measured.
	ts := startServerLogging(t, cfg, "warn")
	saddr, err := net.ResolveUDPAddr("udp", ts.addrs.SIPUDP)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadBuffer(4 << 20) // the replay's answers, while this process is busy sending
	port := conn.LocalAddr().(*net.UDPAddr).Port
	to := hotlineNumber + "@" + ts.addrs.SIPUDP
	from := "protos@127.0.0.1"
	replies := make(chan protosReply, 1024)
	go func() {
		defer close(replies)
		buf := make([]byte, 65535)
		for {
			n, src, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			m, err := sipmsg.ParseMessage(append([]byte(nil), buf[:n]...))
			if err != nil {
				continue
			}
			switch m := m.(type) {
			case *sipmsg.Request:
				// A BYE for a case the server answered and never got an ACK for: end it.
				res := sipmsg.NewResponseFromRequest(m, 200, "OK", nil)
				conn.WriteToUDP([]byte(res.String()), src)
			case *sipmsg.Response:
				// Only the valid INVITEs' answers are awaited (Call-IDs from 1,000,000 on);
				// the cases' own, thousands, are not kept, so that under load a full buffer
				// never drops a 180 the test waits for.
				if m.CallID() != nil && m.CSeq() != nil && protosValidCall(m.CallID().Value()) {
					replies <- protosReply{m.StatusCode, m.CallID().Value()}
				}
			}
		}
	}()
	send := func(b []byte) {
		if _, err := conn.WriteToUDP(b, saddr); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	validINV, validTD, err := readProtosCase(files[0])
	if err != nil {
		t.Fatal(err)
	}
	// await waits for a response with status to the call with Call-ID id.
	await := func(id string, status int, what string) {
		t.Helper()
		deadline := time.After(15 * time.Second) // an event; the bound only ends a hang
		var got []int
		for {
			select {
			case r := <-replies:
				if r.callID == id && r.status == status {
					return
				}
				if r.callID == id {
					got = append(got, r.status)
				}
			case <-deadline:
				t.Fatalf("%s: no %d for the valid INVITE (got %v)", what, status, got)
			}
		}
	}
	callID := 1_000_000
	// valid sends a valid INVITE and waits until it rings; between the two, it runs between
	// (the case's teardown: by then the server has read the case, so the CANCEL finds its
	// INVITE). Then it cancels the valid INVITE.
	valid := func(what string, between func()) {
		t.Helper()
		callID++
		send(protosFill(validINV, to, from, port, callID, "CANCEL"))
		id := strconv.Itoa(callID) + "@127.0.0.1"
		await(id, 180, what)
		between()
		send(protosFill(validTD, to, from, port, callID, "CANCEL"))
		await(id, 487, what)
		// The ACK a UAC owes a non-2xx final answer: the server's transaction ends after
		// Timer I (5 s), not Timer H (32 s) of retransmitted 487s.
		send(protosFill(validTD, to, from, port, callID, "ACK"))
	}

	valid("warm-up", func() {})
	// Loaded now so that the heap figures compare the server's memory, not the test's.
	greeting := mustPrompt(t, "en", "greeting")
	langMenu := mustPrompt(t, "es", "language_menu").PCMU
	reasonMenu := mustPrompt(t, "es", "reason_menu").PCMU
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()
	start := time.Now()

	for i, f := range files {
		inv, td, err := readProtosCase(f)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(f), err)
		}
		id := i + 1
		send(protosFill(inv, to, from, port, id, "CANCEL"))
		valid("after case "+filepath.Base(f), func() {
			send(protosFill(td, to, from, port, id, "CANCEL"))
			send(protosFill(td, to, from, port, id, "ACK"))
		})
	}
	elapsed := time.Since(start)

	// A full call still works, at once, while the calls some cases started still ring or
	// wait for their ACK: an advocate registers, and a caller goes through the menu
	// (Spanish, help now), queues, is put through to her, and each hears the other.
	ana := newPhone(t, ts.addrs.SIPUDP, "ana", "pw-ana", 0, 1000)
	ana.register(300)
	u := newUAC(t, ts.addrs.SIPUDP)
	stream := u.receiveRTP()
	u.invite(hotlineNumber, sdpOffer(u.rtpPort(), "0 101", ""))
	res := u.expectResponse("INVITE", 200, 15*time.Second)
	u.ack(hotlineNumber, "")
	_, media := answer(t, res)
	stream.waitFor(t, "the Spanish language menu", langMenu, greeting.Duration()+20*time.Second)
	var seq uint16 = 1
	var rtpTS uint32 = 1000
	u.sendSilence(media, 3, &seq, &rtpTS)
	u.sendDigit(media, 101, 2, &seq, &rtpTS)
	stream.waitFor(t, "the Spanish reason menu", reasonMenu, 10*time.Second)
	u.sendDigit(media, 101, 1, &seq, &rtpTS)
	toneCtx, stopTone := context.WithCancel(context.Background())
	go sendTone(toneCtx, u.rtp, media, 0, 440)
	ana.answer(ana.expectInvite(20 * time.Second))
	waitTone(t, "the caller hears the advocate", stream, 0, 1000, 10*time.Second)
	waitTone(t, "the advocate hears the caller", ana.stream, 0, 440, 10*time.Second)
	stopTone()
	u.hangup()
	ana.expectBye(5 * time.Second)
	called := time.Since(start) - elapsed

	// Calls some cases started (answered after the ring, never acknowledged) end by the ACK
	// timeout; then everything the cases and the full call started must be gone.
	deadline := time.Now().Add(60 * time.Second)
	for metricValue(ts.scrape(t), `hotline_calls_active{line="main"}`) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("calls still active a minute after the replay")
		}
		time.Sleep(100 * time.Millisecond)
	}
	drained := time.Since(start) - elapsed
	// The test's own goroutines: the UAC's and the phone's readers and the keep-alive
	// /metrics connection.
	u.conn.Close()
	u.rtp.Close()
	ana.conn.Close()
	ana.rtp.Close()
	http.DefaultClient.CloseIdleConnections()

	// Goroutines go back near the baseline once the transactions the cases opened time out
	// (64*T1 = 32 s at most).
	var after int
	deadline = time.Now().Add(60 * time.Second)
	for {
		after = runtime.NumGoroutine()
		if after <= goroutines+2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	runtime.GC()
	var heap runtime.MemStats
	runtime.ReadMemStats(&heap)
	t.Logf("PROTOS c07-sip: %d/%d cases replayed in %v, every valid INVITE answered; then the full call took %v, calls were gone %v after the replay, goroutines back %v after it; goroutines %d before, %d after; heap %.1f MB before, %.1f MB after",
		len(files), len(files), elapsed.Round(time.Millisecond), called.Round(time.Millisecond), drained.Round(time.Millisecond),
		(time.Since(start) - elapsed).Round(time.Millisecond), goroutines, after,
		float64(before.HeapAlloc)/(1<<20), float64(heap.HeapAlloc)/(1<<20))
	if after > goroutines+2 {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before the replay, %d after:\n%s", goroutines, after, buf[:runtime.Stack(buf, true)])
	}
	if heap.HeapAlloc > before.HeapAlloc+64<<20 {
		t.Fatalf("heap grew from %d to %d bytes", before.HeapAlloc, heap.HeapAlloc)
	}
}

// protosValidCall reports whether Call-ID id is one of the valid INVITEs the replay sends
// between the cases (numbered from 1,000,000; the cases from 1).
func protosValidCall(id string) bool {
	n, err := strconv.Atoi(strings.TrimSuffix(id, "@127.0.0.1"))
	return err == nil && n >= 1_000_000
}

func readProtosCase(path string) (invite, teardown []byte, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return protosCase(b)
}
