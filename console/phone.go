package console

import (
	"context"
	"errors"
	"net/http"
	"sync"
)

// The phone in the page: an advocate may take calls in the console instead of on a SIP
// phone. The page turns its phone on (POST /console/api/phone); from then on the advocate
// counts as registered, and a call that rings them is offered to that page: the WebRTC SDP
// offer travels in the page's event stream (the view's "phone"), and the page's answer
// comes back in a POST (CSRF-protected like every change). Only the page whose event
// stream is live may do so (X-Console-Tab, the name the stream gave it): a second tab, or
// another browser signed in as the same advocate, is refused while the first holds the
// phone. The line goes off when its page's stream ends (closed, replaced, signed out or
// expired); a call already answered goes on until its media ends.

// Errors of Ring.
var (
	// ErrPhoneOff means the advocate has no phone on in a page.
	ErrPhoneOff = errors.New("console: no phone on in a page")
	// ErrDeclined means the advocate declined the call in the page.
	ErrDeclined = errors.New("console: declined in the page")
)

// tabHeader names the page a phone request comes from.
const tabHeader = "X-Console-Tab"

// line is an advocate's phone in a page.
type line struct {
	sess *session
	tab  string
	ring *ringing // the call ringing there, or nil
}

// ringing is a call offered to a page.
type ringing struct {
	id, offer string
	label     string      // what the call is for: "" for a caller, else e.g. a supervision
	answer    chan string // the page's SDP answer ("" declines); buffered 1
}

// phones are the advocates' phones in pages, by advocate.
type phones struct {
	mu sync.Mutex
	m  map[string]*line
}

func (s *Server) phoneOn(advocate string, sess *session, tab string) error {
	s.phones.mu.Lock()
	l := s.phones.m[advocate]
	if l != nil && (l.sess != sess || l.tab != tab) && s.sessions.liveTab(l.sess, l.tab) {
		s.phones.mu.Unlock()
		if l.sess == sess {
			return errors.New("the phone is on in another tab of this browser")
		}
		return errors.New("the phone is on in another browser signed in as you")
	}
	if l != nil {
		// The same page again, or a page that took over from one no longer live (a
		// reconnect): the line, and a call ringing on it, move to this page.
		l.sess, l.tab = sess, tab
		s.phones.mu.Unlock()
		return nil
	}
	s.phones.m[advocate] = &line{sess: sess, tab: tab}
	s.phones.mu.Unlock()
	s.o.OnPhone(advocate, true)
	return nil
}

// phoneOff turns the advocate's phone off if it is the page's (tab "" : whatever page).
func (s *Server) phoneOff(advocate string, sess *session, tab string) {
	s.phones.mu.Lock()
	l := s.phones.m[advocate]
	if l == nil || sess != nil && (l.sess != sess || tab != "" && l.tab != tab) {
		s.phones.mu.Unlock()
		return
	}
	delete(s.phones.m, advocate)
	if l.ring != nil {
		l.ring.answer <- ""
		l.ring = nil
	}
	s.phones.mu.Unlock()
	s.o.OnPhone(advocate, false)
	s.o.Stats.notify()
}

// PhoneOn reports whether the advocate has a phone on in a page.
func (s *Server) PhoneOn(advocate string) bool {
	if !s.o.PhoneEnabled() {
		return false
	}
	s.phones.mu.Lock()
	defer s.phones.mu.Unlock()
	return s.phones.m[advocate] != nil
}

// Phones is the number of advocates with a phone on in a page.
func (s *Server) Phones() int {
	if !s.o.PhoneEnabled() {
		return 0
	}
	s.phones.mu.Lock()
	defer s.phones.mu.Unlock()
	return len(s.phones.m)
}

