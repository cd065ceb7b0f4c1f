// Package admin serves the hotline's admin HTTP API under /admin/: it explains routing
// decisions and sets the emergency overrides (a schedule forced closed, or every call
// forced to one route), which take effect at once, without a reload.
//
// The API is off unless a bearer token is configured: without one every request gets
// 404 Not Found, as if the API did not exist. A request without the right token gets 401
// Unauthorized and nothing else.
//
//	GET    /admin/v1/route?line=..&lang=..&reason=..&at=RFC3339   explain a decision
//	GET    /admin/v1/overrides                                    overrides and schedules now
//	PUT    /admin/v1/overrides      {"kind":"closed","schedule":"advocates","reason":"..","until":".."}
//	                                {"kind":"route","route":"partner","reason":".."}
//	DELETE /admin/v1/overrides?kind=closed&schedule=advocates     or ?kind=route
//	GET    /admin/v1/advocates                                    advocates and their states
//	PUT    /admin/v1/advocates/{id}/state  {"state":"paused","reason":".."}
//	GET    /admin/v1/records?since=2026-03-01&until=2026-04-01    call records as CSV
//	GET    /admin/v1/callbacks                                    pending callbacks, numbers masked
//	DELETE /admin/v1/callbacks/{id}                               cancel one
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/hotline-project/hotline/routing"
)

// TokenEnv is the environment variable that holds the admin token; it takes precedence
// over the configuration's admin.token_file.
const TokenEnv = "HOTLINE_ADMIN_TOKEN"

// LoadToken returns the admin token: $HOTLINE_ADMIN_TOKEN if set, else the contents of
// tokenFile (surrounding white space removed) if tokenFile is not "", else "" (the API is
// off). An empty or unreadable token file is an error, so that a misconfigured token does
// not silently turn the API off.
func LoadToken(tokenFile string) (string, error) {
	if tok := strings.TrimSpace(os.Getenv(TokenEnv)); tok != "" {
		return tok, nil
	}
	if tokenFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("admin token: %s is empty", tokenFile)
	}
	return tok, nil
}

// Options configure Handler.
type Options struct {
	// Token is the bearer token requests must carry; "" turns the API off.
	Token string
	// Table returns the routing table in force; a reload swaps it.
	Table func() *routing.Table
	// Overrides is the emergency override store that calls are routed with.
	Overrides *routing.Overrides
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// State returns the queues' state for explanations; nil means unknown. Handler fills
	// in the Overrides itself.
	State func() routing.State
	// Advocates shows and changes advocates' states; nil answers 404 on those paths.
	Advocates Advocates
	// Reload loads the configuration file again (POST /admin/v1/reload); nil answers 404.
	Reload func() error
	// Records exports the call records; nil answers 404 on that path.
	Records Records
	// Cluster reports the state store's cluster status (GET /admin/v1/cluster); nil
	// answers 404.
	Cluster func() any
	// Members adds and removes cluster members (POST /admin/v1/cluster/members?id=&addr=,
	// DELETE /admin/v1/cluster/members/{id}); nil answers 404.
	Members Members
	// Callbacks lists and cancels pending callbacks; nil answers 404 on those paths.
	Callbacks Callbacks
	// Logger logs every override change; nil means slog.Default().
	Logger *slog.Logger
}

// Handler returns the admin API, to be mounted at /admin/ of the HTTP server: it
// expects the full request path.
func Handler(opts Options) http.Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Token == "" {
		return http.NotFoundHandler()
	}
	s := &server{opts: opts, token: sha256.Sum256([]byte(opts.Token))}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/v1/route", s.route)
	mux.HandleFunc("GET /admin/v1/overrides", s.listOverrides)
	mux.HandleFunc("PUT /admin/v1/overrides", s.setOverride)
	mux.HandleFunc("DELETE /admin/v1/overrides", s.clearOverride)
	mux.HandleFunc("POST /admin/v1/reload", s.reload)
	mux.HandleFunc("GET /admin/v1/advocates", s.listAdvocates)
	mux.HandleFunc("PUT /admin/v1/advocates/{id}/state", s.setAdvocateState)
	mux.HandleFunc("GET /admin/v1/records", s.exportRecords)
	mux.HandleFunc("GET /admin/v1/cluster", s.cluster)
	mux.HandleFunc("POST /admin/v1/cluster/members", s.addMember)
	mux.HandleFunc("DELETE /admin/v1/cluster/members/{id}", s.removeMember)
	mux.HandleFunc("GET /admin/v1/callbacks", s.listCallbacks)
	mux.HandleFunc("DELETE /admin/v1/callbacks/{id}", s.cancelCallback)
	return s.authorize(mux)
}

