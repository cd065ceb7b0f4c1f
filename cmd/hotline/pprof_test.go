package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestPprofFlag: profiles are served only with -pprof, only on the address given, never
// on the metrics address (issue 9).
func TestPprofFlag(t *testing.T) {
	t.Parallel()
	get := func(url string) int {
		t.Helper()
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}

	off := startServer(t, testConfig)
	if strings.Contains(off.logs.String(), "serving Go profiles") {
		t.Fatal("profiles served without -pprof")
	}
	if code := get("http://" + off.addrs.HTTP + "/debug/pprof/cmdline"); code == http.StatusOK {
		t.Fatal("the metrics address serves profiles")
	}

	on := startServer(t, testConfig, "-pprof", "127.0.0.1:0")
	m := regexp.MustCompile(`msg="serving Go profiles" pprof=(127\.0\.0\.1:\d+)`).FindStringSubmatch(on.logs.String())
	if m == nil {
		t.Fatalf("no pprof address in the logs:\n%s", on.logs.String())
	}
	if code := get("http://" + m[1] + "/debug/pprof/cmdline"); code != http.StatusOK {
		t.Fatalf("GET /debug/pprof/cmdline on -pprof address: %d, want 200", code)
	}
	if code := get("http://" + on.addrs.HTTP + "/debug/pprof/cmdline"); code == http.StatusOK {
		t.Fatal("the metrics address serves profiles with -pprof on")
	}
}
