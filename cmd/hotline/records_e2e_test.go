package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotline-project/hotline/records"
)

// Issue 15: records never decide whether a call is answered. The real server, with its
// SQLite file locked by another connection (BEGIN IMMEDIATE, as a backup or an operator's
// sqlite3 holds it): at start-up it starts and answers (it used to exit with "migrate:
// database is locked", a crash loop under systemd), and during calls the calls go on; both
// say so on /metrics and /readyz, and the records are complete once the lock is gone. The
// other faults (full, read-only, PostgreSQL down) are in records/fault_test.go.
func TestRecordsStoreLockedE2E(t *testing.T) {
	t.Parallel()
	for _, at := range []string{"start-up", "during calls"} {
		t.Run(at, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "records.db")
			db, err := records.OpenSQLite(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			lock := func() *sql.Conn {
				locker, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { locker.Close() })
				conn, err := locker.Conn(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
					t.Fatal(err)
				}
				return conn
			}
			var conn *sql.Conn
			if at == "start-up" {
				conn = lock()
			}
			ts := startServer(t, strings.Replace(testConfig, "RECORDS_PATH", path, 1))
			if at == "during calls" {
				ts.waitMetric(t, "hotline_records_store_up", 1)
				conn = lock()
			}

			// Two calls, answered and heard; one ends while the store is locked.
			var seq uint16 = 1
			var rtpTS uint32 = 1000
			for range 2 {
				u := newUAC(t, ts.addrs.SIPUDP)
				stream := u.receiveRTP()
				_, media := answer(t, u.dial("0"))
				u.sendSilence(media, 3, &seq, &rtpTS)
				stream.waitFor(t, "the greeting", mustPrompt(t, "en", "greeting").PCMU[:1600], 5*time.Second)
				u.hangup()
			}
			ts.waitMetric(t, `hotline_calls_total{line="main",outcome="caller_hangup"}`, 2)
			// SQLite gives up on the lock after its busy timeout (3 s).
			deadline := time.Now().Add(10 * time.Second)
			for {
				m := ts.scrape(t)
				if metricValue(m, `hotline_records_store_errors_total{op="write"}`)+
					metricValue(m, `hotline_records_store_errors_total{op="open"}`) > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no store error counted")
				}
				time.Sleep(50 * time.Millisecond)
			}
			ts.waitMetric(t, "hotline_records_store_up", 0)
			if code, body := readyz(t, ts); code != 200 || !strings.Contains(body, "records: degraded") {
				t.Errorf("/readyz with the store locked: %d %q; want 200 and the degraded detail", code, body)
			}
			if !strings.Contains(ts.logs.String(), "call records store unavailable") {
				t.Error("the log does not say the store is unavailable")
			}

			if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
				t.Fatal(err)
			}
			ts.waitMetric(t, "hotline_records_store_up", 1)
			ts.waitMetric(t, "hotline_records_spooled", 0)
			if code, body := readyz(t, ts); code != 200 || body != "ready\n" {
				t.Errorf("/readyz with the store back: %d %q", code, body)
			}
			db, err = records.OpenSQLite(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			recs, err := db.Records(context.Background(), time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 2 {
				t.Fatalf("%d records, want 2: %+v", len(recs), recs)
			}
			for _, r := range recs {
				if r.Outcome != records.OutcomeMenuHangup || r.Answered.IsZero() || r.End.IsZero() {
					t.Errorf("record %+v", r)
				}
			}
		})
	}
}

