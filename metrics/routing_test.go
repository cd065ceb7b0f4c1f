package metrics

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hotline-project/hotline/routing"
)

func TestRoutingMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	var mu sync.Mutex
	var active []routing.Override
	m := NewRouting(reg, func() []routing.Override {
		mu.Lock()
		defer mu.Unlock()
		return active
	})
	m.Decision(routing.Decision{Route: "help_now_es", Step: routing.Step{Queue: "es"}})
	m.Decision(routing.Decision{Route: "help_now_es", Step: routing.Step{Queue: "es"}})
	m.Decision(routing.Decision{Route: "partner", Step: routing.Step{Target: "partner_center", URI: "sip:x@example.org"}})
	m.Decision(routing.Decision{Route: "closed", Message: "closed", Hangup: true})

	const decisions = `
# HELP hotline_route_decisions_total Routing decisions, by route and kind of destination (queue, target, message).
# TYPE hotline_route_decisions_total counter
hotline_route_decisions_total{kind="message",route="closed"} 1
hotline_route_decisions_total{kind="queue",route="help_now_es"} 2
hotline_route_decisions_total{kind="target",route="partner"} 1
`
	none := `
# HELP hotline_routing_overrides_active Emergency overrides in force; 0 in normal operation.
# TYPE hotline_routing_overrides_active gauge
hotline_routing_overrides_active 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(decisions+none),
		"hotline_route_decisions_total", "hotline_routing_overrides_active", "hotline_routing_override_active"); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	active = []routing.Override{
		{Kind: routing.ForceRoute, Route: "partner", Since: time.Now()},
		{Kind: routing.ForceClosed, Schedule: "advocates", Since: time.Now()},
	}
	mu.Unlock()
	some := `
# HELP hotline_routing_override_active 1 for each emergency override in force: kind closed (name is the schedule forced closed) or route (name is the route all calls are forced to).
# TYPE hotline_routing_override_active gauge
hotline_routing_override_active{kind="closed",name="advocates"} 1
hotline_routing_override_active{kind="route",name="partner"} 1
# HELP hotline_routing_overrides_active Emergency overrides in force; 0 in normal operation.
# TYPE hotline_routing_overrides_active gauge
hotline_routing_overrides_active 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(some), "hotline_routing_overrides_active", "hotline_routing_override_active"); err != nil {
		t.Fatal(err)
	}
}

func TestRoutingMetricsNilRegisterer(t *testing.T) {
	m := NewRouting(nil, func() []routing.Override { return nil })
	m.Decision(routing.Decision{Route: "default", Step: routing.Step{Queue: "en"}})
}
