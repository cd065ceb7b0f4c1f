package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// exportRecords runs `hotline records -config path` in-process and returns the rows.
func exportRecords(t *testing.T, path string) []map[string]string {
	t.Helper()
	var out, errs bytes.Buffer
	if code := run(context.Background(), []string{"records", "-config", path}, &out, &errs, nil); code != 0 {
		t.Fatalf("hotline records: exit %d: %s", code, errs.String())
	}
	all, err := csv.NewReader(&out).ReadAll()
	if err != nil || len(all) < 1 {
		t.Fatalf("records CSV: %v", err)
	}
	var rows []map[string]string
	for _, r := range all[1:] {
		m := map[string]string{}
		for i, h := range all[0] {
			m[h] = r[i]
		}
		rows = append(rows, m)
	}
	return rows
}

// Issue 13, item 8: a second `hotline serve` with the same configuration (same records
// store, same node) that cannot bind the port stops before it touches the records; it used
// to mark the running server's calls in progress as interrupted first.
func TestSecondServeLeavesRecordsAlone(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig)
	u := newUAC(t, ts.addrs.SIPUDP)
	stream := u.receiveRTP()
	_, media := answer(t, u.dial("0 101"))
	var seq uint16 = 1
	var rtpTS uint32 = 1000
	u.sendSilence(media, 3, &seq, &rtpTS)
	stream.waitFor(t, "the greeting", mustPrompt(t, "en", "greeting").PCMU[:1600], 5*time.Second)

	deadline := time.Now().Add(10 * time.Second)
	for {
		rows := exportRecords(t, ts.path)
		if len(rows) == 1 && rows[0]["outcome"] == "in_progress" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the call in progress was never recorded: %v", rows)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The same file, but with the port the running server holds.
	cfg := strings.Replace(ts.cfg, "listen: 127.0.0.1:0", "listen: "+ts.addrs.SIPUDP, 1)
	second := filepath.Join(t.TempDir(), "hotline.yaml")
	if err := os.WriteFile(second, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if code := run(ctx, []string{"serve", "-config", second}, io.Discard, &logs, nil); code == 0 {
		t.Fatalf("a second server on the same port started:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "address already in use") {
		t.Errorf("the second server did not say why it stopped:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "interrupted") {
		t.Errorf("the second server recovered records:\n%s", logs.String())
	}
	if rows := exportRecords(t, ts.path); len(rows) != 1 || rows[0]["outcome"] != "in_progress" {
		t.Errorf("the running server's call after a second serve failed to bind: %v, want in_progress", rows)
	}
	u.hangup()
}
