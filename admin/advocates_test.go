package admin_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hotline-project/hotline/admin"
	"github.com/hotline-project/hotline/queue"
	"github.com/hotline-project/hotline/routing"
)

// fakeAdvocates is one paused advocate, ana, in queue en.
type fakeAdvocates struct{ now time.Time }

func (f fakeAdvocates) Snapshot() (time.Time, queue.Snapshot) {
	return f.now, queue.Snapshot{
		Queues: []queue.QueueSnapshot{{Name: "en", Languages: []string{"en"}, Waiting: 2, Ringing: 1,
			OldestWait: 90 * time.Second, HandleTime: 4*time.Minute + 30*time.Second, HandleSamples: 3,
			Advocates: map[queue.State]int{queue.Paused: 1}, ByLanguage: map[string]map[queue.State]int{"en": {queue.Paused: 1}}}},
		Advocates: []queue.AdvocateSnapshot{f.ana()},
	}
}

func (f fakeAdvocates) ana() queue.AdvocateSnapshot {
	return queue.AdvocateSnapshot{ID: "ana", Name: "Ana", Languages: []string{"en"}, State: queue.Paused,
		PauseReason: "break", Since: f.now.Add(-time.Minute), IdleSince: f.now.Add(-time.Hour), Registered: true}
}

func (f fakeAdvocates) SetState(id, state, reason string) (queue.AdvocateSnapshot, error) {
	if id != "ana" {
		return queue.AdvocateSnapshot{}, fmt.Errorf("%w: %s", admin.ErrUnknownAdvocate, id)
	}
	a := f.ana()
	a.PauseReason = reason
	return a, nil
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// jsonKeys returns every object key in the JSON document body, at any depth.
func jsonKeys(t *testing.T, body string) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	var keys []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				keys = append(keys, k)
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
	return keys
}

// Issue 13: every answer of the admin API names its fields in snake_case (/advocates used to
// answer with Go's field names: ID, State, PauseReason).
func TestAdminJSONSnakeCase(t *testing.T) {
	now := time.Date(2026, 12, 25, 9, 0, 0, 0, time.UTC)
	overrides := &routing.Overrides{}
	mux := http.NewServeMux()
	mux.Handle("/admin/", admin.Handler(admin.Options{
		Token: token, Table: func() *routing.Table { return table(t, routesYAML) }, Overrides: overrides,
		Now: func() time.Time { return now }, Advocates: fakeAdvocates{now},
		Reload: func() error { return nil }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	do := func(method, path, body string) string {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d %v %s", method, path, res.StatusCode, err, b)
		}
		return string(b)
	}
	answers := map[string]string{
		"GET /advocates":  do("GET", "/admin/v1/advocates", ""),
		"PUT state":       do("PUT", "/admin/v1/advocates/ana/state", `{"state":"paused","reason":"phone"}`),
		"PUT /overrides":  do("PUT", "/admin/v1/overrides", `{"kind":"closed","schedule":"advocates","reason":"storm"}`),
		"GET /overrides":  do("GET", "/admin/v1/overrides", ""),
		"GET /route":      do("GET", "/admin/v1/route?line=main&lang=es&reason=help_now", ""),
		"POST /reload":    do("POST", "/admin/v1/reload", ""),
		"DELETE override": do("DELETE", "/admin/v1/overrides?kind=closed&schedule=advocates", ""),
	}
	for name, body := range answers {
		for _, k := range jsonKeys(t, body) {
			if !snakeCase.MatchString(k) {
				t.Errorf("%s: key %q is not snake_case: %s", name, k, body)
			}
		}
	}

	var list admin.AdvocatesResponse
	if err := json.Unmarshal([]byte(answers["GET /advocates"]), &list); err != nil {
		t.Fatal(err)
	}
	want := admin.AdvocateState{ID: "ana", Name: "Ana", Languages: []string{"en"}, State: "paused", PauseReason: "break",
		Since: now.Add(-time.Minute), IdleSince: now.Add(-time.Hour), Registered: true}
	if len(list.Advocates) != 1 || fmt.Sprint(list.Advocates[0]) != fmt.Sprint(want) {
		t.Errorf("advocates %+v, want [%+v]", list.Advocates, want)
	}
	if len(list.Queues) != 1 || list.Queues[0].OldestWaitSeconds != 90 || list.Queues[0].HandleTimeSeconds != 270 ||
		list.Queues[0].Advocates["paused"] != 1 || list.Queues[0].Advocates["available"] != 0 || list.Queues[0].ByLanguage["en"]["paused"] != 1 {
		t.Errorf("queues %+v", list.Queues)
	}
	var set admin.AdvocateState
	if err := json.Unmarshal([]byte(answers["PUT state"]), &set); err != nil || set.PauseReason != "phone" {
		t.Errorf("PUT state answered %v %s", err, answers["PUT state"])
	}
	if strings.Contains(answers["GET /advocates"], "wrap_up_ends") {
		t.Errorf("a wrap-up end that never was is shown: %s", answers["GET /advocates"])
	}
}
