package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/records"
)

func recordsConfig(t *testing.T, dir, records string) (string, *config.Config) {
	t.Helper()
	p := writeFile(t, dir, "hotline.yaml", "lines: [{number: \"18883737888\", name: main}]\nrecords:\n"+records)
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, cfg
}

// TestRecordsCommand: the server's store (opened as serve opens it: key generated, calls
// left in progress by a crash recovered) is exported by `hotline records` as CSV, filtered
// by time, with the caller as a hash only.
func TestRecordsCommand(t *testing.T) {
	t.Setenv(records.KeyEnv, "")
	dir := t.TempDir()
	db := filepath.Join(dir, "records.db")
	cfgPath, cfg := recordsConfig(t, dir, "  path: "+db+"\n  node: node-a\n")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()

	rec, err := openRecords(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(db + ".key"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated key: %v %v", fi, err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	done := rec.Begin("call-done", "main", "sip:+1 555 123 4567@carrier.example", t0)
	done.Menus("en", "help_now")
	done.Routed("default", "en")
	done.Queued("en", t0.Add(30*time.Second))
	done.Connected("maria", t0.Add(time.Minute))
	done.Ended("", t0.Add(5*time.Minute))
	if err := done.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	rec.Begin("call-cut", "main", "tel:+15551234567", t0.Add(24*time.Hour)) // never finished: the server dies
	rec.Wait()
	if err := rec.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// The next start marks the cut-off call interrupted.
	rec, err = openRecords(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec.Wait()
	if err := rec.Close(ctx); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runCmd(t, "records", "-config", cfgPath)
	if code != 0 {
		t.Fatalf("records: exit %d\n%s", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 || lines[0] != records.CSVHeader {
		t.Fatalf("records:\n%s", out)
	}
	h, _ := os.ReadFile(db + ".key")
	hasher, _ := records.NewHasher([]byte(strings.TrimSpace(string(h))), config.CountryCode)
	for i, want := range []string{"call-done,node-a,main," + hasher.Hash("+15551234567"), "call-cut,node-a,main," + hasher.Hash("+15551234567")} {
		if !strings.HasPrefix(lines[i+1], want) {
			t.Errorf("row %d: %s, want it to start %s", i+1, lines[i+1], want)
		}
	}
	if !strings.HasSuffix(lines[1], ",maria,completed,") || !strings.HasSuffix(lines[2], ",interrupted,") {
		t.Errorf("outcomes:\n%s", out)
	}
	if strings.Contains(out, "5551234567") {
		t.Error("the export has the caller's number")
	}

	code, out, _ = runCmd(t, "records", "-config", cfgPath, "-since", "2026-03-02T00:00:00Z", "-until", "2026-03-03T00:00:00Z")
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, "call-cut") {
		t.Errorf("records -since -until: exit %d\n%s", code, out)
	}
}

// TestRecordsCommandErrors: bad flags, no database and no records are errors that say so.
func TestRecordsCommandErrors(t *testing.T) {
	dir := t.TempDir()
	cfgPath, _ := recordsConfig(t, dir, "  path: "+filepath.Join(dir, "none.db")+"\n")
	nonePath := writeFile(t, dir, "none.yaml", "lines: [{number: \"18883737888\"}]\nrecords: {driver: none}\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-config", cfgPath}, "no call records database at " + filepath.Join(dir, "none.db")},
		{[]string{"-config", cfgPath, "-since", "last week"}, `-since: "last week" is neither a date`},
		{[]string{"-config", cfgPath, "-until", "2026-02-30"}, `-until: "2026-02-30" is neither`},
		{[]string{"-config", cfgPath, "-since", "2026-03-02", "-until", "2026-03-01"}, "-since must be before -until"},
		{[]string{"-config", nonePath}, "records.driver is none"},
		{[]string{"-config", cfgPath, "extra"}, `unexpected argument "extra"`},
	} {
		code, _, errOut := runCmd(t, append([]string{"records"}, tc.args...)...)
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("records %v: exit %d, %q; want 1 and %q", tc.args, code, errOut, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "none.db")); err == nil {
		t.Error("the records command created a database")
	}
}

// TestOpenRecordsKeys: driver none records nothing; postgres without a key is refused
// before any connection (each server would hash with a key of its own); the environment's
// key wins.
func TestOpenRecordsKeys(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	t.Setenv(records.KeyEnv, "")

	_, cfg := recordsConfig(t, dir, "  driver: none\n")
	if rec, err := openRecords(cfg, log, nil); rec != nil || err != nil {
		t.Errorf("driver none: %v %v", rec, err)
	}
	_, cfg = recordsConfig(t, dir, "  driver: postgres\n  dsn: \"host=127.0.0.1 port=1 connect_timeout=1\"\n")
	if _, err := openRecords(cfg, log, nil); err == nil || !strings.Contains(err.Error(), records.KeyEnv) {
		t.Errorf("postgres without a key: %v", err)
	}
	t.Setenv(records.KeyEnv, "an environment key of some length")
	_, cfg = recordsConfig(t, dir, "  path: "+filepath.Join(dir, "r.db")+"\n")
	_, cfg = recordsConfig(t, dir, "  driver: postgres\n  dsn: \"host=127.0.0.1 port=x\"\n")
	if _, err := openRecords(cfg, log, nil); err == nil || !strings.Contains(err.Error(), "DSN does not parse") {
		t.Errorf("postgres with a DSN that does not parse: %v", err)
	}
	_, cfg = recordsConfig(t, dir, "  path: "+filepath.Join(dir, "r.db")+"\n")
	rec, err := openRecords(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "r.db.key")); err == nil {
		t.Error("a key was generated although the environment has one")
	}
}

// TestCheckSpoolDirectory: hotline check warns when the spool's directory does not exist
// (the server would still start, holding waiting records in memory only).
func TestCheckSpoolDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfgPath, _ := recordsConfig(t, dir, "  path: "+filepath.Join(dir, "r.db")+"\n  spool: /nonexistent/records.spool\n")
	code, out, errOut := runCmd(t, "check", "-config", cfgPath)
	if code != 0 || !strings.Contains(out, "warning: records.spool: no directory /nonexistent here") {
		t.Fatalf("check: exit %d\n%s%s", code, out, errOut)
	}
	cfgPath, _ = recordsConfig(t, dir, "  path: "+filepath.Join(dir, "r.db")+"\n")
	if code, out, _ := runCmd(t, "check", "-config", cfgPath); code != 0 || strings.Contains(out, "records.spool") {
		t.Fatalf("check with the default spool: exit %d\n%s", code, out)
	}
}
