package callflow

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/ivr"
	"github.com/hotline-project/hotline/queue"
	"github.com/hotline-project/hotline/records"
)

// callbackYAML: queue en offers callbacks after a minute's wait, when overflowing and
// when closed; callbacks go out through the trunk target. The quick-exit key is D (# ends
// typed numbers).
const callbackYAML = `
safety: {quick_exit_key: "D"}
queues:
  - {name: en, languages: [en], callback: {wait_over: 1m, overflowing: true, closed: true}}
  - {name: backup, languages: [en]}
queue_defaults:
  ring_timeout: 5s
  wrap_up: 0s
  max_misses: 0
  announce_every: 0s
  whisper: false
targets:
  - {name: trunk, uri: "sip:trunk@carrier.test"}
schedules:
  - {name: never, timezone: UTC, daily: []}
routes:
  - {name: closed, when: {reasons: [tip]}, message: closed, hangup: true}
  - {name: help_now, when: {reasons: [help_now]}, to: en, priority: 100, overflow: [{after: 10m, to: backup}]}
  - {name: default, to: en, priority: 10}
callback:
  trunk: trunk
  caller_id: "anonymous"
  hotline_name: "Hotline"
  priority: 50
  attempts: 3
  retry_after: 10m
  windows:
    - {key: "1", prompt: callback_window_asap, within: 45m}
    - {key: "3", prompt: callback_window_evening, from: "18:00", to: "21:00"}
  timezone: UTC
`

// The callee's number the tests type, and the URI it is dialled at.
const (
	typed    = "5550009999"
	typedURI = "sip:5550009999@carrier.test"
)

// fakeCallbackMetrics records the callback events.
type fakeCallbackMetrics struct {
	mu     sync.Mutex
	events []string
}

func (m *fakeCallbackMetrics) Callback(q, e string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, q+":"+e)
}

func (m *fakeCallbackMetrics) count(e string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, x := range m.events {
		if strings.HasSuffix(x, ":"+e) {
			n++
		}
	}
	return n
}

// fakeCallbackStore is the durable store as the flow sees it.
type fakeCallbackStore struct {
	mu   sync.Mutex
	reqs map[string]CallbackRequest
}

func (s *fakeCallbackStore) Put(r CallbackRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs[r.ID] = r
}

func (s *fakeCallbackStore) Delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.reqs, id)
}

func (s *fakeCallbackStore) all() []CallbackRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []CallbackRequest
	for _, r := range s.reqs {
		out = append(out, r)
	}
	return out
}

type cbHarness struct {
	*harness
	m     *fakeCallbackMetrics
	store *fakeCallbackStore
}

