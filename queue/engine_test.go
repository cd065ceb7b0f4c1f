package queue_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotline-project/hotline/queue"
)

var t0 = time.Date(2026, 3, 1, 22, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

const sec = time.Second

// show renders actions compactly: "ring c1>ana", "cancel c1>ana", "connect c1>ana".
func show(acts []queue.Action) string {
	var s []string
	for _, a := range acts {
		switch a := a.(type) {
		case queue.Ring:
			s = append(s, "ring "+a.Call+">"+a.Advocate)
		case queue.CancelRing:
			s = append(s, "cancel "+a.Call+">"+a.Advocate)
		case queue.Connect:
			s = append(s, "connect "+a.Call+">"+a.Advocate)
		default:
			s = append(s, fmt.Sprintf("%T", a))
		}
	}
	return strings.Join(s, ", ")
}

// want checks an event's actions and error.
func want(t *testing.T, what string, acts []queue.Action, err error, wantActs string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if got := show(acts); got != wantActs {
		t.Fatalf("%s: actions\n got: %s\nwant: %s", what, got, wantActs)
	}
}

func adv(id string, langs ...string) queue.AdvocateConfig {
	return queue.AdvocateConfig{ID: id, Name: strings.ToUpper(id), Languages: langs}
}

func q(name string, langs ...string) queue.QueueConfig {
	return queue.QueueConfig{Name: name, Languages: langs, RingTimeout: 20 * sec}
}

func newEngine(t *testing.T, cfg queue.Config, opts ...queue.Option) *queue.Engine {
	t.Helper()
	e, err := queue.New(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

// online registers advocates at now, expecting no actions.
func online(t *testing.T, e *queue.Engine, now time.Time, ids ...string) {
	t.Helper()
	for _, id := range ids {
		acts, err := e.AdvocateOnline(id, now)
		want(t, "online "+id, acts, err, "")
	}
}

func state(t *testing.T, e *queue.Engine, id string) queue.AdvocateSnapshot {
	t.Helper()
	for _, a := range e.Snapshot(t0).Advocates {
		if a.ID == id {
			return a
		}
	}
	t.Fatalf("advocate %s not in snapshot", id)
	return queue.AdvocateSnapshot{}
}

func wantState(t *testing.T, e *queue.Engine, id string, s queue.State) {
	t.Helper()
	if got := state(t, e, id).State; got != s {
		t.Fatalf("advocate %s is %v, want %v", id, got, s)
	}
}

func TestOrderPriorityThenArrival(t *testing.T) {
	e := newEngine(t, queue.Config{Queues: []queue.QueueConfig{q("en", "en")}, Advocates: []queue.AdvocateConfig{adv("ana", "en")}})
	callers := []struct {
		id       string
		priority int
		since    time.Time
	}{
		{"c1", 0, at(0)},
		{"c2", 10, at(1 * sec)},
		{"c3", 0, at(2 * sec)},
		{"c4", 10, at(3 * sec)},
		{"c5", 0, at(-5 * sec)}, // came back from elsewhere: waited longest
	}
	for i, c := range callers {
		acts, err := e.Enqueue(queue.Caller{ID: c.id, Queue: "en", Priority: c.priority, Since: c.since}, at(time.Duration(i)*sec))
		want(t, "enqueue "+c.id, acts, err, "")
	}
	order := []string{"c2", "c4", "c5", "c1", "c3"}
	for i, id := range order {
		if pos, ok := e.Position(id); !ok || pos != i+1 {
			t.Errorf("Position(%s) = %d, %v; want %d", id, pos, ok, i+1)
		}
	}
	now := at(10 * sec)
	acts, err := e.AdvocateOnline("ana", now)
	want(t, "online", acts, err, "ring c2>ana")
	for i, id := range order {
		now = now.Add(sec)
		acts, err = e.RingResult(id, "ana", queue.Answered, now)
		want(t, "answer "+id, acts, err, "connect "+id+">ana")
		next := ""
		if i+1 < len(order) {
			next = "ring " + order[i+1] + ">ana"
		}
		now = now.Add(sec)
		acts, err = e.CallEnded(id, now)
		want(t, "end "+id, acts, err, next)
	}
}

func TestLongestIdleAndLanguage(t *testing.T) {
	cfg := queue.Config{
		Queues: []queue.QueueConfig{q("main", "en", "es")},
		Advocates: []queue.AdvocateConfig{
			adv("en1", "en"), adv("es1", "es"), adv("both", "en", "es"), adv("fr", "fr"), adv("en2", "en"),
		},
	}
	tests := []struct {
		name, lang string
		online     []string // in order, a second apart
		want       string
	}{
		{"longest idle english speaker", "en", []string{"both", "en1", "es1"}, "ring c>both"},
		{"skips who does not speak it", "es", []string{"en1", "en2", "es1"}, "ring c>es1"},
		{"language outside the queue: anyone serving it", "de", []string{"es1", "en1"}, "ring c>es1"},
		{"no language: anyone serving it", "", []string{"en2", "both"}, "ring c>en2"},
		{"does not serve the queue", "fr", []string{"fr", "en1"}, "ring c>en1"},
		{"nobody speaks it: waits", "es", []string{"en1", "en2"}, ""},
		{"ties go to configuration order", "en", nil, "ring c>en1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, cfg)
			for i, id := range tt.online {
				online(t, e, at(time.Duration(i)*sec), id)
			}
			if tt.online == nil {
				online(t, e, t0, "en2", "both", "en1")
			}
			acts, err := e.Enqueue(queue.Caller{ID: "c", Queue: "main", Language: tt.lang}, at(time.Minute))
			want(t, "enqueue", acts, err, tt.want)
		})
	}
}

func TestBlockedCallerDoesNotHoldUpOthers(t *testing.T) {
	e := newEngine(t, queue.Config{Queues: []queue.QueueConfig{q("main", "en", "es")}, Advocates: []queue.AdvocateConfig{adv("en1", "en")}})
	online(t, e, t0, "en1")
	acts, err := e.Enqueue(queue.Caller{ID: "es-caller", Queue: "main", Language: "es", Priority: 5}, at(sec))
	want(t, "enqueue es", acts, err, "")
	acts, err = e.Enqueue(queue.Caller{ID: "en-caller", Queue: "main", Language: "en"}, at(2*sec))
	want(t, "enqueue en", acts, err, "ring en-caller>en1")
}

func TestRingAll(t *testing.T) {
	ra := q("all", "en")
	ra.RingAll = true
	e := newEngine(t, queue.Config{Queues: []queue.QueueConfig{ra}, Advocates: []queue.AdvocateConfig{adv("a", "en"), adv("b", "en"), adv("c", "en"), adv("d", "en")}})
	online(t, e, at(3*sec), "a")
	online(t, e, at(1*sec), "b")
	online(t, e, at(2*sec), "c")
	acts, err := e.Enqueue(queue.Caller{ID: "x", Queue: "all"}, at(10*sec))
	want(t, "enqueue", acts, err, "ring x>b, ring x>c, ring x>a")
	// One who comes online while the caller waits joins the ring.
	acts, err = e.AdvocateOnline("d", at(11*sec))
	want(t, "online d", acts, err, "ring x>d")
	acts, err = e.RingResult("x", "c", queue.Rejected, at(12*sec))
	want(t, "c rejects", acts, err, "")
	acts, err = e.RingResult("x", "a", queue.Answered, at(13*sec))
	want(t, "a answers", acts, err, "connect x>a, cancel x>b, cancel x>d")
	for _, id := range []string{"b", "c", "d"} {
		wantState(t, e, id, queue.Available)
	}
	if got := state(t, e, "b"); !got.IdleSince.Equal(at(1*sec)) || got.Misses != 0 {
		t.Errorf("b after losing the race: idle since %v, misses %d; want unchanged %v, 0", got.IdleSince, got.Misses, at(sec))
	}
	if got := state(t, e, "c").Misses; got != 1 {
		t.Errorf("c misses = %d, want 1", got)
	}
	// The losers' answers come too late.
	if _, err := e.RingResult("x", "b", queue.Answered, at(13*sec)); !errors.Is(err, queue.ErrNoRing) {
		t.Errorf("late answer from b: err = %v, want ErrNoRing", err)
	}
	wantState(t, e, "a", queue.OnCall)
}

func TestRingTimeoutAndMisses(t *testing.T) {
	qc := q("en", "en")
	qc.MaxMisses = 2
	e := newEngine(t, queue.Config{Queues: []queue.QueueConfig{qc}, Advocates: []queue.AdvocateConfig{adv("a", "en"), adv("b", "en")}})
	online(t, e, t0, "a")
	online(t, e, at(sec), "b")
	acts, err := e.Enqueue(queue.Caller{ID: "c1", Queue: "en"}, at(10*sec))
	want(t, "enqueue", acts, err, "ring c1>a")
	if r := acts[0].(queue.Ring); !r.Deadline.Equal(at(30*sec)) || r.Queue != "en" {
		t.Fatalf("ring = %+v, want deadline %v in queue en", r, at(30*sec))
	}
	if d, ok := e.NextDeadline(); !ok || !d.Equal(at(30*sec)) {
		t.Fatalf("NextDeadline = %v, %v; want %v", d, ok, at(30*sec))
	}
	want(t, "early tick", e.Tick(at(29*sec)), nil, "")
	want(t, "timeout", e.Tick(at(30*sec)), nil, "cancel c1>a, ring c1>b")
	if _, err := e.RingResult("c1", "a", queue.Answered, at(31*sec)); !errors.Is(err, queue.ErrNoRing) {
		t.Fatalf("answer after timeout: err = %v, want ErrNoRing", err)
	}
	// b is busy: back to a (idle longer now, since b missed later).
	acts, err = e.RingResult("c1", "b", queue.Busy, at(32*sec))
	want(t, "b busy", acts, err, "ring c1>a")
	// a's second miss in a row pauses a; b is next.
	acts, err = e.RingResult("c1", "a", queue.NoAnswer, at(33*sec))
	want(t, "a no answer", acts, err, "ring c1>b")
	if got := state(t, e, "a"); got.State != queue.Paused || got.PauseReason != "missed calls" || got.Misses != 2 {
		t.Fatalf("a = %+v, want paused for missed calls after 2 misses", got)
	}
	// An answer resets the count.
	acts, err = e.RingResult("c1", "b", queue.Answered, at(34*sec))
	want(t, "b answers", acts, err, "connect c1>b")
	if got := state(t, e, "b").Misses; got != 0 {
		t.Errorf("b misses after answering = %d, want 0", got)
	}
	// Paused advocates are never rung.
	acts, err = e.Enqueue(queue.Caller{ID: "c2", Queue: "en"}, at(35*sec))
	want(t, "enqueue while a is paused", acts, err, "")
	acts, err = e.SetAvailable("a", at(36*sec))
	want(t, "a back", acts, err, "ring c2>a")
	if got := state(t, e, "a").Misses; got != 0 {
		t.Errorf("a misses after SetAvailable = %d, want 0", got)
	}
}

func TestFailedCountsAsMiss(t *testing.T) {
	qc := q("en", "en")
	qc.MaxMisses = 1
	e := newEngine(t, queue.Config{Queues: []queue.QueueConfig{qc}, Advocates: []queue.AdvocateConfig{adv("a", "en")}})
	online(t, e, t0, "a")
	_, _ = e.Enqueue(queue.Caller{ID: "c", Queue: "en"}, at(sec))
	acts, err := e.RingResult("c", "a", queue.Failed, at(2*sec))
	want(t, "failed", acts, err, "")
	wantState(t, e, "a", queue.Paused)
}

func TestAbandon(t *testing.T) {
	cfg := queue.Config{Queues: []queue.QueueConfig{q("en", "en")}, Advocates: []queue.AdvocateConfig{adv("a", "en"), adv("b", "en")}}
	t.Run("waiting", func(t *testing.T) {
		e := newEngine(t, cfg)
		_, _ = e.Enqueue(queue.Caller{ID: "c1", Queue: "en"}, t0)
		_, _ = e.Enqueue(queue.Caller{ID: "c2", Queue: "en"}, at(sec))
		acts, err := e.Abandon("c1", at(2*sec))
		want(t, "abandon", acts, err, "")
		if pos, _ := e.Position("c2"); pos != 1 {
			t.Errorf("c2 position = %d, want 1", pos)
		}
		if _, ok := e.Position("c1"); ok {
			t.Error("c1 still has a position")
		}
	})
	t.Run("ringing", func(t *testing.T) {
		e := newEngine(t, cfg)
		online(t, e, t0, "a")
		online(t, e, at(sec), "b")
		_, _ = e.Enqueue(queue.Caller{ID: "c1", Queue: "en"}, at(2*sec))
		acts, err := e.Abandon("c1", at(3*sec))
		want(t, "abandon", acts, err, "cancel c1>a")
		if got := state(t, e, "a"); got.State != queue.Available || got.Misses != 0 || !got.IdleSince.Equal(t0) {
			t.Fatalf("a = %+v, want available since %v with no miss", got, t0)
		}
		// a kept their place: still the longest idle.
		acts, err = e.Enqueue(queue.Caller{ID: "c2", Queue: "en"}, at(4*sec))
		want(t, "next caller", acts, err, "ring c2>a")
		if _, err := e.RingResult("c1", "a", queue.Busy, at(5*sec)); !errors.Is(err, queue.ErrNoRing) {
			t.Errorf("result for the abandoned ring: err = %v, want ErrNoRing", err)
		}
	})
	t.Run("hang-up reported as CallEnded", func(t *testing.T) {
		e := newEngine(t, cfg)
		online(t, e, t0, "a")
		_, _ = e.Enqueue(queue.Caller{ID: "c1", Queue: "en"}, at(sec))
		acts, err := e.CallEnded("c1", at(2*sec))
		want(t, "end", acts, err, "cancel c1>a")
		wantState(t, e, "a", queue.Available)
	})
}

func TestOfflineWhileRinging(t *testing.T) {
	e := newEngine(t, queue.Config{Queues: []queue.QueueConfig{q("en", "en")}, Advocates: []queue.AdvocateConfig{adv("a", "en"), adv("b", "en")}})
	online(t, e, t0, "a")
	_, _ = e.Enqueue(queue.Caller{ID: "c1", Queue: "en"}, at(sec))
	_, _ = e.Enqueue(queue.Caller{ID: "c2", Queue: "en"}, at(2*sec))
	acts, err := e.AdvocateOffline("a", at(3*sec))
	want(t, "offline", acts, err, "cancel c1>a")
	if got := state(t, e, "a"); got.State != queue.Offline || got.Misses != 0 {
		t.Fatalf("a = %+v, want offline with no miss", got)
	}
	if pos, _ := e.Position("c1"); pos != 1 {
		t.Fatalf("c1 position = %d, want 1 (kept)", pos)
	}
	acts, err = e.AdvocateOnline("b", at(4*sec))
	want(t, "b online", acts, err, "ring c1>b")
	if _, ok := e.NextDeadline(); !ok {
		t.Fatal("no deadline while b rings")
	}
}

func TestPauseAndLogout(t *testing.T) {
	e := newEngine(t, queue.Config{Queues: []queue.QueueConfig{q("en", "en")}, Advocates: []queue.AdvocateConfig{adv("a", "en")}})
	if _, err := e.SetAvailable("a", t0); !errors.Is(err, queue.ErrNotRegistered) {
		t.Fatalf("SetAvailable offline: err = %v, want ErrNotRegistered", err)
	}
	acts, err := e.Pause("a", "training", t0)
	want(t, "pause offline", acts, err, "")
	wantState(t, e, "a", queue.Offline)
	online(t, e, at(sec), "a")
	if got := state(t, e, "a"); got.State != queue.Paused || got.PauseReason != "training" {
		t.Fatalf("a after registering = %+v, want paused for training", got)
	}
	_, _ = e.Enqueue(queue.Caller{ID: "c", Queue: "en"}, at(2*sec))
	acts, err = e.SetAvailable("a", at(3*sec))
	want(t, "available", acts, err, "ring c>a")
	acts, err = e.Pause("a", "", at(4*sec))
	want(t, "pause while ringing", acts, err, "cancel c>a")
	if got := state(t, e, "a"); got.State != queue.Paused || got.PauseReason != "paused" || got.Misses != 0 {
		t.Fatalf("a = %+v, want paused with no miss", got)
	}
	acts, err = e.Logout("a", at(5*sec))
	want(t, "logout", acts, err, "")
	wantState(t, e, "a", queue.Offline)
	// A registration refresh does not log a logged-out advocate back in.
	online(t, e, at(6*sec), "a")
	wantState(t, e, "a", queue.Offline)
	acts, err = e.SetAvailable("a", at(7*sec))
	want(t, "log in", acts, err, "ring c>a")
}

func TestWrapUp(t *testing.T) {
	qc := q("en", "en")
	qc.WrapUp = 30 * sec
	e := newEngine(t, queue.Config{Queues: []queue.QueueConfig{qc}, Advocates: []queue.AdvocateConfig{adv("a", "en")}})
	online(t, e, t0, "a")
	_, _ = e.Enqueue(queue.Caller{ID: "c1", Queue: "en"}, at(sec))
	acts, err := e.RingResult("c1", "a", queue.Answered, at(2*sec))
	want(t, "answer", acts, err, "connect c1>a")
	_, _ = e.Enqueue(queue.Caller{ID: "c2", Queue: "en"}, at(3*sec))
	acts, err = e.CallEnded("c1", at(62*sec))
	want(t, "end", acts, err, "")
	wantState(t, e, "a", queue.WrapUp)
	if d, ok := e.NextDeadline(); !ok || !d.Equal(at(92*sec)) {
		t.Fatalf("NextDeadline = %v, %v; want %v", d, ok, at(92*sec))
	}
	want(t, "tick before the end", e.Tick(at(91*sec)), nil, "")
	want(t, "tick at the end", e.Tick(at(92*sec)), nil, "ring c2>a")
	if _, err := e.CallEnded("c1", at(93*sec)); !errors.Is(err, queue.ErrUnknownCall) {
		t.Errorf("second CallEnded: err = %v, want ErrUnknownCall", err)
	}
	// SetAvailable ends wrap-up early; Pause during a call waits for the call to end.
	_, _ = e.RingResult("c2", "a", queue.Answered, at(94*sec))
	acts, err = e.Pause("a", "break", at(95*sec))
	want(t, "pause on call", acts, err, "")
	wantState(t, e, "a", queue.OnCall)
	_, _ = e.CallEnded("c2", at(100*sec))
	wantState(t, e, "a", queue.WrapUp)
	want(t, "wrap-up ends", e.Tick(at(130*sec)), nil, "")
	wantState(t, e, "a", queue.Paused)
}

func TestEstimatedWait(t *testing.T) {
	qc := q("en", "en")
	qc.WrapUp = 20 * sec
	e := newEngine(t, queue.Config{Queues: []queue.QueueConfig{qc}, Advocates: []queue.AdvocateConfig{adv("a", "en"), adv("b", "en")}})
	_, _ = e.Enqueue(queue.Caller{ID: "c1", Queue: "en"}, t0)
	if _, ok := e.EstimatedWait("c1"); ok {
		t.Fatal("estimate given with no history and nobody staffed")
	}
	acts, err := e.AdvocateOnline("a", t0)
	want(t, "online", acts, err, "ring c1>a")
	_, _ = e.RingResult("c1", "a", queue.Answered, at(sec))
	_, _ = e.Enqueue(queue.Caller{ID: "c2", Queue: "en"}, at(2*sec))
	_, _ = e.Enqueue(queue.Caller{ID: "c3", Queue: "en"}, at(3*sec))
	if _, ok := e.EstimatedWait("c3"); ok {
		t.Fatal("estimate given with no handle-time history")
	}
	_, _ = e.CallEnded("c1", at(101*sec)) // talked 100s
	_ = e.Tick(at(121 * sec))             // wrapped up 20s: handle time 120s; a rings c2
	if d, ok := e.EstimatedWait("c3"); !ok || d != 240*sec {
		t.Fatalf("EstimatedWait(c3) = %v, %v; want 2 × 120s ÷ 1 = 240s", d, ok)
	}
	acts, err = e.AdvocateOnline("b", at(122*sec))
	want(t, "online b", acts, err, "ring c3>b")
	if d, ok := e.EstimatedWait("c3"); !ok || d != 120*sec {
		t.Fatalf("EstimatedWait(c3) = %v, %v; want 2 × 120s ÷ 2 = 120s", d, ok)
	}
	_, _ = e.Pause("a", "break", at(123*sec))
	_, _ = e.Pause("b", "break", at(123*sec))
	if _, ok := e.EstimatedWait("c3"); ok {
		t.Fatal("estimate given with everybody paused")
	}
}

func TestMove(t *testing.T) {
	cfg := queue.Config{
		Queues:    []queue.QueueConfig{q("es", "es"), q("en", "en"), q("any", "en", "es")},
		Advocates: []queue.AdvocateConfig{adv("es1", "es"), adv("en1", "en")},
	}
	e := newEngine(t, cfg)
	online(t, e, t0, "es1")
	_, _ = e.Enqueue(queue.Caller{ID: "first", Queue: "en", Priority: 5}, at(sec))
	_, _ = e.Enqueue(queue.Caller{ID: "c", Queue: "es", Language: "es", Priority: 5}, at(2*sec))
	// A ring that still fits survives the move.
	acts, err := e.Move("c", "any", at(3*sec))
	want(t, "move to any", acts, err, "")
	if w, ok := e.Waited("c", at(10*sec)); !ok || w != 8*sec {
		t.Fatalf("Waited = %v, %v; want 8s since arrival", w, ok)
	}
	// One that does not is cancelled.
	acts, err = e.Move("c", "en", at(4*sec))
	want(t, "move to en", acts, err, "cancel c>es1")
	_, _ = e.Enqueue(queue.Caller{ID: "later", Queue: "en", Priority: 5}, at(5*sec))
	for id, wantPos := range map[string]int{"first": 1, "c": 2, "later": 3} {
		if pos, _ := e.Position(id); pos != wantPos {
			t.Errorf("Position(%s) = %d, want %d", id, pos, wantPos)
		}
	}
	if _, err := e.Move("c", "nowhere", at(6*sec)); !errors.Is(err, queue.ErrUnknownQueue) {
		t.Errorf("move to unknown queue: err = %v", err)
	}
}

func TestReconfigure(t *testing.T) {
	qc := q("en", "en")
	qc.WrapUp = 10 * sec
	cfg := queue.Config{
		Queues:    []queue.QueueConfig{qc, q("old", "en")},
		Advocates: []queue.AdvocateConfig{adv("a", "en"), adv("b", "en")},
	}
	e := newEngine(t, cfg)
	online(t, e, t0, "a", "b")
	_, _ = e.Enqueue(queue.Caller{ID: "c1", Queue: "en"}, at(sec))
	_, _ = e.RingResult("c1", "a", queue.Answered, at(2*sec))
	_, _ = e.Enqueue(queue.Caller{ID: "c2", Queue: "old"}, at(3*sec)) // rings b
	_, _ = e.Pause("b", "lunch", at(4*sec))

	bad := cfg
	bad.Queues = []queue.QueueConfig{{Name: "en", Languages: []string{"en"}}}
	if _, err := e.Reconfigure(bad, at(5*sec)); !errors.Is(err, queue.ErrConfig) {
		t.Fatalf("bad config: err = %v, want ErrConfig", err)
	}

	// Remove a (on a call) and the queue "old" (with c2 waiting); add c.
	next := queue.Config{Queues: []queue.QueueConfig{qc}, Advocates: []queue.AdvocateConfig{adv("b", "en"), adv("c", "en")}}
	acts, err := e.Reconfigure(next, at(6*sec))
	want(t, "reconfigure", acts, err, "")
	if got := state(t, e, "a"); got.State != queue.OnCall || !got.Removed || got.Call != "c1" {
		t.Fatalf("removed a = %+v, want still on call c1", got)
	}
	if got := state(t, e, "b"); got.State != queue.Paused || got.PauseReason != "lunch" {
		t.Fatalf("b = %+v, want still paused for lunch", got)
	}
	if _, err := e.Enqueue(queue.Caller{ID: "c3", Queue: "old"}, at(7*sec)); !errors.Is(err, queue.ErrUnknownQueue) {
		t.Fatalf("enqueue to the removed queue: err = %v", err)
	}
	// The removed queue's caller is still served.
	acts, err = e.AdvocateOnline("c", at(8*sec))
	want(t, "c online", acts, err, "ring c2>c")
	_, _ = e.RingResult("c2", "c", queue.Answered, at(9*sec))
	snap := e.Snapshot(at(9 * sec))
	if len(snap.Queues) != 1 || snap.Queues[0].Name != "en" {
		t.Fatalf("queues after the removed one emptied: %+v", snap.Queues)
	}
	// a finishes the call and is gone.
	acts, err = e.CallEnded("c1", at(10*sec))
	want(t, "a hangs up", acts, err, "")
	for _, a := range e.Snapshot(at(10 * sec)).Advocates {
		if a.ID == "a" {
			t.Fatalf("a still present after the call: %+v", a)
		}
	}
	if _, err := e.SetAvailable("a", at(11*sec)); !errors.Is(err, queue.ErrUnknownAdvocate) {
		t.Fatalf("SetAvailable removed: err = %v", err)
	}
}

func TestReconfigureCancelsRingsThatNoLongerFit(t *testing.T) {
	cfg := queue.Config{Queues: []queue.QueueConfig{q("es", "es")}, Advocates: []queue.AdvocateConfig{adv("a", "es"), adv("b", "es")}}
	e := newEngine(t, cfg)
	online(t, e, t0, "a")
	_, _ = e.Enqueue(queue.Caller{ID: "c", Queue: "es", Language: "es"}, at(sec))
	cfg.Advocates = []queue.AdvocateConfig{adv("a", "en"), adv("b", "es")}
	acts, err := e.Reconfigure(cfg, at(2*sec))
	want(t, "a no longer speaks es", acts, err, "cancel c>a")
	acts, err = e.AdvocateOnline("b", at(3*sec))
	want(t, "b online", acts, err, "ring c>b")
}

func TestErrors(t *testing.T) {
	e := newEngine(t, queue.Config{Queues: []queue.QueueConfig{q("en", "en")}, Advocates: []queue.AdvocateConfig{adv("a", "en"), adv("b", "en")}})
	online(t, e, t0, "a")
	_, _ = e.Enqueue(queue.Caller{ID: "c", Queue: "en"}, at(sec))
	before := e.Snapshot(at(sec))
	tests := []struct {
		name string
		do   func() ([]queue.Action, error)
		want error
	}{
		{"enqueue duplicate", func() ([]queue.Action, error) {
			return e.Enqueue(queue.Caller{ID: "c", Queue: "en"}, at(2*sec))
		}, queue.ErrDuplicateCall},
		{"enqueue unknown queue", func() ([]queue.Action, error) {
			return e.Enqueue(queue.Caller{ID: "d", Queue: "xx"}, at(2*sec))
		}, queue.ErrUnknownQueue},
		{"enqueue empty id", func() ([]queue.Action, error) { return e.Enqueue(queue.Caller{Queue: "en"}, at(2*sec)) }, queue.ErrUnknownCall},
		{"abandon unknown", func() ([]queue.Action, error) { return e.Abandon("zz", at(2*sec)) }, queue.ErrUnknownCall},
		{"call ended unknown", func() ([]queue.Action, error) { return e.CallEnded("zz", at(2*sec)) }, queue.ErrUnknownCall},
		{"result from unknown advocate", func() ([]queue.Action, error) { return e.RingResult("c", "zz", queue.Answered, at(2*sec)) }, queue.ErrUnknownAdvocate},
		{"result from advocate not rung", func() ([]queue.Action, error) { return e.RingResult("c", "b", queue.Answered, at(2*sec)) }, queue.ErrNoRing},
		{"result for another call", func() ([]queue.Action, error) { return e.RingResult("zz", "a", queue.Busy, at(2*sec)) }, queue.ErrNoRing},
		{"zero outcome", func() ([]queue.Action, error) { return e.RingResult("c", "a", 0, at(2*sec)) }, queue.ErrBadOutcome},
		{"bad outcome", func() ([]queue.Action, error) { return e.RingResult("c", "a", 99, at(2*sec)) }, queue.ErrBadOutcome},
		{"online unknown", func() ([]queue.Action, error) { return e.AdvocateOnline("zz", at(2*sec)) }, queue.ErrUnknownAdvocate},
		{"offline unknown", func() ([]queue.Action, error) { return e.AdvocateOffline("zz", at(2*sec)) }, queue.ErrUnknownAdvocate},
		{"pause unknown", func() ([]queue.Action, error) { return e.Pause("zz", "x", at(2*sec)) }, queue.ErrUnknownAdvocate},
		{"logout unknown", func() ([]queue.Action, error) { return e.Logout("zz", at(2*sec)) }, queue.ErrUnknownAdvocate},
		{"move unknown call", func() ([]queue.Action, error) { return e.Move("zz", "en", at(2*sec)) }, queue.ErrUnknownCall},
		{"reconfigure bad", func() ([]queue.Action, error) {
			return e.Reconfigure(queue.Config{Advocates: []queue.AdvocateConfig{adv("a", "en"), adv("a", "en")}}, at(2*sec))
		}, queue.ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acts, err := tt.do()
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if len(acts) != 0 {
				t.Fatalf("actions on error: %s", show(acts))
			}
			if after := e.Snapshot(at(sec)); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("state changed on error:\n%+v\n%+v", before, after)
			}
		})
	}
	_, _ = e.RingResult("c", "a", queue.Answered, at(3*sec))
	if _, err := e.Abandon("c", at(4*sec)); !errors.Is(err, queue.ErrNotWaiting) {
		t.Errorf("abandon connected: err = %v, want ErrNotWaiting", err)
	}
	if _, err := e.Move("c", "en", at(4*sec)); !errors.Is(err, queue.ErrNotWaiting) {
		t.Errorf("move connected: err = %v, want ErrNotWaiting", err)
	}
}

