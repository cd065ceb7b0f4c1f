package console

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/hotline-project/hotline/queue"
)

//go:embed static
var static embed.FS

// Account is an advocate's account as the configuration has it: the console checks
// passwords against the digest HA1 values, so it keeps no secret of its own.
type Account struct {
	ID, Name          string
	Role              string // "advocate" or "supervisor"
	HA1SHA256, HA1MD5 string // hex, lowercase; either may be ""
}

// RoleSupervisor is the role that sees the wallboard and changes anyone's state.
const RoleSupervisor = "supervisor"

// CallCard is what the console shows of a call: nothing that identifies the caller.
type CallCard struct {
	Queue, Language, Reason string
	Since                   time.Time // when the caller first queued
}

// Desk is the call flow as the console sees it: the advocates and queues, their states,
// and the cards of calls.
type Desk interface {
	Advocates() (time.Time, queue.Snapshot)
	SetState(id, state, reason string) (queue.AdvocateSnapshot, error)
	CallCard(callID string) (CallCard, bool)
	// HangUp ends the call the advocate is talking on; errors match ErrNoCall when there
	// is none.
	HangUp(ctx context.Context, advocate string) error
	// Features are the mid-call buttons of the advocate's call; none when mid-call
	// features are off.
	Features(advocate string) []Feature
	// Feature presses one of them on the advocate's own call; errors match ErrNoCall or
	// ErrNoFeature.
	Feature(ctx context.Context, advocate, id string) error
	// Supervise has the supervisor listen to, whisper to or barge into the advocate's
	// call through the supervisor's phone, change how, or stop ("stop"); errors match
	// ErrCannotSupervise with the reason.
	Supervise(ctx context.Context, supervisor, advocate, mode string) error
	// Supervising is what the supervisor is doing, if anything.
	Supervising(supervisor string) (Supervision, bool)
}

// ErrNoCall means the advocate is not talking to a caller.
var ErrNoCall = errors.New("no call in progress")

// Limiter is the per-source ban that failed sign-ins count towards (sip/defence.Limiter):
// the same ban as failed SIP digest authentications. A password is checked only with a
// place reserved by BeginAuth (the source not banned, and its failures and the checks in
// progress under the limit), so that sign-ins sent together are not all checked; EndAuth
// ends the check and reports whether its failure banned the source.
type Limiter interface {
	BeginAuth(now time.Time, a netip.Addr) bool
	EndAuth(now time.Time, a netip.Addr, failed bool) (banned bool)
}

// Metrics counts sign-ins by result: ok, refused, banned.
type Metrics interface{ SignIn(result string) }

// Options are the console's collaborators. Accounts, Realm, Desk and Limiter are required.
type Options struct {
	// Accounts looks an advocate's account up in the configuration in force.
	Accounts func(id string) (Account, bool)
	// Realm is the digest realm the HA1 values were computed in (sip.realm).
	Realm func() string
	// PauseReasons are the reasons an advocate may pause with (advocate_pause_reasons).
	PauseReasons func() []string
	// ServiceLevel is a queue's service-level threshold (nil: none shown).
	ServiceLevel func(queue string) time.Duration
	Desk         Desk
	Limiter      Limiter
	Stats        *Stats  // today's counts per queue; nil: none shown
	Metrics      Metrics // nil: not counted
	// IdleTimeout signs a session out when it has not been used for this long (30m if 0).
	IdleTimeout func() time.Duration
	// Now is the clock of sessions and bans (time.Now if nil).
	Now    func() time.Time
	Logger *slog.Logger
	// Tick is how often an event stream looks for changes to send (250ms if 0).
	Tick time.Duration
	// PhoneEnabled reports whether advocates may take calls in the page (console.phone);
	// nil: they may not.
	PhoneEnabled func() bool
	// OnPhone is told when an advocate's phone in a page goes on or off (their presence).
	OnPhone func(advocate string, on bool)
}

// Server serves the console under /console/.
type Server struct {
	o        Options
	sessions *sessions
	phones   *phones
	handler  http.Handler

	closeOnce sync.Once
	closed    chan struct{} // closed by Close: event streams end
}

