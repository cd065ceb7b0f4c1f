package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/hotline-project/hotline/config"
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
	if _, err := loadPrompts(cfg); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *cfgPath, err)
		return errReported
	}
	fmt.Fprintf(stdout, "%s: ok\n", *cfgPath)
	return nil
}
