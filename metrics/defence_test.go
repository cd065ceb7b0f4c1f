package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestDefences(t *testing.T) {
	reg := prometheus.NewRegistry()
	banned := 2
	d := NewDefences(reg, func() int { return banned })
	d.Refused("INVITE", "rate")
	d.Refused("INVITE", "rate")
	d.Refused("REGISTER", "banned")
	d.Refused("X-SCAN", "banned")
	d.Refused("INVITE", "made-up")
	d.Banned()
	want := `
# HELP hotline_sip_banned_sources Source addresses banned now.
# TYPE hotline_sip_banned_sources gauge
hotline_sip_banned_sources 2
# HELP hotline_sip_bans_total Source addresses banned for failing digest authentication too often.
# TYPE hotline_sip_bans_total counter
hotline_sip_bans_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "hotline_sip_banned_sources", "hotline_sip_bans_total"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, reason string
		want           float64
	}{{"INVITE", "rate", 2}, {"REGISTER", "banned", 1}, {"other", "banned", 1}, {"INVITE", "other", 1}} {
		if got := testutil.ToFloat64(d.refused.WithLabelValues(tc.method, tc.reason)); got != tc.want {
			t.Errorf("rate_limited_total{%s,%s} = %v, want %v", tc.method, tc.reason, got, tc.want)
		}
	}
}
