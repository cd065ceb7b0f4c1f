package config

import (
	"testing"
	"time"
)

func TestRecordsErrors(t *testing.T) {
	checkLoadErrors(t, []loadErrorCase{
		{"records-bad.yaml", `testdata/records-bad.yaml:2: records.driver: "mysql" is not one of sqlite, postgres, none
testdata/records-bad.yaml:3: records.dsn: only used with driver postgres
testdata/records-bad.yaml:4: records.retention_days: must be 0 (keep for ever) or up to 36500, got -1
testdata/records-bad.yaml:5: records.node: "my node" may only have letters, digits, _, . and - (at most 64)
testdata/records-bad.yaml:6: records.spool_max_mb: must be 1..65536, got 0`},
		{"records-fraction.yaml", `testdata/records-fraction.yaml:2: records.retention_days: "30.5" is not a whole number`},
		{"records-postgres.yaml", `testdata/records-postgres.yaml:1: records.dsn: required with driver postgres (or set HOTLINE_RECORDS_DSN)`},
		{"records-sqlite.yaml", `testdata/records-sqlite.yaml:3: records.path: required with driver sqlite`},
	})
}

func TestRecordsGood(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want Records
	}{
		{`lines: [{number: "1"}]`, Records{Driver: "sqlite", Path: "hotline-records.db", RetentionDays: 400, SpoolMaxMB: 256}},
		{`{lines: [{number: "1"}], records: {driver: postgres, dsn: "host=db dbname=hotline", retention_days: 0, node: hotline-2.east}}`,
			Records{Driver: "postgres", Path: "hotline-records.db", DSN: "host=db dbname=hotline", Node: "hotline-2.east", SpoolMaxMB: 256}},
		{`{lines: [{number: "1"}], records: {driver: none}}`, Records{Driver: "none", Path: "hotline-records.db", RetentionDays: 400, SpoolMaxMB: 256}},
	} {
		c, err := Parse("t.yaml", []byte(tc.yaml))
		if err != nil {
			t.Fatalf("%s: %v", tc.yaml, err)
		}
		if c.Records != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.yaml, c.Records, tc.want)
		}
	}
	r := Records{RetentionDays: 400}
	if r.Retention() != 400*24*time.Hour {
		t.Errorf("Retention = %v", r.Retention())
	}
	for _, tc := range []struct {
		r    Records
		want string
	}{
		{Records{Driver: "sqlite", Path: "/var/lib/hotline/r.db"}, "/var/lib/hotline/r.db.spool"},
		{Records{Driver: "postgres"}, "hotline-records.spool"},
		{Records{Driver: "sqlite", Path: "r.db", Spool: "/spool/r"}, "/spool/r"},
		{Records{Driver: "sqlite", Path: "r.db", Spool: "none"}, ""},
		{Records{Driver: "none"}, ""},
	} {
		if got := tc.r.SpoolPath(); got != tc.want {
			t.Errorf("%+v: SpoolPath = %q, want %q", tc.r, got, tc.want)
		}
	}
}
