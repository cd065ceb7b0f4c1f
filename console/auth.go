package console

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"hash"
	"net/http"
	"sync"
	"time"
)

// cookieName is the session cookie's name.
const cookieName = "hotline_console"

// maxSessions bounds the session table; past it (after dropping idle ones) sign-ins are
// refused rather than memory growing.
const maxSessions = 10000

// session is one signed-in browser.
type session struct {
	token    string // the cookie's value
	csrf     string // sent back in X-CSRF-Token with every change
	advocate string
	lastUsed time.Time
	// stream is closed when another event stream of the session takes over (a second tab,
	// or a reconnect after a network blip): only one stream per session is live.
	stream chan struct{}
	// tab names the page whose event stream is live (its phone's signalling must come from
	// it: X-Console-Tab); a new stream gets a new one.
	tab string
}

// sessions are the signed-in browsers, by cookie value.
type sessions struct {
	mu sync.Mutex
	m  map[string]*session
}

func newSessions() *sessions { return &sessions{m: map[string]*session{}} }

func randomToken() string {
	return rand.Text() // 26 base32 characters: 130 bits
}

// create starts a session for advocate; ok is false when the table is full.
func (ss *sessions) create(advocate string, now time.Time, idle time.Duration) (*session, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.m) >= maxSessions {
		ss.sweepLocked(now, idle)
		if len(ss.m) >= maxSessions {
			return nil, false
		}
	}
	s := &session{token: randomToken(), csrf: randomToken(), advocate: advocate, lastUsed: now}
	ss.m[s.token] = s
	return s, true
}

// lookup returns the session of token. expired is true (and the session is gone) when it
// was idle for idle or more; touch marks it used now.
func (ss *sessions) lookup(token string, now time.Time, idle time.Duration, touch bool) (s *session, expired bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s = ss.m[token]
	if s == nil {
		return nil, false
	}
	if now.Sub(s.lastUsed) >= idle {
		ss.dropLocked(s)
		return nil, true
	}
	if touch {
		s.lastUsed = now
	}
	return s, false
}

// alive reports whether s is still signed in at now.
func (ss *sessions) alive(s *session, now time.Time, idle time.Duration) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.m[s.token] != s {
		return false
	}
	if now.Sub(s.lastUsed) >= idle {
		ss.dropLocked(s)
		return false
	}
	return true
}

// takeStream makes the caller s's live event stream, named tab; the returned channel is
// closed when another stream takes over or the session ends.
func (ss *sessions) takeStream(s *session, tab string) <-chan struct{} {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s.stream != nil {
		close(s.stream)
	}
	s.stream = make(chan struct{})
	s.tab = tab
	if ss.m[s.token] != s {
		close(s.stream) // already gone
		s.stream = nil
		c := make(chan struct{})
		close(c)
		return c
	}
	return s.stream
}

// drop ends s.
func (ss *sessions) drop(s *session) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.dropLocked(s)
}

// liveTab reports whether tab is s's live page.
func (ss *sessions) liveTab(s *session, tab string) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.m[s.token] == s && s.stream != nil && tab != "" && s.tab == tab
}

func (ss *sessions) dropLocked(s *session) {
	if ss.m[s.token] == s {
		delete(ss.m, s.token)
	}
	if s.stream != nil {
		close(s.stream)
		s.stream = nil
	}
}

func (ss *sessions) sweepLocked(now time.Time, idle time.Duration) {
	for _, s := range ss.m {
		if now.Sub(s.lastUsed) >= idle {
			ss.dropLocked(s)
		}
	}
}

// count is the number of sessions not idle at now.
func (ss *sessions) count(now time.Time, idle time.Duration) int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.sweepLocked(now, idle)
	return len(ss.m)
}

// checkPassword reports whether password is the account's: H(id:realm:password) equals
// the configured HA1, compared in constant time (SHA-256 when configured, else MD5).
func checkPassword(a Account, realm, password string) bool {
	want, h := a.HA1SHA256, hash.Hash(sha256.New())
	if want == "" {
		want, h = a.HA1MD5, md5.New()
	}
	h.Write([]byte(a.ID + ":" + realm + ":" + password))
	got := hex.EncodeToString(h.Sum(nil))
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// decoy is checked against for an unknown id, so that the answer takes as long.
var decoy = Account{ID: "-", HA1SHA256: "0000000000000000000000000000000000000000000000000000000000000000"}

type signInRequest struct {
	ID       string `json:"id"`
	Password string `json:"password"`
}

// signIn checks an advocate's id and password and starts a session. A failure counts
// towards the source's ban, as a failed SIP digest authentication does; a banned source
// is refused before its password is looked at.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	now := s.o.Now()
	src := source(r)
	if !s.o.Limiter.BeginAuth(now, src) {
		// Banned, or at the limit with the sign-ins being checked now: the password is
		// not checked.
		s.o.Metrics.SignIn("banned")
		s.o.Logger.Warn("console sign-in refused: the source is banned or at its limit of failures", "source", src)
		writeError(w, http.StatusTooManyRequests, "too many failed sign-ins from this address; try again later")
		return
	}
	var req signInRequest
	if err := readJSON(r, &req); err != nil {
		s.o.Limiter.EndAuth(now, src, false)
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	a, ok := s.o.Accounts(req.ID)
	if !ok {
		checkPassword(decoy, s.o.Realm(), req.Password)
	}
	if !ok || !checkPassword(a, s.o.Realm(), req.Password) {
		s.o.Metrics.SignIn("refused")
		banned := s.o.Limiter.EndAuth(now, src, true)
		// The id tried is not logged: people type passwords into the id field.
		s.o.Logger.Warn("console sign-in refused", "source", src, "banned", banned)
		writeError(w, http.StatusUnauthorized, "wrong id or password")
		return
	}
	s.o.Limiter.EndAuth(now, src, false)
	sess, ok := s.sessions.create(a.ID, now, s.o.IdleTimeout())
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "too many sessions")
		return
	}
	s.o.Metrics.SignIn("ok")
	s.o.Logger.Info("console sign-in", "advocate", a.ID, "role", a.Role, "source", src)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: sess.token, Path: "/console/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	writeJSON(w, http.StatusOK, s.meOf(sess, a))
}