func TestConfigErrors(t *testing.T) {
	good := q("en", "en")
	tests := []struct {
		name string
		cfg  queue.Config
		want string
	}{
		{"no queue name", queue.Config{Queues: []queue.QueueConfig{{Languages: []string{"en"}, RingTimeout: sec}}}, "queues[0]: name required"},
		{"duplicate queue", queue.Config{Queues: []queue.QueueConfig{good, good}}, `queues[1] "en": duplicate name`},
		{"no ring timeout", queue.Config{Queues: []queue.QueueConfig{{Name: "x", Languages: []string{"en"}}}}, `queues[0] "x": ring timeout must be more than 0, got 0s`},
		{"negative wrap-up", queue.Config{Queues: []queue.QueueConfig{{Name: "x", Languages: []string{"en"}, RingTimeout: sec, WrapUp: -sec}}}, "wrap-up must not be negative"},
		{"negative misses", queue.Config{Queues: []queue.QueueConfig{{Name: "x", Languages: []string{"en"}, RingTimeout: sec, MaxMisses: -1}}}, "max misses must not be negative"},
		{"queue without language", queue.Config{Queues: []queue.QueueConfig{{Name: "x", RingTimeout: sec}}}, `queues[0] "x": at least one language required`},
		{"advocate without id", queue.Config{Advocates: []queue.AdvocateConfig{{Languages: []string{"en"}}}}, "advocates[0]: id required"},
		{"advocate empty language", queue.Config{Advocates: []queue.AdvocateConfig{adv("a", "")}}, `advocates[0] "a": empty language`},
		{"negative samples", queue.Config{HandleTimeSamples: -1}, "handle time samples must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := queue.New(tt.cfg)
			if !errors.Is(err, queue.ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrConfig with %q", err, tt.want)
			}
		})
	}
}

