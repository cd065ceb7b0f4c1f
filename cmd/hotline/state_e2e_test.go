package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotline-project/hotline/admin"
)

// TestRestartKeepsState (issue 17): advocates register with digest, one is paused with a
// reason over the admin API, a schedule is forced closed; the server binary is killed
// (SIGKILL) and started again on the same state directory. The registrations, the pause
// with its reason and the override are back before any phone registers again, the
// advocate who was available is available, and the paused one stays paused when her phone
// registers again.
func TestRestartKeepsState(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("admin-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lo, hi := rtpRange(t, 200)
	cfg := strings.NewReplacer("PORT_MIN", strconv.Itoa(lo), "PORT_MAX", strconv.Itoa(hi),
		"RECORDS_PATH", filepath.Join(dir, "records.db")).Replace(
		queueTestConfig(t, "admin:\n  token_file: "+tokenFile+"\nstate:\n  dir: "+filepath.Join(dir, "state")+"\n",
			"ana:en:pw-ana", "ben:en:pw-ben"))
	cfgPath := writeFile(t, dir, "hotline.yaml", quietOverload(cfg))

	srv := startConfigured(t, bin, dir, cfgPath)
	ana := newPhone(t, srv.sip, "ana", "pw-ana", 0, 1000)
	ben := newPhone(t, srv.sip, "ben", "pw-ben", 0, 800)
	ana.register(600)
	ben.register(600)
	api := "http://" + srv.http + "/admin/v1"
	if code, body := httpDo(t, "PUT", api+"/advocates/ana/state", "admin-secret", `{"state":"paused","reason":"meal"}`); code != 200 {
		t.Fatalf("pause ana: %d %s", code, body)
	}
	if code, body := httpDo(t, "PUT", api+"/overrides", "admin-secret", `{"kind":"closed","schedule":"advocates","reason":"storm"}`); code != 200 {
		t.Fatalf("set override: %d %s", code, body)
	}
	before := advocatesByID(t, api)
	if a := before["ana"]; a.State != "paused" || a.PauseReason != "meal" || !a.Registered {
		t.Fatalf("ana before the kill: %+v", a)
	}
	if b := before["ben"]; b.State != "available" || !b.Registered {
		t.Fatalf("ben before the kill: %+v", b)
	}

	// The admin API answered: the changes are on disk. Kill at once.
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-srv.done

	srv = startConfigured(t, bin, dir, cfgPath)
	api = "http://" + srv.http + "/admin/v1"
	after := advocatesByID(t, api)
	if a := after["ana"]; a.State != "paused" || a.PauseReason != "meal" || !a.Registered {
		t.Errorf("ana after the restart: %+v, want paused (meal) and registered", a)
	}
	if b := after["ben"]; b.State != "available" || !b.Registered {
		t.Errorf("ben after the restart: %+v, want available and registered", b)
	}
	code, body := httpDo(t, "GET", api+"/overrides", "admin-secret", "")
	var ov admin.OverridesResponse
	if err := json.Unmarshal([]byte(body), &ov); code != 200 || err != nil {
		t.Fatalf("overrides: %d %v %s", code, err, body)
	}
	if len(ov.Overrides) != 1 || ov.Overrides[0].Kind != "closed" || ov.Overrides[0].Schedule != "advocates" ||
		ov.Overrides[0].Reason != "storm" || !ov.Overrides[0].Active {
		t.Errorf("overrides after the restart: %s", body)
	}
	if !srv.logged(func(r map[string]any) bool {
		return r["msg"] == "state restored" && r["paused"] == 1.0 && r["overrides"] == 1.0
	}) {
		t.Errorf("no \"state restored\" log line with 1 paused and 1 override")
	}

	// hotline cluster status and the metrics show the one-voter cluster.
	cmd := exec.Command(bin, "cluster", "status", "-server", "http://"+srv.http)
	cmd.Env = append(os.Environ(), admin.TokenEnv+"=admin-secret")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "node     node1 (Leader)") || !strings.Contains(string(out), "members  node1 (Voter)") ||
		!strings.Contains(string(out), "dir      "+filepath.Join(dir, "state")) {
		t.Errorf("cluster status: %v\n%s", err, out)
	}
	metrics := scrapeURL(t, "http://"+srv.http+"/metrics")
	if metricValue(metrics, "hotline_state_leader") != 1 || metricValue(metrics, "hotline_state_applied_index") < 3 ||
		metricValue(metrics, "hotline_sip_registrations") != 2 {
		t.Errorf("state metrics:\n%s", grepLines(metrics, "hotline_state_"))
	}

	// Ana's phone registers again (a refresh, to the restarted server): she stays paused.
	addr, err := net.ResolveUDPAddr("udp", srv.sip)
	if err != nil {
		t.Fatal(err)
	}
	ana.server, ben.server = addr, addr
	ana.register(600)
	ben.register(600)
	if a := advocatesByID(t, api)["ana"]; a.State != "paused" || a.PauseReason != "meal" {
		t.Errorf("ana after registering again: %+v, want paused (meal)", a)
	}
	if b := advocatesByID(t, api)["ben"]; b.State != "available" {
		t.Errorf("ben after registering again: %+v", b)
	}
	// Making her available is kept too: a second kill and restart has her available, and
	// rung for a caller before her phone registers again (ben pauses, so it is her).
	if code, body := httpDo(t, "PUT", api+"/advocates/ana/state", "admin-secret", `{"state":"available"}`); code != 200 {
		t.Fatalf("ana available: %d %s", code, body)
	}
	if code, body := httpDo(t, "PUT", api+"/advocates/ben/state", "admin-secret", `{"state":"paused","reason":"training"}`); code != 200 {
		t.Fatalf("ben paused: %d %s", code, body)
	}
	if code, body := httpDo(t, "DELETE", api+"/overrides?kind=closed&schedule=advocates", "admin-secret", ""); code != 200 {
		t.Fatalf("clear override: %d %s", code, body)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-srv.done
	srv = startConfigured(t, bin, dir, cfgPath)
	api = "http://" + srv.http + "/admin/v1"
	if a := advocatesByID(t, api)["ana"]; a.State != "available" || a.PauseReason != "" {
		t.Errorf("ana after the second restart: %+v, want available", a)
	}
	if _, body := httpDo(t, "GET", api+"/overrides", "admin-secret", ""); strings.Contains(body, "storm") {
		t.Errorf("the cleared override is back: %s", body)
	}
	if addr, err = net.ResolveUDPAddr("udp", srv.sip); err != nil {
		t.Fatal(err)
	}
	ana.server = addr // where her answers go; she does not register again
	c := callIn(t, &testServer{addrs: Addrs{SIPUDP: srv.sip}}, "11", 440)
	inv := ana.expectInvite(10 * time.Second)
	ana.answer(inv)
	waitTone(t, "the caller hears ana, over her binding from before the restart", c.stream, 0, 1000, 5*time.Second)
	ben.expectNoInvite(time.Second)
	c.hangup()
	ana.expectBye(5 * time.Second)
}

func scrapeURL(t *testing.T, url string) string {
	t.Helper()
	code, body := httpDo(t, "GET", url, "", "")
	if code != 200 {
		t.Fatalf("GET %s: %d", url, code)
	}
	return body
}

// startConfigured runs the server binary on the configuration file cfg in dir.
func startConfigured(t *testing.T, bin, dir, cfg string) *sippServer {
	t.Helper()
	return startCommand(t, exec.Command(bin, "serve", "-sip", "127.0.0.1:0", "-http", "127.0.0.1:0", "-log-format", "json", "-config", cfg), dir)
}

// advocatesByID lists the advocates over the admin API.
func advocatesByID(t *testing.T, api string) map[string]admin.AdvocateState {
	t.Helper()
	code, body := httpDo(t, "GET", api+"/advocates", "admin-secret", "")
	var list admin.AdvocatesResponse
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil {
		t.Fatalf("advocates: %d %v %s", code, err, body)
	}
	m := map[string]admin.AdvocateState{}
	for _, a := range list.Advocates {
		m[a.ID] = a
	}
	return m
}

// TestStopKeepsFeatureCodeAndLogout: a pause by feature code from the phone (*122, meal)
// and a logout over the admin API survive an orderly stop and start (the in-process
// server); the logged-out advocate's phone refreshing its registration does not log her
// in again.
func TestStopKeepsFeatureCodeAndLogout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("admin-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := queueTestConfig(t, "admin:\n  token_file: "+tokenFile+"\nstate:\n  dir: "+filepath.Join(dir, "state")+"\n",
		"ana:en:pw-ana", "ben:en:pw-ben")
	ts := startServer(t, cfg)
	ana := newPhone(t, ts.addrs.SIPUDP, "ana", "pw-ana", 0, 1000)
	ben := newPhone(t, ts.addrs.SIPUDP, "ben", "pw-ben", 0, 800)
	ana.register(600)
	ben.register(600)
	ana.feature(t, "*122")
	api := "http://" + ts.addrs.HTTP + "/admin/v1"
	if code, body := httpDo(t, "PUT", api+"/advocates/ben/state", "admin-secret", `{"state":"offline"}`); code != 200 {
		t.Fatalf("log ben out: %d %s", code, body)
	}
	if a := advocatesByID(t, api)["ana"]; a.State != "paused" || a.PauseReason != "meal" {
		t.Fatalf("ana before the stop: %+v", a)
	}
	ts.stop(t)

	ts = startServer(t, cfg)
	api = "http://" + ts.addrs.HTTP + "/admin/v1"
	got := advocatesByID(t, api)
	if a := got["ana"]; a.State != "paused" || a.PauseReason != "meal" || !a.Registered {
		t.Errorf("ana after the restart: %+v, want paused (meal), registered", a)
	}
	if b := got["ben"]; b.State != "offline" || !b.Registered {
		t.Errorf("ben after the restart: %+v, want logged out (offline) and registered", b)
	}
	addr, err := net.ResolveUDPAddr("udp", ts.addrs.SIPUDP)
	if err != nil {
		t.Fatal(err)
	}
	ana.server, ben.server = addr, addr
	ana.register(600)
	ben.register(600)
	got = advocatesByID(t, api)
	if a, b := got["ana"], got["ben"]; a.State != "paused" || b.State != "offline" {
		t.Errorf("after registering again: ana %s, ben %s; want paused and offline", a.State, b.State)
	}
}

