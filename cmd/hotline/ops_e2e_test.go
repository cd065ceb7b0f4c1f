package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReloadUnderLoad reloads the configuration while calls are in every state: one talking
// to an advocate, one waiting in a queue, one in the menus. A bad file changes nothing; a
// good one that renames the queue and adds an advocate re-routes the waiting caller to the
// renamed queue, where the new advocate answers; no call is dropped.
func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	ts := startServer(t, queueTestConfig(t, "", "ana:en:pw-ana"))
	ana := newPhone(t, ts.addrs.SIPUDP, "ana", "pw-ana", 0, 1000)
	ana.register(300)
	ts.waitMetric(t, `hotline_advocates{language="en",queue="en",state="available"}`, 1)

	talking := callIn(t, ts, "11", 440)
	ana.answer(ana.expectInvite(20 * time.Second))
	waitTone(t, "the first caller hears ana", talking.stream, 0, 1000, 5*time.Second)
	waiting := callIn(t, ts, "11", 500)
	ts.waitMetric(t, `hotline_queue_waiting{queue="en"}`, 1)
	inMenus := newUAC(t, ts.addrs.SIPUDP)
	menuStream := inMenus.receiveRTP()
	_, menuMedia := answer(t, inMenus.dial("0 101"))
	var seq uint16 = 1
	var rtpTS uint32 = 1000
	inMenus.sendSilence(menuMedia, 3, &seq, &rtpTS)

	// A bad file: refused, counted, nothing changes.
	ts.rewrite(t, ts.cfg+"queues: [{name: en, languages: [en]}, {name: en, languages: [es]}]\n")
	if err := ts.addrs.Reload(); err == nil || !strings.Contains(err.Error(), "hotline.yaml:") {
		t.Fatalf("bad reload: %v, want an error naming the file and line", err)
	}
	ts.waitMetric(t, `hotline_config_reloads_total{result="failure"}`, 1)
	ts.waitMetric(t, `hotline_config_last_reload_successful`, 0)

	// A good file: the queue en becomes english, with routes to it, and bo joins.
	good := queueTestConfig(t, `queues:
  - {name: english, languages: [en]}
  - {name: es, languages: [es]}
routes:
  - {name: help_now_es, when: {languages: [es], reasons: [help_now]}, to: es, priority: 100}
  - {name: help_now, when: {reasons: [help_now]}, to: english, priority: 100}
  - {name: default, to: english, priority: 10}
`, "ana:en:pw-ana", "bo:en:pw-bo")
	// Keep the running media ports (they change only on restart).
	good = keepMedia(ts.cfg, good)
	ts.rewrite(t, good)
	if err := ts.addrs.Reload(); err != nil {
		t.Fatalf("good reload: %v", err)
	}
	ts.waitMetric(t, `hotline_config_reloads_total{result="success"}`, 1)
	ts.waitMetric(t, `hotline_config_last_reload_successful`, 1)
	ts.waitMetric(t, `hotline_queue_waiting{queue="english"}`, 1)

	bo := newPhone(t, ts.addrs.SIPUDP, "bo", "pw-bo", 0, 1200)
	bo.register(300)
	bo.answer(bo.expectInvite(20 * time.Second))
	waitTone(t, "the waiting caller reaches bo in the renamed queue", waiting.stream, 0, 1200, 5*time.Second)
	waitTone(t, "the first call still flows", talking.stream, 0, 1000, 5*time.Second)
	inMenus.sendDigit(menuMedia, 101, 1, &seq, &rtpTS)
	menuStream.waitFor(t, "the reason menu after the reload", mustPrompt(t, "en", "reason_menu").PCMU[:1600], 10*time.Second)

	talking.hangup()
	ana.expectBye(5 * time.Second)
	waiting.hangup()
	bo.expectBye(5 * time.Second)
	inMenus.hangup()
	ts.waitMetric(t, `hotline_calls_active{line="main"}`, 0)
}

// keepMedia returns cfg with the media section of running (its run-time port range).
func keepMedia(running, cfg string) string {
	section := func(s string) string {
		i := strings.Index(s, "media:\n")
		j := strings.Index(s[i:], "ivr:\n")
		return s[i : i+j]
	}
	return strings.Replace(cfg, section(cfg), section(running), 1)
}

