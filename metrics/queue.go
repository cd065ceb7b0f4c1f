package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/hotline-project/hotline/queue"
)

// Queues holds the queue and advocate collectors. It implements queue.Observer for the
// counters and histograms, and reads the engine's snapshot at scrape time for the gauges.
// Labels are configured queue names, language tags and states; never anything of a caller,
// and not advocates' ids either (a dashboard counts people by state, it does not watch one).
type Queues struct {
	waitTime   *prometheus.HistogramVec
	calls      *prometheus.CounterVec
	withinSL   *prometheus.CounterVec
	noAnswer   *prometheus.CounterVec
	talk, wrap *prometheus.HistogramVec
	threshold  func(queue string) time.Duration
}

// waitBuckets cover a hotline's waits: seconds to tens of minutes.
var waitBuckets = []float64{5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200, 1800}

// callBuckets cover talk and wrap-up times: under a minute to over an hour.
var callBuckets = []float64{30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 5400}

// NewQueues registers the queue collectors on r. snapshot returns the engine's state (it
// is called on every scrape); threshold returns a queue's service-level threshold, the
// wait within which an answer counts as within the service level.
func NewQueues(r prometheus.Registerer, snapshot func() queue.Snapshot, open func(queue string) bool,
	threshold func(queue string) time.Duration) *Queues {
	f := promauto.With(r)
	m := &Queues{
		waitTime: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "queue", Name: "wait_seconds",
			Help:    "How long callers waited in a queue, by result: answered or abandoned.",
			Buckets: waitBuckets,
		}, []string{"queue", "result"}),
		calls: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "queue", Name: "calls_total",
			Help: "Callers who left a queue, by result: answered, abandoned or overflowed.",
		}, []string{"queue", "result"}),
		withinSL: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "queue", Name: "answered_within_threshold_total",
			Help: "Callers answered within the queue's service-level threshold.",
		}, []string{"queue"}),
		noAnswer: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "advocate", Name: "ring_no_answer_total",
			Help: "Rings of an advocate's phone that ended without an answer (timeout, busy, rejected, unreachable).",
		}, []string{"queue"}),
		talk: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "talk_seconds",
			Help:    "Talk time of connected calls, by queue.",
			Buckets: callBuckets,
		}, []string{"queue"}),
		wrap: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "wrap_up_seconds",
			Help:    "Advocates' wrap-up time after calls, by queue.",
			Buckets: callBuckets,
		}, []string{"queue"}),
		threshold: threshold,
	}
	if r != nil {
		r.MustRegister(&queueCollector{snapshot: snapshot, open: open, threshold: threshold})
	}
	return m
}

// Enqueued makes a queue's series exist before its first caller leaves it, so that rates
// and alerts see zeros rather than nothing.
func (m *Queues) Enqueued(queueName string) {
	for _, r := range []string{"answered", "abandoned", "overflowed"} {
		m.calls.WithLabelValues(queueName, r)
	}
	m.withinSL.WithLabelValues(queueName)
}

// Overflowed counts a caller moved out of queueName by an overflow step.
func (m *Queues) Overflowed(queueName string) {
	m.calls.WithLabelValues(queueName, "overflowed").Inc()
}

// Answered implements queue.Observer.
func (m *Queues) Answered(q, _ string, waited time.Duration) {
	m.waitTime.WithLabelValues(q, "answered").Observe(waited.Seconds())
	m.calls.WithLabelValues(q, "answered").Inc()
	if m.threshold != nil && waited <= m.threshold(q) {
		m.withinSL.WithLabelValues(q).Inc()
	}
}

// Abandoned implements queue.Observer.
func (m *Queues) Abandoned(q string, waited time.Duration) {
	m.waitTime.WithLabelValues(q, "abandoned").Observe(waited.Seconds())
	m.calls.WithLabelValues(q, "abandoned").Inc()
}

// RingMissed implements queue.Observer.
func (m *Queues) RingMissed(q, _ string, _ queue.Outcome) {
	m.noAnswer.WithLabelValues(q).Inc()
}

// Talked implements queue.Observer.
func (m *Queues) Talked(q, _ string, talk time.Duration) {
	m.talk.WithLabelValues(q).Observe(talk.Seconds())
}

// WrappedUp implements queue.Observer.
func (m *Queues) WrappedUp(q, _ string, wrap time.Duration) {
	m.wrap.WithLabelValues(q).Observe(wrap.Seconds())
}

// StateChanged implements queue.Observer: the hotline_advocates gauges read states from
// the snapshot at scrape time, so a change needs nothing here.
func (m *Queues) StateChanged(string, queue.State, queue.State) {}

var (
	waitingDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "queue", "waiting"),
		"Callers waiting in the queue now, including those whose advocate is being rung.", []string{"queue"}, nil)
	oldestDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "queue", "oldest_wait_seconds"),
		"How long the caller waiting longest has waited; 0 when nobody waits.", []string{"queue"}, nil)
	openDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "queue", "open"),
		"1 while the queue's schedule is open (calls are routed to it), else 0.", []string{"queue"}, nil)
	thresholdDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "queue", "service_level_threshold_seconds"),
		"The wait within which an answer counts toward the service level.", []string{"queue"}, nil)
	advocatesDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "advocates"),
		"Advocates serving the queue who speak the language, by state.", []string{"queue", "language", "state"}, nil)
)

// queueCollector exports the queue gauges from a snapshot taken at scrape time.
type queueCollector struct {
	snapshot  func() queue.Snapshot
	open      func(queue string) bool
	threshold func(queue string) time.Duration
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{waitingDesc, oldestDesc, openDesc, thresholdDesc, advocatesDesc} {
		ch <- d
	}
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	for _, q := range s.Queues {
		ch <- prometheus.MustNewConstMetric(waitingDesc, prometheus.GaugeValue, float64(q.Waiting), q.Name)
		ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, q.OldestWait.Seconds(), q.Name)
		if q.Retired {
			continue
		}
		if c.open != nil {
			v := 0.0
			if c.open(q.Name) {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(openDesc, prometheus.GaugeValue, v, q.Name)
		}
		if c.threshold != nil {
			ch <- prometheus.MustNewConstMetric(thresholdDesc, prometheus.GaugeValue, c.threshold(q.Name).Seconds(), q.Name)
		}
		for _, lang := range q.Languages {
			byState := q.ByLanguage[lang]
			for _, st := range queue.States {
				ch <- prometheus.MustNewConstMetric(advocatesDesc, prometheus.GaugeValue, float64(byState[st]),
					q.Name, lang, st.String())
			}
		}
	}
}