type server struct {
	opts  Options
	token [sha256.Size]byte
}

// authorize lets a request through only with the right bearer token. Comparing hashes in
// constant time reveals neither the token nor its length.
func (s *server) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(tok))
		if subtle.ConstantTimeCompare(sum[:], s.token[:]) != 1 || !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hotline admin"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

func (s *server) state() routing.State {
	var st routing.State
	if s.opts.State != nil {
		st = s.opts.State()
	}
	st.Overrides = s.opts.Overrides.Snapshot()
	return st
}

func (s *server) route(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	at := s.opts.Now()
	if v := q.Get("at"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("at: %q is not an RFC 3339 time like 2026-12-25T03:00:00-06:00", v))
			return
		}
		at = t
	}
	e, err := Explain(s.opts.Table(), q.Get("line"), q.Get("lang"), q.Get("reason"), at, s.state())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, e)
}

// OverridesResponse is the body of GET, PUT and DELETE /admin/v1/overrides.
type OverridesResponse struct {
	Now       time.Time         `json:"now"`
	Overrides []OverrideStatus  `json:"overrides"`
	Schedules []ScheduleStatus  `json:"schedules"`
	Changed   *routing.Override `json:"changed,omitempty"`  // set or cleared by this request
	Replaced  *routing.Override `json:"replaced,omitempty"` // the override a PUT replaced
}

// OverrideStatus is an override and whether it is in force.
type OverrideStatus struct {
	routing.Override
	Active bool `json:"active"`
}

// ScheduleStatus is whether a schedule is open now, and why.
type ScheduleStatus struct {
	Name string `json:"name"`
	Open bool   `json:"open"`
	Why  string `json:"why"`
}

func (s *server) overrides(now time.Time) OverridesResponse {
	resp := OverridesResponse{Now: now, Overrides: []OverrideStatus{}, Schedules: []ScheduleStatus{}}
	all := s.opts.Overrides.Snapshot()
	for _, o := range all {
		resp.Overrides = append(resp.Overrides, OverrideStatus{o, o.ActiveAt(now)})
	}
	t := s.opts.Table()
	for _, name := range t.Schedules() {
		open, why, _ := t.ScheduleOpen(name, now, all)
		resp.Schedules = append(resp.Schedules, ScheduleStatus{name, open, why})
	}
	return resp
}

func (s *server) listOverrides(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.overrides(s.opts.Now()))
}

// maxBody bounds a PUT body.
const maxBody = 64 << 10