// Ring offers a call (the WebRTC SDP offer) to the advocate's phone in the page, labelled
// (label "" for a caller's call; the page's call card says the rest), and waits
// for the page's SDP answer. It fails with ErrPhoneOff when no page has the phone on (or
// it goes off), ErrDeclined when the advocate declines, or ctx's error when the ring is
// cancelled (the caller hung up, the ring timed out).
func (s *Server) Ring(ctx context.Context, advocate, label, offer string) (string, error) {
	r := &ringing{id: randomToken(), offer: offer, label: label, answer: make(chan string, 1)}
	s.phones.mu.Lock()
	l := s.phones.m[advocate]
	if l == nil || !s.o.PhoneEnabled() {
		s.phones.mu.Unlock()
		return "", ErrPhoneOff
	}
	if l.ring != nil {
		l.ring.answer <- "" // one call rings at a time
	}
	l.ring = r
	s.phones.mu.Unlock()
	s.o.Stats.notify()
	defer func() {
		s.phones.mu.Lock()
		if l.ring == r {
			l.ring = nil
		}
		s.phones.mu.Unlock()
		s.o.Stats.notify()
	}()
	select {
	case a := <-r.answer:
		if a == "" {
			if s.PhoneOn(advocate) {
				return "", ErrDeclined
			}
			return "", ErrPhoneOff
		}
		return a, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// phoneView is the page's phone: on or off, and the call ringing there with its offer.
type phoneView struct {
	Enabled bool   `json:"enabled"` // console.phone allows it
	On      bool   `json:"on"`      // this page has the phone on
	Ring    string `json:"ring,omitempty"`
	Offer   string `json:"offer,omitempty"`
	Label   string `json:"label,omitempty"` // "" for a caller's call
}

func (s *Server) phoneViewOf(advocate string, sess *session, tab string) *phoneView {
	v := &phoneView{Enabled: s.o.PhoneEnabled()}
	s.phones.mu.Lock()
	defer s.phones.mu.Unlock()
	if l := s.phones.m[advocate]; l != nil && l.sess == sess && l.tab == tab {
		v.On = true
		if l.ring != nil {
			v.Ring, v.Offer, v.Label = l.ring.id, l.ring.offer, l.ring.label
		}
	}
	return v
}

// phoneTab checks that a phone request comes from the session's live page.
func (s *Server) phoneTab(w http.ResponseWriter, r *http.Request, sess *session) (string, bool) {
	if !s.o.PhoneEnabled() {
		writeError(w, http.StatusNotFound, "the phone in the page is not enabled (console.phone)")
		return "", false
	}
	tab := r.Header.Get(tabHeader)
	if !s.sessions.liveTab(sess, tab) {
		writeError(w, http.StatusConflict, "the console was opened in another tab: use that one, or reload this page")
		return "", false
	}
	return tab, true
}

type phoneRequest struct {
	On bool `json:"on"`
}

// setPhone turns the page's phone on or off.
func (s *Server) setPhone(w http.ResponseWriter, r *http.Request, sess *session, a Account) {
	var req phoneRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	tab, ok := s.phoneTab(w, r, sess)
	if !ok {
		return
	}
	if !req.On {
		s.phoneOff(a.ID, sess, tab)
		s.o.Logger.Info("console phone off", "advocate", a.ID)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err := s.phoneOn(a.ID, sess, tab); err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	s.o.Logger.Info("console phone on", "advocate", a.ID)
	s.o.Stats.notify()
	w.WriteHeader(http.StatusNoContent)
}

type answerRequest struct {
	Ring string `json:"ring"`
	SDP  string `json:"sdp"` // "" declines
}

// maxSDP bounds an answer's SDP.
const maxSDP = 16 << 10

// answerPhone takes the page's SDP answer to the call ringing there, or its refusal.
func (s *Server) answerPhone(w http.ResponseWriter, r *http.Request, sess *session, a Account) {
	tab, ok := s.phoneTab(w, r, sess)
	if !ok {
		return
	}
	var req answerRequest
	if err := readJSONLimit(r, &req, maxSDP+512); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.phones.mu.Lock()
	l := s.phones.m[a.ID]
	if l == nil || l.sess != sess || l.tab != tab || l.ring == nil || l.ring.id != req.Ring {
		s.phones.mu.Unlock()
		writeError(w, http.StatusConflict, "that call is no longer ringing here")
		return
	}
	l.ring.answer <- req.SDP
	l.ring = nil
	s.phones.mu.Unlock()
	s.o.Logger.Info("console phone", "advocate", a.ID, "answered", req.SDP != "")
	s.o.Stats.notify()
	w.WriteHeader(http.StatusNoContent)
}