// authed wraps a handler that needs a session. Every request but GET needs the session's
// CSRF token in X-CSRF-Token; touch marks the session used (the event stream does not:
// an open page nobody uses still times out).
func (s *Server) authed(h func(http.ResponseWriter, *http.Request, *session, Account), touch bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !sameOrigin(r) {
			writeError(w, http.StatusForbidden, "cross-origin request refused")
			return
		}
		c, err := r.Cookie(cookieName)
		if err != nil {
			writeError(w, http.StatusUnauthorized, "not signed in")
			return
		}
		now := s.o.Now()
		sess, expired := s.sessions.lookup(c.Value, now, s.o.IdleTimeout(), false)
		switch {
		case expired:
			writeError(w, http.StatusUnauthorized, "session expired: sign in again")
			return
		case sess == nil:
			writeError(w, http.StatusUnauthorized, "not signed in")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead &&
			subtle.ConstantTimeCompare([]byte(r.Header.Get("X-CSRF-Token")), []byte(sess.csrf)) != 1 {
			writeError(w, http.StatusForbidden, "missing or wrong CSRF token")
			return
		}
		// The account is looked up in the configuration in force: one removed by a reload
		// is signed out, and a changed role takes effect at once.
		a, ok := s.o.Accounts(sess.advocate)
		if !ok {
			s.sessions.drop(sess)
			writeError(w, http.StatusUnauthorized, "account removed: sign in again")
			return
		}
		if touch {
			s.sessions.lookup(c.Value, now, s.o.IdleTimeout(), true)
		}
		h(w, r, sess, a)
	}
}

// meBody is who is signed in, and what the page needs to act for them.
type meBody struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Role         string   `json:"role"`
	CSRF         string   `json:"csrf"`
	PauseReasons []string `json:"pause_reasons"`
	IdleTimeoutS int      `json:"idle_timeout_s"`
}

func (s *Server) meOf(sess *session, a Account) meBody {
	return meBody{ID: a.ID, Name: a.Name, Role: a.Role, CSRF: sess.csrf, PauseReasons: s.o.PauseReasons(),
		IdleTimeoutS: int(s.o.IdleTimeout() / time.Second)}
}

func (s *Server) me(w http.ResponseWriter, _ *http.Request, sess *session, a Account) {
	writeJSON(w, http.StatusOK, s.meOf(sess, a))
}

func (s *Server) signOut(w http.ResponseWriter, r *http.Request, sess *session, a Account) {
	s.sessions.drop(sess)
	s.o.Logger.Info("console sign-out", "advocate", a.ID)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/console/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	w.WriteHeader(http.StatusNoContent)
}

type stateRequest struct {
	Advocate string `json:"advocate"` // "" for oneself
	State    string `json:"state"`    // available, paused or offline
	Reason   string `json:"reason"`   // with paused: one of the pause reasons
}

// setState changes an advocate's state: one's own, or anyone's for a supervisor.
func (s *Server) setState(w http.ResponseWriter, r *http.Request, _ *session, a Account) {
	var req stateRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Advocate == "" {
		req.Advocate = a.ID
	}
	if req.Advocate != a.ID && a.Role != RoleSupervisor {
		writeError(w, http.StatusForbidden, "only a supervisor changes another advocate's state")
		return
	}
	switch req.State {
	case "available", "offline":
		req.Reason = ""
	case "paused":
		if !contains(s.o.PauseReasons(), req.Reason) {
			writeError(w, http.StatusBadRequest, "pause reason must be one of advocate_pause_reasons")
			return
		}
	default:
		writeError(w, http.StatusBadRequest, "state must be available, paused or offline")
		return
	}
	if _, err := s.o.Desk.SetState(req.Advocate, req.State, req.Reason); err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	s.o.Logger.Info("console state change", "by", a.ID, "advocate", req.Advocate, "state", req.State, "reason", req.Reason)
	s.o.Stats.notify()
	w.WriteHeader(http.StatusNoContent)
}

// hangUp ends the call the advocate is talking on, as hanging up their phone would.
func (s *Server) hangUp(w http.ResponseWriter, r *http.Request, _ *session, a Account) {
	err := s.o.Desk.HangUp(r.Context(), a.ID)
	switch {
	case errors.Is(err, ErrNoCall):
		writeError(w, http.StatusConflict, "no call to hang up")
		return
	case err != nil:
		s.o.Logger.Warn("console hang-up", "advocate", a.ID, "err", err)
	}
	s.o.Logger.Info("console hang-up", "advocate", a.ID)
	s.o.Stats.notify()
	w.WriteHeader(http.StatusNoContent)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
