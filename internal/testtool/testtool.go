// Package testtool holds what several packages' tests share: finding the command-line
// tools they drive, and reading deploy/metrics.txt, the list of the metrics the dashboard
// and the alert rules may use.
package testtool

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// RequireEnv, set to 1 (as CI does), makes a missing tool a failure instead of a skip.
const RequireEnv = "HOTLINE_REQUIRE_TOOLS"

// LookTool returns the path of a command-line tool a test needs (from the Debian package
// pkg). Without it the test is skipped, unless $HOTLINE_REQUIRE_TOOLS is 1.
func LookTool(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%s=1 but %s is not installed: %v", RequireEnv, name, err)
		}
		t.Skipf("%s not installed (apt-get install %s); set %s=1 to fail instead", name, pkg, RequireEnv)
	}
	return path
}

// MetricList reads a metrics list ("name type" lines; # comments; types counter, gauge,
// histogram or summary; each name once) into a map from name to type.
func MetricList(t testing.TB, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 || !slices.Contains([]string{"counter", "gauge", "histogram", "summary"}, f[1]) {
			t.Fatalf("%s:%d: want \"name counter|gauge|histogram|summary\", got %q", path, i+1, line)
		}
		if _, dup := m[f[0]]; dup {
			t.Fatalf("%s:%d: %s listed twice", path, i+1, f[0])
		}
		m[f[0]] = f[1]
	}
	return m
}