func readyz(t *testing.T, ts *testServer) (int, string) {
	t.Helper()
	res, err := http.Get("http://" + ts.addrs.HTTP + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestRecordsAttemptsE2E: every call attempt that reached a line is in the records: a
// call refused at max_calls is counted (per minute and reason), a cancelled call and one
// never acknowledged get rows of their own with their outcomes (issue 15: 453 calls
// against 114 rows).
func TestRecordsAttemptsE2E(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "records.db")
	cfg := strings.Replace(testConfig, "  ack_timeout: 2s\n", "  ack_timeout: 1s\n  max_calls: 1\n", 1)
	ts := startServer(t, strings.Replace(cfg, "RECORDS_PATH", path, 1))

	// Never acknowledged: the only place is taken until the server gives up on the ACK...
	noAck := newUAC(t, ts.addrs.SIPUDP)
	noAck.invite(hotlineNumber, sdpOffer(noAck.rtpPort(), "0", ""))
	noAck.expectResponse("INVITE", 200, 2*time.Second)
	// ...so this one is refused for capacity.
	refused := newUAC(t, ts.addrs.SIPUDP)
	refused.invite(hotlineNumber, sdpOffer(refused.rtpPort(), "0", ""))
	refused.expectResponse("INVITE", 503, 2*time.Second)
	refused.ack(hotlineNumber, "")
	ts.waitMetric(t, `hotline_calls_total{line="main",outcome="no_ack"}`, 1)
	ts.waitMetric(t, `hotline_calls_active{line="main"}`, 0)

	// Cancelled: the caller hangs up with BYE before its ACK (as a call set up and dropped
	// at once does).
	cancelled := newUAC(t, ts.addrs.SIPUDP)
	cancelled.invite(hotlineNumber, sdpOffer(cancelled.rtpPort(), "0", ""))
	cancelled.expectResponse("INVITE", 200, 2*time.Second)
	cancelled.nextRequest("BYE", hotlineNumber, "", "")
	ts.waitMetric(t, `hotline_calls_active{line="main"}`, 0)
	ts.stop(t) // the refused count is written at the latest when the server stops

	db, err := records.OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs, err := db.Records(context.Background(), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[records.Outcome]int{}
	for _, r := range recs {
		outcomes[r.Outcome]++
		if r.Line != "main" || r.End.IsZero() || !r.Answered.IsZero() {
			t.Errorf("unanswered attempt's record: %+v", r)
		}
	}
	if outcomes[records.OutcomeNoAck] != 1 || outcomes[records.OutcomeCancelled]+outcomes[records.OutcomeMenuHangup] != 1 || len(recs) != 2 {
		t.Errorf("records by outcome %v, want one no_ack and one cancelled", outcomes)
	}
	as, err := db.Attempts(context.Background(), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].Outcome != records.OutcomeRefused || as[0].Reason != "capacity" || as[0].Count != 1 || as[0].Line != "main" {
		t.Errorf("attempt counts %+v, want one refused for capacity", as)
	}
}

// TestRecordsReadOnlyStartE2E: the server starts on a read-only file system (no database,
// no key file, no spool can be written: it used to exit with "read-only file system"),
// answers a call, and writes its record once the file system is writable again. Needs root
// to mount a tmpfs; skipped elsewhere.
func TestRecordsReadOnlyStartE2E(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	mount := func(args ...string) error {
		out, err := exec.Command("mount", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("mount %v: %w: %s", args, err, out)
		}
		return nil
	}
	if err := mount("-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", dir); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	if err := mount("-o", "remount,ro", dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "records.db")
	ts := startServer(t, strings.Replace(testConfig, "RECORDS_PATH", path, 1))
	u := newUAC(t, ts.addrs.SIPUDP)
	stream := u.receiveRTP()
	_, media := answer(t, u.dial("0"))
	var seq uint16 = 1
	var rtpTS uint32 = 1000
	u.sendSilence(media, 3, &seq, &rtpTS)
	stream.waitFor(t, "the greeting", mustPrompt(t, "en", "greeting").PCMU[:1600], 5*time.Second)
	u.hangup()
	ts.waitMetric(t, `hotline_calls_total{line="main",outcome="caller_hangup"}`, 1)
	ts.waitMetric(t, "hotline_records_store_up", 0)
	// In memory (the spool's disk is read-only too): the call's record, behind the start's
	// recovery of calls an earlier run left in progress.
	ts.waitMetric(t, "hotline_records_queued", 2)
	if !strings.Contains(ts.logs.String(), "temporary key") {
		t.Error("the log does not say callers are hashed with a temporary key")
	}
	if err := mount("-o", "remount,rw", dir); err != nil {
		t.Fatal(err)
	}
	ts.waitMetric(t, "hotline_records_store_up", 1)
	ts.waitMetric(t, "hotline_records_queued", 0)
	db, err := records.OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs, err := db.Records(context.Background(), time.Time{}, time.Time{})
	if err != nil || len(recs) != 1 || recs[0].Outcome != records.OutcomeMenuHangup {
		t.Fatalf("records %+v, %v; want the call's", recs, err)
	}
}

// TestRecordsPostgresDownE2E: with records in PostgreSQL and the server down (nothing
// listens at the DSN's address), the server starts, answers a call and spools its record;
// it used to exit. Writing the spool when PostgreSQL is back is
// records.TestFaultPostgresDown's.
func TestRecordsPostgresDownE2E(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now: PostgreSQL is down
	key := writeFile(t, dir, "records.key", "a key of some length for the test\n")
	cfg := strings.Replace(testConfig, "  path: RECORDS_PATH\n", fmt.Sprintf(
		"  driver: postgres\n  dsn: \"host=127.0.0.1 port=%d dbname=hotline user=hotline connect_timeout=1\"\n"+
			"  hash_key_file: %s\n  spool: %s\n", port, key, filepath.Join(dir, "records.spool")), 1)
	ts := startServer(t, cfg)
	u := newUAC(t, ts.addrs.SIPUDP)
	stream := u.receiveRTP()
	_, media := answer(t, u.dial("0"))
	var seq uint16 = 1
	var rtpTS uint32 = 1000
	u.sendSilence(media, 3, &seq, &rtpTS)
	stream.waitFor(t, "the greeting", mustPrompt(t, "en", "greeting").PCMU[:1600], 5*time.Second)
	u.hangup()
	ts.waitMetric(t, `hotline_calls_total{line="main",outcome="caller_hangup"}`, 1)
	ts.waitMetric(t, "hotline_records_store_up", 0)
	// The start's recovery, the call's progress and its end (at least: milestones spooled
	// between batches are lines of their own).
	deadline := time.Now().Add(10 * time.Second)
	for metricValue(ts.scrape(t), "hotline_records_spooled") < 3 {
		if time.Now().After(deadline) {
			t.Fatal("the call's record was not spooled")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := readyz(t, ts); code != 200 || !strings.Contains(body, "records: degraded") {
		t.Errorf("/readyz: %d %q", code, body)
	}
	ts.stop(t)
	spool, err := os.ReadFile(filepath.Join(dir, "records.spool"))
	if err != nil || !strings.Contains(string(spool), `{"k":2,"r":{"CallID":`) || strings.Contains(string(spool), strings.TrimPrefix(u.from, "+1")) {
		t.Fatalf("spool after stop: %v\n%s", err, spool)
	}
}

// TestRecordsOffNoMetrics: with records.driver none there is no store to report on: no
// hotline_records_* series (RecordsStoreDown would fire on a store that is not there), and
// /readyz has no records line.
func TestRecordsOffNoMetrics(t *testing.T) {
	t.Parallel()
	ts := startServer(t, strings.Replace(testConfig, "  path: RECORDS_PATH\n", "  driver: none\n", 1))
	if m := ts.scrape(t); strings.Contains(m, "hotline_records_") {
		t.Errorf("records metrics with driver none:\n%s", m)
	}
	if code, body := readyz(t, ts); code != 200 || body != "ready\n" {
		t.Errorf("/readyz: %d %q", code, body)
	}
}