// newCallbackHarness is a harness with callbacks, their scheduler running; queueCB, if
// set, replaces queue en's callback offer.
func newCallbackHarness(t *testing.T, extra string, queueCB ...string) *cbHarness {
	y := callbackYAML
	if len(queueCB) > 0 {
		y = strings.Replace(y, "{wait_over: 1m, overflowing: true, closed: true}", queueCB[0], 1)
	}
	h := newHarness(t, y+extra)
	cb := &cbHarness{harness: h, m: &fakeCallbackMetrics{}, store: &fakeCallbackStore{reqs: map[string]CallbackRequest{}}}
	h.flow.cbMetrics, h.flow.cbStore = cb.m, cb.store
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = h.flow.RunCallbacks(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return cb
}

// pressOn waits for a prompt whose name has want to start playing on leg, then presses
// the keys.
func pressOn(t *testing.T, leg *fakeLeg, want string, keys string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !leg.hasPlayed(want) {
		if time.Now().After(deadline) {
			t.Fatalf("prompt %s not played; played %v", want, leg.plays())
		}
		time.Sleep(time.Millisecond)
	}
	for _, k := range keys {
		select {
		case leg.digits <- k:
		case <-time.After(3 * time.Second):
			t.Fatalf("key %c not taken after %s", k, want)
		}
	}
}

// bookByTyping takes a waiting caller through the offer, typing the number: they refuse
// the caller ID read back, type typed, confirm it, pick window key and say whether the
// hotline may be named.
func (h *cbHarness) bookByTyping(t *testing.T, c *testCall, window string, consent bool) {
	t.Helper()
	pressOn(t, c.leg, "callback_offer", "1")
	h.readBack(t, c.leg, "callback_number_is+num_1+num_5+num_5+num_5+num_0+num_0+num_0+num_1+num_2+num_3+num_4")
	pressOn(t, c.leg, "callback_confirm", "2")
	pressOn(t, c.leg, "callback_enter_number", typed+"#")
	h.readBack(t, c.leg, "callback_number_is+num_5+num_5+num_5+num_0+num_0+num_0+num_9+num_9+num_9+num_9")
	eventually(t, "second confirm", func() bool { return countPlayed(c.leg, "callback_confirm") == 2 })
	pressOn(t, c.leg, "callback_confirm", "1")
	pressOn(t, c.leg, "callback_window", window)
	key := "2"
	if consent {
		key = "1"
	}
	pressOn(t, c.leg, "callback_consent", key)
	h.readBack(t, c.leg, "callback_booked")
}

// bookWithCallerID takes a waiting caller through the offer up to callback_booked: they
// confirm the caller ID read back, pick the first window and say whether the hotline may
// be named.
func (h *cbHarness) bookWithCallerID(t *testing.T, c *testCall, consent bool) {
	t.Helper()
	pressOn(t, c.leg, "callback_offer", "1")
	h.readBack(t, c.leg, "callback_number_is")
	pressOn(t, c.leg, "callback_confirm", "1")
	pressOn(t, c.leg, "callback_window", "1")
	key := "2"
	if consent {
		key = "1"
	}
	pressOn(t, c.leg, "callback_consent", key)
}

// readBack waits for the read-back of a number to start, and lets it play.
func (h *cbHarness) readBack(t *testing.T, leg *fakeLeg, want string) {
	t.Helper()
	pressOn(t, leg, want, "")
	h.clk.Advance(15 * time.Second)
}

func countPlayed(l *fakeLeg, name string) int {
	n := 0
	for _, p := range l.plays() {
		if p == name {
			n++
		}
	}
	return n
}

// waitCaller places a help_now caller with a caller ID and lets them wait a minute, when
// the offer comes.
func (h *cbHarness) waitCaller(t *testing.T) *testCall {
	t.Helper()
	c := h.callFrom("sip:+15550001234@carrier.test", helpNow())
	eventually(t, "queued", func() bool { return h.waiting(c, "en") })
	h.clk.Advance(time.Minute)
	return c
}

func (h *cbHarness) pending() []CallbackInfo { return h.flow.Callbacks() }

// TestCallbackHappyPath: a caller waits a minute, accepts the offer, types another number
// (read back digit by digit), picks "as soon as possible", refuses the hotline's name, and
// the call ends recorded as callback. The request is stored sealed: no digit of the
// number in it, the admin list masked. An advocate comes online: their phone rings first,
// they hear the callback whisper, the number is dialled through the trunk with the neutral
// caller ID, the callee hears the neutral gate and presses 1, and the two are bridged.
// When they hang up, the callback is gone and counted reached.
func TestCallbackHappyPath(t *testing.T) {
	h := newCallbackHarness(t, advocatesYAML(t, "ana:en"))
	c := h.waitCaller(t)
	h.bookByTyping(t, c, "1", false)
	r := h.record(c)
	if r.Outcome != records.Outcome("callback") {
		t.Errorf("caller's outcome %q, want callback", r.Outcome)
	}
	if h.m.count("offered") != 1 || h.m.count("accepted") != 1 {
		t.Errorf("metrics %v", h.m.events)
	}
	reqs := h.store.all()
	if len(reqs) != 1 {
		t.Fatalf("stored %d requests", len(reqs))
	}
	req := reqs[0]
	if strings.Contains(string(req.Sealed), typed) || req.KeyID == "" || req.Consent || req.Priority != 50 {
		t.Errorf("stored request %+v", req)
	}
	if got := req.Expires.Sub(req.Created); got != 45*time.Minute {
		t.Errorf("window %v, want 45m", got)
	}
	list := h.pending()
	if len(list) != 1 || list[0].Number != "••••••••99" {
		t.Fatalf("admin list %+v", list)
	}
	if strings.Contains(h.logs.String(), typed) || strings.Contains(h.logs.String(), "5550001234") {
		t.Fatal("a number is in the logs")
	}

	// Nobody online: it waits in its queue. Ana comes online; her phone rings first.
	h.online("ana", "sip:ana@phone", phone{answerAfter: 2 * time.Second})
	h.net.set(typedURI, phone{answerAfter: 3 * time.Second})
	eventually(t, "ana rung", func() bool { return h.net.isRinging("sip:ana@phone") })
	if h.net.dialled(typedURI) != 0 {
		t.Fatal("the number was dialled before the advocate answered")
	}
	h.clk.Advance(2 * time.Second)
	eventually(t, "ana answered", func() bool { return h.net.leg("sip:ana@phone") != nil })
	ana := h.net.leg("sip:ana@phone")
	eventually(t, "whisper", func() bool { return ana.hasPlayed("callback_whisper+whisper_lang_en+whisper_help_now") })
	h.clk.Advance(5 * time.Second) // the whisper plays
	eventually(t, "the number dialled", func() bool { return h.net.isRinging(typedURI) })
	h.clk.Advance(3 * time.Second)
	eventually(t, "callee answered", func() bool { return h.net.leg(typedURI) != nil })
	callee := h.net.leg(typedURI)
	pressOn(t, callee, "callback_gate", "1")
	eventually(t, "bridged", func() bool { return callee.isBridged() && ana.isBridged() })
	if slices.ContainsFunc(callee.plays(), func(p string) bool { return p == "callback_gate_named" }) {
		t.Error("the hotline was named without consent")
	}
	h.clk.Advance(time.Minute)
	callee.remoteHangup()
	eventually(t, "ana hung up", ana.ended)
	eventually(t, "reached", func() bool { return h.m.count("reached") == 1 })
	if len(h.pending()) != 0 || len(h.store.all()) != 0 {
		t.Errorf("callback still pending: %+v", h.pending())
	}
	if h.m.count("attempted") != 1 {
		t.Errorf("metrics %v", h.m.events)
	}
	if rec := h.recs.get(req.ID + "-1"); rec == nil {
		t.Error("no record of the try")
	} else if r, _ := rec.get(); r.Outcome != records.OutcomeCompleted || r.Advocate != "ana" || r.Route != "callback" || r.CallerHash != "" {
		t.Errorf("try's record %+v", r)
	}
	eventually(t, "ana free", func() bool { return h.advocateState("ana") == queue.Available })
}

// TestCallbackMachineBeep: an answering machine picks up and beeps while the gate plays:
// the server hangs up at once (no waiting for the gate's timeout, nothing more played),
// and the try counts as not reached, to be retried within the window.
func TestCallbackMachineBeep(t *testing.T) {
	h := newCallbackHarness(t, advocatesYAML(t, "ana:en"))
	c := h.waitCaller(t)
	h.bookByTyping(t, c, "1", false)
	h.record(c)
	h.online("ana", "sip:ana@phone", phone{answerAfter: time.Second})
	h.net.set(typedURI, phone{answerAfter: time.Second})
	eventually(t, "ana rung", func() bool { return h.net.isRinging("sip:ana@phone") })
	h.clk.Advance(time.Second)
	eventually(t, "ana answered", func() bool { return h.net.leg("sip:ana@phone") != nil })
	ana := h.net.leg("sip:ana@phone")
	eventually(t, "whisper", func() bool { return ana.hasPlayed("callback_whisper+whisper_lang_en+whisper_help_now") })
	var callee *fakeLeg
	for range 20 { // the whisper plays, the number rings for a second and answers
		if callee = h.net.leg(typedURI); callee != nil {
			break
		}
		h.clk.Advance(time.Second)
		time.Sleep(20 * time.Millisecond)
	}
	if callee == nil {
		t.Fatalf("the number was not dialled and answered; dialled %d times", h.net.dialled(typedURI))
	}
	eventually(t, "the gate plays", func() bool { return callee.hasPlayed("callback_gate") })
	eventually(t, "the gate watches for a beep", callee.beep)
	eventually(t, "the machine hung up", callee.ended) // the fake clock stands still: no timeout
	if got := callee.plays(); len(got) != 1 || got[0] != "callback_gate" {
		t.Errorf("the machine heard %v, want the gate only", got)
	}
	eventually(t, "ana told", func() bool { return ana.hasPlayed("callback_not_reached") })
	h.clk.Advance(10 * time.Second) // the message to ana plays
	eventually(t, "rescheduled", func() bool { l := h.pending(); return len(l) == 1 && l[0].Attempts == 1 })
	if l := h.pending(); l[0].Last != tryNoKey {
		t.Errorf("last try %q, want %q", l[0].Last, tryNoKey)
	}
	if h.m.count("reached") != 0 {
		t.Errorf("metrics %v", h.m.events)
	}
}

// TestCallbackCallerID: the caller confirms the caller ID read back, picks the window and
// allows the hotline's name: the gate names it.
func TestCallbackCallerID(t *testing.T) {
	h := newCallbackHarness(t, advocatesYAML(t, "ana:en"))
	c := h.waitCaller(t)
	h.bookWithCallerID(t, c, true)
	h.readBack(t, c.leg, "callback_booked")
	h.record(c)
	const callerURI = "sip:15550001234@carrier.test"
	h.net.set(callerURI, phone{answerAfter: time.Second})
	h.online("ana", "sip:ana@phone", phone{answerAfter: time.Second})
	eventually(t, "ana rung", func() bool { return h.net.isRinging("sip:ana@phone") })
	h.clk.Advance(time.Second)
	h.clk.Advance(10 * time.Second)
	eventually(t, "callee answered", func() bool { return h.net.leg(callerURI) != nil })
	callee := h.net.leg(callerURI)
	pressOn(t, callee, "callback_gate_named", "1")
	eventually(t, "bridged", callee.isBridged)
}

// TestCallbackUnhappy: each way a try fails is retried later in the window, never leaving
// a message; the last try fails for good and the request is deleted.
func TestCallbackUnhappy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		callee phone
		last   string
	}{
		{"no key at the gate", phone{answerAfter: time.Second}, tryNoKey},
		{"busy", phone{fail: ErrBusy}, tryBusy},
		{"no answer", phone{}, tryNoAnswer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newCallbackHarness(t, advocatesYAML(t, "ana:en"))
			c := h.waitCaller(t)
			h.bookByTyping(t, c, "1", false)
			h.record(c)
			h.net.set(typedURI, tc.callee)
			h.online("ana", "sip:ana@phone", phone{answerAfter: time.Second})
			const anaURI = "sip:ana@phone"
			var prev *fakeLeg
			for try := 1; try <= 3; try++ {
				eventually(t, "ana rung", func() bool { return h.net.dialled(anaURI) >= try })
				// Whisper, ringing (45 s at most), gate (8 s after it): within 3 minutes.
				var ana *fakeLeg
				for range 36 {
					h.clk.Advance(5 * time.Second)
					if l := h.net.leg(anaURI); l != nil && l != prev && l.ended() {
						ana = l
						break
					}
				}
				if ana == nil {
					t.Fatalf("try %d: ana's leg did not end", try)
				}
				prev = ana
				if !ana.hasPlayed("callback_whisper") || !ana.hasPlayed("callback_not_reached") {
					t.Errorf("try %d: ana heard %v", try, ana.plays())
				}
				if callee := h.net.leg(typedURI); callee != nil {
					if got := callee.plays(); len(got) != 1 || got[0] != "callback_gate" {
						t.Errorf("the callee heard %v, want the gate only", got)
					}
					h.net.mu.Lock()
					delete(h.net.legs, typedURI)
					h.net.mu.Unlock()
				}
				if try < 3 {
					eventually(t, "rescheduled", func() bool { l := h.pending(); return len(l) == 1 && l[0].Attempts == try })
					if l := h.pending(); l[0].Last != tc.last {
						t.Errorf("last %q, want %q", l[0].Last, tc.last)
					}
					h.clk.Advance(11 * time.Minute)
				}
			}
			eventually(t, "failed for good", func() bool { return h.m.count("failed") == 1 })
			if len(h.pending()) != 0 || len(h.store.all()) != 0 {
				t.Errorf("still pending after the last try: %+v", h.pending())
			}
			if h.m.count("attempted") != 3 || h.m.count("reached") != 0 {
				t.Errorf("metrics %v", h.m.events)
			}
		})
	}
}

