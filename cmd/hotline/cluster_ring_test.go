package main

import (
	"net"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestAvailableToRing measures the time from an advocate made available (the admin API
// request sent) to her phone's INVITE, with a caller waiting: on one node, and on three
// (the advocate registered through A and made available there, the caller on B: the pause's
// end replicates to B, B claims her through the log, then rings). Samples:
// $HOTLINE_RING_SAMPLES (default 3); the figures go to the test log (README "Cluster").
func TestAvailableToRing(t *testing.T) {
	if testing.Short() {
		t.Skip("callers and a cluster take seconds")
	}
	samples := 3
	if n, err := strconv.Atoi(os.Getenv("HOTLINE_RING_SAMPLES")); err == nil && n > 0 {
		samples = n
	}
	tokenFile := writeFile(t, t.TempDir(), "token", "admin-secret\n")
	cfg := queueTestConfig(t, "admin:\n  token_file: "+tokenFile+"\n", "ana:es:pw-ana")
	measure := func(t *testing.T, advNode, callNode *testServer, others ...*testServer) []time.Duration {
		t.Helper()
		ana := newPhone(t, advNode.addrs.SIPUDP, "ana", "pw-ana", 8, 1000)
		ana.viaReplies = true
		ana.register(300)
		api := "http://" + advNode.addrs.HTTP + "/admin/v1/advocates/ana/state"
		var lat []time.Duration
		for range samples {
			if code, body := httpDo(t, "PUT", api, "admin-secret", `{"state":"paused","reason":"meal"}`); code != 200 {
				t.Fatalf("pause: %d %s", code, body)
			}
			for _, n := range append([]*testServer{callNode}, others...) {
				n.waitMetric(t, `hotline_advocates{language="es",queue="es",state="paused"}`, 1)
			}
			c := callIn(t, callNode, "21", 440)
			callNode.waitMetric(t, `hotline_queue_waiting{queue="es"}`, 1)
			start := time.Now()
			done := make(chan struct{})
			go func() {
				defer close(done)
				httpDo(t, "PUT", api, "admin-secret", `{"state":"available"}`)
			}()
			inv := ana.expectInvite(10 * time.Second)
			lat = append(lat, time.Since(start))
			<-done
			if host, _, _ := net.SplitHostPort(callNode.addrs.SIPUDP); inv.Via().Host != host {
				t.Fatalf("rung by %s, not by the caller's node %s", inv.Via().Host, host)
			}
			c.hangup()
			ana.expectCancel(inv, 5*time.Second)
			callNode.waitMetric(t, `hotline_queue_waiting{queue="es"}`, 0)
		}
		return lat
	}
	report := func(t *testing.T, what string, lat []time.Duration) {
		slices.Sort(lat)
		t.Logf("%s: %d samples, median %v, max %v", what, len(lat), lat[len(lat)/2].Round(100*time.Microsecond),
			lat[len(lat)-1].Round(100*time.Microsecond))
		if lat[len(lat)/2] > 2*time.Second {
			t.Errorf("%s: median %v from available to ringing", what, lat[len(lat)/2])
		}
	}
	t.Run("one node", func(t *testing.T) {
		ts := startServerLogging(t, cfg, "info")
		report(t, "one node", measure(t, ts, ts))
	})
	t.Run("three nodes", func(t *testing.T) {
		nodes := startCluster(t, cfg, "127.0.0.21", "127.0.0.22", "127.0.0.23")
		report(t, "three nodes, advocate on A, caller on B", measure(t, nodes[0].testServer, nodes[1].testServer, nodes[2].testServer))
	})
}
