package admin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hotline-project/hotline/records"
)

// Records exports call records as CSV; *records.DB implements it.
type Records interface {
	// Export writes the records of calls that started in [since, until) as CSV, header
	// first; a zero time leaves that end open. It should write nothing when it fails
	// before the first row.
	Export(ctx context.Context, w io.Writer, since, until time.Time) error
}

var _ Records = (*records.DB)(nil)

// exportRecords serves GET /admin/v1/records?since=..&until=..: the call records as CSV
// (records.CSVHeader documents the columns). since and until are RFC 3339 times or dates
// (midnight at the start of the day, in the server's time zone); either may be left out.
func (s *server) exportRecords(w http.ResponseWriter, r *http.Request) {
	if s.opts.Records == nil {
		writeError(w, http.StatusNotFound, "no call records on this server (records.driver: none)")
		return
	}
	q := r.URL.Query()
	since, err := records.ParseTime(q.Get("since"), time.Local)
	if err != nil {
		writeError(w, http.StatusBadRequest, "since: "+err.Error())
		return
	}
	until, err := records.ParseTime(q.Get("until"), time.Local)
	if err != nil {
		writeError(w, http.StatusBadRequest, "until: "+err.Error())
		return
	}
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		writeError(w, http.StatusBadRequest, "since must be before until")
		return
	}
	cw := &countingWriter{w: w, header: func() {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="call-records.csv"`)
	}}
	if err := s.opts.Records.Export(r.Context(), cw, since, until); err != nil {
		s.opts.Logger.Error("call records export failed", "err", err, "remote", r.RemoteAddr)
		if cw.n == 0 {
			writeError(w, http.StatusInternalServerError, "the call records could not be read; the server log says why")
			return
		}
		// Part of the CSV is sent: break the connection, so that the client sees a failed
		// download rather than a file that looks complete.
		panic(http.ErrAbortHandler)
	}
	s.opts.Logger.Info("call records exported", "since", since, "until", until, "bytes", cw.n, "remote", r.RemoteAddr)
}

// countingWriter counts what is written, and sets the headers before the first write.
type countingWriter struct {
	w      io.Writer
	header func()
	n      int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.n == 0 && c.header != nil {
		c.header()
		c.header = nil
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("admin: write: %w", err)
	}
	return n, nil
}
