package admin_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hotline-project/hotline/admin"
)

type fakeMembers struct{ added, removed []string }

func (f *fakeMembers) AddMember(_ context.Context, id, addr string) error {
	if id == "bad" {
		return errors.New("no leader reachable")
	}
	f.added = append(f.added, id+"@"+addr)
	return nil
}

func (f *fakeMembers) RemoveMember(_ context.Context, id string) error {
	f.removed = append(f.removed, id)
	return nil
}

func TestAdminClusterMembers(t *testing.T) {
	m := &fakeMembers{}
	quiet := slog.New(slog.DiscardHandler)
	on := httptest.NewServer(admin.Handler(admin.Options{Token: token, Members: m, Logger: quiet}))
	defer on.Close()
	off := httptest.NewServer(admin.Handler(admin.Options{Token: token, Logger: quiet}))
	defer off.Close()
	do := func(srv *httptest.Server, method, path, auth string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	for _, tc := range []struct {
		name         string
		srv          *httptest.Server
		method, path string
		auth         string
		code         int
		body         string
	}{
		{"add", on, "POST", "/admin/v1/cluster/members?id=n4&addr=127.0.0.5:7000", "Bearer " + token, 200, `"added": "n4"`},
		{"add without addr", on, "POST", "/admin/v1/cluster/members?id=n4", "Bearer " + token, 400, "want ?id"},
		{"add at a host name", on, "POST", "/admin/v1/cluster/members?id=n4&addr=node4:7000", "Bearer " + token, 400, "want IP:PORT"},
		{"add without a port", on, "POST", "/admin/v1/cluster/members?id=n4&addr=127.0.0.5", "Bearer " + token, 400, "want IP:PORT"},
		{"add refused by the cluster", on, "POST", "/admin/v1/cluster/members?id=bad&addr=127.0.0.5:7000", "Bearer " + token, 503, "no leader"},
		{"remove", on, "DELETE", "/admin/v1/cluster/members/n3", "Bearer " + token, 200, `"removed": "n3"`},
		{"remove without the token", on, "DELETE", "/admin/v1/cluster/members/n2", "", 401, "unauthorized"},
		{"a single node", off, "DELETE", "/admin/v1/cluster/members/n3", "Bearer " + token, 404, "not a cluster node"},
	} {
		code, body := do(tc.srv, tc.method, tc.path, tc.auth)
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, code, body, tc.code, tc.body)
		}
	}
	if strings.Join(m.added, ",") != "n4@127.0.0.5:7000" || strings.Join(m.removed, ",") != "n3" {
		t.Errorf("added %v, removed %v", m.added, m.removed)
	}
}