// TestCallbackExpiry: nobody is online during the whole window: the callback leaves its
// queue when the window ends, is counted expired and deleted; nobody was dialled.
func TestCallbackExpiry(t *testing.T) {
	h := newCallbackHarness(t, advocatesYAML(t, "ana:en"))
	c := h.waitCaller(t)
	h.bookByTyping(t, c, "1", false)
	h.record(c)
	h.clk.Advance(44 * time.Minute)
	if len(h.pending()) != 1 {
		t.Fatal("gone before its window ended")
	}
	h.clk.Advance(2 * time.Minute)
	eventually(t, "expired", func() bool { return h.m.count("expired") == 1 })
	if len(h.pending()) != 0 || len(h.store.all()) != 0 || h.net.dialled(typedURI) != 0 {
		t.Errorf("pending %+v", h.pending())
	}
	for _, q := range h.eng.Snapshot(h.clk.Now()).Queues {
		if q.Waiting != 0 {
			t.Errorf("queue %s still has %d waiting", q.Name, q.Waiting)
		}
	}
}

// TestCallbackWindowClosed: the caller picks "this evening" at 15:00: an advocate online
// is not rung for it until 18:00.
func TestCallbackWindowClosed(t *testing.T) {
	h := newCallbackHarness(t, advocatesYAML(t, "ana:en"))
	c := h.waitCaller(t)
	h.bookByTyping(t, c, "3", false)
	h.record(c)
	h.net.set(typedURI, phone{answerAfter: time.Second})
	h.online("ana", "sip:ana@phone", phone{answerAfter: time.Second})
	h.clk.Advance(2*time.Hour + 57*time.Minute) // 17:58
	if h.net.dialled("sip:ana@phone") != 0 {
		t.Fatal("rung before the window opened")
	}
	l := h.pending()
	if len(l) != 1 || l[0].Opens.Hour() != 18 || l[0].Expires.Hour() != 21 {
		t.Fatalf("pending %+v", l)
	}
	h.clk.Advance(3 * time.Minute)
	eventually(t, "ana rung at 18:00", func() bool { return h.net.dialled("sip:ana@phone") == 1 })
}

