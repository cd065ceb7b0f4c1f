package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotline-project/hotline/admin"
	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/internal/golden"
	"github.com/hotline-project/hotline/routing"
)

// goldenFile compares got with testdata/name, or rewrites the file with -update.
func goldenFile(t *testing.T, name, got string) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name), got)
}

func TestRouteCommand(t *testing.T) {
	tests := []struct {
		golden string
		args   []string
	}{
		// The example, on the embedded default: Christmas Day is open as always.
		{"route-default-es-help-now.golden", []string{"-line", "18883737888", "-lang", "es", "-reason", "help_now", "-at", "2026-12-25T03:00:00-06:00"}},
		{"route-default-tip.golden", []string{"-line", "main", "-lang", "en", "-reason", "tip", "-at", "2026-07-04T12:00:00-05:00"}},
		// A schedule and its overflow: Spanish help_now by day, with state unknown.
		{"route-es-help-now.golden", []string{"-config", "testdata/route.yaml", "-line", "+1 888 373 7888", "-lang", "es", "-reason", "help_now", "-at", "2026-06-06T10:00:00-05:00"}},
		// Saturday's night shift runs into Sunday, a closed day.
		{"route-overnight.golden", []string{"-config", "testdata/route.yaml", "-line", "main", "-lang", "es", "-reason", "help_now", "-at", "2026-06-07T05:30:00-05:00"}},
		// Christmas is closed: tips get the message and a hang-up; the explanation says when it opens.
		{"route-closed-message.golden", []string{"-config", "testdata/route.yaml", "-line", "main", "-lang", "en", "-reason", "tip", "-at", "2026-12-25T03:00:00-06:00"}},
		{"route-text-line.golden", []string{"-config", "testdata/route.yaml", "-line", "8005550100", "-lang", "en", "-reason", "other", "-at", "2026-06-06T10:00:00-05:00"}},
		// What if: the schedule forced closed and queue states.
		{"route-what-if.golden", []string{"-config", "testdata/route.yaml", "-line", "main", "-lang", "en", "-reason", "help_now", "-at", "2026-06-06T10:00:00-05:00",
			"-closed", "advocates", "-nobody-in", "es", "-longest-wait", "en=6m"}},
		{"route-nobody-in.golden", []string{"-config", "testdata/route.yaml", "-line", "main", "-lang", "es", "-reason", "tip", "-at", "2026-06-06T10:00:00-05:00", "-nobody-in", "es"}},
		{"route-forced.golden", []string{"-config", "testdata/route.yaml", "-line", "main", "-lang", "es", "-reason", "help_now", "-at", "2026-06-06T10:00:00-05:00", "-force-route", "text_line"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			code, out, errOut := runCmd(t, append([]string{"route"}, tt.args...)...)
			if code != 0 || errOut != "" {
				t.Fatalf("exit %d, stderr:\n%s", code, errOut)
			}
			goldenFile(t, tt.golden, out)
		})
	}
}

func TestRouteCommandDefaultsToNow(t *testing.T) {
	before := time.Now().Add(-time.Second)
	code, out, errOut := runCmd(t, "route", "-line", "main", "-lang", "en", "-reason", "tip")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	at, _, _ := strings.Cut(strings.TrimPrefix(strings.Split(out, "\n")[1], "at        "), "\n")
	tm, err := time.Parse(time.RFC3339, at)
	if err != nil || tm.Before(before.Truncate(time.Second)) || tm.After(time.Now()) {
		t.Errorf("at %q is not now (%v)", at, err)
	}
}