// TestDrain: on drain, new calls and OPTIONS get 503 with Retry-After and /readyz fails,
// while the call in progress goes on; the server stops when it ends.
func TestDrain(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig)
	u := newUAC(t, ts.addrs.SIPUDP)
	stream := u.receiveRTP()
	_, media := answer(t, u.dial("0 101"))
	var seq uint16 = 1
	var rtpTS uint32 = 1000
	u.sendSilence(media, 3, &seq, &rtpTS)
	stream.waitFor(t, "the greeting", mustPrompt(t, "en", "greeting").PCMU[:1600], 5*time.Second)

	ts.addrs.Drain()
	late := newUAC(t, ts.addrs.SIPUDP)
	late.invite(hotlineNumber, sdpOffer(late.rtpPort(), "0", ""))
	res := late.expectResponse("INVITE", 503, 2*time.Second)
	if ra := res.GetHeader("Retry-After"); ra == nil {
		t.Error("503 without Retry-After")
	}
	ping := newUAC(t, ts.addrs.SIPUDP)
	ping.nextRequest("OPTIONS", hotlineNumber, "", "")
	ping.expectResponse("OPTIONS", 503, 2*time.Second)
	if r, err := http.Get("http://" + ts.addrs.HTTP + "/readyz"); err != nil || r.StatusCode == 200 {
		t.Errorf("/readyz while draining: %v %v", r, err)
	}

	// The call in progress goes on: the caller presses 1 and hears the reason menu.
	u.sendDigit(media, 101, 1, &seq, &rtpTS)
	stream.waitFor(t, "the reason menu while draining", mustPrompt(t, "en", "reason_menu").PCMU[:1600], 10*time.Second)
	select {
	case <-ts.done:
		t.Fatal("the server stopped with a call in progress")
	default:
	}
	u.hangup()
	select {
	case code := <-ts.done:
		if code != 0 {
			t.Errorf("exit code %d", code)
		}
		ts.done <- code // for ts.stop
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not stop when its last call ended")
	}
}

// TestReloadCommand: `hotline reload` makes a running server take a changed file (a new
// line), and reports a refused one with the file's error; the admin API needs the token.
func TestReloadCommand(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("reload-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig + "admin:\n  token_file: " + tokenFile + "\n"
	ts := startServer(t, cfg)
	server := "http://" + ts.addrs.HTTP
	t.Setenv("HOTLINE_ADMIN_TOKEN", "wrong")
	if code, _, errOut := runCmd(t, "reload", "-server", server); code == 0 || !strings.Contains(errOut, "401") {
		t.Fatalf("wrong token: exit %d %s", code, errOut)
	}
	t.Setenv("HOTLINE_ADMIN_TOKEN", "reload-secret")

	// The number 988 is not answered until the reload adds it.
	u := newUAC(t, ts.addrs.SIPUDP)
	u.invite("988", sdpOffer(u.rtpPort(), "0", ""))
	u.expectResponse("INVITE", 404, 2*time.Second)
	ts.rewrite(t, strings.Replace(ts.cfg, "lines:\n", "lines:\n  - number: \"988\"\n    name: lifeline\n", 1))
	if code, out, errOut := runCmd(t, "reload", "-server", server); code != 0 || !strings.Contains(out, "reloaded") {
		t.Fatalf("reload: exit %d %s %s", code, out, errOut)
	}
	u2 := newUAC(t, ts.addrs.SIPUDP)
	u2.invite("988", sdpOffer(u2.rtpPort(), "0", ""))
	u2.expectResponse("INVITE", 200, 2*time.Second)
	u2.ack("988", "")
	u2.nextRequest("BYE", "988", "", "")
	u2.expectResponse("BYE", 200, 2*time.Second)

	ts.rewrite(t, ts.cfg+"lines: oops\n")
	code, _, errOut := runCmd(t, "reload", "-server", server)
	if code == 0 || !strings.Contains(errOut, "hotline.yaml:") || !strings.Contains(errOut, "running configuration stays") {
		t.Fatalf("bad file: exit %d %s", code, errOut)
	}
	ts.waitMetric(t, `hotline_config_reloads_total{result="failure"}`, 1)
	ts.waitMetric(t, `hotline_config_reloads_total{result="success"}`, 1)
}