// New returns the console's server.
func New(o Options) (*Server, error) {
	if o.Accounts == nil || o.Realm == nil || o.Desk == nil || o.Limiter == nil {
		return nil, errors.New("console: Accounts, Realm, Desk and Limiter are required")
	}
	if o.PauseReasons == nil {
		o.PauseReasons = func() []string { return nil }
	}
	if o.IdleTimeout == nil {
		o.IdleTimeout = func() time.Duration { return 30 * time.Minute }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Tick <= 0 {
		o.Tick = 250 * time.Millisecond
	}
	if o.Metrics == nil {
		o.Metrics = noMetrics{}
	}
	if o.PhoneEnabled == nil {
		o.PhoneEnabled = func() bool { return false }
	}
	if o.OnPhone == nil {
		o.OnPhone = func(string, bool) {}
	}
	s := &Server{o: o, sessions: newSessions(), phones: &phones{m: map[string]*line{}}, closed: make(chan struct{})}
	files, err := fs.Sub(static, "static")
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /console/", http.StripPrefix("/console/", http.FileServerFS(files)))
	mux.HandleFunc("POST /console/api/signin", s.signIn)
	mux.HandleFunc("GET /console/api/me", s.authed(s.me, true))
	mux.HandleFunc("POST /console/api/signout", s.authed(s.signOut, true))
	mux.HandleFunc("POST /console/api/touch", s.authed(func(w http.ResponseWriter, _ *http.Request, _ *session, _ Account) {
		w.WriteHeader(http.StatusNoContent)
	}, true))
	mux.HandleFunc("POST /console/api/state", s.authed(s.setState, true))
	mux.HandleFunc("POST /console/api/hangup", s.authed(s.hangUp, true))
	mux.HandleFunc("POST /console/api/feature", s.authed(s.feature, true))
	mux.HandleFunc("POST /console/api/supervise", s.authed(s.supervise, true))
	mux.HandleFunc("POST /console/api/phone", s.authed(s.setPhone, true))
	mux.HandleFunc("POST /console/api/phone/answer", s.authed(s.answerPhone, true))
	mux.HandleFunc("GET /console/api/events", s.authed(s.events, false))
	// A cross-origin request that would change something is refused before any handler
	// (Sec-Fetch-Site, or Origin against Host); the CSRF token is checked besides.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused")
	}))
	s.handler = cop.Handler(headers(mux))
	return s, nil
}

// Handler serves /console/ and /console/api/.
func (s *Server) Handler() http.Handler { return s.handler }

// Close ends the event streams, so that the HTTP server can shut down (register it with
// http.Server.RegisterOnShutdown); the pages reconnect to the next server.
func (s *Server) Close() { s.closeOnce.Do(func() { close(s.closed) }) }

// Sessions is the number of sessions signed in now.
func (s *Server) Sessions() int { return s.sessions.count(s.o.Now(), s.o.IdleTimeout()) }

// headers sets what every answer of the console carries: no caching of the API, no framing,
// scripts and styles only from the console itself, no Referer sent elsewhere.
func headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// source is the address a request came from, for the per-source ban. The console trusts
// no proxy header: behind a reverse proxy every browser shares the proxy's address.
func source(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		a, _ := netip.ParseAddr(host)
		return a.Unmap()
	}
	return ap.Addr().Unmap()
}

// sameOrigin reports whether a request that changes nothing (the event stream) comes
// from the console's own page: Sec-Fetch-Site, else Origin against Host; a request with
// neither is not from a browser and is let through (it still needs the session cookie).
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return true
	case "":
	default:
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// readJSON decodes a small JSON body into v, refusing unknown fields.
func readJSON(r *http.Request, v any) error { return readJSONLimit(r, v, 4096) }

// readJSONLimit decodes a JSON body of at most limit bytes into v, refusing unknown fields.
func readJSONLimit(r *http.Request, v any, limit int64) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("bad request body: %w", err)
	}
	return nil
}

type noMetrics struct{}

func (noMetrics) SignIn(string) {}
