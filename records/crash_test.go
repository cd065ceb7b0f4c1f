package records

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// crashEnv tells a re-executed test binary to be the crash helper: "sqlite PATH" or
// "postgres DSN".
const crashEnv = "HOTLINE_RECORDS_CRASH_HELPER"

// crashHelper, in a test binary started by TestCrash, writes calls as a server would,
// without end: each call is started, then finished three calls later, so that three are in
// progress at any time. It prints "started ID" and "finished ID" once each write is
// committed, and runs until it is killed (or for a minute, should the test not kill it).
// It reports whether it ran.
func crashHelper() bool {
	spec := os.Getenv(crashEnv)
	if spec == "" {
		return false
	}
	driver, loc, _ := strings.Cut(spec, " ")
	viaRecorder := false
	if d, ok := strings.CutPrefix(driver, "recorder-"); ok {
		driver, viaRecorder = d, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	open := OpenSQLite
	if driver == "postgres" {
		open = OpenPostgres
	}
	db, err := open(ctx, loc)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	say := func(format string, args ...any) {
		fmt.Fprintf(out, format+"\n", args...)
		out.Flush()
	}
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if viaRecorder {
		recorderCrashHelper(ctx, db, start, say)
	}
	if err := db.Heartbeat(ctx, "crash-node", start); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for i := 0; ctx.Err() == nil; i++ {
		at := start.Add(time.Duration(i) * time.Second)
		id := fmt.Sprintf("call-%05d", i)
		if err := db.Start(ctx, Record{CallID: id, Node: "crash-node", Line: "main", Start: at}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		say("started %s", id)
		if i < 3 {
			continue
		}
		r := sample(fmt.Sprintf("call-%05d", i-3), start.Add(time.Duration(i-3)*time.Second))
		r.Node = "crash-node"
		if err := db.Finish(ctx, r); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		say("finished %s", r.CallID)
	}
	os.Exit(3)
	return true
}

// recorderCrashHelper is crashHelper through a Recorder: each call is begun, taken through
// its milestones, and finished three calls later; "finished" is printed once Finish has
// returned nil (committed by the group-committing writer).
func recorderCrashHelper(ctx context.Context, db *DB, start time.Time, say func(string, ...any)) {
	h, err := NewHasher([]byte("a crash test key of some length"), "1")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	rec := NewRecorder(db, Options{Hasher: h, Node: "crash-node", Heartbeat: time.Hour, Now: func() time.Time { return start }})
	var open []*Call
	for i := 0; ctx.Err() == nil; i++ {
		at := start.Add(time.Duration(i) * time.Second)
		c := rec.Begin(fmt.Sprintf("call-%05d", i), "main", "", at)
		c.Answered(at)
		c.Queued("en", at.Add(40*time.Second))
		rec.Wait()
		say("started call-%05d", i)
		open = append(open, c)
		if len(open) <= 3 {
			continue
		}
		c, open = open[0], open[1:]
		c.Connected("maria", c.Record().Start.Add(70*time.Second))
		c.Ended("", c.Record().Start.Add(10*time.Minute))
		if err := c.Finish(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		say("finished %s", c.Record().CallID)
	}
	os.Exit(3)
}

// TestCrash: kill -9 while calls are being written loses no record of a finished call,
// and the calls that were in progress become interrupted at the next start; SQLite and
// PostgreSQL, written directly and through a Recorder (its group commit: a call whose
// Finish returned is committed).
func TestCrash(t *testing.T) {
	for _, b := range backends {
		for _, via := range []string{"", "recorder-"} {
			t.Run(via+b.name, func(t *testing.T) { testCrash(t, b, via) })
		}
	}
}

func testCrash(t *testing.T, b backend, via string) {
	loc := b.location(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+via+b.name+" "+loc)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started, finished := map[string]bool{}, map[string]bool{}
	sc := bufio.NewScanner(stdout)
	for len(finished) < 40 && sc.Scan() {
		what, id, _ := strings.Cut(sc.Text(), " ")
		if what == "started" {
			started[id] = true
		} else {
			finished[id] = true
		}
	}
	// Killed in the middle of writing: the helper never stops between writes.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if len(finished) < 40 {
		t.Fatalf("the helper stopped after %d finished calls: %v\n%s", len(finished), err, stderr.String())
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the helper was not killed: %v\n%s", err, stderr.String())
	}

	ctx := ctxT(t)
	db, err := b.open(ctx, loc)
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer db.Close()
	now := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	n, err := db.RecoverInterrupted(ctx, "crash-node", now)
	if err != nil {
		t.Fatal(err)
	}
	got := byID(t, db)
	for id := range finished {
		if r := got[id]; r.Outcome != OutcomeCompleted || r.Advocate != "maria" {
			t.Errorf("finished call %s: %+v", id, r)
		}
	}
	interrupted := 0
	for id, r := range got {
		switch r.Outcome {
		case OutcomeCompleted:
		case OutcomeInterrupted:
			interrupted++
			if finished[id] {
				t.Errorf("finished call %s recovered as interrupted", id)
			}
		default:
			t.Errorf("call %s: outcome %s after recovery", id, r.Outcome)
		}
	}
	for id := range started {
		if _, ok := got[id]; !ok {
			t.Errorf("started call %s has no record", id)
		}
	}
	// Three calls are in progress at every instant the helper can be killed in.
	if interrupted != n || n < 3 {
		t.Fatalf("%d interrupted, RecoverInterrupted said %d; want the same, at least 3", interrupted, n)
	}
	t.Logf("%d calls written before the kill, %d finished, %d interrupted", len(got), len(got)-n, n)
}
