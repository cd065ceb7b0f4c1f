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
	"github.com/hotline-project/hotline/records"
)

// openRecordsDB opens the configured call-records database; nil with driver none.
func openRecordsDB(ctx context.Context, rc *config.Records) (*records.DB, error) {
	switch rc.Driver {
	case "sqlite":
		return records.OpenSQLite(ctx, rc.Path)
	case "postgres":
		dsn := rc.DSN
		if env := strings.TrimSpace(os.Getenv(records.DSNEnv)); env != "" {
			dsn = env
		}
		return records.OpenPostgres(ctx, dsn)
	}
	return nil, nil
}

// openRecords opens the configured call-records store for the server: it loads (or, for
// SQLite without a configured key, generates) the caller-hash key, applies the schema
// migrations, marks this node's calls that a crash left in progress as interrupted, and
// returns the database (for the admin API's export) and the Recorder the call path writes
// through. With driver none both are nil, and a nil Recorder records nothing.
//
// Any error stops the server from starting, as a bad configuration does: a wrong DSN or
// key is a deployment mistake to fix at once, not to discover in a month's report.
func openRecords(ctx context.Context, cfg *config.Config, log *slog.Logger) (*records.DB, *records.Recorder, error) {
	rc := &cfg.Records
	if rc.Driver == "none" {
		log.Warn("call records are off (records.driver: none)")
		return nil, nil, nil
	}
	generated := ""
	if rc.Driver == "sqlite" {
		generated = rc.Path + ".key"
	}
	key, created, err := records.LoadKey(rc.HashKeyFile, generated)
	if err != nil {
		return nil, nil, fmt.Errorf("records: %w", err)
	}
	if created {
		log.Warn("generated a key for hashing callers' numbers in the call records; keep it with the "+
			"server (a new key makes every caller look new), and set records.hash_key_file or "+
			records.KeyEnv+" for a key of your own", "file", generated)
	}
	hasher, err := records.NewHasher(key, config.CountryCode)
	if err != nil {
		return nil, nil, fmt.Errorf("records: %w", err)
	}
	node := rc.Node
	if node == "" {
		if node, err = os.Hostname(); err != nil || node == "" {
			node = "hotline"
		}
	}
	db, err := openRecordsDB(ctx, rc)
	if err != nil {
		return nil, nil, err
	}
	n, err := db.RecoverInterrupted(ctx, node, time.Now())
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	if n > 0 {
		log.Warn("calls cut off when the server last stopped are recorded as interrupted", "calls", n, "node", node)
	}
	rec := records.NewRecorder(db, records.Options{
		Hasher: hasher, Node: node, Retention: rc.Retention(), Logger: log,
	})
	log.Info("call records", "driver", rc.Driver, "node", node, "retention_days", rc.RetentionDays)
	return db, rec, nil
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