func TestRoutingStateAndSnapshot(t *testing.T) {
	e := newEngine(t, queue.Config{
		Queues:    []queue.QueueConfig{q("en", "en"), q("es", "es")},
		Advocates: []queue.AdvocateConfig{adv("a", "en"), adv("b", "en", "es"), adv("c", "es")},
	})
	online(t, e, t0, "a", "b", "c")
	_, _ = e.Pause("c", "break", t0)
	_, _ = e.Enqueue(queue.Caller{ID: "x", Queue: "es", Language: "es"}, at(sec)) // rings b
	_, _ = e.Pause("a", "break", at(2*sec))
	_, _ = e.Pause("b", "break", at(2*sec)) // cancels; x waits
	_, _ = e.SetAvailable("a", at(3*sec))
	rs := e.RoutingState(at(61 * sec))
	if got := rs["en"]; got.LoggedIn != 1 || got.LongestWait != 0 {
		t.Errorf("en = %+v, want 1 logged in, nobody waiting", got)
	}
	if got := rs["es"]; got.LoggedIn != 0 || got.LongestWait != time.Minute {
		t.Errorf("es = %+v, want nobody logged in, longest wait 1m", got)
	}
	snap := e.Snapshot(at(61 * sec))
	es := snap.Queues[1]
	if es.Name != "es" || es.Waiting != 1 || es.Ringing != 0 || es.OldestWait != time.Minute || es.Staffed != 0 ||
		es.Advocates[queue.Paused] != 2 || es.ByLanguage["es"][queue.Paused] != 2 {
		t.Errorf("es snapshot = %+v", es)
	}
	if got := snap.Advocates[2]; got.ID != "c" || got.PauseReason != "break" || !got.Since.Equal(t0) || !got.Registered {
		t.Errorf("c snapshot = %+v", got)
	}
}

