package config

import (
	"testing"
	"time"
)

func TestQueueSettingsErrors(t *testing.T) {
	checkLoadErrors(t, []loadErrorCase{{"queue-settings-bad.yaml", `testdata/queue-settings-bad.yaml:2: queue_defaults.ring_timeout: must be between 5s and 2m, got 1s
testdata/queue-settings-bad.yaml:3: queue_defaults.wrap_up: must be between 0 and 30m, got -5s
testdata/queue-settings-bad.yaml:4: queue_defaults.max_misses: must be between 0 and 20, got 50
testdata/queue-settings-bad.yaml:5: queue_defaults.service_level: must be greater than 0, got 0s
testdata/queue-settings-bad.yaml:6: queue_defaults.announce_every: must be 0 (never) or between 15s and 10m, got 5s
testdata/queue-settings-bad.yaml:10: queues[0].ring_timeout: must be between 5s and 2m, got 10m0s`}})
}

func TestQueueSettingsOverride(t *testing.T) {
	c, err := Load("testdata/queue-settings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []QueueSettings{
		{RingAll: true, RingTimeout: 25 * time.Second, WrapUp: 0, MaxMisses: 3, ServiceLevel: time.Minute, Whisper: true},
		{RingAll: false, RingTimeout: 25 * time.Second, WrapUp: 30 * time.Second, MaxMisses: 3, ServiceLevel: time.Minute, Whisper: false},
	}
	for i := range c.Queues {
		if got := c.Settings(&c.Queues[i]); got != want[i] {
			t.Errorf("queue %s: settings %+v, want %+v", c.Queues[i].Name, got, want[i])
		}
	}
}
