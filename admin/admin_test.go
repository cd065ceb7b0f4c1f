package admin_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotline-project/hotline/admin"
	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/routing"
)

const token = "s3cret-token"

const routesYAML = `
lines: [{number: "18883737888", name: main}]
targets: [{name: partner_center, uri: "sip:overflow@partner.example.org"}]
routes:
  - name: help_now_es
    when: {languages: [es], reasons: [help_now], schedule: advocates, open: true}
    to: es
    priority: 100
    overflow: [{after: 60s, to: en}, {after: 3m, to: partner_center}]
  - name: partner
    when: {reasons: [nobody_asks_for_this]}
    to: partner_center
  - name: default
    to: en
    priority: 10
`

func table(t *testing.T, yaml string) *routing.Table {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	tb, err := routing.Compile(cfg.RoutingSpec())
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

type fixture struct {
	srv       *httptest.Server
	tables    atomic.Pointer[routing.Table]
	overrides *routing.Overrides
	log       *bytes.Buffer
	now       time.Time
}

func newFixture(t *testing.T, tok string) *fixture {
	t.Helper()
	f := &fixture{overrides: &routing.Overrides{}, log: &bytes.Buffer{}}
	f.now = time.Date(2026, 12, 25, 9, 0, 0, 0, time.UTC)
	f.tables.Store(table(t, routesYAML))
	mux := http.NewServeMux()
	mux.Handle("/admin/", admin.Handler(admin.Options{
		Token:     tok,
		Table:     f.tables.Load,
		Overrides: f.overrides,
		Now:       func() time.Time { return f.now },
		State: func() routing.State {
			return routing.State{Queues: map[string]routing.QueueState{"es": {LoggedIn: 1}}}
		},
		Logger: slog.New(slog.NewTextHandler(f.log, nil)),
	}))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// do sends a request with the given Authorization header ("" for none) and returns the
// status and body.
func (f *fixture) do(t *testing.T, method, path, auth, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// ok sends an authorised request that must succeed and decodes the reply into v, which it
// zeroes first.
func (f *fixture) ok(t *testing.T, method, path, body string, v any) {
	t.Helper()
	switch v := v.(type) {
	case *admin.Explanation:
		*v = admin.Explanation{}
	case *admin.OverridesResponse:
		*v = admin.OverridesResponse{}
	}
	code, out := f.do(t, method, path, "Bearer "+token, body)
	if code != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, path, code, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%s %s: %v\n%s", method, path, err, out)
	}
}

func TestAdminOffWithoutToken(t *testing.T) {
	f := newFixture(t, "")
	for _, auth := range []string{"", "Bearer ", "Bearer " + token} {
		if code, _ := f.do(t, "GET", "/admin/v1/overrides", auth, ""); code != http.StatusNotFound {
			t.Errorf("no token configured, Authorization %q: %d, want 404", auth, code)
		}
	}
}

func TestAdminAuth(t *testing.T) {
	f := newFixture(t, token)
	for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer wrong", "bearer " + token, "Basic " + token, token, "Bearer " + token + "x", "Bearer " + token[:5]} {
		for _, path := range []string{"/admin/v1/overrides", "/admin/v1/route", "/admin/nothing"} {
			code, body := f.do(t, "GET", path, auth, "")
			if code != http.StatusUnauthorized || body != "unauthorized\n" {
				t.Errorf("GET %s with Authorization %q: %d %q, want 401 with no detail", path, auth, code, body)
			}
		}
		if code, _ := f.do(t, "PUT", "/admin/v1/overrides", auth, `{"kind":"route","route":"partner"}`); code != http.StatusUnauthorized {
			t.Errorf("PUT with Authorization %q: %d, want 401", auth, code)
		}
	}
	if got := f.overrides.Snapshot(); len(got) != 0 {
		t.Errorf("unauthorised PUTs set overrides: %v", got)
	}
	if code, _ := f.do(t, "GET", "/admin/v1/overrides", "Bearer "+token, ""); code != http.StatusOK {
		t.Errorf("with the token: %d, want 200", code)
	}
	if code, _ := f.do(t, "POST", "/admin/v1/overrides", "Bearer "+token, ""); code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", code)
	}
	if code, _ := f.do(t, "GET", "/admin/v2/route", "Bearer "+token, ""); code != http.StatusNotFound {
		t.Errorf("unknown path: %d, want 404", code)
	}
}