// recorder is an Observer that writes what it hears.
type recorder struct{ log []string }

func (r *recorder) Answered(q, a string, w time.Duration) {
	r.log = append(r.log, fmt.Sprintf("answered %s %s %v", q, a, w))
}
func (r *recorder) Abandoned(q string, w time.Duration) {
	r.log = append(r.log, fmt.Sprintf("abandoned %s %v", q, w))
}
func (r *recorder) RingMissed(q, a string, o queue.Outcome) {
	r.log = append(r.log, fmt.Sprintf("missed %s %s %v", q, a, o))
}
func (r *recorder) Talked(q, a string, d time.Duration) {
	r.log = append(r.log, fmt.Sprintf("talked %s %s %v", q, a, d))
}
func (r *recorder) WrappedUp(q, a string, d time.Duration) {
	r.log = append(r.log, fmt.Sprintf("wrapped %s %s %v", q, a, d))
}
func (r *recorder) StateChanged(a string, from, to queue.State) {
	r.log = append(r.log, fmt.Sprintf("%s %v>%v", a, from, to))
}

func TestObserver(t *testing.T) {
	qc := q("en", "en")
	qc.WrapUp = 5 * sec
	var r recorder
	e := newEngine(t, queue.Config{Queues: []queue.QueueConfig{qc}, Advocates: []queue.AdvocateConfig{adv("a", "en")}}, queue.WithObserver(&r))
	online(t, e, t0, "a")
	_, _ = e.Enqueue(queue.Caller{ID: "c1", Queue: "en"}, at(sec))
	_ = e.Tick(at(21 * sec))
	_, _ = e.RingResult("c1", "a", queue.Answered, at(23*sec))
	_, _ = e.CallEnded("c1", at(33*sec))
	_ = e.Tick(at(38 * sec))
	_, _ = e.Enqueue(queue.Caller{ID: "c2", Queue: "en"}, at(40*sec))
	_, _ = e.Abandon("c2", at(42*sec))
	want := []string{
		"a offline>available",
		"a available>ringing",
		"missed en a no_answer",
		"a ringing>available",
		"a available>ringing",
		"a ringing>on_call",
		"answered en a 22s",
		"talked en a 10s",
		"a on_call>wrap_up",
		"wrapped en a 5s",
		"a wrap_up>available",
		"a available>ringing",
		"a ringing>available",
		"abandoned en 2s",
	}
	if !slices.Equal(r.log, want) {
		t.Fatalf("observations:\n got: %q\nwant: %q", r.log, want)
	}
}

