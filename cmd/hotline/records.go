package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/hotline-project/hotline/callflow"
	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/metrics"
	"github.com/hotline-project/hotline/outcome"
	"github.com/hotline-project/hotline/records"
	"github.com/hotline-project/hotline/sip"
)

// openRecordsDB opens the configured call-records database; nil with driver none.
func openRecordsDB(ctx context.Context, rc *config.Records) (*records.DB, error) {
	switch rc.Driver {
	case "sqlite":
		return records.OpenSQLite(ctx, rc.Path)
	case "postgres":
		return records.OpenPostgres(ctx, postgresDSN(rc))
	}
	return nil, nil
}

// openRecords starts the call records for the server: it loads (or, for SQLite without a
// configured key, generates) the caller-hash key and returns the Recorder the call path
// writes through, whose writer opens the store (applying the migrations and marking this
// node's calls that a crash left in progress as interrupted) in the background. With driver
// none it returns nil, and a nil Recorder records nothing.
//
// Only configuration mistakes stop the server from starting (a key file that cannot be
// read, a DSN that does not parse): a store that is locked, full, read-only or down costs
// no call. The Recorder says so (log, /readyz, hotline_records_store_up), spools the
// records and writes them when the store is back (issue 15).
func openRecords(cfg *config.Config, log *slog.Logger, onError func(op string)) (*records.Recorder, error) {
	rc := &cfg.Records
	if rc.Driver == "none" {
		log.Warn("call records are off (records.driver: none)")
		return nil, nil
	}
	generated := ""
	if rc.Driver == "sqlite" {
		generated = rc.Path + ".key"
	}
	key, created, err := records.LoadKey(rc.HashKeyFile, generated)
	if err != nil && generated != "" && rc.HashKeyFile == "" && os.Getenv(records.KeyEnv) == "" && !exists(generated) {
		// The key could not be generated (a read-only or full disk): the calls go on, with
		// callers hashed under a key of this run only, which links no caller to earlier
		// records.
		log.Error("no key for hashing callers' numbers could be written; this run hashes them with a "+
			"temporary key, so its records do not link repeat callers to earlier ones", "file", generated, "err", err)
		key, err = []byte(records.GenerateKey()), nil
	}
	if err != nil {
		return nil, fmt.Errorf("records: %w", err)
	}
	if created {
		log.Warn("generated a key for hashing callers' numbers in the call records; keep it with the "+
			"server (a new key makes every caller look new), and set records.hash_key_file or "+
			records.KeyEnv+" for a key of your own", "file", generated)
	}
	hasher, err := records.NewHasher(key, config.CountryCode)
	if err != nil {
		return nil, fmt.Errorf("records: %w", err)
	}
	node := rc.Node
	if node == "" {
		if node, err = os.Hostname(); err != nil || node == "" {
			node = "hotline"
		}
	}
	if rc.Driver == "postgres" {
		if err := records.CheckDSN(postgresDSN(rc)); err != nil {
			return nil, err
		}
	}
	rec := records.Open(func(ctx context.Context) (records.Store, error) {
		db, err := openRecordsDB(ctx, rc)
		if err != nil {
			return nil, err
		}
		return db, nil
	}, records.Options{
		Hasher: hasher, Node: node, Retention: rc.Retention(), Logger: log, OnError: onError,
		Spool: rc.SpoolPath(), SpoolMax: int64(rc.SpoolMaxMB) << 20,
	})
	log.Info("call records", "driver", rc.Driver, "node", node, "retention_days", rc.RetentionDays, "spool", rc.SpoolPath())
	return rec, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// postgresDSN is the configured PostgreSQL DSN: $HOTLINE_RECORDS_DSN, else records.dsn.
func postgresDSN(rc *config.Records) string {
	if env := strings.TrimSpace(os.Getenv(records.DSNEnv)); env != "" {
		return env
	}
	return rc.DSN
}

// callObserver is the SIP server's Observer: the metrics, and the call records of the call
// attempts that never reached the switchboard (refused, cancelled, never acknowledged).
type callObserver struct {
	*metrics.Metrics
	rec *records.Recorder
}

var _ sip.AttemptObserver = callObserver{}

// CallRefused counts a refused INVITE in the records (per minute, line and reason).
func (o callObserver) CallRefused(line, reason string) { o.rec.Refused(line, reason, time.Now()) }

// CallUnanswered records a call that ended before it was answered.
func (o callObserver) CallUnanswered(c *sip.Call, end outcome.Leg) {
	o.rec.Unanswered(c.ID, c.Line, c.Caller(), c.Arrived, time.Now(), end.Unanswered())
}

// recordsCmd writes the call records of a time window as CSV to stdout, reading the
// configured store directly (the server may be running).
func recordsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("records", flag.ContinueOnError)
	flags.SetOutput(stderr)
	cfgPath := flags.String("config", "", "configuration `file` naming the records store (default: the embedded configuration)")
	sinceFlag := flags.String("since", "", "export calls that started at or after `TIME` (2026-03-01 or 2026-03-01T00:00:00-06:00; a date is midnight local time)")
	untilFlag := flags.String("until", "", "export calls that started before `TIME`")
	flags.Usage = func() {
		fmt.Fprintf(flags.Output(), "usage: hotline records [-config FILE] [-since TIME] [-until TIME] > records.csv\n\n"+
			"Columns: %s\n(the README's \"Call records\" section explains each)\n\n", records.CSVHeader)
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("records: unexpected argument %q", flags.Arg(0))
	}
	since, err := records.ParseTime(*sinceFlag, time.Local)
	if err != nil {
		return fmt.Errorf("records: -since: %w", err)
	}
	until, err := records.ParseTime(*untilFlag, time.Local)
	if err != nil {
		return fmt.Errorf("records: -until: %w", err)
	}
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		return errors.New("records: -since must be before -until")
	}
	cfg, err := callflow.LoadConfig(*cfgPath)
	if err != nil {
		return err
	}
	rc := &cfg.Records
	switch rc.Driver {
	case "none":
		return errors.New("records: records.driver is none: no call records are kept")
	case "sqlite":
		// Opening would create an empty database: say instead that there is none.
		if _, err := os.Stat(rc.Path); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("records: no call records database at %s (records.path)", rc.Path)
		}
	}
	db, err := openRecordsDB(ctx, rc)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Export(ctx, stdout, since, until)
}
