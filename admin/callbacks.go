package admin

import (
	"errors"
	"net/http"
)

// Callbacks lists and cancels pending safe callbacks (callflow.Flow through a small
// adapter). List returns what the API shows: the numbers masked to their last two digits
// at most, never more.
type Callbacks interface {
	List() any
	// Cancel forgets one; ErrNoCallback when no pending callback has the id.
	Cancel(id string) error
}

// ErrNoCallback is what Callbacks.Cancel returns for an unknown id.
var ErrNoCallback = errors.New("no such callback")

// GET    /admin/v1/callbacks        pending callbacks, numbers masked
// DELETE /admin/v1/callbacks/{id}   cancel one
func (s *server) listCallbacks(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Callbacks == nil {
		writeError(w, http.StatusNotFound, "callbacks are not available")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"callbacks": s.opts.Callbacks.List()})
}

func (s *server) cancelCallback(w http.ResponseWriter, r *http.Request) {
	if s.opts.Callbacks == nil {
		writeError(w, http.StatusNotFound, "callbacks are not available")
		return
	}
	id := r.PathValue("id")
	switch err := s.opts.Callbacks.Cancel(id); {
	case errors.Is(err, ErrNoCallback):
		writeError(w, http.StatusNotFound, "no pending callback "+id)
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.opts.Logger.Info("callback cancelled", "callback", id, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"cancelled": id})
}
