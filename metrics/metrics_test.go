package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMethodLabelsAreBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.Request("INVITE")
	m.Request("X-SCANNER-1")
	m.Request("X-SCANNER-2")
	m.Response("FROB", 501)
	want := `
# HELP hotline_sip_requests_total SIP requests received, by method.
# TYPE hotline_sip_requests_total counter
hotline_sip_requests_total{method="INVITE"} 1
hotline_sip_requests_total{method="other"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "hotline_sip_requests_total"); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.sipResponses.WithLabelValues("other", "501")); got != 1 {
		t.Fatalf("responses{other,501} = %v", got)
	}
}

func TestCallsAndRTP(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.CallStarted("main")
	m.CallStarted("main")
	m.CallEnded("main", "caller_hangup")
	m.ObservePacing(300 * time.Microsecond)
	m.WatchRTP(func() RTPTotals {
		return RTPTotals{Sent: 10, Received: 7, DroppedForeign: 2, DroppedInvalid: 1, DroppedLearning: 5, LearnResets: 3}
	})
	want := `
# HELP hotline_calls_active Calls in progress, by line.
# TYPE hotline_calls_active gauge
hotline_calls_active{line="main"} 1
# HELP hotline_calls_total Calls that ended, by line and outcome.
# TYPE hotline_calls_total counter
hotline_calls_total{line="main",outcome="caller_hangup"} 1
# HELP hotline_rtp_learning_resets_total Times a stream on probation to become a call's RTP source was interrupted by another source's packets: attempted takeovers, or two sources competing for a port.
# TYPE hotline_rtp_learning_resets_total counter
hotline_rtp_learning_resets_total 3
# HELP hotline_rtp_packets_dropped_total RTP packets dropped, by reason: foreign_source, learning and invalid are received packets refused (from a source other than the learned one; not used while the source was being learned; malformed); late are outgoing frames skipped because sending fell behind.
# TYPE hotline_rtp_packets_dropped_total counter
hotline_rtp_packets_dropped_total{reason="foreign_source"} 2
hotline_rtp_packets_dropped_total{reason="invalid"} 1
hotline_rtp_packets_dropped_total{reason="late"} 0
hotline_rtp_packets_dropped_total{reason="learning"} 5
# HELP hotline_rtp_packets_sent_total RTP packets sent.
# TYPE hotline_rtp_packets_sent_total counter
hotline_rtp_packets_sent_total 10
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"hotline_calls_active", "hotline_calls_total", "hotline_rtp_packets_dropped_total", "hotline_rtp_learning_resets_total", "hotline_rtp_packets_sent_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.pacingError); n != 1 {
		t.Fatalf("pacing histogram series = %d", n)
	}
}

func TestNilRegistererWorks(t *testing.T) {
	m := New(nil)
	m.Request("INVITE")
	m.CallStarted("main")
	m.CallEnded("main", "x")
	m.WatchRTP(func() RTPTotals { return RTPTotals{} })
}

func TestHealthEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg)
	h := &Health{}
	srv := httptest.NewServer(Handler(reg, h))
	defer srv.Close()
	get := func(path string) int {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if c := get("/healthz"); c != 200 {
		t.Errorf("/healthz = %d", c)
	}
	if c := get("/readyz"); c != 503 {
		t.Errorf("/readyz before ready = %d", c)
	}
	h.SetReady(true)
	if c := get("/readyz"); c != 200 {
		t.Errorf("/readyz when ready = %d", c)
	}
	if c := get("/metrics"); c != 200 {
		t.Errorf("/metrics = %d", c)
	}
	if c := get("/debug/pprof/"); c != 404 {
		t.Errorf("unknown path = %d", c)
	}
}

func TestAuthAndRegistrations(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.AuthFailure("bad_credentials")
	m.AuthFailure("bad_credentials")
	m.AuthFailure("stale")
	m.AuthFailure("alice") // not a reason: never a label value
	m.Registrations(3)
	m.Registrations(2)
	want := `
# HELP hotline_sip_registrations Registered contacts of advocates' phones.
# TYPE hotline_sip_registrations gauge
hotline_sip_registrations 2
# HELP hotline_sip_auth_failures_total SIP requests whose digest credentials were refused, by reason (bad_credentials covers unknown users and wrong passwords alike; at_limit: not checked, the source being at its limit of failures with the checks in progress).
# TYPE hotline_sip_auth_failures_total counter
hotline_sip_auth_failures_total{reason="bad_credentials"} 2
hotline_sip_auth_failures_total{reason="other"} 1
hotline_sip_auth_failures_total{reason="stale"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "hotline_sip_registrations", "hotline_sip_auth_failures_total"); err != nil {
		t.Fatal(err)
	}
}