// TestCallbackDeclined: the caller presses 2 (or nothing): back to the queue, with its
// place, once; nothing stored.
func TestCallbackDeclined(t *testing.T) {
	h := newCallbackHarness(t, "")
	c := h.waitCaller(t)
	pos, _ := h.eng.Position(c.id)
	pressOn(t, c.leg, "callback_offer", "2")
	eventually(t, "declined", func() bool { return c.leg.hasPlayed("callback_declined") })
	if !h.waiting(c, "en") {
		t.Fatal("not in the queue")
	}
	if p, _ := h.eng.Position(c.id); p != pos {
		t.Errorf("position %d, want %d", p, pos)
	}
	h.clk.Advance(5 * time.Minute)
	if countPlayed(c.leg, "callback_offer") != 1 || len(h.store.all()) != 0 {
		t.Errorf("offered %d times", countPlayed(c.leg, "callback_offer"))
	}
	c.leg.remoteHangup()
	h.record(c)
}

// TestCallbackTooShort: a number too short gets the invalid prompt and a retry; past the
// retries the caller goes back to the queue.
func TestCallbackTooShort(t *testing.T) {
	h := newCallbackHarness(t, "")
	c := h.callFrom("anonymous", helpNow()) // no caller ID to offer
	eventually(t, "queued", func() bool { return h.waiting(c, "en") })
	h.clk.Advance(time.Minute)
	pressOn(t, c.leg, "callback_offer", "1")
	for i := 1; i <= cbRetries+1; i++ {
		eventually(t, "enter", func() bool { return countPlayed(c.leg, "callback_enter_number") == i })
		pressOn(t, c.leg, "callback_enter_number", "123#")
		if i <= cbRetries {
			eventually(t, "invalid", func() bool { return countPlayed(c.leg, "callback_invalid_number") == i })
			h.clk.Advance(5 * time.Second)
		}
	}
	eventually(t, "back in the queue", func() bool { return c.leg.hasPlayed("callback_declined") })
	if countPlayed(c.leg, "callback_invalid_number") != cbRetries {
		t.Errorf("invalid played %d times: %v", countPlayed(c.leg, "callback_invalid_number"), c.leg.plays())
	}
	if !h.waiting(c, "en") || len(h.store.all()) != 0 {
		t.Error("not back in the queue, or something stored")
	}
	c.leg.remoteHangup()
	h.record(c)
}

