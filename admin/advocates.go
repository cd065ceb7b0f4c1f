package admin

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// Advocates is what the admin API needs to show and change advocates' states; the queue
// engine's adapter in cmd/hotline implements it.
type Advocates interface {
	// List returns every advocate's state, ready to encode as JSON.
	List() any
	// SetState puts advocate id in state available, paused (with reason) or offline
	// (logged out), and returns the advocate's new state. Errors match ErrUnknownAdvocate
	// or ErrBadState.
	SetState(id, state, reason string) (any, error)
}

// Errors an Advocates implementation returns.
var (
	ErrUnknownAdvocate = errors.New("no such advocate")
	ErrBadState        = errors.New("bad state change")
)

// StateRequest is the body of PUT /admin/v1/advocates/{id}/state.
type StateRequest struct {
	State  string `json:"state"`            // available, paused or offline
	Reason string `json:"reason,omitempty"` // why, for paused
}

func (s *server) listAdvocates(w http.ResponseWriter, r *http.Request) {
	if s.opts.Advocates == nil {
		writeError(w, http.StatusNotFound, "no advocates on this server")
		return
	}
	writeJSON(w, http.StatusOK, s.opts.Advocates.List())
}

func (s *server) setAdvocateState(w http.ResponseWriter, r *http.Request) {
	if s.opts.Advocates == nil {
		writeError(w, http.StatusNotFound, "no advocates on this server")
		return
	}
	var req StateRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if dec.Decode(new(json.RawMessage)) != io.EOF {
		writeError(w, http.StatusBadRequest, "body: one JSON object expected")
		return
	}
	id := r.PathValue("id")
	a, err := s.opts.Advocates.SetState(id, req.State, req.Reason)
	switch {
	case errors.Is(err, ErrUnknownAdvocate):
		writeError(w, http.StatusNotFound, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.opts.Logger.Info("advocate state set over the admin API", "advocate", id, "state", req.State, "reason", req.Reason)
	writeJSON(w, http.StatusOK, a)
}