func TestAdminRoute(t *testing.T) {
	f := newFixture(t, token)
	var e admin.Explanation
	f.ok(t, "GET", "/admin/v1/route?line=%2B1-888-373-7888&lang=es&reason=help_now&at=2026-06-01T10:00:00-05:00", "", &e)
	if e.Line != "main" || e.Dialled != "+1-888-373-7888" || e.Route != "help_now_es" || e.Kind != "queue" || e.Queue != "es" || e.Priority != 100 {
		t.Errorf("explanation: %+v", e)
	}
	wantSteps := []admin.Step{{After: "1m0s", Queue: "en"}, {After: "3m0s", Target: "partner_center", URI: "sip:overflow@partner.example.org"}}
	if !slices.Equal(e.Overflow, wantSteps) {
		t.Errorf("overflow %+v, want %+v", e.Overflow, wantSteps)
	}
	if len(e.Explain) != 1 || !strings.Contains(e.Explain[0], "schedule advocates is open: 10:00 CDT Mon 2026-06-01") {
		t.Errorf("explain: %q", e.Explain)
	}
	// at defaults to the clock.
	f.ok(t, "GET", "/admin/v1/route?line=main&lang=en&reason=tip", "", &e)
	if !e.At.Equal(f.now) || e.Route != "default" || e.Dialled != "" {
		t.Errorf("without at: %+v", e)
	}
	for _, q := range []string{"line=911&lang=en", "at=tomorrow", "at=2026-12-25"} {
		code, body := f.do(t, "GET", "/admin/v1/route?"+q, "Bearer "+token, "")
		var er admin.ErrorResponse
		if code != http.StatusBadRequest || json.Unmarshal([]byte(body), &er) != nil || er.Error == "" {
			t.Errorf("GET route?%s: %d %s, want 400 with an error", q, code, body)
		}
	}
}

