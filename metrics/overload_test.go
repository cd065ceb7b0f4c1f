package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestOverload(t *testing.T) {
	reg := prometheus.NewRegistry()
	st := OverloadState{Pending: 7, Admit: 0.25, Active: true, Over: map[string]float64{"latency": 0.5, "cpu_wait": 0.02}}
	o := NewOverload(reg, func() OverloadState { return st })
	o.Shed("latency")
	o.Shed("latency")
	o.Shed("pending")
	o.Shed("made-up")
	want := `
# HELP hotline_overload_active 1 while overload control sheds new calls, else 0.
# TYPE hotline_overload_active gauge
hotline_overload_active 1
# HELP hotline_overload_admit_ratio Share of new calls overload control admits now (1: all).
# TYPE hotline_overload_admit_ratio gauge
hotline_overload_admit_ratio 0.25
# HELP hotline_overload_signal_over_ratio Share of the last 100 ms's samples over the signal's bound (sip.overload): set-up latency, media scheduler lateness, waits for a CPU.
# TYPE hotline_overload_signal_over_ratio gauge
hotline_overload_signal_over_ratio{signal="cpu_wait"} 0.02
hotline_overload_signal_over_ratio{signal="latency"} 0.5
hotline_overload_signal_over_ratio{signal="lateness"} 0
# HELP hotline_setup_pending Call set-ups in flight: INVITEs taken whose answer is not ready yet.
# TYPE hotline_setup_pending gauge
hotline_setup_pending 7
# HELP hotline_sip_overload_shed_total New calls answered 503 by overload control, by reason (pending: too many set-ups in flight; latency: set-ups too slow; lateness: the media scheduler running late; cpu_wait: work waiting too long for a CPU; rate: more new calls a second offered than max_setup_rate).
# TYPE hotline_sip_overload_shed_total counter
hotline_sip_overload_shed_total{reason="cpu_wait"} 0
hotline_sip_overload_shed_total{reason="latency"} 2
hotline_sip_overload_shed_total{reason="lateness"} 0
hotline_sip_overload_shed_total{reason="other"} 1
hotline_sip_overload_shed_total{reason="pending"} 1
hotline_sip_overload_shed_total{reason="rate"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "hotline_overload_active",
		"hotline_overload_admit_ratio", "hotline_overload_signal_over_ratio", "hotline_setup_pending", "hotline_sip_overload_shed_total"); err != nil {
		t.Fatal(err)
	}
	st = OverloadState{Admit: 1}
	want = `
# HELP hotline_overload_active 1 while overload control sheds new calls, else 0.
# TYPE hotline_overload_active gauge
hotline_overload_active 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "hotline_overload_active"); err != nil {
		t.Fatal(err)
	}
}