func TestRouteCommandErrors(t *testing.T) {
	bad := writeFile(t, t.TempDir(), "bad.yaml", "lines: [{number: \"988\"}]\nroutes:\n  - {name: spanish, when: {languages: [es]}, to: es}\n")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-line", "911"}, `hotline: route: unknown line "911": neither the name of a line nor a number that reaches one`},
		{[]string{"-at", "tomorrow"}, `hotline: route: -at "tomorrow" is not an RFC 3339 time like 2026-12-25T03:00:00-06:00`},
		{[]string{"-closed", "nights"}, `hotline: route: -closed: no schedule "nights"; schedules: advocates`},
		{[]string{"-force-route", "nowhere"}, `hotline: route: -force-route: no route "nowhere"; routes: help_now_es, help_now, spanish, default`},
		{[]string{"-longest-wait", "es"}, `hotline: route: -longest-wait "es" is not queue=duration, like es=5m`},
		{[]string{"-longest-wait", "es=soon"}, `hotline: route: -longest-wait "es=soon" is not queue=duration, like es=5m`},
		{[]string{"-server", "http://127.0.0.1:1", "-closed", "advocates"}, "hotline: route: -server routes with the server's configuration and state; it cannot be combined with -config or what-if flags"},
		{[]string{"-config", bad}, bad + `:3: routes[0].when: the last route must have no conditions, so that every call gets a decision: add a catch-all route at the end`},
		{[]string{"extra"}, `hotline: route: unexpected argument "extra"`},
	}
	for _, tt := range tests {
		code, out, errOut := runCmd(t, append([]string{"route"}, tt.args...)...)
		if code != 1 || out != "" || strings.TrimSpace(errOut) != tt.want {
			t.Errorf("route %q: exit %d, stdout %q, stderr:\n%s\nwant:\n%s", tt.args, code, out, errOut, tt.want)
		}
	}
}

// TestRouteCommandServer asks a running admin API, which reports its live overrides.
func TestRouteCommandServer(t *testing.T) {
	cfg, err := config.Load("testdata/route.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tb, err := routing.Compile(cfg.RoutingSpec())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 6, 6, 15, 0, 0, 0, time.UTC)
	var overrides routing.Overrides
	if _, _, err := overrides.Set(routing.Override{Kind: routing.ForceClosed, Schedule: "advocates", Reason: "storm", Since: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/", admin.Handler(admin.Options{
		Token:     "tok",
		Table:     func() *routing.Table { return tb },
		Overrides: &overrides,
		Now:       func() time.Time { return now },
		State: func() routing.State {
			return routing.State{Queues: map[string]routing.QueueState{"es": {LoggedIn: 3}, "en": {LoggedIn: 4, LongestWait: 30 * time.Second}}}
		},
		Logger: slog.New(slog.DiscardHandler),
	}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	t.Setenv(admin.TokenEnv, "tok")
	code, out, errOut := runCmd(t, "route", "-server", srv.URL, "-line", "18883737888", "-lang", "es", "-reason", "help_now")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	goldenFile(t, "route-server.golden", out)

	t.Setenv(admin.TokenEnv, "wrong")
	if code, _, errOut := runCmd(t, "route", "-server", srv.URL); code != 1 || !strings.Contains(errOut, "401 Unauthorized") {
		t.Errorf("wrong token: exit %d, %s", code, errOut)
	}
	t.Setenv(admin.TokenEnv, "")
	if code, _, errOut := runCmd(t, "route", "-server", srv.URL); code != 1 || !strings.Contains(errOut, "set $HOTLINE_ADMIN_TOKEN") {
		t.Errorf("no token: exit %d, %s", code, errOut)
	}
	t.Setenv(admin.TokenEnv, "tok")
	if code, _, errOut := runCmd(t, "route", "-server", srv.URL, "-line", "911"); code != 1 || !strings.Contains(errOut, `hotline: route: unknown line "911"`) {
		t.Errorf("unknown line: exit %d, %s", code, errOut)
	}
	off := httptest.NewServer(admin.Handler(admin.Options{}))
	defer off.Close()
	if code, _, errOut := runCmd(t, "route", "-server", off.URL); code != 1 || !strings.Contains(errOut, "is the admin API on") {
		t.Errorf("API off: exit %d, %s", code, errOut)
	}
}
