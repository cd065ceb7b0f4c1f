package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hotline-project/hotline/callback"
	"github.com/hotline-project/hotline/callflow"
	"github.com/hotline-project/hotline/config"
	"github.com/hotline-project/hotline/sip/digest"
)

// checkCmd validates a configuration file and the prompts it needs. Each problem is printed
// as FILE:LINE: field.path: what is wrong.
func checkCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration `file` to check (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return errors.New("check: -config FILE is required")
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				fmt.Fprintln(stderr, e.Error())
			}
			return errReported
		}
		fmt.Fprintln(stderr, err.Error())
		return errReported
	}
	if cfg.SIP.TLS.Listen != "" {
		if _, _, err := loadSIPTLS(cfg.SIP.TLS); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", *cfgPath, err)
			return errReported
		}
	}
	if _, err := loadHTTPTLS(cfg.HTTP); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *cfgPath, err)
		return errReported
	}
	if cfg.State.Cluster.NodeID != "" {
		// The server reads the cluster's secret at start and refuses to start without it.
		if _, err := clusterSecret(cfg.State.Cluster); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", *cfgPath, err)
			return errReported
		}
	}
	if cfg.Callback.KeyFile != "" {
		// The server reads it at start and refuses to start without it.
		if _, _, err := callback.Load(cfg.Callback.KeyFile, false); err != nil {
			fmt.Fprintf(stderr, "%s: callback.key_file: %v\n", *cfgPath, err)
			return errReported
		}
	}
	_, rep, err := callflow.LoadPrompts(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *cfgPath, err)
		return errReported
	}
	if len(rep.Missing) > 0 {
		byLang := map[string][]string{}
		var langs []string
		for _, m := range rep.Missing {
			lang, name, _ := strings.Cut(m, "/")
			if byLang[lang] == nil {
				langs = append(langs, lang)
			}
			byLang[lang] = append(byLang[lang], name)
		}
		for _, lang := range langs {
			fmt.Fprintf(stdout, "%s: warning: language %s has no recording of %d prompts (played from its fallback): %s\n",
				*cfgPath, lang, len(byLang[lang]), strings.Join(byLang[lang], ", "))
		}
	}
	for _, w := range digestWarnings(cfg) {
		fmt.Fprintf(stdout, "%s: warning: %s\n", *cfgPath, w)
	}
	if sp := cfg.Records.SpoolPath(); sp != "" {
		if fi, err := os.Stat(filepath.Dir(sp)); err != nil || !fi.IsDir() {
			fmt.Fprintf(stdout, "%s: warning: records.spool: no directory %s here: while the records store is "+
				"unavailable, records would wait in memory only\n", *cfgPath, filepath.Dir(sp))
		}
	}
	fmt.Fprintf(stdout, "%s: ok\n", *cfgPath)
	return nil
}

// digestWarnings names the advocates whose 401 differs from the one user names with no
// account get (the most common kind of account's): a scanner sending REGISTERs for many
// names could tell those accounts exist.
func digestWarnings(cfg *config.Config) []string {
	accounts := make(map[string]digest.HA1, len(cfg.Advocates))
	for _, a := range cfg.Advocates {
		accounts[a.ID] = digest.HA1{SHA256: a.HA1SHA256, MD5: a.HA1MD5}
	}
	algs := cfg.SIP.DigestAlgorithms
	unknown := digest.Offer(algs, digest.Typical(accounts))
	var warnings []string
	for i, a := range cfg.Advocates {
		if got := digest.Offer(algs, accounts[a.ID]); !slices.Equal(got, unknown) {
			warnings = append(warnings, fmt.Sprintf("advocates[%d] (%s) is challenged with %v where names with no account, like most advocates, get %v: "+
				"a scanner can tell this account exists; give it the other ha1 value (hotline passwd -id %s)", i, a.ID, got, unknown, a.ID))
		}
	}
	return warnings
}
