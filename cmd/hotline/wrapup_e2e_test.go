package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotline-project/hotline/admin"
)

// advocateState returns advocate id's state from the admin API.
func advocateState(t *testing.T, ts *testServer, token, id string) admin.AdvocateState {
	t.Helper()
	code, body := httpDo(t, "GET", "http://"+ts.addrs.HTTP+"/admin/v1/advocates", token, "")
	var list admin.AdvocatesResponse
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil {
		t.Fatalf("GET advocates: %d %v %s", code, err, body)
	}
	for _, a := range list.Advocates {
		if a.ID == id {
			return a
		}
	}
	t.Fatalf("advocate %s not listed: %s", id, body)
	return admin.AdvocateState{}
}

// Issue 13, item 10: *12 followed by a digit records the reason the advocate chose from
// advocate_pause_reasons (*12 alone: "unspecified"; a number with no reason: 404), and
// wrap-up works end to end: after a call the advocate is not rung until wrap_up (1.5 s
// here) has passed, though a caller is waiting, and is rung after it.
func TestPauseReasonAndWrapUp(t *testing.T) {
	t.Parallel()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("admin-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const wrapUp = 1500 * time.Millisecond
	cfg := queueTestConfig(t, "admin:\n  token_file: "+tokenFile+"\n", "ana:en:pw-ana")
	cfg = strings.Replace(cfg, "wrap_up: 0s", "wrap_up: 1500ms", 1)
	ts := startServer(t, cfg)
	ana := newPhone(t, ts.addrs.SIPUDP, "ana", "pw-ana", 0, 1000)
	ana.register(300)
	const available = `hotline_advocates{language="en",queue="en",state="available"}`
	ts.waitMetric(t, available, 1)

	for _, step := range []struct{ code, reason string }{{"*122", "meal"}, {"*12", "unspecified"}, {"*121", "break"}} {
		ana.feature(t, step.code)
		if a := advocateState(t, ts, "admin-secret", "ana"); a.State != "paused" || a.PauseReason != step.reason {
			t.Errorf("after %s: state %s, pause reason %q; want paused, %q", step.code, a.State, a.PauseReason, step.reason)
		}
	}
	// *129 names no reason (five are configured): the phone is told so, nothing changes.
	ana.dialAuth("*129", 404)
	if a := advocateState(t, ts, "admin-secret", "ana"); a.PauseReason != "break" {
		t.Errorf("after *129: pause reason %q, want break still", a.PauseReason)
	}
	ana.feature(t, "*11")
	ts.waitMetric(t, available, 1)

	// A call, and a second caller waiting behind it.
	c1 := callIn(t, ts, "11", 440)
	inv := ana.expectInvite(20 * time.Second)
	ana.answer(inv)
	waitTone(t, "the first caller hears ana", c1.stream, 0, 1000, 5*time.Second)
	c2 := callIn(t, ts, "11", 880)
	ts.waitMetric(t, `hotline_queue_waiting{queue="en"}`, 1)

	hungUp := time.Now()
	c1.hangup()
	ana.expectBye(5 * time.Second)
	inv = ana.expectInvite(10 * time.Second)
	if waited := time.Since(hungUp); waited < wrapUp {
		t.Errorf("ana was rung %v after her call ended, within her %v wrap-up", waited, wrapUp)
	} else {
		t.Logf("ana was rung for the waiting caller %v after her call ended (wrap-up %v)", waited.Round(time.Millisecond), wrapUp)
	}
	ana.answer(inv)
	waitTone(t, "the second caller hears ana", c2.stream, 0, 1000, 5*time.Second)
	c2.hangup()
	ana.expectBye(5 * time.Second)

	// The first call's record carries the wrap-up ana had.
	rows := exportRecords(t, ts.path)
	if len(rows) != 2 || rows[0]["advocate"] != "ana" || rows[0]["wrap_up_seconds"] != "1.500" {
		t.Errorf("records %v, want the first call taken by ana with 1.500 s of wrap-up", rows)
	}
}
