package testtool

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// AloneEnv names a file to use as the lock of Alone instead of the default in the
// temporary directory (for example one per checkout, when several are tested at once and
// ought not to wait for each other).
const AloneEnv = "HOTLINE_TEST_LOCK"

// Alone holds, until the test ends, the exclusive side of one lock shared by every test
// process of this module running on the machine (an flock(2) on a file in the temporary
// directory). `go test ./...` runs two or more packages' test binaries at once; a test that
// checks wall-clock timing (RTP pacing, how fast an answer comes) takes it, so that it never
// overlaps another such test or one that burns the CPU (Heavy), in any package. Within a
// package, such a test should not call t.Parallel beside CPU-heavy tests either. It logs
// how long it waited when that was long.
func Alone(t testing.TB) {
	t.Helper()
	hold(t, syscall.LOCK_EX)
}

// Heavy holds the shared side of Alone's lock until the test ends: a test that burns the
// CPU for seconds (a flood, an hour of rendered speech) may run beside other heavy tests,
// never beside a timing check.
func Heavy(t testing.TB) {
	t.Helper()
	hold(t, syscall.LOCK_SH)
}

func hold(t testing.TB, how int) {
	t.Helper()
	path := os.Getenv(AloneEnv)
	if path == "" {
		path = filepath.Join(os.TempDir(), "hotline-test-alone.lock")
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatalf("test lock: %v", err)
	}
	start := time.Now()
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		t.Fatalf("test lock %s: %v", path, err)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Logf("waited %v for the other timing-sensitive or CPU-heavy tests (%s)", waited.Round(time.Millisecond), path)
	}
	t.Cleanup(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}
