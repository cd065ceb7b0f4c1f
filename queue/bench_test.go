package queue_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hotline-project/hotline/queue"
)

// benchEngine returns an engine with n advocates online across two languages.
func benchEngine(b *testing.B, n int) *queue.Engine {
	b.Helper()
	cfg := queue.Config{Queues: []queue.QueueConfig{
		{Name: "en", Languages: []string{"en"}, RingTimeout: 20 * time.Second},
		{Name: "es", Languages: []string{"es"}, RingTimeout: 20 * time.Second},
	}}
	for i := range n {
		cfg.Advocates = append(cfg.Advocates, queue.AdvocateConfig{ID: fmt.Sprintf("a%d", i), Languages: []string{[]string{"en", "es"}[i%2]}})
	}
	e, err := queue.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if _, err := e.AdvocateOnline(fmt.Sprintf("a%d", i), t0); err != nil {
			b.Fatal(err)
		}
	}
	return e
}

// BenchmarkCallCycle measures one caller's whole path with 1000 advocates: enqueue (and
// ring the longest idle), answer, hang up.
func BenchmarkCallCycle(b *testing.B) {
	e := benchEngine(b, 1000)
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = fmt.Sprintf("c%d", i)
	}
	now := t0
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Second)
		id := ids[i%len(ids)]
		i++
		acts, err := e.Enqueue(queue.Caller{ID: id, Queue: "es", Language: "es"}, now)
		if err != nil || len(acts) != 1 {
			b.Fatalf("enqueue: %v, %d actions", err, len(acts))
		}
		adv := acts[0].(queue.Ring).Advocate
		if _, err := e.RingResult(id, adv, queue.Answered, now); err != nil {
			b.Fatal(err)
		}
		if _, err := e.CallEnded(id, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBusyQueue measures events while 500 callers wait and all 1000 advocates are
// on calls: each iteration ends a call, which rings the next caller, who is answered.
func BenchmarkBusyQueue(b *testing.B) {
	e := benchEngine(b, 1000)
	now := t0
	n := 0
	talking := map[string]string{} // advocate -> call
	enqueue := func() {
		n++
		id := fmt.Sprintf("c%d", n)
		acts, err := e.Enqueue(queue.Caller{ID: id, Queue: "en"}, now)
		if err != nil {
			b.Fatal(err)
		}
		answer(b, e, acts, talking, now)
	}
	for range 500 + 500 {
		enqueue()
	}
	advs := make([]string, 0, len(talking))
	for a := range talking {
		advs = append(advs, a)
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Second)
		a := advs[i%len(advs)]
		i++
		acts, err := e.CallEnded(talking[a], now)
		if err != nil {
			b.Fatal(err)
		}
		answer(b, e, acts, talking, now)
		enqueue()
	}
}

// answer answers every Ring in acts.
func answer(b *testing.B, e *queue.Engine, acts []queue.Action, talking map[string]string, now time.Time) {
	b.Helper()
	for _, a := range acts {
		if r, ok := a.(queue.Ring); ok {
			if _, err := e.RingResult(r.Call, r.Advocate, queue.Answered, now); err != nil {
				b.Fatal(err)
			}
			talking[r.Advocate] = r.Call
		}
	}
}
