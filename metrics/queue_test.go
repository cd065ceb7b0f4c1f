package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hotline-project/hotline/queue"
)

// TestQueueMetrics drives a real queue engine through an answered and an abandoned call and
// checks the exported series.
func TestQueueMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	var eng *queue.Engine
	t0 := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	now := t0
	m := NewQueues(reg, func() queue.Snapshot { return eng.Snapshot(now) },
		func(string) bool { return true }, func(string) time.Duration { return 30 * time.Second })
	var err error
	eng, err = queue.New(queue.Config{
		Queues:    []queue.QueueConfig{{Name: "es", Languages: []string{"es"}, RingTimeout: 20 * time.Second, WrapUp: 10 * time.Second}},
		Advocates: []queue.AdvocateConfig{{ID: "ana", Name: "Ana", Languages: []string{"es", "en"}}},
	}, queue.WithObserver(m))
	if err != nil {
		t.Fatal(err)
	}
	must := func(_ []queue.Action, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	m.Enqueued("es")
	must(eng.Enqueue(queue.Caller{ID: "c1", Queue: "es", Language: "es"}, now))
	must(eng.Enqueue(queue.Caller{ID: "c2", Queue: "es", Language: "es"}, now))
	now = t0.Add(5 * time.Second)
	must(eng.AdvocateOnline("ana", now)) // rings ana for c1
	now = t0.Add(10 * time.Second)
	must(eng.RingResult("c1", "ana", queue.Answered, now))
	want := `
# HELP hotline_queue_waiting Callers waiting in the queue now, including those whose advocate is being rung.
# TYPE hotline_queue_waiting gauge
hotline_queue_waiting{queue="es"} 1
# HELP hotline_queue_oldest_wait_seconds How long the caller waiting longest has waited; 0 when nobody waits.
# TYPE hotline_queue_oldest_wait_seconds gauge
hotline_queue_oldest_wait_seconds{queue="es"} 10
# HELP hotline_queue_calls_total Callers who left a queue, by result: answered, abandoned or overflowed.
# TYPE hotline_queue_calls_total counter
hotline_queue_calls_total{queue="es",result="abandoned"} 0
hotline_queue_calls_total{queue="es",result="answered"} 1
hotline_queue_calls_total{queue="es",result="overflowed"} 0
# HELP hotline_queue_answered_within_threshold_total Callers answered within the queue's service-level threshold.
# TYPE hotline_queue_answered_within_threshold_total counter
hotline_queue_answered_within_threshold_total{queue="es"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "hotline_queue_waiting",
		"hotline_queue_oldest_wait_seconds", "hotline_queue_calls_total", "hotline_queue_answered_within_threshold_total"); err != nil {
		t.Error(err)
	}
	if got := gathered(t, reg, `hotline_advocates{language="es",queue="es",state="on_call"}`); got != 1 {
		t.Errorf("advocates on call = %v, want 1", got)
	}

	now = t0.Add(70 * time.Second)
	must(eng.Abandon("c2", now))
	must(eng.CallEnded("c1", now))
	now = t0.Add(90 * time.Second)
	eng.Tick(now) // wrap-up over
	if n := testutil.CollectAndCount(reg, "hotline_queue_wait_seconds"); n != 2 {
		t.Errorf("%d wait histograms, want answered and abandoned", n)
	}
	for series, want := range map[string]float64{
		`hotline_queue_calls_total{queue="es",result="abandoned"}`:      1,
		`hotline_talk_seconds_count{queue="es"}`:                        1,
		`hotline_wrap_up_seconds_count{queue="es"}`:                     1,
		`hotline_queue_waiting{queue="es"}`:                             0,
		`hotline_advocates{language="es",queue="es",state="available"}`: 1,
		`hotline_queue_open{queue="es"}`:                                1,
		`hotline_queue_service_level_threshold_seconds{queue="es"}`:     30,
	} {
		if got := gathered(t, reg, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}

// gathered returns the value of one series, written as in the exposition format with its
// labels sorted; it fails the test when the series is missing.
func gathered(t *testing.T, reg *prometheus.Registry, series string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			var v float64
			switch {
			case m.Gauge != nil:
				v = m.GetGauge().GetValue()
			case m.Counter != nil:
				v = m.GetCounter().GetValue()
			case m.Histogram != nil:
				name += "_count"
				v = float64(m.GetHistogram().GetSampleCount())
			}
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			if s := name + "{" + strings.Join(labels, ",") + "}"; s == series {
				return v
			}
		}
	}
	t.Fatalf("no series %s", series)
	return 0
}
