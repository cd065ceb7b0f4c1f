package console

import (
	"errors"
	"net/http"
)

// The call buttons: an advocate adds an interpreter, 911 or a partner to their own call and
// drops the party added last, with the same feature codes their phone's keys send
// (callflow.Flow.Press); a supervisor listens to, whispers to or barges into an advocate's
// call through their own phone (the one in the page, or a SIP phone the server rings), as
// dialling midcall.supervise_code and the extension would.

// Feature is one of the mid-call buttons of an advocate's call.
type Feature struct {
	ID    string `json:"id"`    // what the page sends back
	Label string `json:"label"` // what the button says
	Kind  string `json:"kind"`  // interpreter, emergency, partner, drop
}

// Supervision is what a supervisor is doing on an advocate's call.
type Supervision struct {
	Advocate string `json:"advocate"`
	Mode     string `json:"mode"`     // listen, whisper, barge
	Answered bool   `json:"answered"` // the supervisor's phone answered: they are in the call
}

// The supervisor's modes as the page names them.
var superviseModes = map[string]bool{"listen": true, "whisper": true, "barge": true, "stop": true}

// Errors of the call buttons a Desk wraps.
var (
	// ErrNoFeature means the button is not one of the call's.
	ErrNoFeature = errors.New("no such feature on this call")
	// ErrCannotSupervise means the supervision asked for is not possible (supervision
	// off, no phone to listen on, the advocate on no call); its text says why.
	ErrCannotSupervise = errors.New("cannot supervise")
)

type featureRequest struct {
	Feature string `json:"feature"`
}

// feature presses one of the advocate's call buttons, on their own call only.
func (s *Server) feature(w http.ResponseWriter, r *http.Request, _ *session, a Account) {
	var req featureRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	err := s.o.Desk.Feature(r.Context(), a.ID, req.Feature)
	switch {
	case errors.Is(err, ErrNoCall):
		writeError(w, http.StatusConflict, "you are on no call")
		return
	case errors.Is(err, ErrNoFeature):
		writeError(w, http.StatusBadRequest, "no such button on this call")
		return
	case err != nil:
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	s.o.Logger.Info("console call button", "advocate", a.ID, "feature", req.Feature)
	s.o.Stats.notify()
	w.WriteHeader(http.StatusNoContent)
}

type superviseRequest struct {
	Advocate string `json:"advocate"`
	Mode     string `json:"mode"` // listen, whisper, barge, or stop
}

// supervise starts, changes or stops a supervisor's listening to an advocate's call.
func (s *Server) supervise(w http.ResponseWriter, r *http.Request, _ *session, a Account) {
	if a.Role != RoleSupervisor {
		writeError(w, http.StatusForbidden, "only a supervisor listens to, whispers to or barges into calls")
		return
	}
	var req superviseRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !superviseModes[req.Mode] {
		writeError(w, http.StatusBadRequest, "mode must be listen, whisper, barge or stop")
		return
	}
	if req.Advocate == a.ID {
		writeError(w, http.StatusBadRequest, "you cannot supervise your own call")
		return
	}
	err := s.o.Desk.Supervise(r.Context(), a.ID, req.Advocate, req.Mode)
	switch {
	case errors.Is(err, ErrCannotSupervise):
		writeError(w, http.StatusConflict, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.o.Logger.Info("console supervision", "supervisor", a.ID, "advocate", req.Advocate, "mode", req.Mode)
	s.o.Stats.notify()
	w.WriteHeader(http.StatusAccepted)
}
