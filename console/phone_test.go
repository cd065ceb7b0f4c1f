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
		go func() { sdp, err := f.cs.Ring(ctx, "ana", "v=0 offer"); ch <- result{sdp, err} }()
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
	if _, err := f.cs.Ring(ctx, "ana", "v=0"); !errors.Is(err, ErrPhoneOff) {
		t.Errorf("ring with the phone off: %v", err)
	}

	// An expired session is refused.
	f.clock.Add(11 * time.Minute)
	if code, body := ana.do("POST", "/console/api/phone", `{"on":true}`, tabHeader, tab2.tab); code != http.StatusUnauthorized ||
		!strings.Contains(body, "session expired") {
		t.Errorf("phone on after the idle timeout: %d %s, want 401", code, body)
	}
}