// TestRestartKeepsKeptPlace: a waiting caller's call drops and their place is kept
// (safety.keep_place); the server stops and starts again on the same state directory; a
// caller who arrives after the restart waits, and the first caller dials again: they keep
// their place (place_kept, no menus) and, with their original arrival time, are answered
// first.
func TestRestartKeepsKeptPlace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// The same records file across the restart: its key hashes callers' numbers.
	cfg := strings.Replace(queueTestConfig(t, "state:\n  dir: "+filepath.Join(dir, "state")+"\n", "ana:en:pw-ana"),
		"RECORDS_PATH", filepath.Join(dir, "records.db"), 1)
	ts := startServer(t, cfg)
	const from = "+15557770202"
	first := callInFrom(t, ts, from, "11", 600)
	ts.waitMetric(t, `hotline_queue_waiting{queue="en"}`, 1)
	first.hangup()
	ts.waitMetric(t, `hotline_kept_places_total{result="held"}`, 1)
	ts.stop(t)

	ts = startServer(t, cfg)
	if !strings.Contains(ts.logs.String(), "callers' kept places restored") {
		t.Error("no \"callers' kept places restored\" in the log")
	}
	second := callIn(t, ts, "11", 700)
	ts.waitMetric(t, `hotline_queue_waiting{queue="en"}`, 1)
	back := callBack(t, ts, from, 600)
	ts.waitMetric(t, `hotline_kept_places_total{result="restored"}`, 1)
	ts.waitMetric(t, `hotline_queue_waiting{queue="en"}`, 2)

	ana := newPhone(t, ts.addrs.SIPUDP, "ana", "pw-ana", 0, 1000)
	ana.register(300)
	for _, c := range []struct {
		who  *caller
		freq float64
		what string
	}{{back, 600, "the caller who kept their place across the restart"}, {second, 700, "then the one who came after"}} {
		inv := ana.expectInvite(20 * time.Second)
		ana.answer(inv)
		waitTone(t, "ana hears "+c.what, ana.stream, 0, c.freq, 5*time.Second)
		ana.hangup()
		c.who.expectRequest("BYE", 5*time.Second)
		c.who.stopTone()
	}
	if strings.Contains(ts.logs.String(), "5557770202") {
		t.Fatal("the caller's number appears in the logs")
	}
}
