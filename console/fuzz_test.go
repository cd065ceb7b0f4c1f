package console

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzRequests sends arbitrary bodies to the sign-in, state, call button, supervision and
// phone endpoints, signed in (as an advocate and as a supervisor, from the live tab) with a
// valid CSRF token: every answer is a clear 2xx or 4xx, never a 5xx or a panic.
func FuzzRequests(f *testing.F) {
	for _, s := range []string{`{"id":"ana","password":"ana-pw"}`, `{"state":"paused","reason":"meal"}`,
		`{"advocate":"sam","state":"available"}`, `{"state":"offline"}`, `{`, `null`, `[]`, `{"state":1}`,
		`{"state":"available"}{"state":"paused"}`, `{"feature":"party:9"}`, `{"advocate":"ana","mode":"barge"}`,
		`{"on":true}`, `{"on":false}`, `{"ring":"x","sdp":"v=0"}`, `{"ring":"","sdp":""}`} {
		f.Add([]byte(s))
	}
	fx := newFixture(f, false)
	h := fx.srv.Config.Handler
	fx.desk.SetState("ana", "on_call", "")
	var sessions []*session
	for _, id := range []string{"ana", "sam"} {
		sess, _ := fx.cs.sessions.create(id, fx.clock.Now(), 10*time.Minute)
		fx.cs.sessions.takeStream(sess, "tab-"+id)
		sessions = append(sessions, sess)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, sess := range sessions {
			for _, path := range []string{"/console/api/signin", "/console/api/state", "/console/api/hangup",
				"/console/api/feature", "/console/api/supervise", "/console/api/phone", "/console/api/phone/answer"} {
				req := httptest.NewRequest("POST", path, bytes.NewReader(body))
				req.AddCookie(&http.Cookie{Name: cookieName, Value: sess.token})
				req.Header.Set("X-CSRF-Token", sess.csrf)
				req.Header.Set(tabHeader, sess.tab)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code >= 500 {
					t.Fatalf("POST %s %q: %d %s", path, body, rec.Code, rec.Body)
				}
			}
		}
	})
}