// TestCallbackOverflowAndClosed: the offer comes when the caller's wait reaches an
// overflow step of a queue offering callbacks when overflowing (and is for that queue),
// and to a caller whom routing sends to the closed message (who, declining, hears it).
func TestCallbackOverflowAndClosed(t *testing.T) {
	h := newCallbackHarness(t, "", "{overflowing: true}")
	c := h.callFrom("sip:+15550001234@carrier.test", helpNow())
	eventually(t, "queued", func() bool { return h.waiting(c, "en") })
	h.clk.Advance(5 * time.Minute)
	if c.leg.hasPlayed("callback_offer") {
		t.Fatal("offered before the overflow step")
	}
	h.clk.Advance(5 * time.Minute)
	eventually(t, "in backup", func() bool { return h.waiting(c, "backup") })
	h.bookWithCallerID(t, c, false)
	h.readBack(t, c.leg, "callback_booked")
	h.record(c)
	if l := h.pending(); len(l) != 1 || l[0].Queue != "en" {
		t.Errorf("pending %+v, want one for en", l)
	}

	h2 := newCallbackHarness(t, "", "{closed: true}")
	c2 := h2.callFrom("sip:+15550001234@carrier.test", ivr.Result{Language: "en", Reason: "tip", End: ivr.EndChoice})
	pressOn(t, c2.leg, "callback_offer", "2")
	h2.readBack(t, c2.leg, "closed")
	h2.record(c2)
	if h2.m.count("offered") != 1 || len(h2.pending()) != 0 {
		t.Errorf("metrics %v", h2.m.events)
	}
}