func (s *server) setOverride(w http.ResponseWriter, r *http.Request) {
	var o routing.Override
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if dec.Decode(new(json.RawMessage)) != io.EOF {
		writeError(w, http.StatusBadRequest, "body: one JSON object expected")
		return
	}
	now := s.opts.Now()
	o.Since = now
	if err := o.Check(); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	t := s.opts.Table()
	switch {
	case o.Kind == routing.ForceClosed && !t.HasSchedule(o.Schedule):
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("no schedule %q; schedules: %s", o.Schedule, strings.Join(t.Schedules(), ", ")))
		return
	case o.Kind == routing.ForceRoute && !t.HasRoute(o.Route):
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("no route %q; routes: %s", o.Route, strings.Join(t.Routes(), ", ")))
		return
	case !o.Until.IsZero() && !o.Until.After(now):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("until %s is not in the future", o.Until.Format(time.RFC3339)))
		return
	case len(o.Reason) > 500 || strings.ContainsAny(o.Reason, "\r\n\x00"):
		writeError(w, http.StatusBadRequest, "reason must be one line of at most 500 bytes")
		return
	}
	prev, replaced, err := s.opts.Overrides.Set(o)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.opts.Logger.Warn("emergency override set", "kind", o.Kind, "name", o.Name(), "reason", o.Reason,
		"until", o.Until, "replaced", replaced, "remote", r.RemoteAddr)
	resp := s.overrides(now)
	resp.Changed = &o
	if replaced {
		resp.Replaced = &prev
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *server) clearOverride(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	kind := routing.OverrideKind(q.Get("kind"))
	schedule := q.Get("schedule")
	probe := routing.Override{Kind: kind, Schedule: schedule, Route: "any"}
	if kind == routing.ForceClosed {
		probe.Route = ""
	}
	if err := probe.Check(); err != nil {
		writeError(w, http.StatusBadRequest, "give kind=route, or kind=closed&schedule=NAME")
		return
	}
	o, ok := s.opts.Overrides.Clear(kind, schedule)
	if !ok {
		writeError(w, http.StatusNotFound, "no such override")
		return
	}
	s.opts.Logger.Info("emergency override cleared", "kind", o.Kind, "name", o.Name(), "remote", r.RemoteAddr)
	resp := s.overrides(s.opts.Now())
	resp.Changed = &o
	writeJSON(w, http.StatusOK, resp)
}

// ErrorResponse is the body of every error but 401 and 404-for-off.
type ErrorResponse struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorResponse{msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client may be gone; nothing to do about it
}

var errUnknownLine = errors.New("unknown line")

// ReloadResponse is the body of POST /admin/v1/reload.
type ReloadResponse struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"` // why the file was refused; the running configuration stays
}

func (s *server) cluster(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Cluster == nil {
		writeError(w, http.StatusNotFound, "no state store (state.dir is none)")
		return
	}
	writeJSON(w, http.StatusOK, s.opts.Cluster())
}

// Members changes a cluster's membership; the node asked passes the change to the leader.
type Members interface {
	AddMember(ctx context.Context, id, addr string) error
	RemoveMember(ctx context.Context, id string) error
}

func (s *server) addMember(w http.ResponseWriter, r *http.Request) {
	if s.opts.Members == nil {
		writeError(w, http.StatusNotFound, "not a cluster node (state.cluster.node_id is empty)")
		return
	}
	id, addr := r.URL.Query().Get("id"), r.URL.Query().Get("addr")
	if id == "" || addr == "" {
		writeError(w, http.StatusBadRequest, "want ?id=NODE&addr=IP:PORT (its cluster port)")
		return
	}
	if _, err := netip.ParseAddrPort(addr); err != nil {
		// A voter added at an address no node has would count towards the quorum and
		// never vote.
		writeError(w, http.StatusBadRequest, "addr: want IP:PORT, the node's cluster port: "+err.Error())
		return
	}
	if err := s.opts.Members.AddMember(r.Context(), id, addr); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	s.opts.Logger.Info("cluster member added over the admin API", "node", id, "addr", addr)
	writeJSON(w, http.StatusOK, map[string]string{"added": id})
}

func (s *server) removeMember(w http.ResponseWriter, r *http.Request) {
	if s.opts.Members == nil {
		writeError(w, http.StatusNotFound, "not a cluster node (state.cluster.node_id is empty)")
		return
	}
	id := r.PathValue("id")
	if err := s.opts.Members.RemoveMember(r.Context(), id); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	s.opts.Logger.Info("cluster member removed over the admin API", "node", id)
	writeJSON(w, http.StatusOK, map[string]string{"removed": id})
}

func (s *server) reload(w http.ResponseWriter, r *http.Request) {
	if s.opts.Reload == nil {
		writeError(w, http.StatusNotFound, "reload is not available")
		return
	}
	if err := s.opts.Reload(); err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, ReloadResponse{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, ReloadResponse{OK: true})
}
