package admin_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotline-project/hotline/admin"
	"github.com/hotline-project/hotline/records"
)

// recordsServer serves the admin API with rec as its records.
func recordsServer(t *testing.T, rec admin.Records) (*httptest.Server, *bytes.Buffer) {
	t.Helper()
	var log bytes.Buffer
	h := admin.Handler(admin.Options{Token: token, Records: rec, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, &log
}

func get(t *testing.T, srv *httptest.Server, path, auth string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// TestRecordsExport: GET /admin/v1/records returns the records of the time window as CSV
// from a real store, and only with the token.
func TestRecordsExport(t *testing.T) {
	db, err := records.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, id := range []string{"c1", "c2", "c3"} {
		start := t0.Add(time.Duration(i) * 24 * time.Hour)
		if err := db.Finish(context.Background(), records.Record{CallID: id, Node: "n", Line: "main",
			CallerHash: records.CallerHash([]byte("0123456789abcdef"), "+15551234567"),
			Start:      start, End: start.Add(time.Minute), Outcome: records.OutcomeMenuHangup}); err != nil {
			t.Fatal(err)
		}
	}
	srv, log := recordsServer(t, db)
	if resp, _, _ := get(t, srv, "/admin/v1/records", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without a token: %d", resp.StatusCode)
	}
	for _, tc := range []struct {
		query string
		ids   []string
	}{
		{"", []string{"c1", "c2", "c3"}},
		{"?since=2026-03-02T00:00:00Z", []string{"c2", "c3"}},
		{"?until=2026-03-02T12:00:00Z", []string{"c1"}},
		{"?since=2026-03-01T12:00:00Z&until=2026-03-03T11:59:59Z", []string{"c1", "c2"}},
		{"?since=2030-01-01", nil},
	} {
		resp, body, err := get(t, srv, "/admin/v1/records"+tc.query, "Bearer "+token)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %v\n%s", tc.query, resp.StatusCode, err, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", tc.query, ct)
		}
		lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
		if lines[0] != records.CSVHeader {
			t.Fatalf("%s: header %q", tc.query, lines[0])
		}
		var ids []string
		for _, l := range lines[1:] {
			id, _, _ := strings.Cut(l, ",")
			ids = append(ids, id)
		}
		if strings.Join(ids, " ") != strings.Join(tc.ids, " ") {
			t.Errorf("%s: %v, want %v", tc.query, ids, tc.ids)
		}
		if strings.Contains(body, "5551234567") {
			t.Errorf("%s: the export has the caller's number", tc.query)
		}
	}
	if !strings.Contains(log.String(), "call records exported") {
		t.Errorf("the export is not logged:\n%s", log)
	}
}

// exportFunc is an admin.Records made of a func.
type exportFunc func(ctx context.Context, w io.Writer, since, until time.Time) error

func (f exportFunc) Export(ctx context.Context, w io.Writer, since, until time.Time) error {
	return f(ctx, w, since, until)
}

// TestRecordsExportErrors: bad filters are 400 with the reason; no records configured is
// 404; a store that fails before writing is 500, and one that fails half-way breaks the
// connection rather than send a CSV that looks complete.
func TestRecordsExportErrors(t *testing.T) {
	srv, _ := recordsServer(t, exportFunc(func(_ context.Context, w io.Writer, _, _ time.Time) error {
		return nil
	}))
	for _, tc := range []struct {
		query, want string
	}{
		{"?since=yesterday", `since: \"yesterday\" is neither a date`},
		{"?until=2026-13-01", `until: \"2026-13-01\" is neither a date`},
		{"?since=2026-03-02&until=2026-03-01", "since must be before until"},
		{"?since=2026-03-01&until=2026-03-01", "since must be before until"},
	} {
		resp, body, _ := get(t, srv, "/admin/v1/records"+tc.query, "Bearer "+token)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want 400 with %q", tc.query, resp.StatusCode, body, tc.want)
		}
	}

	srv, _ = recordsServer(t, nil)
	if resp, _, _ := get(t, srv, "/admin/v1/records", "Bearer "+token); resp.StatusCode != http.StatusNotFound {
		t.Errorf("no records: %d, want 404", resp.StatusCode)
	}

	srv, _ = recordsServer(t, exportFunc(func(context.Context, io.Writer, time.Time, time.Time) error {
		return errors.New("database is locked")
	}))
	resp, body, _ := get(t, srv, "/admin/v1/records", "Bearer "+token)
	if resp.StatusCode != http.StatusInternalServerError || strings.Contains(body, "locked") {
		t.Errorf("failing store: %d %s, want 500 without the details", resp.StatusCode, body)
	}

	srv, _ = recordsServer(t, exportFunc(func(_ context.Context, w io.Writer, _, _ time.Time) error {
		// More than the response buffer, so that the headers and a part are sent.
		if _, err := w.Write(bytes.Repeat([]byte("x,y\n"), 64<<10)); err != nil {
			return err
		}
		return errors.New("connection to the database lost")
	}))
	srv.Config.ErrorLog = nil
	if _, _, err := get(t, srv, "/admin/v1/records", "Bearer "+token); err == nil {
		t.Error("a half-written export read as complete")
	}
}
