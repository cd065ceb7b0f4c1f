package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotline-project/hotline/prompts"
)

// TestCallerNumberNowhere places a call from a known number through every path (menus,
// queue with hold audio, ringing, the bridge, hang-up), with debug logging in JSON,
// and then looks for the number in every log line, the metrics and the admin API's answers:
// it must be in none. Every log line about a call carries the call's random id.
func TestCallerNumberNowhere(t *testing.T) {
	t.Parallel()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("privacy-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := queueTestConfig(t, "admin:\n  token_file: "+tokenFile+"\n", "ana:en:pw-ana")
	ts := startServer(t, cfg, "-log-format", "json")
	const number = "+15558675309"
	needles := []string{"5558675309", "555-867-5309", "8675309"}

	// A first caller, from the same number, chooses English and "help now" (1, 1): routed
	// as urgent, waits on hold with nobody staffed; then hangs up. (What announcements say is built from the
	// engine's position and estimate only: callflow's TestAnnouncements and the end-to-end
	// TestHoldAnnouncesPosition cover them.)
	c := callInFrom(t, ts, number, "11", 0)
	c.stream.waitFor(t, "the hold audio", prompts.Hold().PCMU[8000:16000], 40*time.Second)
	ts.waitMetric(t, `hotline_queue_waiting{queue="en"}`, 1)
	c.hangup()
	ts.waitMetric(t, `hotline_queue_calls_total{queue="en",result="abandoned"}`, 1)

	ana := newPhone(t, ts.addrs.SIPUDP, "ana", "pw-ana", 0, 1000)
	ana.register(300)
	u := newUAC(t, ts.addrs.SIPUDP)
	u.from = number
	stream := u.receiveRTP()
	_, media := answer(t, u.dial("0 101"))
	var seq uint16 = 1
	var rtpTS uint32 = 1000
	u.sendSilence(media, 3, &seq, &rtpTS)
	// The first call dropped while waiting: calling again from the same number gets its
	// place back (safety.keep_place), recognised by the keyed hash only.
	stream.waitFor(t, "the kept place", mustPrompt(t, "en", "place_kept").PCMU[:1600], 5*time.Second)
	inv := ana.expectInvite(20 * time.Second)
	for _, n := range needles {
		if strings.Contains(inv.String(), n) {
			t.Fatalf("the advocate's INVITE carries the caller's number:\n%s", inv)
		}
	}
	ana.answer(inv)
	u.sendSilence(media, 10, &seq, &rtpTS)
	ana.hangup()
	u.expectRequest("BYE", 5*time.Second)
	ts.waitMetric(t, `hotline_calls_active{line="main"}`, 0)

	var seen []string
	seen = append(seen, ts.scrape(t))
	for _, path := range []string{"/admin/v1/advocates", "/admin/v1/overrides", "/admin/v1/route?line=main&lang=en&reason=help_now"} {
		code, body := httpDo(t, "GET", "http://"+ts.addrs.HTTP+path, "privacy-secret", "")
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		seen = append(seen, body)
	}
	logs := ts.logs.String()
	seen = append(seen, logs)
	for _, text := range seen {
		for _, n := range needles {
			if strings.Contains(text, n) {
				i := strings.Index(text, n)
				t.Fatalf("the caller's number appears: ...%s...", text[max(0, i-200):min(len(text), i+50)])
			}
		}
	}
	callMsgs := map[string]bool{"incoming call": true, "menus done": true, "call routed": true, "call queued": true,
		"call connected": true, "call ended": true, "ring ended": true}
	found := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		msg, _ := rec["msg"].(string)
		if callMsgs[msg] {
			found[msg] = true
			if id, _ := rec["call"].(string); len(id) < 8 {
				t.Errorf("log %q has no call id: %s", msg, line)
			}
		}
	}
	for m := range callMsgs {
		if !found[m] {
			t.Errorf("no %q log line", m)
		}
	}
}

// TestCallbackNumberNowhere extends the canary to safe callbacks (issue 16, part 3): the
// full callback (runCallbackHappyPath: a number typed, an advocate, the trunk, the gate,
// tones both ways) leaves the typed number's digits nowhere: not in the logs (debug, JSON),
// the metrics, the admin API's answers, the records database or the state directory (the
// raft log and its snapshots: the number is kept there only sealed, AES-256-GCM). The
// caller's own number is checked too.
func TestCallbackNumberNowhere(t *testing.T) {
	t.Parallel()
	cs := runCallbackHappyPath(t)
	needles := []string{callbackTyped, "555-000-9999", "0009999", "5551230000", "1230000"}
	seen := map[string]string{"metrics": cs.scrape(t)}
	for _, path := range []string{"/admin/v1/callbacks", "/admin/v1/advocates", "/admin/v1/cluster"} {
		code, body := httpDo(t, "GET", "http://"+cs.addrs.HTTP+path, cs.token, "")
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		seen[path] = body
	}
	cs.stop(t) // the records written and the state log closed
	seen["logs"] = cs.logs.String()
	files := 0
	for _, root := range []string{cs.stateDir, filepath.Dir(cs.records)} {
		err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			seen[path] = string(b)
			files++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := seen[filepath.Join(cs.stateDir, "raft.db")]; !ok || files < 3 {
		t.Fatalf("the state and records files were not all read (%d files)", files)
	}
	for where, text := range seen {
		for _, n := range needles {
			if i := strings.Index(text, n); i >= 0 {
				t.Errorf("%s holds the number: ...%q...", where, text[max(0, i-80):min(len(text), i+40)])
			}
		}
	}
}
