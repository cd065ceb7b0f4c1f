package console

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzRequests sends arbitrary bodies to the sign-in and state endpoints, signed in with a
// valid CSRF token: every answer is a clear 2xx or 4xx, never a 5xx or a panic.
func FuzzRequests(f *testing.F) {
	for _, s := range []string{`{"id":"ana","password":"ana-pw"}`, `{"state":"paused","reason":"meal"}`,
		`{"advocate":"sam","state":"available"}`, `{"state":"offline"}`, `{`, `null`, `[]`, `{"state":1}`,
		`{"state":"available"}{"state":"paused"}`} {
		f.Add([]byte(s))
	}
	fx := newFixture(f, false)
	h := fx.srv.Config.Handler
	sess, _ := fx.cs.sessions.create("ana", fx.clock.Now(), 10*time.Minute)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range []string{"/console/api/signin", "/console/api/state", "/console/api/hangup"} {
			req := httptest.NewRequest("POST", path, bytes.NewReader(body))
			req.AddCookie(&http.Cookie{Name: cookieName, Value: sess.token})
			req.Header.Set("X-CSRF-Token", sess.csrf)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("POST %s %q: %d %s", path, body, rec.Code, rec.Body)
			}
		}
	})
}
