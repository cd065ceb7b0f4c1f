package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestPrometheusScrapes runs a real Prometheus server on loopback, scraping the running
// hotline every second with the shipped recording and alert rules loaded, while scripted
// calls queue, get answered and abandon; then its query API must return what happened.
func TestPrometheusScrapes(t *testing.T) {
	t.Parallel()
	prom := lookTool(t, "prometheus", "prometheus")
	ts := startServer(t, queueTestConfig(t, "", "ana:en:pw-ana"))
	api := startPrometheus(t, prom, ts.addrs.HTTP)
	waitQuery(t, api, `up{job="hotline"}`, 1)

	ana := newPhone(t, ts.addrs.SIPUDP, "ana", "pw-ana", 0, 1000)
	ana.register(300)
	first := callIn(t, ts, "11", 440)
	ana.answer(ana.expectInvite(20 * time.Second))
	waitTone(t, "the first caller hears ana", first.stream, 0, 1000, 5*time.Second)
	second := callIn(t, ts, "11", 500)
	ts.waitMetric(t, `hotline_queue_waiting{queue="en"}`, 1)
	waitQuery(t, api, `hotline_queue_waiting{queue="en"}`, 1)
	waitQuery(t, api, `hotline_advocates{queue="en",language="en",state="on_call"}`, 1)
	second.hangup() // abandons
	first.hangup()
	ana.expectBye(5 * time.Second)

	waitQuery(t, api, `hotline_queue_calls_total{queue="en",result="answered"}`, 1)
	waitQuery(t, api, `hotline_queue_calls_total{queue="en",result="abandoned"}`, 1)
	waitQuery(t, api, `hotline_queue_waiting{queue="en"}`, 0)
	waitQuery(t, api, `hotline_advocates{queue="en",language="en",state="available"}`, 1)
	waitQuery(t, api, `hotline_queue_wait_seconds_count{queue="en",result="abandoned"}`, 1)
	waitQuery(t, api, `sum(hotline_calls_total{line="main"})`, 2)
	waitQuery(t, api, `hotline_sip_registrations`, 1)
	// The alert rules load and evaluate: with ana available, no advocate alert fires.
	waitQuery(t, api, `count(ALERTS{alertname="NoAdvocateAvailable",queue="en",alertstate="firing"}) or vector(0)`, 0)
}

// startPrometheus starts Prometheus scraping target every second, with the shipped rules,
// and returns the base URL of its HTTP API.
func startPrometheus(t *testing.T, bin, target string) string {
	t.Helper()
	dir := t.TempDir()
	rules, err := filepath.Abs(filepath.Join("..", "..", "deploy", "prometheus", "rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: hotline
    static_configs:
      - targets: [%q]
`, rules, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// Prometheus takes a listen address, not a listener: use a port the kernel just handed
	// out as free.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out.String())
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if r, err := http.Get(base + "/-/ready"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return base
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("prometheus not ready:\n%s", out.String())
	return ""
}

// waitQuery polls Prometheus until the instant query q returns one sample equal to want.
func waitQuery(t *testing.T, base, q string, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		v, ok, msg := queryOne(base, q)
		if ok && v == want {
			return
		}
		last = msg
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("query %s: want %v; last answer: %s", q, want, last)
}

func queryOne(base, q string) (float64, bool, string) {
	r, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return 0, false, err.Error()
	}
	defer r.Body.Close()
	var res struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(r.Body).Decode(&res); err != nil {
		return 0, false, err.Error()
	}
	if res.Status != "success" || len(res.Data.Result) != 1 {
		return 0, false, fmt.Sprintf("status %s, %d samples %s", res.Status, len(res.Data.Result), res.Error)
	}
	s, _ := res.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil, s
}
