package main

import (
	"fmt"
	"net"
	"testing"
	"time"
)

// TestOverflowToTargetE2E: a caller still waiting when an overflow step to a target (a
// partner center) falls due keeps their place while the target is called; a busy target
// leaves them queued, and one that answers is bridged to them, with audio both ways
// (issue 13, item 3). The step (after: 2s) falls due while "connecting you" still plays
// (item 4).
func TestOverflowToTargetE2E(t *testing.T) {
	t.Parallel()
	// The partner's phone listens first: its address is the target's URI.
	partner := newPhone(t, "127.0.0.1:9", "partner", "", 0, 1500)
	routes := fmt.Sprintf(`targets:
  - {name: partner, uri: "%s"}
routes:
  - {name: help_now, when: {reasons: [help_now]}, to: en, priority: 100, overflow: [{after: 2s, to: partner}]}
  - {name: default, to: en, priority: 10}
`, partner.contactURI)
	ts := startServer(t, queueTestConfig(t, routes, "ana:en:pw-ana"))
	srv, err := net.ResolveUDPAddr("udp", ts.addrs.SIPUDP)
	if err != nil {
		t.Fatal(err)
	}
	partner.server = srv // where its responses go

	// Busy: the caller stays in the queue.
	c := callIn(t, ts, "11", 440)
	ts.waitMetric(t, `hotline_queue_waiting{queue="en"}`, 1)
	partner.refuse(partner.expectInvite(20*time.Second), 486, "Busy Here")
	time.Sleep(200 * time.Millisecond)
	ts.waitMetric(t, `hotline_queue_waiting{queue="en"}`, 1)
	c.hangup()
	ts.waitMetric(t, `hotline_queue_waiting{queue="en"}`, 0)

	// Answered: the caller leaves the queue and is bridged to the partner.
	c2 := callIn(t, ts, "11", 440)
	inv := partner.expectInvite(20 * time.Second)
	partner.answer(inv)
	waitTone(t, "the caller hears the partner", c2.stream, 0, 1500, 5*time.Second)
	waitTone(t, "the partner hears the caller", partner.stream, 0, 440, 5*time.Second)
	ts.waitMetric(t, `hotline_queue_waiting{queue="en"}`, 0)
	partner.hangup()
	c2.expectRequest("BYE", 5*time.Second)
	c2.stopTone()
	ts.waitMetric(t, `hotline_calls_active{line="main"}`, 0)
}
