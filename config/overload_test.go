package config

import (
	"testing"
	"time"
)

func TestOverloadErrors(t *testing.T) {
	checkLoadErrors(t, []loadErrorCase{
		{"overload-bad.yaml", `testdata/overload-bad.yaml:3: sip.overload.max_pending: must be 0 (off) or up to 100000, got -1
testdata/overload-bad.yaml:4: sip.overload.max_setup_latency: must be 0 (off) or between 1ms and 10s, got 20s
testdata/overload-bad.yaml:5: sip.overload.max_scheduler_lateness: must be 0 (off) or between 1ms and 1s, got 500µs
testdata/overload-bad.yaml:6: sip.overload.max_cpu_wait: must be 0 (off) or between 1ms and 1s, got 2s
testdata/overload-bad.yaml:7: sip.overload.retry_after: must be whole seconds between 1s and 1h, got 1.5s
testdata/overload-bad.yaml:8: sip.overload.max_setup_rate: must be 0 (off) or up to 100000 calls a second, got -5`},
		{"overload-fraction.yaml", `testdata/overload-fraction.yaml:3: sip.overload.max_pending: "10.5" is not a whole number`},
	})
}

func TestOverload(t *testing.T) {
	c, err := Load("testdata/overload.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := Overload{MaxPending: 50, MaxSetupLatency: 0, MaxSchedulerLateness: 20 * time.Millisecond,
		MaxCPUWait: 20 * time.Millisecond, MaxSetupRate: 1000, RetryAfter: 2 * time.Second}
	if c.SIP.Overload != want {
		t.Fatalf("sip.overload = %+v, want %+v", c.SIP.Overload, want)
	}
	d, err := Parse("default.yaml", Default())
	if err != nil {
		t.Fatal(err)
	}
	if d.SIP.Overload != defaultOverload() {
		t.Fatalf("default.yaml's sip.overload = %+v, want %+v", d.SIP.Overload, defaultOverload())
	}
}
