package admin

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/hotline-project/hotline/queue"
)

// Advocates is what the admin API needs to show and change advocates' states; the queue
// engine's adapter in cmd/hotline implements it.
type Advocates interface {
	// Snapshot returns the queues' and advocates' state, and when it was taken.
	Snapshot() (time.Time, queue.Snapshot)
	// SetState puts advocate id in state available, paused (with reason) or offline
	// (logged out), and returns the advocate's new state. Errors match ErrUnknownAdvocate
	// or ErrBadState.
	SetState(id, state, reason string) (queue.AdvocateSnapshot, error)
}

// The admin API's JSON names are snake_case, like its query parameters and the metrics;
// durations are seconds, in fields whose names end in _seconds; times are RFC 3339, and
// a time that has not happened is left out.

// AdvocatesResponse is the body of GET /admin/v1/advocates.
type AdvocatesResponse struct {
	Now       time.Time       `json:"now"`
	Advocates []AdvocateState `json:"advocates"` // in configuration order
	Queues    []QueueState    `json:"queues"`    // by name
}

// AdvocateState is one advocate's state: an element of AdvocatesResponse.Advocates, and
// the body of PUT /admin/v1/advocates/{id}/state's answer.
type AdvocateState struct {
	ID        string   `json:"id"`
	Name      string   `json:"name,omitempty"`
	Languages []string `json:"languages"`
	// State is offline, available, ringing, on_call, wrap_up or paused.
	State string `json:"state"`
	// PauseReason is why they are paused, or will be after the call in hand.
	PauseReason string    `json:"pause_reason,omitempty"`
	Since       time.Time `json:"since,omitzero"`      // when State began
	IdleSince   time.Time `json:"idle_since,omitzero"` // when last free: the longest idle is rung first
	Misses      int       `json:"misses"`              // calls missed in a row
	Call        string    `json:"call,omitempty"`      // the call being rung or talked to
	Queue       string    `json:"queue,omitempty"`     // the queue of that call, or of the one wrapped up
	WrapUpEnds  time.Time `json:"wrap_up_ends,omitzero"`
	Registered  bool      `json:"registered"` // a phone of theirs is registered
	Removed     bool      `json:"removed,omitempty"`
}

// QueueState is one queue's state: an element of AdvocatesResponse.Queues.
type QueueState struct {
	Name      string   `json:"name"`
	Languages []string `json:"languages"`
	RingAll   bool     `json:"ring_all"`
	Retired   bool     `json:"retired,omitempty"` // removed by a reload; kept until its callers leave
	Waiting   int      `json:"waiting"`
	Ringing   int      `json:"ringing"`
	// OldestWaitSeconds is how long the caller waiting longest has waited.
	OldestWaitSeconds float64 `json:"oldest_wait_seconds"`
	// Staffed counts the advocates serving the queue who are neither offline nor paused.
	Staffed int `json:"staffed"`
	// Advocates counts the advocates serving the queue by state; ByLanguage does so for
	// each of the queue's languages.
	Advocates  map[string]int            `json:"advocates"`
	ByLanguage map[string]map[string]int `json:"by_language"`
	// HandleTimeSeconds is the average talk plus wrap-up of the queue's last
	// HandleSamples calls.
	HandleTimeSeconds float64 `json:"handle_time_seconds"`
	HandleSamples     int     `json:"handle_samples"`
}

// NewAdvocatesResponse converts a queue engine snapshot taken at now.
func NewAdvocatesResponse(now time.Time, s queue.Snapshot) AdvocatesResponse {
	r := AdvocatesResponse{Now: now, Advocates: []AdvocateState{}, Queues: []QueueState{}}
	for _, a := range s.Advocates {
		r.Advocates = append(r.Advocates, NewAdvocateState(a))
	}
	for _, q := range s.Queues {
		byLang := make(map[string]map[string]int, len(q.ByLanguage))
		for l, m := range q.ByLanguage {
			byLang[l] = stateCounts(m)
		}
		r.Queues = append(r.Queues, QueueState{
			Name: q.Name, Languages: nonNil(q.Languages), RingAll: q.RingAll, Retired: q.Retired,
			Waiting: q.Waiting, Ringing: q.Ringing, OldestWaitSeconds: q.OldestWait.Seconds(),
			Staffed: q.Staffed, Advocates: stateCounts(q.Advocates), ByLanguage: byLang,
			HandleTimeSeconds: q.HandleTime.Seconds(), HandleSamples: q.HandleSamples,
		})
	}
	return r
}

// NewAdvocateState converts one advocate's snapshot.
func NewAdvocateState(a queue.AdvocateSnapshot) AdvocateState {
	return AdvocateState{
		ID: a.ID, Name: a.Name, Languages: nonNil(a.Languages), State: a.State.String(),
		PauseReason: a.PauseReason, Since: a.Since, IdleSince: a.IdleSince, Misses: a.Misses,
		Call: a.Call, Queue: a.Queue, WrapUpEnds: a.WrapUpEnds, Registered: a.Registered, Removed: a.Removed,
	}
}

// stateCounts keys counts by state name, with every state present.
func stateCounts(m map[queue.State]int) map[string]int {
	out := make(map[string]int, len(queue.States))
	for _, st := range queue.States {
		out[st.String()] = m[st]
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
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
	writeJSON(w, http.StatusOK, NewAdvocatesResponse(s.opts.Advocates.Snapshot()))
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
	writeJSON(w, http.StatusOK, NewAdvocateState(a))
}