func TestStateText(t *testing.T) {
	for _, s := range queue.States {
		b, _ := s.MarshalText()
		var back queue.State
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("%v: text %q parses to %v, %v", s, b, back, err)
		}
	}
	var s queue.State
	if err := s.UnmarshalText([]byte("asleep")); err == nil {
		t.Error("unknown state parsed")
	}
}

func TestRingAllStartsOverWhenEveryoneMissed(t *testing.T) {
	ra := q("all", "en")
	ra.RingAll = true
	e := newEngine(t, queue.Config{Queues: []queue.QueueConfig{ra}, Advocates: []queue.AdvocateConfig{adv("a", "en"), adv("b", "en")}})
	online(t, e, t0, "a", "b")
	acts, err := e.Enqueue(queue.Caller{ID: "x", Queue: "all"}, at(sec))
	want(t, "enqueue", acts, err, "ring x>a, ring x>b")
	acts, err = e.RingResult("x", "b", queue.Rejected, at(2*sec))
	want(t, "b rejects: not rung again while a rings", acts, err, "")
	want(t, "a times out: a new round", e.Tick(at(21*sec)), nil, "cancel x>a, ring x>b, ring x>a")
}

// TestConcurrentUse drives the engine from several goroutines, each executing the
// actions its own events return (as concurrent SIP handlers would), with readers beside
// them; run with -race. Every call must end up answered and hung up.
func TestConcurrentUse(t *testing.T) {
	cfg := queue.Config{Queues: []queue.QueueConfig{q("en", "en")}}
	for i := range 3 {
		cfg.Advocates = append(cfg.Advocates, adv(fmt.Sprintf("a%d", i), "en"))
	}
	e := newEngine(t, cfg)
	online(t, e, t0, "a0", "a1", "a2")
	const workers, calls = 4, 200
	errs := make(chan error, workers)
	done := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
				_ = e.Snapshot(t0)
				_ = e.RoutingState(t0)
				_, _ = e.NextDeadline()
			}
		}
	})
	for w := range workers {
		go func() {
			var todo []queue.Action
			run := func(acts []queue.Action, err error) error {
				todo = append(todo, acts...)
				return err
			}
			for i := range calls {
				if err := run(e.Enqueue(queue.Caller{ID: fmt.Sprintf("w%d-%d", w, i), Queue: "en"}, t0)); err != nil {
					errs <- err
					return
				}
				for len(todo) > 0 {
					a := todo[0]
					todo = todo[1:]
					var err error
					switch a := a.(type) {
					case queue.Ring:
						err = run(e.RingResult(a.Call, a.Advocate, queue.Answered, t0))
					case queue.Connect:
						err = run(e.CallEnded(a.Call, t0))
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	close(done)
	readers.Wait()
	snap := e.Snapshot(t0)
	if snap.Queues[0].Waiting != 0 {
		t.Errorf("%d callers left waiting", snap.Queues[0].Waiting)
	}
	for _, a := range snap.Advocates {
		if a.State != queue.Available {
			t.Errorf("advocate %s left %v", a.ID, a.State)
		}
	}
	if got := snap.Queues[0].HandleSamples; got != 20 {
		t.Errorf("handle samples = %d, want the full 20", got)
	}
}

// TestLeave: a waiting caller taken by a target leaves the queue; the ringing phone is
// cancelled without a miss, and no abandonment is counted (issue 13, item 3).
func TestLeave(t *testing.T) {
	var r recorder
	e := newEngine(t, queue.Config{Queues: []queue.QueueConfig{q("en", "en")}, Advocates: []queue.AdvocateConfig{adv("a", "en")}}, queue.WithObserver(&r))
	online(t, e, t0, "a")
	_, _ = e.Enqueue(queue.Caller{ID: "c1", Queue: "en"}, at(sec))
	acts, err := e.Leave("c1", at(2*sec))
	want(t, "leave", acts, err, "cancel c1>a")
	if _, ok := e.Position("c1"); ok {
		t.Error("c1 still has a position")
	}
	if got := state(t, e, "a"); got.State != queue.Available || got.Misses != 0 {
		t.Errorf("a = %+v, want available with no miss", got)
	}
	if slices.ContainsFunc(r.log, func(s string) bool { return strings.HasPrefix(s, "abandoned") }) {
		t.Errorf("observations %q count an abandonment", r.log)
	}
	if _, err := e.Leave("c1", at(3*sec)); !errors.Is(err, queue.ErrUnknownCall) {
		t.Errorf("second leave: err = %v, want ErrUnknownCall", err)
	}
}

// TestNamedAdvocate: a call that names an advocate (a warm transfer, issue 18) rings that
// advocate alone, whatever their languages, and waits while they are busy; it does not
// hold up the callers behind it, who go to the others.
func TestNamedAdvocate(t *testing.T) {
	e := newEngine(t, queue.Config{Queues: []queue.QueueConfig{q("en", "en")},
		Advocates: []queue.AdvocateConfig{adv("ana", "en"), adv("bob", "en"), adv("fr", "fr")}})
	online(t, e, t0, "ana", "bob")
	acts, err := e.Enqueue(queue.Caller{ID: "x", Queue: "en", Language: "en", Priority: 9, Advocate: "fr"}, at(sec))
	want(t, "enqueue for fr (offline)", acts, err, "")
	acts, err = e.Enqueue(queue.Caller{ID: "c", Queue: "en", Language: "en"}, at(2*sec))
	want(t, "a caller behind it", acts, err, "ring c>ana")
	acts, err = e.AdvocateOnline("fr", at(3*sec))
	want(t, "fr online", acts, err, "ring x>fr")
	acts, err = e.RingResult("x", "fr", queue.Busy, at(4*sec))
	want(t, "fr busy", acts, err, "ring x>fr")
	acts, err = e.Leave("x", at(5*sec))
	want(t, "leave", acts, err, "cancel x>fr")
}
