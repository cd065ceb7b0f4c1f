package main

// The server's /metrics, scraped during and after a real call, must pass Prometheus's own
// linter (promtool check metrics) and export only metrics that deploy/metrics.txt lists,
// with the types listed there: the shipped dashboard and alert rules are checked against
// that list (deploy/deploy_test.go), so a metric renamed here cannot silently empty a panel
// or disarm an alert.

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotline-project/hotline/internal/testtool"
)

// lookTool returns the path of a tool a test needs; see testtool.LookTool.
func lookTool(t *testing.T, name, pkg string) string {
	t.Helper()
	return testtool.LookTool(t, name, pkg)
}

// TestMetricsPassPromtool places a call on loopback and lints the scrape taken mid-call and
// the one taken after it.
func TestMetricsPassPromtool(t *testing.T) {
	t.Parallel()
	promtool := lookTool(t, "promtool", "prometheus")
	known := readMetricList(t, filepath.Join("..", "..", "deploy", "metrics.txt"))

	ts := startServer(t, testConfig)
	u := newUAC(t, ts.addrs.SIPUDP)
	stream := u.receiveRTP()
	res := u.dial("0 101")
	_, media := answer(t, res)
	var seq uint16
	var rtpTS uint32
	u.sendSilence(media, 5, &seq, &rtpTS)
	stream.waitFor(t, "the greeting", mustPrompt(t, "en", "greeting").PCMU[:1600], 5*time.Second)
	ts.waitMetric(t, "hotline_rtp_packets_received_total", 5)

	during := ts.scrape(t)
	if v := metricValue(during, `hotline_calls_active{line="main"}`); v != 1 {
		t.Fatalf("mid-call scrape: hotline_calls_active = %v, want 1", v)
	}
	if v := metricValue(during, "hotline_rtp_pacing_error_seconds_count"); v <= 0 {
		t.Fatalf("mid-call scrape: hotline_rtp_pacing_error_seconds_count = %v, want > 0", v)
	}

	u.hangup()
	ts.waitMetric(t, `hotline_calls_total{line="main",outcome="caller_hangup"}`, 1)
	after := ts.scrape(t)

	for _, s := range []struct{ name, text string }{{"mid-call", during}, {"after the call", after}} {
		t.Run(s.name, func(t *testing.T) {
			if err := promtoolLint(promtool, s.text); err != nil {
				t.Error(err)
			}
			for _, p := range metricsNotListed(known, s.text) {
				t.Error(p)
			}
		})
	}
}

// promtoolLint pipes a scrape to promtool check metrics, which parses the exposition format
// and lints names, units, help texts and counter suffixes; it returns what promtool reported.
func promtoolLint(promtool, text string) error {
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if s := strings.TrimSpace(out.String()); err != nil || s != "" {
		return fmt.Errorf("promtool check metrics: %v: %s", err, s)
	}
	return nil
}

// metricsNotListed returns a problem for every hotline_* family in a scrape that the list
// lacks or types differently, and one if the scrape has too few families to be real.
func metricsNotListed(known map[string]string, text string) []string {
	var problems []string
	families := 0
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || f[0] != "#" || f[1] != "TYPE" || !strings.HasPrefix(f[2], "hotline_") {
			continue
		}
		families++
		want, ok := known[f[2]]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("the server exports %s (%s), which deploy/metrics.txt does not list: add it there, and to the dashboard or rules if on-call should see it", f[2], f[3]))
		case want != f[3]:
			problems = append(problems, fmt.Sprintf("%s is a %s, deploy/metrics.txt says %s", f[2], f[3], want))
		}
	}
	if families < 5 {
		problems = append(problems, fmt.Sprintf("only %d hotline_* families in the scrape", families))
	}
	return problems
}

// readMetricList reads deploy/metrics.txt; see testtool.MetricList.
func readMetricList(t *testing.T, path string) map[string]string {
	t.Helper()
	return testtool.MetricList(t, path)
}

// TestMetricsNotListed shows the list check catches an unlisted metric, a wrong type and an
// empty scrape, so the call test above can fail.
func TestMetricsNotListed(t *testing.T) {
	t.Parallel()
	known := map[string]string{"hotline_a_total": "counter", "hotline_b": "gauge", "hotline_c": "gauge", "hotline_d": "gauge", "hotline_e": "gauge"}
	base := "# HELP hotline_b B.\n# TYPE hotline_b gauge\n# TYPE hotline_c gauge\n# TYPE hotline_d gauge\n# TYPE hotline_e gauge\n"
	tests := []struct {
		name, text string
		want       int
	}{
		{"all listed", base + "# TYPE hotline_a_total counter\n# TYPE go_goroutines gauge\n", 0},
		{"unlisted", base + "# TYPE hotline_x_total counter\n", 1},
		{"wrong type", base + "# TYPE hotline_a_total gauge\n", 1},
		{"too few", "# TYPE hotline_b gauge\n", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := metricsNotListed(known, tc.text); len(got) != tc.want {
				t.Errorf("got %d problems, want %d: %q", len(got), tc.want, got)
			}
		})
	}
}

// TestPromtoolLintFails shows promtoolLint reports what promtool finds.
func TestPromtoolLintFails(t *testing.T) {
	t.Parallel()
	promtool := lookTool(t, "promtool", "prometheus")
	tests := []struct {
		name, text string
		fails      bool
	}{
		{"good", "# HELP hotline_x_total Things.\n# TYPE hotline_x_total counter\nhotline_x_total 1\n", false},
		{"counter without _total", "# HELP hotline_x Things.\n# TYPE hotline_x counter\nhotline_x 1\n", true},
		{"no help", "# TYPE hotline_x_total counter\nhotline_x_total 1\n", true},
		{"not the exposition format", "hotline_x_total{ 1\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := promtoolLint(promtool, tc.text); (err != nil) != tc.fails {
				t.Errorf("error = %v, want failure %v", err, tc.fails)
			}
		})
	}
}