func TestWindowTimes(t *testing.T) {
	utc := time.UTC
	at := func(h, m int) time.Time { return time.Date(2026, 3, 2, h, m, 0, 0, utc) }
	eve := config.CallbackWindow{From: "18:00", To: "21:00"}
	night := config.CallbackWindow{From: "22:00", To: "02:00"}
	for _, tc := range []struct {
		w          config.CallbackWindow
		now        time.Time
		opens, end time.Time
	}{
		{config.CallbackWindow{Within: 2 * time.Hour}, at(15, 0), at(15, 0), at(17, 0)},
		{eve, at(15, 0), at(18, 0), at(21, 0)},
		{eve, at(19, 0), at(19, 0), at(21, 0)},
		{eve, at(21, 0), at(18, 0).AddDate(0, 0, 1), at(21, 0).AddDate(0, 0, 1)},
		{night, at(23, 0), at(23, 0), at(2, 0).AddDate(0, 0, 1)},
		{night, at(1, 0), at(1, 0), at(2, 0)},
		{night, at(3, 0), at(22, 0), at(2, 0).AddDate(0, 0, 1)},
	} {
		o, e := windowTimes(tc.w, tc.now, utc)
		if !o.Equal(tc.opens) || !e.Equal(tc.end) {
			t.Errorf("%+v at %v: %v..%v, want %v..%v", tc.w, tc.now, o, e, tc.opens, tc.end)
		}
	}
}

