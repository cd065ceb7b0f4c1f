package admin_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hotline-project/hotline/admin"
	"github.com/hotline-project/hotline/routing"
)

// fakeCallbacks holds one pending callback, masked as the flow masks it.
type fakeCallbacks struct{ cancelled []string }

func (f *fakeCallbacks) List() any {
	return []map[string]any{{"id": "cb-1", "queue": "es", "number": "••••••••99"}}
}

func (f *fakeCallbacks) Cancel(id string) error {
	if id != "cb-1" {
		return fmt.Errorf("%w: %s", admin.ErrNoCallback, id)
	}
	f.cancelled = append(f.cancelled, id)
	return nil
}

// TestAdminCallbacks: the list (behind the token), cancel one, an unknown id is 404, and
// without a Callbacks the paths are 404.
func TestAdminCallbacks(t *testing.T) {
	cbs := &fakeCallbacks{}
	h := admin.Handler(admin.Options{Token: "tok", Table: func() *routing.Table { return nil },
		Overrides: &routing.Overrides{}, Callbacks: cbs, Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(h)
	defer srv.Close()
	do := func(method, path, tok string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := do("GET", "/admin/v1/callbacks", ""); code != 401 || strings.Contains(body, "cb-1") {
		t.Fatalf("without token: %d %s", code, body)
	}
	if code, body := do("GET", "/admin/v1/callbacks", "tok"); code != 200 || !strings.Contains(body, `"number": "••••••••99"`) {
		t.Fatalf("list: %d %s", code, body)
	}
	if code, body := do("DELETE", "/admin/v1/callbacks/cb-2", "tok"); code != 404 {
		t.Fatalf("unknown: %d %s", code, body)
	}
	if code, body := do("DELETE", "/admin/v1/callbacks/cb-1", "tok"); code != 200 || len(cbs.cancelled) != 1 {
		t.Fatalf("cancel: %d %s", code, body)
	}
	off := httptest.NewServer(admin.Handler(admin.Options{Token: "tok", Table: func() *routing.Table { return nil },
		Overrides: &routing.Overrides{}, Logger: slog.New(slog.DiscardHandler)}))
	defer off.Close()
	req, _ := http.NewRequest("GET", off.URL+"/admin/v1/callbacks", nil)
	req.Header.Set("Authorization", "Bearer tok")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Errorf("without callbacks: %d", res.StatusCode)
	}
}
