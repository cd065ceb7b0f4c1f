package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/hotline-project/hotline/queue"
)

// view is what one signed-in person's page shows. Times are Unix milliseconds, so that the
// page counts waits and wrap-ups down by itself between updates.
type view struct {
	Now       int64          `json:"now"`
	Me        *advocateView  `json:"me"`
	Call      *callView      `json:"call"`
	Phone     *phoneView     `json:"phone,omitempty"`       // this page's phone
	Features  []Feature      `json:"features,omitempty"`    // the buttons of one's call in progress
	Supervise *Supervision   `json:"supervising,omitempty"` // supervisors: the call they are in
	Queues    []queueView    `json:"queues,omitempty"`      // supervisors only
	Advocates []advocateView `json:"advocates,omitempty"`   // supervisors only
}

type advocateView struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Languages   []string `json:"languages"`
	State       string   `json:"state"`
	PauseReason string   `json:"pause_reason,omitempty"`
	Since       int64    `json:"since"`
	WrapUpEnds  int64    `json:"wrap_up_ends,omitempty"`
	Queue       string   `json:"queue,omitempty"`
	Registered  bool     `json:"registered"`
}

// callView is the card of the call ringing or talking to an advocate: never the caller's
// number or anything else that identifies them.
type callView struct {
	Queue    string `json:"queue"`
	Language string `json:"language"`
	Reason   string `json:"reason"`
	Since    int64  `json:"since"` // when the caller first queued
	Ringing  bool   `json:"ringing"`
	Kind     string `json:"kind"` // "live": a caller on the line (callbacks do not exist yet)
}

type queueView struct {
	Name           string                    `json:"name"`
	Languages      []string                  `json:"languages"`
	Waiting        int                       `json:"waiting"`
	Ringing        int                       `json:"ringing"`
	OldestSince    int64                     `json:"oldest_since,omitempty"` // 0: nobody waits
	AnsweredToday  int                       `json:"answered_today"`
	AbandonedToday int                       `json:"abandoned_today"`
	ServiceLevel   *float64                  `json:"service_level"` // answered within the threshold ÷ (answered + abandoned); null before any
	ThresholdS     int                       `json:"threshold_s"`
	Advocates      map[string]int            `json:"advocates"`   // by state
	ByLanguage     map[string]map[string]int `json:"by_language"` // language -> state -> count
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func advocateOf(a queue.AdvocateSnapshot) advocateView {
	v := advocateView{ID: a.ID, Name: a.Name, Languages: a.Languages, State: a.State.String(),
		PauseReason: a.PauseReason, Since: ms(a.Since), Queue: a.Queue, Registered: a.Registered}
	if a.State == queue.WrapUp {
		v.WrapUpEnds = ms(a.WrapUpEnds)
	}
	return v
}

// buildView is a's view now; ok is false when the engine no longer has the advocate.
func (s *Server) buildView(a Account) (view, bool) {
	now, snap := s.o.Desk.Advocates()
	v := view{Now: now.UnixMilli()}
	for _, adv := range snap.Advocates {
		if adv.ID != a.ID {
			continue
		}
		me := advocateOf(adv)
		v.Me = &me
		if adv.Call != "" {
			if c, ok := s.o.Desk.CallCard(adv.Call); ok {
				v.Call = &callView{Queue: c.Queue, Language: c.Language, Reason: c.Reason,
					Since: ms(c.Since), Ringing: adv.State == queue.Ringing, Kind: "live"}
			}
			if adv.State == queue.OnCall {
				v.Features = s.o.Desk.Features(a.ID)
			}
		}
	}
	if v.Me == nil {
		return v, false
	}
	if a.Role != RoleSupervisor {
		return v, true
	}
	if sv, ok := s.o.Desk.Supervising(a.ID); ok {
		v.Supervise = &sv
	}
	for _, q := range snap.Queues {
		qv := queueView{Name: q.Name, Languages: q.Languages, Waiting: q.Waiting, Ringing: q.Ringing,
			Advocates: map[string]int{}, ByLanguage: map[string]map[string]int{}}
		if q.OldestWait > 0 {
			// Whole seconds, so that the view changes when someone queues or leaves, not
			// at every look.
			qv.OldestSince = now.Add(-q.OldestWait).Truncate(time.Second).UnixMilli()
		}
		ans, abd, within := s.o.Stats.Today(q.Name)
		qv.AnsweredToday, qv.AbandonedToday = ans, abd
		if ans+abd > 0 {
			sl := float64(within) / float64(ans+abd)
			qv.ServiceLevel = &sl
		}
		if s.o.ServiceLevel != nil {
			qv.ThresholdS = int(s.o.ServiceLevel(q.Name) / time.Second)
		}
		for st, n := range q.Advocates {
			qv.Advocates[st.String()] = n
		}
		for l, m := range q.ByLanguage {
			lm := map[string]int{}
			for st, n := range m {
				lm[st.String()] = n
			}
			qv.ByLanguage[l] = lm
		}
		v.Queues = append(v.Queues, qv)
	}
	for _, adv := range snap.Advocates {
		v.Advocates = append(v.Advocates, advocateOf(adv))
	}
	return v, true
}

// events streams the view over Server-Sent Events: the whole view at once (so a reconnect
// restores the page), then again whenever it changes. Only one stream per session is
// live: a second tab, or a reconnect, takes over and the older stream is told "replaced".
// The stream ends with "expired" when the session times out or is signed out.
func (s *Server) events(w http.ResponseWriter, r *http.Request, sess *session, a Account) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	rc := http.NewResponseController(w)
	tab := randomToken()
	replaced := s.sessions.takeStream(sess, tab)
	defer s.phoneOff(a.ID, sess, tab) // the page's phone goes with its stream
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(event string, data []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
		fl.Flush()
		return err == nil
	}
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return
	}
	if !send("tab", []byte(`{"tab":"`+tab+`"}`)) {
		return
	}
	tick := time.NewTicker(s.o.Tick)
	defer tick.Stop()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	var last []byte
	for {
		if !s.sessions.alive(sess, s.o.Now(), s.o.IdleTimeout()) {
			send("expired", []byte(`{"error":"session expired: sign in again"}`))
			return
		}
		cur, _ := s.o.Accounts(a.ID)
		v, ok := s.buildView(cur)
		if !ok {
			send("expired", []byte(`{"error":"account removed"}`))
			return
		}
		if !s.o.PhoneEnabled() {
			s.phoneOff(a.ID, sess, tab) // console.phone turned off by a reload
		}
		v.Phone = s.phoneViewOf(a.ID, sess, tab)
		body, err := json.Marshal(v)
		if err != nil {
			return
		}
		// Compare without the clock, which changes at every look.
		v.Now = 0
		key, _ := json.Marshal(v)
		if !bytes.Equal(key, last) {
			if !send("view", body) {
				return
			}
			last = key
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.closed:
			return
		case <-replaced:
			if s.sessions.alive(sess, s.o.Now(), s.o.IdleTimeout()) {
				send("replaced", []byte(`{"error":"the console was opened in another tab"}`))
			} else {
				send("expired", []byte(`{"error":"signed out"}`))
			}
			return
		case <-keepalive.C:
			_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
			fl.Flush()
		case <-s.o.Stats.changed():
		case <-tick.C:
		}
	}
}