func TestCallerDigits(t *testing.T) {
	for in, want := range map[string]string{
		"sip:+15550001234@carrier.test":         "15550001234",
		"\"Ana\" <sip:5550001234@x>;tag=1":      "5550001234",
		"tel:+1-555-000-1234":                   "15550001234",
		"anonymous":                             "",
		"sip:alice@example.org":                 "",
		"sips:+44 20 7946 0000;user=phone@host": "442079460000",
	} {
		if got := callerDigits(in); got != want {
			t.Errorf("callerDigits(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDialURI(t *testing.T) {
	for _, tc := range [][3]string{
		{"sip:trunk@carrier.test", "5550009999", "sip:5550009999@carrier.test"},
		{"sips:gw.example:5061;transport=tls", "123", "sips:123@gw.example:5061;transport=tls"},
	} {
		if got := dialURI(tc[0], tc[1]); got != tc[2] {
			t.Errorf("dialURI(%q) = %q, want %q", tc[0], got, tc[2])
		}
	}
}

// TestCallbackHangUpWhileBooked: the caller hangs up as callback_booked plays: the
// callback is theirs (booked before the prompt), the call is recorded as callback, and no
// place is kept for them.
func TestCallbackHangUpWhileBooked(t *testing.T) {
	h := newCallbackHarness(t, "")
	h.flow.hash = func(string) string { return "hash-of-caller" }
	c := h.waitCaller(t)
	h.bookWithCallerID(t, c, true)
	pressOn(t, c.leg, "callback_booked", "")
	c.leg.remoteHangup()
	if r := h.record(c); r.Outcome != records.Outcome("callback") {
		t.Errorf("outcome %q, want callback", r.Outcome)
	}
	if l := h.pending(); len(l) != 1 || !l[0].Consent || l[0].Number != "•••••••••34" {
		t.Errorf("pending %+v", l)
	}
	if h.safety.has("place:held") {
		t.Error("a place was kept for a caller who booked a callback")
	}
	if reqs := h.store.all(); len(reqs) != 1 || reqs[0].Hash != "hash-of-caller" {
		t.Errorf("stored %+v", reqs)
	}
}

// TestCallbackRestoreAndCancel: callbacks from the store (a restart) are pending again,
// those whose window ended are not; the admin API's cancel forgets one for good.
func TestCallbackRestoreAndCancel(t *testing.T) {
	h := newCallbackHarness(t, "")
	now := h.clk.Now()
	kid, sealed := h.flow.sealer.Seal("cb-a", "5550001111")
	n := h.flow.RestoreCallbacks([]CallbackRequest{
		{ID: "cb-a", Queue: "en", Language: "en", KeyID: kid, Sealed: sealed, Created: now.Add(-time.Hour), Opens: now, Expires: now.Add(time.Hour)},
		{ID: "cb-old", Queue: "en", KeyID: kid, Sealed: sealed, Expires: now.Add(-time.Minute)},
	})
	if n != 1 {
		t.Fatalf("restored %d, want 1", n)
	}
	h.flow.pokeCallbacks()
	eventually(t, "queued", func() bool { l := h.pending(); return len(l) == 1 && l[0].State == "queued" })
	if l := h.pending(); l[0].Number != "••••••••11" {
		t.Errorf("masked %q", l[0].Number)
	}
	if err := h.flow.CancelCallback("cb-nope"); !errors.Is(err, ErrNoCallback) {
		t.Errorf("cancel unknown: %v", err)
	}
	if err := h.flow.CancelCallback("cb-a"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "out of the queue", func() bool {
		for _, q := range h.eng.Snapshot(h.clk.Now()).Queues {
			if q.Waiting != 0 {
				return false
			}
		}
		return true
	})
	if len(h.pending()) != 0 || h.m.count("cancelled") != 1 {
		t.Errorf("pending %+v, metrics %v", h.pending(), h.m.events)
	}
}

// TestCallbackOfferStoppedByAnswer: an advocate answers while the caller hears the offer:
// the offer stops, nothing is booked, and the caller is put through.
func TestCallbackOfferStoppedByAnswer(t *testing.T) {
	h := newCallbackHarness(t, advocatesYAML(t, "ana:en"))
	c := h.waitCaller(t)
	pressOn(t, c.leg, "callback_offer", "")
	h.online("ana", "sip:ana@phone", phone{answerAfter: time.Second})
	eventually(t, "ana rung", func() bool { return h.net.isRinging("sip:ana@phone") })
	h.clk.Advance(time.Second)
	eventually(t, "bridged", c.leg.isBridged)
	if len(h.pending()) != 0 || h.m.count("accepted") != 0 {
		t.Errorf("booked: %+v", h.pending())
	}
	c.leg.remoteHangup()
	if r := h.record(c); r.Outcome == records.Outcome("callback") || r.Advocate != "ana" {
		t.Errorf("record %+v", r)
	}
}

// TestCallbackDrain: a draining server makes no callback: one waiting in its queue leaves
// it and stays pending (in the store) for after the restart; an advocate who comes online
// is not rung for it.
func TestCallbackDrain(t *testing.T) {
	h := newCallbackHarness(t, advocatesYAML(t, "ana:en"))
	c := h.waitCaller(t)
	h.bookByTyping(t, c, "1", false)
	h.record(c)
	eventually(t, "queued", func() bool { return h.flow.CallbacksInProgress() == 1 })
	h.flow.DrainCallbacks()
	eventually(t, "out of the queue", func() bool { return h.flow.CallbacksInProgress() == 0 })
	h.online("ana", "sip:ana@phone", phone{answerAfter: time.Second})
	h.clk.Advance(time.Minute)
	if h.net.dialled("sip:ana@phone") != 0 {
		t.Error("ana rung for a callback while draining")
	}
	if len(h.pending()) != 1 || len(h.store.all()) != 1 {
		t.Errorf("pending %+v", h.pending())
	}
}

// TestCallbackQuickExitCancels: the quick-exit key pressed as callback_booked plays ends
// the call at once and cancels the callback just booked: someone may be listening.
func TestCallbackQuickExitCancels(t *testing.T) {
	h := newCallbackHarness(t, "")
	c := h.waitCaller(t)
	h.bookWithCallerID(t, c, false)
	pressOn(t, c.leg, "callback_booked", "D")
	if r := h.record(c); r.Outcome != records.OutcomeQuickExit {
		t.Errorf("outcome %q, want quick_exit", r.Outcome)
	}
	eventually(t, "cancelled", func() bool { return h.m.count("cancelled") == 1 })
	if len(h.pending()) != 0 || len(h.store.all()) != 0 {
		t.Errorf("callback kept after a quick exit: %+v", h.pending())
	}
}

// FuzzCallerDigits: whatever a caller ID holds, the read-back gets digits only (or
// nothing), never a panic.
func FuzzCallerDigits(f *testing.F) {
	for _, s := range []string{"sip:+15550001234@carrier.test", "\"A\" <tel:+1-555>", "<sip:", "sip:@", "anonymous", "+"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, r := range callerDigits(s) {
			if r < '0' || r > '9' {
				t.Fatalf("callerDigits(%q) holds %q", s, r)
			}
		}
	})
}
