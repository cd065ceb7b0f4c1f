package console

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// nextView returns the next view event's data, failing on any other event.
func nextView(t *testing.T, s *sse) string {
	t.Helper()
	ev, data := s.next(t)
	if ev != "view" {
		t.Fatalf("event %q %s, want view", ev, data)
	}
	return data
}

// waitView reads views until one contains want.
func waitView(t *testing.T, s *sse, want string) string {
	t.Helper()
	for range 50 {
		if d := nextView(t, s); strings.Contains(d, want) {
			return d
		}
	}
	t.Fatalf("no view with %s", want)
	return ""
}

// TestPhoneSignalling is the phone in the page as the page and an attacker use it: only
// the page whose event stream is live may turn it on and answer; the offer reaches that
// page alone; a forged CSRF token, a second tab, another browser and an expired session
// are refused with a clear error; the answer (or a refusal) reaches Ring.
func TestPhoneSignalling(t *testing.T) {
	f := newFixture(t, false)
	ana := f.client(t)
	ana.signIn("ana", "ana-pw")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tab1ctx, closeTab1 := context.WithCancel(ctx)
	tab1 := ana.events(tab1ctx)
	if d := nextView(t, tab1); !strings.Contains(d, `"phone":{"enabled":true,"on":false}`) {
		t.Fatalf("first view: %s", d)
	}

	// Without the page's name, or with a made-up one: refused.
	for _, tab := range []string{"", "made-up"} {
		if code, body := ana.do("POST", "/console/api/phone", `{"on":true}`, tabHeader, tab); code != http.StatusConflict ||
			!strings.Contains(body, "another tab") {
			t.Errorf("phone on from tab %q: %d %s, want 409", tab, code, body)
		}
	}
	// A forged CSRF token: refused.
	good := ana.csrf
	ana.csrf = "forged"
	if code, body := ana.do("POST", "/console/api/phone", `{"on":true}`, tabHeader, tab1.tab); code != http.StatusForbidden ||
		!strings.Contains(body, "CSRF") {
		t.Errorf("phone on with a forged CSRF token: %d %s, want 403", code, body)
	}
	ana.csrf = good
	if code, body := ana.do("POST", "/console/api/phone", `{"on":true}`, tabHeader, tab1.tab); code != http.StatusNoContent {
		t.Fatalf("phone on: %d %s", code, body)
	}
	waitView(t, tab1, `"phone":{"enabled":true,"on":true}`)
	if !f.online("ana") || !f.cs.PhoneOn("ana") {
		t.Fatal("ana's phone on, but she is not online")
	}

	// Another browser signed in as ana cannot take the phone over.
	other := f.client(t)
	other.signIn("ana", "ana-pw")
	otherTab := other.events(ctx)
	nextView(t, otherTab)
	if code, body := other.do("POST", "/console/api/phone", `{"on":true}`, tabHeader, otherTab.tab); code != http.StatusConflict ||
		!strings.Contains(body, "another browser") {
		t.Errorf("phone on in another browser: %d %s, want 409", code, body)
	}

	// A call rings: the offer reaches ana's page, and not the other browser's.
	type result struct {
		sdp string
		err error
	}
	ring := func() chan result {
		ch := make(chan result, 1)
		go func() { sdp, err := f.cs.Ring(ctx, "ana", "", "v=0 offer"); ch <- result{sdp, err} }()
		return ch
	}
	rang := ring()
	d := waitView(t, tab1, `"offer":"v=0 offer"`)
	id := d[strings.Index(d, `"ring":"`)+len(`"ring":"`):]
	id = id[:strings.Index(id, `"`)]
	if code, _ := other.do("POST", "/console/api/phone/answer", `{"ring":"`+id+`","sdp":"v=0 x"}`, tabHeader, otherTab.tab); code != http.StatusConflict {
		t.Errorf("another browser answers: %d, want 409", code)
	}
	if code, _ := ana.do("POST", "/console/api/phone/answer", `{"ring":"wrong","sdp":"v=0 x"}`, tabHeader, tab1.tab); code != http.StatusConflict {
		t.Errorf("answer to another ring: %d, want 409", code)
	}
	if code, body := ana.do("POST", "/console/api/phone/answer", `{"ring":"`+id+`","sdp":"v=0 answer"}`, tabHeader, tab1.tab); code != http.StatusNoContent {
		t.Fatalf("answer: %d %s", code, body)
	}
	if r := <-rang; r.err != nil || r.sdp != "v=0 answer" {
		t.Fatalf("Ring: %q %v", r.sdp, r.err)
	}

	// Declined.
	rang = ring()
	d = waitView(t, tab1, `"offer":"v=0 offer"`)
	id = d[strings.Index(d, `"ring":"`)+len(`"ring":"`):]
	id = id[:strings.Index(id, `"`)]
	ana.do("POST", "/console/api/phone/answer", `{"ring":"`+id+`","sdp":""}`, tabHeader, tab1.tab)
	if r := <-rang; !errors.Is(r.err, ErrDeclined) {
		t.Fatalf("declined: %v", r.err)
	}

	// A second tab of ana's session takes the stream over: the first tab's phone goes off,
	// and its requests are refused.
	tab2 := ana.events(ctx)
	nextView(t, tab2)
	for ev := ""; ev != "replaced"; {
		if ev, _ = tab1.next(t); ev != "view" && ev != "replaced" {
			t.Fatalf("first tab got %q, want replaced", ev)
		}
	}
	closeTab1()
	deadline := time.Now().Add(5 * time.Second)
	for f.cs.PhoneOn("ana") {
		if time.Now().After(deadline) {
			t.Fatal("the replaced tab's phone stayed on")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if f.online("ana") {
		t.Error("ana still online with her page's phone off")
	}
	if code, body := ana.do("POST", "/console/api/phone", `{"on":true}`, tabHeader, tab1.tab); code != http.StatusConflict ||
		!strings.Contains(body, "another tab") {
		t.Errorf("the replaced tab turns the phone on: %d %s, want 409", code, body)
	}
	if _, err := f.cs.Ring(ctx, "ana", "", "v=0"); !errors.Is(err, ErrPhoneOff) {
		t.Errorf("ring with the phone off: %v", err)
	}

	// An expired session is refused.
	f.clock.Add(11 * time.Minute)
	if code, body := ana.do("POST", "/console/api/phone", `{"on":true}`, tabHeader, tab2.tab); code != http.StatusUnauthorized ||
		!strings.Contains(body, "session expired") {
		t.Errorf("phone on after the idle timeout: %d %s, want 401", code, body)
	}
}

// TestCallButtons: an advocate's buttons act on her own call only (there is no field to
// name another's), with the CSRF token; listen, whisper and barge are a supervisor's.
func TestCallButtons(t *testing.T) {
	f := newFixture(t, false)
	f.desk.SetState("ana", "on_call", "")
	ana, sam := f.client(t), f.client(t)
	ana.signIn("ana", "ana-pw")
	sam.signIn("sam", "sam-pw")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if d := nextView(t, ana.events(ctx)); !strings.Contains(d, `"features":[{"id":"party:9","label":"911","kind":"emergency"}`) {
		t.Errorf("ana's view has no call buttons: %s", d)
	}
	for _, tc := range []struct {
		who        *client
		path, body string
		csrf       string
		want       int
		says       string
	}{
		{ana, "/console/api/feature", `{"feature":"party:9"}`, "forged", http.StatusForbidden, "CSRF"},
		{ana, "/console/api/feature", `{"feature":"party:9","advocate":"sam"}`, "", http.StatusBadRequest, "unknown field"},
		{ana, "/console/api/feature", `{"feature":"party:5"}`, "", http.StatusBadRequest, "no such button"},
		{sam, "/console/api/feature", `{"feature":"drop"}`, "", http.StatusConflict, "on no call"},
		{ana, "/console/api/feature", `{"feature":"party:9"}`, "", http.StatusNoContent, ""},
		{ana, "/console/api/supervise", `{"advocate":"sam","mode":"listen"}`, "", http.StatusForbidden, "only a supervisor"},
		{sam, "/console/api/supervise", `{"advocate":"ana","mode":"shout"}`, "", http.StatusBadRequest, "mode must be"},
		{sam, "/console/api/supervise", `{"advocate":"sam","mode":"listen"}`, "", http.StatusBadRequest, "your own call"},
		{sam, "/console/api/supervise", `{"advocate":"ana","mode":"whisper"}`, "forged", http.StatusForbidden, "CSRF"},
		{sam, "/console/api/supervise", `{"advocate":"ana","mode":"whisper"}`, "", http.StatusAccepted, ""},
	} {
		good := tc.who.csrf
		if tc.csrf != "" {
			tc.who.csrf = tc.csrf
		}
		code, body := tc.who.do("POST", tc.path, tc.body)
		tc.who.csrf = good
		if code != tc.want || !strings.Contains(body, tc.says) {
			t.Errorf("%s %s: %d %s, want %d %q", tc.path, tc.body, code, body, tc.want, tc.says)
		}
	}
	f.desk.mu.Lock()
	pressed, sup := f.desk.pressed, f.desk.supervising
	f.desk.mu.Unlock()
	if len(pressed) != 1 || pressed[0] != "ana party:9" || sup == nil || sup.Mode != "whisper" {
		t.Errorf("pressed %q, supervising %+v", pressed, sup)
	}
	if d := nextView(t, sam.events(ctx)); !strings.Contains(d, `"supervising":{"advocate":"ana","mode":"whisper"`) {
		t.Errorf("sam's view: %s", d)
	}
}

// phoneOnInPage signs ana in, opens her page's event stream (until ctx ends) and turns
// the page's phone on.
func phoneOnInPage(ctx context.Context, t *testing.T, f *fixture) (*client, *sse) {
	t.Helper()
	ana := f.client(t)
	ana.signIn("ana", "ana-pw")
	tab := ana.events(ctx)
	nextView(t, tab)
	if code, _ := ana.do("POST", "/console/api/phone", `{"on":true}`, tabHeader, tab.tab); code != http.StatusNoContent {
		t.Fatalf("phone on: %d", code)
	}
	return ana, tab
}

// TestPhoneDisabled: with console.phone off the page's phone requests get 404, and a
// reload that turns it off turns the phones that were on off.
func TestPhoneDisabled(t *testing.T) {
	f := newFixture(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ana, tab := phoneOnInPage(ctx, t, f)
	f.noPhone.Store(true) // the reload
	waitView(t, tab, `"phone":{"enabled":false,"on":false}`)
	if f.cs.PhoneOn("ana") || f.online("ana") {
		t.Error("the phone stayed on after console.phone was turned off")
	}
	if code, body := ana.do("POST", "/console/api/phone", `{"on":true}`, tabHeader, tab.tab); code != http.StatusNotFound ||
		!strings.Contains(body, "console.phone") {
		t.Errorf("phone on with console.phone off: %d %s, want 404", code, body)
	}
	if _, err := f.cs.Ring(ctx, "ana", "", "v=0"); !errors.Is(err, ErrPhoneOff) {
		t.Errorf("ring with console.phone off: %v", err)
	}
}

// TestPhoneOnTwiceKeepsTheRing: the page turning its phone on again (a double click, a
// retry) does not decline the call ringing there.
func TestPhoneOnTwiceKeepsTheRing(t *testing.T) {
	f := newFixture(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ana, tab := phoneOnInPage(ctx, t, f)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, err := f.cs.Ring(rctx, "ana", "", "v=0 offer"); done <- err }()
	waitView(t, tab, `"offer":"v=0 offer"`)
	if code, _ := ana.do("POST", "/console/api/phone", `{"on":true}`, tabHeader, tab.tab); code != http.StatusNoContent {
		t.Fatalf("phone on again: %d", code)
	}
	select {
	case err := <-done:
		t.Fatalf("the ring ended when the phone was turned on again: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("ring: %v", err)
	}
}
