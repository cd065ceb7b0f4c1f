package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
)

// TestMain gives the package's tests one build of the hotline binary (made on first use,
// removed at the end) and, unless -test.parallel is given, a parallelism above GOMAXPROCS:
// the end-to-end tests spend most of their time waiting for audio that plays in real time
// (a greeting lasts seconds whatever the CPU), so more of them than there are cores can wait
// at once. Tests that check timing or burn CPU do not call t.Parallel, so they run alone
// (see serial in this file).
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", strconv.Itoa(e2eParallel()))
	}
	dir, err := os.MkdirTemp("", "hotline-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// e2eParallel is how many end-to-end tests run at once by default: $HOTLINE_TEST_PARALLEL,
// or three per core: the parallel phase then keeps two cores about 55 % busy, most of the
// tests waiting for prompts; at four per core it saturated them for tens of seconds, when
// the media scheduler falls behind and the tests' tone checks may fail.
func e2eParallel() int {
	if n, err := strconv.Atoi(os.Getenv("HOTLINE_TEST_PARALLEL")); err == nil && n > 0 {
		return n
	}
	return 3 * runtime.GOMAXPROCS(0)
}

var (
	binDir   string
	binOnce  sync.Once
	binPath  string
	binError error
)

// buildBinary returns the hotline command built from this package, building it on the
// first call only; tests must not modify the file.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		bin := filepath.Join(binDir, "hotline")
		out, err := exec.Command(goTool(), "build", "-o", bin, ".").CombinedOutput()
		if err != nil {
			binError = fmt.Errorf("go build: %w\n%s", err, out)
			return
		}
		binPath = bin
	})
	if binError != nil {
		t.Fatal(binError)
	}
	return binPath
}
