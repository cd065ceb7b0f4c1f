package main

import (
	"bytes"
	"encoding/csv"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestKillKeepsRecords kills the server binary with SIGKILL while one call is in progress,
// after another has ended: on restart the finished call's record is intact and the cut-off
// one is recorded as interrupted (the embedded default store: SQLite in the working
// directory).
func TestKillKeepsRecords(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	dir := t.TempDir()
	srv := startBinary(t, bin, dir)

	// A call that ends: the caller hangs up during the greeting.
	done := newUAC(t, srv.sip)
	doneStream := done.receiveRTP()
	_, media := answer(t, done.dial("0 101"))
	var seq uint16 = 1
	var rtpTS uint32 = 1000
	done.sendSilence(media, 3, &seq, &rtpTS)
	doneStream.waitFor(t, "the greeting", mustPrompt(t, "en", "greeting").PCMU[:1600], 5*time.Second)
	done.hangup()
	waitRecords(t, bin, dir, func(rows []map[string]string) bool {
		return len(rows) == 1 && rows[0]["outcome"] != "in_progress"
	})

	// A call in progress when the server dies.
	live := newUAC(t, srv.sip)
	liveStream := live.receiveRTP()
	_, media = answer(t, live.dial("0 101"))
	live.sendSilence(media, 3, &seq, &rtpTS)
	liveStream.waitFor(t, "the greeting", mustPrompt(t, "en", "greeting").PCMU[:1600], 5*time.Second)
	waitRecords(t, bin, dir, func(rows []map[string]string) bool { return len(rows) == 2 && rows[1]["answered"] != "" })
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-srv.done

	startBinary(t, bin, dir)
	rows := waitRecords(t, bin, dir, func(rows []map[string]string) bool {
		return len(rows) == 2 && rows[1]["outcome"] == "interrupted"
	})
	if o := rows[0]["outcome"]; o == "in_progress" || o == "interrupted" || rows[0]["end"] == "" {
		t.Errorf("the finished call's record: outcome %q end %q", o, rows[0]["end"])
	}
	if rows[1]["end"] == "" {
		t.Errorf("the interrupted call has no end time: %v", rows[1])
	}
	// It keeps what was known of it when the server died (issue 15): it had been answered.
	if rows[1]["answered"] == "" {
		t.Errorf("the interrupted call lost its answer time: %v", rows[1])
	}
}

// waitRecords exports the records of the server working in dir until ok accepts them, and
// returns them (oldest first).
func waitRecords(t *testing.T, bin, dir string, ok func([]map[string]string) bool) []map[string]string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var rows []map[string]string
	var last string
	for time.Now().Before(deadline) {
		cmd := exec.Command(bin, "records")
		cmd.Dir = dir
		out, err := cmd.Output()
		last = string(out)
		if err == nil {
			all, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
			if err == nil && len(all) >= 1 {
				rows = rows[:0]
				for _, r := range all[1:] {
					m := map[string]string{}
					for i, h := range all[0] {
						m[h] = r[i]
					}
					rows = append(rows, m)
				}
				if ok(rows) {
					return rows
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("records never matched; last export:\n%s", last)
	return nil
}
