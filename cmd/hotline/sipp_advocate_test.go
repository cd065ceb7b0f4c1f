package main

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSIPpAdvocateKeys drives a mid-call feature from someone else's software (issue 18):
// SIPp is ana's phone. It registers with digest (sipp/register.xml), answers the call the
// server rings it for (sipp/hotline_advocate.xml) and plays ana's microphone, a 700 Hz tone
// in which * and 9 are keyed as RFC 4733 events (sipp/advocate_star9.pcap, one RTP stream
// as a real phone sends it). The server dials 911 (a test phone behind the configured
// target), showing it the caller's number, and the three talk: by Goertzel, the caller
// hears ana and 911 and not itself, 911 hears the caller and ana; the caller receives none
// of ana's key presses. The caller's hang-up ends SIPp's leg, which answers the BYE.
func TestSIPpAdvocateKeys(t *testing.T) {
	t.Parallel()
	sipp := lookSIPp(t)
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	psap := newPhone(t, "127.0.0.1:9", "psap", "", 0, 1500)
	extra := fmt.Sprintf(`targets:
  - {name: psap, uri: "%s"}
midcall:
  prefix: "*"
  parties: [{key: "9", kind: emergency, target: psap, present_caller: true}]
`, psap.contactURI)
	cfg := strings.Replace(queueTestConfig(t, extra, "ana:en:pw-ana"), "queue_defaults:\n", "queue_defaults:\n  whisper: false\n", 1)
	ts := startServer(t, cfg)
	srv, err := net.ResolveUDPAddr("udp", ts.addrs.SIPUDP)
	if err != nil {
		t.Fatal(err)
	}
	psap.server = srv

	port := strconv.Itoa(freeUDPPort(t))
	run := func(ctx context.Context, scenario string, args ...string) (string, error) {
		dir := t.TempDir()
		base := strings.TrimSuffix(scenario, ".xml")
		args = append([]string{"-sf", filepath.Join("sipp", scenario), "-i", "127.0.0.1", "-p", port,
			"-m", "1", "-timeout_error", "-nostdin",
			"-trace_msg", "-message_file", filepath.Join(dir, base+"_messages.log"),
			"-trace_err", "-error_file", filepath.Join(dir, base+"_errors.log")}, args...)
		cmd := exec.CommandContext(ctx, sipp, append(args, ts.addrs.SIPUDP)...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		return lastBytes(string(out), 4000), err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := run(ctx, "register.xml", "-s", "ana", "-au", "ana", "-ap", "pw-ana", "-timeout", "10s"); err != nil {
		t.Fatalf("sipp register.xml: %v\n%s", exitStatus(err), out)
	}
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="available"}`, 1)

	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := run(ctx, "hotline_advocate.xml", "-s", "ana", "-mi", "127.0.0.1", "-mp", strconv.Itoa(freeMediaPort(t)), "-timeout", "50s")
		done <- result{out, err}
	}()
	time.Sleep(500 * time.Millisecond) // SIPp binds its port (the INVITE is retransmitted anyway)

	c := callInFrom(t, ts, "+15551230000", "11", 440)
	waitTone(t, "the caller hears ana (SIPp)", c.stream, 0, 700, 10*time.Second)
	in := psap.expectInvite(15 * time.Second)
	if from := in.From().Address.User; from != "+15551230000" {
		t.Errorf("911 was shown %q, want the caller's number", from)
	}
	psap.answer(in)
	waitLevels(t, "the caller", c.stream, 0, []float64{700, 1500}, []float64{440})
	waitLevels(t, "911", psap.stream, 0, []float64{440, 700}, []float64{1500})
	ts.waitMetric(t, `hotline_conference_joins_total{kind="emergency",result="answered"}`, 1)
	for _, p := range c.stream.snapshot() {
		if p.pkt.PayloadType == 101 {
			t.Fatal("the caller received one of ana's key presses")
		}
	}
	c.hangup()
	psap.expectBye(5 * time.Second)
	select {
	case r := <-done:
		if r.err != nil {
			t.Errorf("sipp hotline_advocate.xml: %v\n%s", exitStatus(r.err), r.out)
		}
	case <-time.After(20 * time.Second):
		t.Error("SIPp (ana's phone) did not finish: no BYE?")
	}
	ts.waitMetric(t, `hotline_calls_active{line="main"}`, 0)
}
