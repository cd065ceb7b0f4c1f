package config

import (
	"regexp"
	"time"
)

// Records configures the call records: one row per call, kept in a database that
// survives a crash, exported as CSV for reporting (package records).
type Records struct {
	// Driver is sqlite (an embedded database file, the default), postgres, or none (no
	// records are kept).
	Driver string `yaml:"driver"`
	// Path is the SQLite database file; default "hotline-records.db". A relative path is
	// relative to the working directory.
	Path string `yaml:"path"`
	// DSN is the PostgreSQL connection string (a postgres:// URL or key=value pairs);
	// required with driver postgres. Leave the password out: PGPASSWORD or ~/.pgpass
	// supply it. The environment variable HOTLINE_RECORDS_DSN, if set, is used instead.
	DSN string `yaml:"dsn"`
	// HashKeyFile holds the key callers' numbers are hashed with (HMAC-SHA256), at least
	// 16 bytes. The environment variable HOTLINE_RECORDS_KEY, if set, is used instead. With
	// neither, the sqlite driver generates a key into Path + ".key" at first start; the
	// postgres driver requires one, so that every server sharing the database hashes alike.
	HashKeyFile string `yaml:"hash_key_file"`
	// RetentionDays is how long records are kept; older ones are purged at start and
	// hourly. 0 keeps them for ever; default 400 (13 months: a year's report can compare
	// each month with the same month a year before); 0..36500.
	RetentionDays int `yaml:"retention_days"`
	// Node names this server in its records; default the host name. Servers that share a
	// PostgreSQL database need names of their own: at start, each marks only its own
	// unfinished calls as interrupted. [A-Za-z0-9_.-]+, at most 64.
	Node string `yaml:"node"`
	// Spool is the file where records wait while the store is unavailable (locked, full,
	// read-only, down), written to it when it is back; kept across restarts. Default ""
	// means Path + ".spool" with sqlite and "hotline-records.spool" (in the working
	// directory) with postgres; "none" keeps waiting records in memory only.
	Spool string `yaml:"spool"`
	// SpoolMaxMB bounds the spool file, in MiB (about 1,500 records each); default 256,
	// 1..65536. Past it, records wait in memory (up to 20,000), and past that they are
	// dropped and counted (hotline_records_dropped_total).
	SpoolMaxMB int `yaml:"spool_max_mb"`
}

// SpoolPath returns the spool file's path; "" when there is none.
func (r *Records) SpoolPath() string {
	switch {
	case r.Spool == "none" || r.Driver == "none":
		return ""
	case r.Spool != "":
		return r.Spool
	case r.Driver == "sqlite":
		return r.Path + ".spool"
	}
	return "hotline-records.spool"
}

// Retention returns RetentionDays as a duration; 0 means for ever.
func (r *Records) Retention() time.Duration {
	return time.Duration(r.RetentionDays) * 24 * time.Hour
}

// defaultRecords are the records section's defaults.
func defaultRecords() Records {
	return Records{Driver: "sqlite", Path: "hotline-records.db", RetentionDays: 400, SpoolMaxMB: 256}
}

var reNode = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// validateRecords records problems with the records section.
func (p *parser) validateRecords(r *Records) {
	switch r.Driver {
	case "sqlite":
		if r.Path == "" {
			p.errorf("records.path", "required with driver sqlite")
		}
	case "postgres":
		if r.DSN == "" {
			p.errorf("records.dsn", "required with driver postgres (or set HOTLINE_RECORDS_DSN)")
		}
	case "none":
	default:
		p.errorf("records.driver", "%q is not one of sqlite, postgres, none", r.Driver)
	}
	if r.DSN != "" && r.Driver != "postgres" {
		p.errorf("records.dsn", "only used with driver postgres")
	}
	if r.RetentionDays < 0 || r.RetentionDays > 36500 {
		p.errorf("records.retention_days", "must be 0 (keep for ever) or up to 36500, got %d", r.RetentionDays)
	}
	if r.SpoolMaxMB < 1 || r.SpoolMaxMB > 65536 {
		p.errorf("records.spool_max_mb", "must be 1..65536, got %d", r.SpoolMaxMB)
	}
	if r.Node != "" && !reNode.MatchString(r.Node) {
		p.errorf("records.node", "%q may only have letters, digits, _, . and - (at most 64)", r.Node)
	}
}
