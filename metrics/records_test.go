package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hotline-project/hotline/records"
)

// TestRecords: the records' collectors show the Recorder's state, and /readyz stays 200
// with a degraded line (no error text) while the store is down.
func TestRecords(t *testing.T) {
	reg := prometheus.NewRegistry()
	st := records.Stats{StoreUp: false, DownSince: time.Date(2026, 3, 1, 2, 3, 4, 0, time.UTC), LastError: "open: disk I/O error at /secret/path",
		Queued: 3, Spooled: 40, Written: 7}
	st.Dropped[1] = 2
	m := NewRecords(reg, func() records.Stats { return st })
	m.StoreError("write")
	m.StoreError("nonsense")
	want := `
# HELP hotline_records_dropped_total Call records lost because the store, the spool and the memory queue were all unavailable or full (kind: progress, finish, attempts).
# TYPE hotline_records_dropped_total counter
hotline_records_dropped_total{kind="attempts"} 0
hotline_records_dropped_total{kind="finish"} 2
hotline_records_dropped_total{kind="progress"} 0
# HELP hotline_records_spooled Call records waiting in the spool file for the store.
# TYPE hotline_records_spooled gauge
hotline_records_spooled 40
# HELP hotline_records_store_up 1 when the call records store takes writes, 0 while it is unavailable (records wait in the spool; calls are answered as usual).
# TYPE hotline_records_store_up gauge
hotline_records_store_up 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "hotline_records_store_up",
		"hotline_records_spooled", "hotline_records_dropped_total"); err != nil {
		t.Error(err)
	}
	if v := testutil.ToFloat64(m.errors.WithLabelValues("write")); v != 1 {
		t.Errorf("write errors = %v", v)
	}
	if v := testutil.ToFloat64(m.errors.WithLabelValues("other")); v != 1 {
		t.Errorf("other errors = %v", v)
	}

	h := &Health{}
	h.SetReady(true)
	h.SetDetail(func() string { return RecordsDetail(st) })
	srv := httptest.NewServer(Handler(reg, h))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	wantBody := "ready\nrecords: degraded: the store is unavailable (since 2026-03-01T02:03:04Z); calls are answered, 3 records wait in memory and 40 in the spool\n"
	if res.StatusCode != 200 || string(body) != wantBody {
		t.Errorf("/readyz = %d %q, want 200 %q", res.StatusCode, body, wantBody)
	}
	if RecordsDetail(records.Stats{StoreUp: true}) != "" {
		t.Error("a detail with the store up")
	}
}