func TestAdminOverrides(t *testing.T) {
	f := newFixture(t, token)
	const spanishNow = "/admin/v1/route?line=main&lang=es&reason=help_now" // at the clock's time

	var resp admin.OverridesResponse
	f.ok(t, "GET", "/admin/v1/overrides", "", &resp)
	if len(resp.Overrides) != 0 || len(resp.Schedules) != 1 || resp.Schedules[0].Name != "advocates" || !resp.Schedules[0].Open {
		t.Fatalf("initial overrides: %+v", resp)
	}

	// Force the schedule closed: the Spanish route no longer matches.
	f.ok(t, "PUT", "/admin/v1/overrides", `{"kind":"closed","schedule":"advocates","reason":"storm"}`, &resp)
	if resp.Changed == nil || resp.Changed.Schedule != "advocates" || !resp.Changed.Since.Equal(f.now) || resp.Replaced != nil {
		t.Errorf("PUT closed: %+v", resp)
	}
	if len(resp.Schedules) != 1 || resp.Schedules[0].Open || !strings.Contains(resp.Schedules[0].Why, "emergency override") {
		t.Errorf("schedules after PUT closed: %+v", resp.Schedules)
	}
	var e admin.Explanation
	f.ok(t, "GET", spanishNow, "", &e)
	if e.Route != "default" || len(e.Overrides) != 1 || !strings.Contains(strings.Join(e.Explain, "\n"), `closed by emergency override: schedule advocates forced closed since 2026-12-25T09:00:00Z ("storm")`) {
		t.Errorf("route with advocates closed: %+v", e)
	}

	// Force every call to one route, then replace it.
	f.ok(t, "PUT", "/admin/v1/overrides", `{"kind":"route","route":"default"}`, &resp)
	f.ok(t, "PUT", "/admin/v1/overrides", `{"kind":"route","route":"partner","reason":"evacuation","until":"2026-12-25T10:00:00Z"}`, &resp)
	if resp.Replaced == nil || resp.Replaced.Route != "default" || len(resp.Overrides) != 2 {
		t.Errorf("PUT route again: %+v", resp)
	}
	f.ok(t, "GET", spanishNow, "", &e)
	if e.Route != "partner" || e.Kind != "target" || !strings.Contains(e.Override, "evacuation") {
		t.Errorf("forced route: %+v", e)
	}
	// After until, the forced route is over.
	f.now = f.now.Add(2 * time.Hour)
	f.ok(t, "GET", "/admin/v1/overrides", "", &resp)
	if len(resp.Overrides) != 2 || resp.Overrides[0].Kind != routing.ForceRoute || resp.Overrides[0].Active || !resp.Overrides[1].Active {
		t.Errorf("overrides after until: %+v", resp.Overrides)
	}
	f.ok(t, "GET", spanishNow, "", &e)
	if e.Route != "default" {
		t.Errorf("after until: route %s, want default", e.Route)
	}

	// A reload that drops a forced route leaves calls routed, and says so.
	f.ok(t, "PUT", "/admin/v1/overrides", `{"kind":"route","route":"partner"}`, &resp)
	f.tables.Store(table(t, "lines: [{number: \"18883737888\", name: main}]\n"))
	f.ok(t, "GET", spanishNow, "", &e)
	if e.Route != "help_now" || !strings.Contains(e.Explain[0], `ignored: no route "partner" in this configuration`) {
		t.Errorf("after a reload without the forced route: %+v", e)
	}

	// Clear both.
	f.ok(t, "DELETE", "/admin/v1/overrides?kind=route", "", &resp)
	f.ok(t, "DELETE", "/admin/v1/overrides?kind=closed&schedule=advocates", "", &resp)
	if len(resp.Overrides) != 0 || resp.Changed == nil || resp.Changed.Schedule != "advocates" {
		t.Errorf("after DELETE: %+v", resp)
	}
	if code, _ := f.do(t, "DELETE", "/admin/v1/overrides?kind=route", "Bearer "+token, ""); code != http.StatusNotFound {
		t.Errorf("DELETE of nothing: %d, want 404", code)
	}

	logs := f.log.String()
	for _, want := range []string{
		`level=WARN msg="emergency override set" kind=closed name=advocates reason=storm`,
		`level=WARN msg="emergency override set" kind=route name=partner reason=evacuation until=2026-12-25T10:00:00.000Z replaced=true`,
		`level=INFO msg="emergency override cleared" kind=closed name=advocates`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
}

func TestAdminOverrideErrors(t *testing.T) {
	f := newFixture(t, token)
	tests := []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"PUT", "/admin/v1/overrides", `{"kind":"closed","schedule":"nights"}`, 422, `no schedule \"nights\"; schedules: advocates`},
		{"PUT", "/admin/v1/overrides", `{"kind":"route","route":"nowhere"}`, 422, `no route \"nowhere\"; routes: help_now_es, partner, default`},
		{"PUT", "/admin/v1/overrides", `{"kind":"open","schedule":"advocates"}`, 400, "kind must be closed or route"},
		{"PUT", "/admin/v1/overrides", `{"kind":"closed","route":"partner"}`, 400, "a closed override needs a schedule"},
		{"PUT", "/admin/v1/overrides", `{"kind":"closed","schedule":"advocates","colour":"red"}`, 400, `unknown field \"colour\"`},
		{"PUT", "/admin/v1/overrides", `{"kind":"closed","schedule":"advocates"} {}`, 400, "one JSON object expected"},
		{"PUT", "/admin/v1/overrides", `not json`, 400, "body: "},
		{"PUT", "/admin/v1/overrides", `{"kind":"closed","schedule":"advocates","until":"2026-12-25T08:00:00Z"}`, 400, "is not in the future"},
		{"PUT", "/admin/v1/overrides", `{"kind":"closed","schedule":"advocates","reason":"a\nb"}`, 400, "reason must be one line"},
		{"PUT", "/admin/v1/overrides", `{"kind":"closed","schedule":"advocates","reason":"` + strings.Repeat("x", 70000) + `"}`, 400, "body: "},
		{"DELETE", "/admin/v1/overrides?kind=closed", "", 400, "give kind=route, or kind=closed&schedule=NAME"},
		{"DELETE", "/admin/v1/overrides?kind=route&schedule=advocates", "", 400, "give kind=route"},
		{"DELETE", "/admin/v1/overrides", "", 400, "give kind=route"},
	}
	for _, tt := range tests {
		code, body := f.do(t, tt.method, tt.path, "Bearer "+token, tt.body)
		if code != tt.code || !strings.Contains(body, tt.want) {
			t.Errorf("%s %s %.60s: %d %s; want %d containing %s", tt.method, tt.path, tt.body, code, body, tt.code, tt.want)
		}
	}
	if got := f.overrides.Snapshot(); len(got) != 0 {
		t.Errorf("bad requests set overrides: %v", got)
	}
}

func TestLoadToken(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("  from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(admin.TokenEnv, "")
	for _, tt := range []struct {
		env, file, want string
		err             bool
	}{
		{"", "", "", false},
		{"", file, "from-file", false},
		{"from-env", file, "from-env", false},
		{"from-env", "", "from-env", false},
		{"", empty, "", true},
		{"", filepath.Join(dir, "missing"), "", true},
	} {
		t.Setenv(admin.TokenEnv, tt.env)
		got, err := admin.LoadToken(tt.file)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("LoadToken with env %q, file %q = %q, %v; want %q (error %v)", tt.env, tt.file, got, err, tt.want, tt.err)
		}
	}
}
