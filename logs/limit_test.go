package logs

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) add(d time.Duration)     { c.t = c.t.Add(d) }
func newClock() *fakeClock                   { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }
func lines(b *bytes.Buffer) []map[string]any { return decode(b.String()) }

func decode(text string) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			panic(err)
		}
		out = append(out, m)
	}
	return out
}

func count(ls []map[string]any, msg string) int {
	n := 0
	for _, l := range ls {
		if l["msg"] == msg {
			n++
		}
	}
	return n
}

func TestPerCallAndGlobalLimits(t *testing.T) {
	clk := newClock()
	var buf bytes.Buffer
	var dropped atomic.Int64
	h := NewHandler(slog.NewJSONHandler(&buf, nil), Options{PerCall: 3, Global: 5, Interval: time.Minute,
		Now: clk.now, OnSuppressed: func(slog.Level) { dropped.Add(1) }})
	log := slog.New(h)
	a, b, c := log.With("call", "a"), log.With("call", "b"), log.With("call", "c")

	for range 1000 {
		a.Warn("digit buffer full, digit dropped")
	}
	for range 10 {
		b.Warn("digit buffer full, digit dropped")
	}
	c.Warn("digit buffer full, digit dropped") // the group of all calls has had its 5
	a.Info("another message")                  // another group: written
	got := lines(&buf)
	if n := count(got, "digit buffer full, digit dropped"); n != 5 {
		t.Errorf("wrote %d repeated lines, want 5 (3 for call a, 2 for call b, then the global limit)", n)
	}
	if n := count(got, "another message"); n != 1 {
		t.Errorf("another message written %d times, want 1", n)
	}
	if n := dropped.Load(); n != 1000+10+1-5 {
		t.Errorf("OnSuppressed told of %d lines, want %d", n, 1000+10+1-5)
	}

	// After the interval, the next line brings the summaries, one per group, and is written.
	buf.Reset()
	clk.add(time.Minute)
	a.Warn("digit buffer full, digit dropped")
	got = lines(&buf)
	sums := map[string]float64{}
	for _, l := range got {
		if l["msg"] == SummaryMessage {
			call, _ := l["call"].(string)
			if l["message"] != "digit buffer full, digit dropped" || l["level"] != "WARN" {
				t.Errorf("summary %v", l)
			}
			sums[call] = l["suppressed"].(float64)
		}
	}
	want := map[string]float64{"a": 997, "b": 7}
	for k, v := range want {
		if sums[k] != v {
			t.Errorf("summary for call %q: %v suppressed, want %v (all: %v)", k, sums[k], v, sums)
		}
	}
	if sums[""] != 1000+10+1-5-997-7 {
		t.Errorf("summary of all calls: %v, want %d", sums[""], 1000+10+1-5-997-7)
	}
	if n := count(got, "digit buffer full, digit dropped"); n != 1 {
		t.Errorf("after the interval wrote %d lines, want 1", n)
	}
}

func TestCallFromRecordAttrsAndGroups(t *testing.T) {
	clk := newClock()
	var buf bytes.Buffer
	log := slog.New(NewHandler(slog.NewJSONHandler(&buf, nil), Options{PerCall: 1, Global: 100, Now: clk.now}))
	log.Info("x", "call", "1")
	log.Info("x", "call", "1")
	log.Info("x", "call", "2")
	// A "call" attribute inside a group is not the call's id: these share the group of no call.
	g := log.WithGroup("g").With("call", "3")
	g.Info("x")
	g.Info("x")
	if n := count(lines(&buf), "x"); n != 4 {
		t.Fatalf("wrote %d lines, want 4:\n%s", n, buf.String())
	}
}

func TestSilenceStillSummed(t *testing.T) {
	clk := newClock()
	var buf bytes.Buffer
	log := slog.New(NewHandler(slog.NewJSONHandler(&buf, nil), Options{PerCall: 1, Global: 1, Interval: 10 * time.Second, Now: clk.now}))
	for range 5 {
		log.Warn("burst", "call", "a")
	}
	clk.add(11 * time.Second)
	log.Info("unrelated")
	got := lines(&buf)
	if count(got, SummaryMessage) != 1 { // the call's; the group of all calls dropped none
		t.Fatalf("want 1 summary after a burst and silence:\n%s", buf.String())
	}
}

func TestBoundedKeys(t *testing.T) {
	clk := newClock()
	h := NewHandler(slog.DiscardHandler, Options{MaxKeys: 16, Now: clk.now})
	log := slog.New(h)
	for i := range 1000 {
		log.Info("m", "call", strings.Repeat("x", i%50)+string(rune('a'+i%26)))
	}
	if n := h.st.groups.Len(); n > 16 {
		t.Fatalf("%d groups remembered, bound 16", n)
	}
}

func BenchmarkHandle(b *testing.B) {
	log := slog.New(NewHandler(slog.NewJSONHandler(io.Discard, nil), Options{})).With("call", "abc")
	b.ReportAllocs()
	for b.Loop() {
		log.Warn("digit buffer full, digit dropped")
	}
}

// Info lines of calls are limited per call only: a busy hour's "incoming call" lines, one
// per call, are all written.
func TestInfoOfManyCallsNotLimitedTogether(t *testing.T) {
	clk := newClock()
	var buf bytes.Buffer
	log := slog.New(NewHandler(slog.NewJSONHandler(&buf, nil), Options{PerCall: 2, Global: 3, Now: clk.now}))
	for i := range 50 {
		log.Info("incoming call", "call", strings.Repeat("c", i+1))
	}
	for range 10 {
		log.Info("no call here")
	}
	got := lines(&buf)
	if n := count(got, "incoming call"); n != 50 {
		t.Errorf("%d of 50 calls' info lines written", n)
	}
	if n := count(got, "no call here"); n != 3 {
		t.Errorf("%d lines of no call written, want the global 3", n)
	}
}
